"""The package's layers: imports flow one way (entry points -> app, viz, tasks -> evaluation -> theory,
core, data -> constants), and no module imports itself back through any chain.

docs/architecture.md draws the same picture; this test is what keeps it true.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gft"

# A module may import from its own layer's package or from a lower rank, never from a higher one.
RANK = {
    "constants": 0, "__init__": 0,
    "core": 1, "data": 1,
    "theory": 2,
    "evaluation": 3,
    "tasks": 4, "viz": 4,
    "app": 5,
    "cli": 6, "__main__": 7,
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> dict[str, set[str]]:
    """Every gft module and the gft modules it imports (``from gft.x import y`` counts y when it is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gft":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "gft"}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_every_package_has_a_rank():
    layers = {_layer(m) for m in _imports()}
    assert layers <= set(RANK), f"packages without a layer: {sorted(layers - set(RANK))}"
    assert {"core", "data", "evaluation", "theory", "viz", "tasks", "app"} <= layers


def test_imports_flow_down_the_layers():
    wrong = [
        f"{src} -> {dst}"
        for src, targets in _imports().items()
        for dst in targets
        if _layer(dst) != _layer(src) and RANK[_layer(dst)] >= RANK[_layer(src)]
    ]
    assert not wrong, "imports that climb or cross layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _imports()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_method_layer_imports_nothing_above_it_and_no_ui_library():
    for path in (PACKAGE / "core").glob("*.py"):
        text = path.read_text()
        for banned in ("streamlit", "plotly", "gft.app", "gft.viz", "gft.tasks", "gft.evaluation", "gft.cli"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, f"{path.name} imports {banned}"
