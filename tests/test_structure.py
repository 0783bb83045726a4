"""The package's shape, read from its source: imports go one way (no cycles, `spec/` a leaf),
imports inside functions few and only where they keep TensorFlow out of `kseq validate`, Keras's
internals in two modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "kseq"
# Imports of kseq modules inside functions: each keeps TensorFlow (or Keras) out of a module that
# `import kseq`, `kseq validate` or `kseq init` loads, and says so beside it.
MOST_INNER_IMPORTS = 25
KERAS_INTERNALS_ALLOWED = {"kseq.train.distribute", "kseq.train.budget"}


def _paths() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }


def _modules() -> dict[str, ast.Module]:
    return {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in _paths().items()}


def _kseq_imports(node, modules) -> list[str]:
    """The kseq modules an import statement names (a `from kseq.x import y` names `kseq.x.y`
    when that is a module, else `kseq.x`)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in modules]
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kseq"):
        subs = [f"{node.module}.{a.name}" for a in node.names]
        return [s for s in subs if s in modules] or [node.module]
    return []


def _inside_functions(tree):
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            imports = (ast.Import, ast.ImportFrom)
            yield from (n for n in ast.walk(function) if isinstance(n, imports))


def test_no_import_cycles():
    modules = _modules()
    graph = {
        name: {t for node in ast.walk(tree) for t in _kseq_imports(node, modules) if t != name}
        for name, tree in modules.items()
    }
    # A package imports its submodules' parents implicitly; only explicit imports count.
    state: dict[str, int] = {}

    def visit(name, path):
        state[name] = 1
        for target in graph.get(name, ()):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target] if target in path else [name, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if not state.get(target):
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name, [name])


def test_spec_is_a_leaf():
    for name, tree in _modules().items():
        if name.startswith("kseq.spec"):
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.startswith(("kseq.models", "kseq.train")), name


def test_imports_inside_functions_give_their_reason_and_stay_few():
    modules, paths = _modules(), _paths()
    found = []
    for name, tree in modules.items():
        source = paths[name].read_text(encoding="utf-8").splitlines()
        for node in _inside_functions(tree):
            if _kseq_imports(node, modules):
                found.append(name)
                reason = "#" in source[node.lineno - 1]
                assert reason, f"{name}:{node.lineno}: a kseq import inside a function, no reason"
    assert 0 < len(found) <= MOST_INNER_IMPORTS, sorted(found)


def test_import_kseq_and_the_cli_leave_tensorflow_unloaded():
    code = (
        "import sys, kseq, kseq.cli, kseq.init, kseq.models.bert.spec\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "assert 'kseq.api' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_keras_internals_stay_in_two_modules():
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras.src"):
                assert name in KERAS_INTERNALS_ALLOWED, f"{name} imports {node.module}"


def test_the_keras_internals_were_checked_on_this_keras():
    """`kseq.train.distribute` (the multi-worker `reduce_per_replica` workaround, the symbolic
    build) and `kseq.train.budget` (deferred variables) use private Keras names, read on Keras
    3.15; a new Keras minor release must be checked against them before this line changes."""
    import keras

    assert keras.__version__.startswith("3.15."), keras.__version__
