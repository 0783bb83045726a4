"""`kseq.export` is the function, whatever submodules of the `kseq.export` package load later."""

import subprocess
import sys


def test_kseq_export_stays_the_function_after_submodules_load():
    code = (
        "import importlib, kseq\n"
        "for name in ('kseq.export.tflite', 'kseq.export.saved_model', 'kseq.models.bert.export',"
        " 'kseq.models.seq2seq.export', 'kseq.io'):\n"
        "    importlib.import_module(name)\n"
        "assert callable(kseq.export) and kseq.export.__module__ == 'kseq.api', kseq.export\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


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
