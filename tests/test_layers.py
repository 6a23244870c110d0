"""The import graph follows the layers of docs/ARCHITECTURE.md: no module imports from a layer listed after its own."""

import ast
from pathlib import Path

import vaelib

# Top-level modules and packages of vaelib, in the order of the table in docs/ARCHITECTURE.md (data first).
LAYERS = (
    ("errors", "atomic"),
    ("data",),
    ("losses", "models"),
    ("config", "checkpoint", "training"),
    ("likelihood", "fid", "quality", "editing"),
    ("figures",),
    ("run", "runlock", "runfolder"),
    ("notebooks",),
    ("report",),
    ("pipeline",),
    ("lab", "__main__", "__init__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
PACKAGE = Path(vaelib.__file__).parent


def _relative_imports(path: Path):
    """(imported top-level name, line) for each relative import in `path`, resolved against its package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = list(parts[:len(parts) - node.level]) + (node.module.split(".") if node.module else [])
            for name in target[:1] or [alias.name for alias in node.names]:
                yield name, node.lineno


def test_every_vaelib_module_belongs_to_a_layer():
    tops = {p.relative_to(PACKAGE).with_suffix("").parts[0] for p in PACKAGE.rglob("*.py")}
    assert tops <= set(RANK), f"add {sorted(tops - set(RANK))} to LAYERS and docs/ARCHITECTURE.md"


def test_no_module_imports_from_a_layer_listed_after_its_own():
    upward = [f"{path.relative_to(PACKAGE)}:{line} imports {name}"
              for path in PACKAGE.rglob("*.py")
              for name, line in _relative_imports(path)
              if RANK.get(name, -1) > RANK[path.relative_to(PACKAGE).with_suffix("").parts[0]]]
    assert upward == []
