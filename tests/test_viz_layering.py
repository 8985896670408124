"""gft.viz only draws: it imports no torch, no Streamlit and nothing of the layers above it, runs no
model, and its shared style is defined once (no module keeps its own copy of a helper)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIZ = ROOT / "gft" / "viz"
VIZ_MODULES = sorted(f"gft.viz.{p.stem}" for p in VIZ.glob("*.py") if p.stem != "__init__")


def test_importing_viz_loads_neither_torch_nor_streamlit_nor_upper_layers():
    # A fresh interpreter: this test process has long imported torch and friends. The Gaussian scene
    # reads the one tau -> lambda map from gft.core.schedules (numpy only): torch must still stay out.
    code = (
        "import sys\n"
        f"for m in {VIZ_MODULES!r}: __import__(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'streamlit')"
        " or m.startswith(('gft.app', 'gft.tasks', 'gft.cli', 'gft.evaluation')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert len(VIZ_MODULES) >= 5
    assert out.stdout.strip() == "", f"gft.viz pulled in: {out.stdout.strip()}"


def test_viz_source_runs_no_model():
    for path in VIZ.glob("*.py"):
        text = path.read_text()
        for needle in ("import torch", "torch.", "sample_ode", "noise(", "import streamlit", "no_grad"):
            assert needle not in text, f"{path.name} mentions {needle!r}"


def test_shared_helpers_are_defined_only_in_style():
    # The near-copies each figure module used to keep: now one definition, in gft/viz/style.py.
    shared = ("_play_controls", "_controls", "play_controls", "_cloud", "cloud", "f32", "_f32", "square_ranges", "_square_axes",
              "snapshot_label", "_frame_label", "polylines", "_polylines", "arrows_xy", "_arrows", "color_of")
    for path in VIZ.glob("*.py"):
        if path.name == "style.py":
            continue
        defined = set(re.findall(r"^def (\w+)\(", path.read_text(), flags=re.M))
        assert not defined & set(shared), f"{path.name} defines its own {sorted(defined & set(shared))}"
        assert not re.search(r"^(COLORS|FRAME_MS|AXIS_RANGE)\s*=", path.read_text(), flags=re.M), path.name


def test_lower_layers_never_import_viz():
    for layer in ("core", "data", "theory", "evaluation"):
        for path in (ROOT / "gft" / layer).glob("*.py"):
            assert "gft.viz" not in path.read_text().replace(":mod:`gft.viz", ""), f"{path} imports gft.viz"
