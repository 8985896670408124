"""After a 2D run: pick a sampler and see its samples, paths, NFE and distances beside the adaptive ODE.

A fragment: changing the sampler reruns this block only. Results are memoised per run and sampler, so
going back to a sampler already tried is instant.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from gft.app.session import user_errors
from gft.app.widgets import memo
from gft.core.models import FlowModel
from gft.evaluation.sampler_compare import REFERENCE, SAMPLERS, SamplerSpec, run_sampler, sde_score
from gft.viz.sampling import sampler_figure

SAMPLE_POINTS = 1000
SAMPLER_HELP = {
    "euler": "Euler with k steps: k network calls",
    "midpoint": "midpoint with k steps: 2k network calls",
    "dopri5": "adaptive Dormand-Prince (the reference's own solver)",
    "sde": "Euler-Maruyama of dX = [v + g²/2 s] dt + g dW: same marginals as the ODE, noisier paths",
}


@st.fragment
def sampling_section(prefix: str, owner: str, token: str, model: FlowModel, training: dict, target: np.ndarray | None, seed: int = 0) -> None:
    """The sampler controls, the two panels and the table (``training``: the run's config dict)."""
    score = sde_score(model, training)
    options = SAMPLERS if score is not None else tuple(s for s in SAMPLERS if s != "sde")
    c = st.columns(3)
    solver = c[0].selectbox("Sampler", options, key=f"{prefix}sampler", help=" · ".join(SAMPLER_HELP[s] for s in options))
    steps = c[1].slider("Steps k", 1, 100, 8, key=f"{prefix}sampler_steps", disabled=solver == "dopri5")
    g = c[2].slider("Diffusion g (SDE)", 0.0, 3.0, 1.0, 0.1, key=f"{prefix}sampler_g", disabled=solver != "sde")
    if score is None:
        st.caption("No SDE for this run: it needs a score, i.e. a model with a score head (Pretrain page) or a run with "
                   "the independent coupling and σ = 0 (where the score follows from the velocity).")
    elif solver == "sde":
        st.caption("SDE score: " + ("the model's score head." if score == "head" else
                                    "the identity s = (t·v − x)/(1 − t), exact for σ = 0 and the independent coupling."))
    if target is None:
        st.info("No target cloud recorded for this run: nothing to measure the samples against.")
        return
    with user_errors("Cannot sample"):
        spec = SamplerSpec(solver, int(steps), float(g) if solver == "sde" else 0.0, score or "head")
        ref = memo(owner, f"sampler:{REFERENCE}", token, lambda: run_sampler(model, REFERENCE, target, SAMPLE_POINTS, seed, training=training),
                   spinner="Sampling the ODE ...")
        mine = memo(owner, f"sampler:{spec}", token, lambda: run_sampler(model, spec, target, SAMPLE_POINTS, seed, training=training),
                    spinner=f"Sampling: {spec.label} ...")
        panels = {f"ODE reference: {ref.spec.label}": (ref.samples, ref.paths), spec.label: (mine.samples, mine.paths)}
        st.plotly_chart(memo(owner, f"sampler_fig:{spec}", token, lambda: sampler_figure(panels, target)), key=f"{prefix}sampler_fig")
        st.dataframe([ref.row(), mine.row()], hide_index=True, key=f"{prefix}sampler_table",
                     column_config={"W2 to target": st.column_config.NumberColumn(format="%.3f"),
                                    "energy distance": st.column_config.NumberColumn(format="%.4f"),
                                    "seconds": st.column_config.NumberColumn(format="%.2f")})
        st.caption(f"The same {SAMPLE_POINTS} noise draws in both panels. NFE: network calls actually made. W2 and the "
                   "(unbiased) energy distance are against the target points drawn behind the samples.")
