"""Measuring models: sample metrics, image metrics, the digit classifier and model evaluations."""
