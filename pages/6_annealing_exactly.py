"""Annealing, exactly: GFT between two Gaussians in closed form, no training (gft.theory.gaussian)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app import layout
from gft.app import widgets as w
from gft.app.session import user_errors
from gft.theory import exact_annealing as annealing
from gft.viz import gaussian as figs

REVEALED = "annealing_revealed"  # the settings the answer was revealed for (a tuple), or absent
SETTINGS = ("tau", "pre_x", "pre_y", "pre_cov", "tgt_x", "tgt_y", "tgt_cov")  # widget keys that change the answer


@st.cache_data(show_spinner=False, max_entries=64)
def scene(pre_mean: tuple, pre_cov: str, tgt_mean: tuple, tgt_cov: str, tau_text: str):
    """Exact numbers and the figure for one setting (milliseconds; cached so sliding back is instant)."""
    pre = annealing.gaussian_2d(pre_mean, pre_cov)
    target = annealing.gaussian_2d(tgt_mean, tgt_cov)
    numbers = annealing.annealing_numbers(pre, target, annealing.parse_tau(tau_text))
    trail = annealing.annealing_trail(pre, target)
    return numbers, figs.annealing_figure(pre, target, numbers.lam, trail=trail, height=layout.FIGURE_HEIGHT)


@st.cache_data(show_spinner=False, max_entries=64)
def question(pre_mean: tuple, pre_cov: str, tgt_mean: tuple, tgt_cov: str, tau_label: str):
    """The figure before the reveal: the noise, both Gaussians and their means; nothing of the answer."""
    pre = annealing.gaussian_2d(pre_mean, pre_cov)
    target = annealing.gaussian_2d(tgt_mean, tgt_cov)
    return figs.setting_figure(pre, target, f"Where does the flow land at τ = {tau_label}? Predict, then press Reveal.",
                               height=layout.FIGURE_HEIGHT)


def why(numbers: annealing.AnnealingNumbers, same_shape: bool) -> str:
    """One sentence on where the mean lands, for the two cases the page can show."""
    if not numbers.lam:
        return "At τ = 0 the objective is plain flow matching on the target: the flow lands on the target law."
    if numbers.lam == 1:
        return "At τ = ∞ the objective only asks to copy the pretrained drift: the flow lands on the pretrained law."
    if same_shape:
        return (
            "Both Gaussians have the same shape, so their drifts differ only by a shift and the blend is exactly the "
            f"drift towards the same shape centred at (1 − λ)·μ_target + λ·μ_pre: λ = {numbers.lam:.2f} of the way to "
            "the pretrained mean."
        )
    p = numbers.mean_position
    where = f"{p:.2f} of the way from the target mean to the pretrained mean" if np.isfinite(p) else "where the means coincide"
    if np.isfinite(p) and numbers.mean_offset > 0.02:
        where += f", {numbers.mean_offset:.2f} of their distance off the line through them"
    return (
        "The shapes differ, so the blended drift is not the drift towards any averaged Gaussian: each field also "
        "squeezes or stretches space, and the mean lands " + where + f" (λ = {numbers.lam:.2f} would be a shape-blind guess)."
    )


def current_settings() -> tuple:
    return tuple(st.session_state.get(k) for k in SETTINGS)


def reveal() -> None:
    st.session_state[REVEALED] = current_settings()


def hide() -> None:
    st.session_state.pop(REVEALED, None)
    st.session_state.pop("guess", None)


w.ensure_app_frame()
layout.page_header(
    "Annealing, exactly",
    "Between Gaussians every GFT objective has a closed-form minimiser: the drift (1 − λ)·f_target + λ·f_pre with "
    "λ = τ/(1 + τ). Nothing is trained here: flows, laws and distances are exact. Predict where the flow lands, then reveal.",
)

left, right = st.columns([1, 2])
with left:
    controls = layout.key_controls()  # filled in two parts: the settings, then (once they are read) the prediction
with controls:
    tau_text = st.select_slider(
        "Temperature τ (held constant until training converges)",
        annealing.TAU_CHOICES,
        value="1",
        key="tau",
        bind="query-params",  # the URL holds the plain option: ?tau=inf
    )
    with st.expander("The two Gaussians (means and shapes)"):
        presets = list(annealing.COV_PRESETS)
        p1, p2, p3 = st.columns(3)
        pre_x = p1.number_input("Pretrained mean x", -5.0, 5.0, -2.0, 0.5, key="pre_x", bind="query-params")
        pre_y = p2.number_input("Pretrained mean y", -5.0, 5.0, 0.0, 0.5, key="pre_y", bind="query-params")
        pre_cov = p3.selectbox("Pretrained shape", presets, key="pre_cov", bind="query-params")
        t1, t2, t3 = st.columns(3)
        tgt_x = t1.number_input("Target mean x", -5.0, 5.0, 2.0, 0.5, key="tgt_x", bind="query-params")
        tgt_y = t2.number_input("Target mean y", -5.0, 5.0, 1.0, 0.5, key="tgt_y", bind="query-params")
        tgt_cov = t3.selectbox("Target shape", presets, key="tgt_cov", bind="query-params")

numbers = fig = None
with user_errors("Settings"):
    numbers, fig = scene((float(pre_x), float(pre_y)), pre_cov, (float(tgt_x), float(tgt_y)), tgt_cov, tau_text)
if numbers is None:
    st.stop()

# A reveal answers one question: once τ or a Gaussian changes, ask for a new prediction before showing anything.
if REVEALED in st.session_state and st.session_state[REVEALED] != current_settings():
    hide()
    st.toast("New setting: predict again before the reveal.")

tau_label = "∞" if tau_text == "inf" else tau_text
revealed = REVEALED in st.session_state
with controls:
    guess = st.radio(
        f"**Predict first.** GFT trains at τ = {tau_label} (λ = {numbers.lam:.3g}) until it converges. Starting from noise, "
        "where will the terminal mean of the learned flow be?",
        annealing.MEAN_ANSWERS,
        index=None,
        key="guess",
    )
    c1, c2 = st.columns(2)
    c1.button("Reveal", type="primary", on_click=reveal, key="reveal", disabled=revealed, width="stretch")
    c2.button("Predict again", on_click=hide, key="hide", disabled=not revealed, width="stretch")
    if revealed:
        m = numbers.terminal.mean
        verdict = f"The exact terminal mean is ({m[0]:.2f}, {m[1]:.2f}): {numbers.answer}."
        if guess is None:
            st.info(verdict)
        elif guess == numbers.answer:
            st.success(f"Right. {verdict}")
        else:
            st.warning(f"Not quite (you said: {guess}). {verdict}")
    else:
        st.caption("Pick an answer, then press Reveal to see the exact flow.")

with right, layout.main_figure():
    if not revealed:
        st.plotly_chart(question((float(pre_x), float(pre_y)), pre_cov, (float(tgt_x), float(tgt_y)), tgt_cov, tau_label), key="question")
        st.caption("Dotted blue: the noise N(0, I) every flow starts from (t = 0). Dashed: pretrained (grey) and target (orange) "
                   "laws at 1σ and 2σ. The answer, the flow and its terminal law, appear on Reveal.")
        st.stop()
    st.plotly_chart(fig, key="scene")
    st.caption(
        "Blue: the terminal law of the flow at this τ. Red: the terminal laws as τ falls from ∞ to 0, the path an anneal "
        "walks (labels give τ). Play or drag t: green arrows are the exact blended drift at time t, purple the law at t."
    )

if numbers.answer == annealing.MEAN_ANSWERS[0] and numbers.lam > 0 and abs(pre_x - tgt_x) + abs(pre_y - tgt_y) == 0:
    st.caption("The two means coincide, so only the shapes differ: try moving one mean.")
m = numbers.terminal.mean
k1, k2, k3, k4 = st.columns([1, 1.5, 1, 1])  # the mean is a pair: give it room
k1.metric("λ = τ/(1 + τ)", f"{numbers.lam:.3f}", help="the weight of the pretrained drift in the blend the flow learns")
k2.metric("terminal mean", f"({m[0]:.2f}, {m[1]:.2f})", help="the mean of the law the learned flow ends on at t = 1")
k3.metric("W2 to target", f"{numbers.w2_to_target:.3f}",
          help="Wasserstein-2 distance, closed form: how far (in the units of the plot) the terminal law is from the target; 0 = on it")
k4.metric("W2 to pretrained", f"{numbers.w2_to_pretrained:.3f}",
          help="the same distance to the pretrained law: 0 = the flow just copies the pretrained model")
st.markdown(
    f"**Why.** {why(numbers, pre_cov == tgt_cov)}\n\n"
    f"**In path space.** The learned drift differs from the target drift by exactly λ times the gap between the "
    f"pretrained and target drifts: RMS along the target path {numbers.distance_to_target:.3f} = "
    f"{numbers.lam:.3f} × {numbers.drift_gap:.3f}. By Girsanov the path-space KL to the target process is "
    f"proportional to its square, λ² = {numbers.lam ** 2:.3f}: it vanishes like τ² as τ → 0, which is why the last, "
    "cold stages of an annealing schedule cost little."
)
st.caption("W2 (Wasserstein-2): the least average distance points must move to turn one law into the other. "
           "The pretrained drift is evaluated where the blended path lives, which can be far from where it was trained.")
with st.expander("λ and λ² against τ"):
    st.plotly_chart(figs.lambda_curve(annealing.parse_tau(tau_text)), key="lambda_curve")
