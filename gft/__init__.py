"""gft: flow matching and Gradual Fine-Tuning (GFT) of flow models.

One time convention everywhere in this package (tested in tests/test_conventions.py):

* time ``t`` runs over [0, 1]; ``t = 0`` is the source noise ``N(0, I)``, ``t = 1`` is data;
* a model is called ``model(x, t)`` with ``x`` of shape ``(B, *data_shape)`` and ``t`` of shape ``(B,)``
  and returns the velocity; ``model.heads(x, t)`` returns every drift head (velocity, and score when
  the model has one);
* torchdiffeq's ``f(t, x)`` order is adapted inside :mod:`gft.core.sampling` only.

The GFT objective regresses every head onto the blended target
``(1 - lambda) * y_t + lambda * f_pre(x_t, t)`` with ``lambda = tau / (1 + tau)``
(see ``docs/method.md`` of the project and :mod:`gft.core.objectives`).
"""

__version__ = "0.1.0"
