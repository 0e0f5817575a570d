"""The package's shape: layers without import cycles, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

from tfrun.graph import cyclic_components

PACKAGE = Path(__file__).resolve().parents[1] / "tfrun"
# A module over this many lines says why in its docstring, with these words.
MAX_LINES = 400
LONG_REASON = "Long on purpose:"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every tfrun module `path` imports, at the top or inside a function (a deferred import
    that only hides a cycle still counts)."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found - {_module_name(path)}


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(files)
    # Importing `tfrun.run.engine` runs `tfrun/run/__init__.py` too, but a package's own
    # __init__ importing nothing of its children is what makes that harmless; leave packages
    # out as targets so `from tfrun import x` counts as importing x only.
    targets = modules - {name for name, path in files.items() if path.name == "__init__.py"}
    return {name: _imports(path, targets) for name, path in files.items()}


def test_no_module_imports_itself_through_others() -> None:
    graph = _import_graph()
    cycles = cyclic_components({k: sorted(v) for k, v in graph.items()})
    assert cycles == [], f"import cycles: {cycles}"


def test_the_import_graph_sees_deferred_imports() -> None:
    graph = _import_graph()
    # cli imports each command only when it runs; that is still an edge.
    assert "tfrun.commands.run" in graph["tfrun.cli"]
    assert "tfrun.run.engine" in graph["tfrun.commands.run"]


def test_modules_are_small_or_say_why() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_LINES and LONG_REASON not in docstring:
            long.append(f"{path.relative_to(PACKAGE.parent)} ({lines} lines)")
    assert long == [], f"modules over {MAX_LINES} lines without '{LONG_REASON}': {long}"
