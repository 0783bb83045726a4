"""`kseq.export` and `kseq.train` are the API functions, whatever submodules of the packages of
those names load later; `import kseq` resolves the API on first use."""

import subprocess
import sys

import pytest


def test_kseq_export_and_train_stay_the_functions_after_submodules_load():
    code = (
        "import importlib, sys, kseq\n"
        "assert 'kseq.api' not in sys.modules\n"
        "for name in ('kseq.export.tflite', 'kseq.export.saved_model', 'kseq.models.bert.export',"
        " 'kseq.models.seq2seq.export', 'kseq.io', 'kseq.train.fit', 'kseq.train.resume'):\n"
        "    importlib.import_module(name)\n"
        "for name in ('export', 'train'):\n"
        "    function = getattr(kseq, name)\n"
        "    assert callable(function) and function.__module__ == 'kseq.api', function\n"
        "from kseq import build, export\n"
        "assert export is kseq.export and build.__module__ == 'kseq.api'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_every_public_name_resolves_and_unknown_names_fail():
    import kseq

    for name in kseq.__all__:
        assert getattr(kseq, name) is not None, name
        assert name in dir(kseq)
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        kseq.trian  # noqa: B018


def test_no_private_name_is_imported_from_another_package():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "kseq"
    crossings = []
    for path in root.rglob("*.py"):
        package = ".".join(("kseq", *path.relative_to(root).parent.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("kseq"):
                continue
            source_package = node.module.rsplit(".", 1)[0] if node.level == 0 else package
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and source_package != package and node.module != package:
                    crossings.append(f"{path.relative_to(root)}: {node.module}.{alias.name}")
    assert crossings == []
