"""The plan of the house holds: import-linter's contracts (pyproject.toml), no import cycle
between any two modules, and the picture in docs/architecture.md drawn from today's imports."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _import_graph_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_contracts_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_no_import_cycle_between_modules() -> None:
    ig = _import_graph_script()
    graph = ig.build_graph()
    assert len(graph.modules) > 100  # the whole tree was read, not an empty graph
    assert ig.cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder itself, on a graph with a known circle and a known chain."""
    import grimp

    ig = _import_graph_script()
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(name)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    assert ig.cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_architecture_picture_is_current() -> None:
    ig = _import_graph_script()
    text = ig.DOC.read_text(encoding="utf-8")
    assert ig.render_doc(text, ig.mermaid(ig.build_graph())) == text, "run: python scripts/import_graph.py"
