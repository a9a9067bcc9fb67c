"""The architecture of DESIGN.md ("Architecture: the way data flows"), enforced on the source.

Every module of ``src/lazylab`` is parsed with :mod:`ast`; every import of a lazylab module, at
module level or inside a function, must point down the layer table below. Also: no import inside a
function outside ``cli.py`` (lazy loading of heavy stacks is the CLI's alone), no module over 400
lines, no function over 60 lines, and every module imports first in a fresh interpreter (no cycle).
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "lazylab"

# The layer order, lowest first: a module may import its own package and packages of strictly
# lower layers, never a sibling of its layer nor anything above. "lazylab" is the package's
# __init__ (it imports nothing). The strictest order the code satisfies: solvers, quadrature
# and plots are leaves over the pure leaves (errors, a future _checks validators module); theory
# uses only activations and gaussian, so it sits beside tasks, below predictors.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("lazylab", "errors", "_checks", "_study_index", "_cli_parser"),
    ("quadrature", "plots", "solvers"),
    ("activations",),
    ("gaussian",),
    ("tasks", "theory"),
    ("predictors",),
    ("risk",),
    ("models",),
    ("sklearn", "demo"),
    ("experiments",),
    ("studies",),
    ("cli",),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}

# Known offenders, to be fixed (empty now). A file not listed here that breaks a rule fails, and
# so does an entry that no longer breaks it.
INNER_IMPORT_ALLOWED: frozenset[str] = frozenset()
LONG_MODULE_ALLOWED: frozenset[str] = frozenset()
LONG_FUNCTION_ALLOWED: frozenset[str] = frozenset()
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """The layer unit of a module: lazylab.models.kernel -> models, lazylab.cli -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def is_module(name: str) -> bool:
    path = SOURCE.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules an Import/ImportFrom node loads (``from lazylab import risk`` loads lazylab.risk)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join(anchor + ([base] if base else []))
    found = [f"{base}.{alias.name}" for alias in node.names if is_module(f"{base}.{alias.name}")]
    return found or [base]


def scan() -> list[dict]:
    """One record per source module: its imports (with whether inside a function) and sizes."""
    records = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = module_name(path)
        functions = [node for node in ast.walk(tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inner = {id(sub) for function in functions for sub in ast.walk(function)
                 if isinstance(sub, (ast.Import, ast.ImportFrom))}
        imports = [(target, id(node) in inner, node.lineno)
                   for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for target in imported_modules(node, module, path.name == "__init__.py")]
        records.append({
            "file": path.relative_to(PACKAGE).as_posix(), "module": module, "imports": imports,
            "lines": len(path.read_text(encoding="utf-8").splitlines()),
            "functions": [(f.name, f.end_lineno - f.lineno + 1, f.lineno) for f in functions]})
    return records


RECORDS = scan()


def test_every_package_has_a_layer():
    missing = sorted({package_of(r["module"]) for r in RECORDS} - set(RANK))
    assert not missing, f"add {missing} to LAYERS in tests/test_layers.py"


def test_the_scan_sees_imports_inside_functions_and_resolves_from_lazylab_import():
    tree = ast.parse("def f():\n    from lazylab import risk, __version__\n")
    node = tree.body[0].body[0]
    assert imported_modules(node, "lazylab.demo", False) == ["lazylab.risk"]
    assert imported_modules(ast.parse("from . import spec").body[0],
                            "lazylab.experiments", True) == ["lazylab.experiments.spec"]
    assert imported_modules(ast.parse("from .spec import x").body[0],
                            "lazylab.experiments.sweep", False) == ["lazylab.experiments.spec"]


def test_imports_point_down_the_layers():
    upward = []
    for record in RECORDS:
        own = package_of(record["module"])
        for target, _, line in record["imports"]:
            if target.split(".")[0] != "lazylab":
                continue
            other = package_of(target)
            if other != own and not RANK[other] < RANK[own]:
                upward.append(f"{record['file']}:{line} ({own}, layer {RANK[own]}) imports "
                              f"{target} ({other}, layer {RANK[other]})")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def _inner_import_files() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for record in RECORDS:
        if record["file"] == "cli.py":
            continue
        for target, inside, line in record["imports"]:
            if inside:
                found.setdefault(record["file"], []).append(f"{record['file']}:{line} {target}")
    return found


def test_no_import_inside_a_function_outside_cli():
    offenders = {f: lines for f, lines in _inner_import_files().items()
                 if f not in INNER_IMPORT_ALLOWED}
    assert not offenders, "imports inside functions:\n" + "\n".join(
        line for lines in offenders.values() for line in lines)


def test_module_and_function_sizes():
    long_modules = [f"{r['file']}: {r['lines']} lines" for r in RECORDS
                    if r["lines"] > MAX_MODULE_LINES and r["file"] not in LONG_MODULE_ALLOWED]
    long_functions = [f"{r['file']}:{line} {name}: {length} lines" for r in RECORDS
                      for name, length, line in r["functions"]
                      if length > MAX_FUNCTION_LINES and r["file"] not in LONG_FUNCTION_ALLOWED]
    assert not long_modules + long_functions, "\n".join(long_modules + long_functions)


def test_allow_lists_hold_only_current_offenders():
    by_file = {r["file"]: r for r in RECORDS}
    inner = set(_inner_import_files())
    stale = sorted(INNER_IMPORT_ALLOWED - inner)
    stale += sorted(f for f in LONG_MODULE_ALLOWED
                    if f not in by_file or by_file[f]["lines"] <= MAX_MODULE_LINES)
    stale += sorted(f for f in LONG_FUNCTION_ALLOWED if f not in by_file or all(
        length <= MAX_FUNCTION_LINES for _, length, _ in by_file[f]["functions"]))
    assert not stale, f"fixed: remove {stale} from the allow-lists in tests/test_layers.py"


IMPORT_EACH_FIRST = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "lazylab" or m.startswith("lazylab.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures[name] = traceback.format_exc(limit=-3)
print(json.dumps(failures))
"""


@pytest.mark.parametrize("batch", [0, 1])
def test_every_module_imports_first_in_a_fresh_interpreter(batch):
    # Each module is imported with no lazylab module loaded before it (third-party libraries
    # stay cached, so a batch is fast); an import cycle fails whichever module enters it first.
    names = [r["module"] for r in RECORDS][batch::2]
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH_FIRST, *names],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(SOURCE), os.environ.get("PYTHONPATH", "")])})
    assert result.returncode == 0, result.stderr
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"{name}:\n{trace}" for name, trace in failures.items())
