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
