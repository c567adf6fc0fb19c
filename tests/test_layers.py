"""Imports run one way: each layer of `lib` imports only from its own layer and the layers below it."""

import ast
from pathlib import Path

from lib.workspace import PROJECT_ROOT

# bottom to top; a module belongs to the first layer whose prefix it starts with
LAYERS = [
    ("lib.errors", "lib.config", "lib.workspace", "lib.results"),
    ("lib.data",),
    ("lib.nn",),
    ("lib.train", "lib.detect", "lib.eval"),
    ("lib.plots", "lib.bundle"),
    ("lib.experiments",),
    ("lib.render",),
    ("lib.predict", "lib.pipeline", "lib.notebook", "lib.cli", "lib.__main__"),
]
ML_CODE = ("lib.data", "lib.nn", "lib.train", "lib.detect", "lib.eval", "lib.bundle", "lib.experiments")


def layer(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lib_imports(source: str) -> set[str]:
    """Every lib module a source file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("lib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lib") and node.level == 0:
            found |= {f"{node.module}.{alias.name}" if node.module == "lib" else node.module for alias in node.names}
    return found


def test_every_import_points_to_the_same_layer_or_below():
    upward = []
    for path in sorted((PROJECT_ROOT / "lib").rglob("*.py")):
        module = module_name(path)
        for imported in lib_imports(path.read_text()):
            if layer(imported) > layer(module):
                upward.append(f"{module} imports {imported}")
    assert not upward, "\n".join(upward)


def test_ml_code_never_imports_the_render_layer():
    offenders = [f"{module_name(path)} imports {imported}" for path in sorted((PROJECT_ROOT / "lib").rglob("*.py"))
                 if module_name(path).startswith(ML_CODE)
                 for imported in lib_imports(path.read_text()) if imported.startswith("lib.render")]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_upward_imports_at_any_depth():
    source = "from lib.render.format import pct\n\ndef f():\n    import lib.pipeline\n    from lib import plots\n"
    imported = lib_imports(source)
    assert imported == {"lib.render.format", "lib.pipeline", "lib.plots"}
    assert all(layer(name) > layer("lib.nn.cnn") for name in imported)
