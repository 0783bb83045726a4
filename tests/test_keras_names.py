"""After `import kseq`, plain Keras loads every family's model.keras (safe mode, fresh process)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import FAST, SPECS

import kseq
from kseq.keras_names import PACKAGE, REGISTERED, RegisteredLater, register_with
from kseq.tokenizers import TextTokenizer

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "autoencoder_variational": ["data.synthetic.samples=128"],
    "rnn_seq2seq_bahdanau": ["data.synthetic.train_size=200", "data.synthetic.validation_size=8"],
    "rnn_seq2seq_luong_general": [
        "data.synthetic.train_size=200",
        "data.synthetic.validation_size=8",
    ],
    "transformer_seq2seq": ["data.synthetic.train_size=200", "data.synthetic.validation_size=8"],
    "bert_classification": ["data.synthetic.train_size=64", "data.synthetic.validation_size=8"],
    "bert_span_qa": ["data.synthetic.train_size=64", "data.synthetic.validation_size=8"],
    "bert_masked_lm": ["data.synthetic.train_size=64", "data.synthetic.validation_size=8"],
}


def _registrations_in_source() -> dict[str, set[str]]:
    """module -> classes decorated with `register_keras_serializable(package="kseq")`."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "kseq").rglob("*.py"):
        module = ".".join(("kseq", *path.relative_to(ROOT / "kseq").with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for decorator in node.decorator_list:
                if "register_keras_serializable" in ast.unparse(decorator):
                    assert f"package='{PACKAGE}'" in ast.unparse(decorator), (module, node.name)
                    found.setdefault(module, set()).add(node.name)
    return found


def test_the_table_names_every_registration_in_kseq():
    table = {module: set(names) for module, names in REGISTERED.items()}
    assert table == _registrations_in_source()


def test_a_stand_in_resolves_to_the_class_its_module_registers():
    registry: dict = {}
    register_with(registry)
    stand_in = registry[f"{PACKAGE}>RNNEncoder"]
    assert isinstance(stand_in, RegisteredLater)
    assert stand_in.resolve().__name__ == "RNNEncoder"
    assert stand_in.resolve().__module__ == "kseq.models.seq2seq.rnn.layers"
    real = {"kseq>RNNEncoder": object}
    register_with(real)
    assert real["kseq>RNNEncoder"] is object  # a registered class is never replaced


def _inputs(run_dir: Path, rows: int = 4) -> dict:
    """Held-out model inputs by the model's input names (decoder inputs: bos then pad)."""
    spec, family, model = kseq.load_run(run_dir)
    samples = family.load_data(spec, run_dir=run_dir).samples
    source = {name: np.asarray(value)[:rows] for name, value in samples.items()}
    feed = {}
    for tensor in model.inputs:
        name = tensor.name
        if name in source:
            feed[name] = source[name]
        elif name == "source":
            feed[name] = source["source_ids"]
        else:  # target_in: the decoder's first steps
            feed[name] = np.tile(np.array([[2, 5, 6, 0]], np.int32), (rows, 1))
    return feed


def _outputs(model, feed: dict) -> list:
    import keras

    feed = feed if len(feed) > 1 else next(iter(feed.values()))
    return [np.asarray(t) for t in keras.tree.flatten(model(feed, training=False))]


# A user's script: nothing of kseq but `import kseq`; the rest is plain Keras.
USER_SCRIPT = """
import json, sys
import kseq
assert "tensorflow" not in sys.modules, "import kseq imported TensorFlow"
import keras, numpy as np
for model_file, inputs_file, outputs_file in json.loads(sys.argv[1]):
    model = keras.models.load_model(model_file)  # safe mode, compiled: losses, schedules too
    assert model.optimizer is not None and model.loss is not None
    feed = dict(np.load(inputs_file))
    feed = feed if len(feed) > 1 else next(iter(feed.values()))
    outputs = keras.tree.flatten(model(feed, training=False))
    np.savez(outputs_file, *[np.asarray(t) for t in outputs])
"""


@pytest.mark.slow
def test_every_family_loads_in_plain_keras_after_import_kseq(tmp_path):
    jobs, expected = [], {}
    for name, extra in SMALL.items():
        spec = kseq.load_spec(SPECS / f"{name}.yaml", [*FAST, *extra])
        run_dir = kseq.train(spec, output=tmp_path / name)
        feed = _inputs(run_dir)
        np.savez(tmp_path / f"{name}.in.npz", **feed)
        expected[name] = _outputs(kseq.load(run_dir).model, feed)
        jobs.append(
            [str(run_dir / "model.keras"), str(tmp_path / f"{name}.in.npz"), f"{name}.out.npz"]
        )
    done = subprocess.run(
        [sys.executable, "-c", USER_SCRIPT, json.dumps(jobs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, wanted in expected.items():
        saved = np.load(tmp_path / f"{name}.out.npz")
        got = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        assert len(got) == len(wanted), name
        for mine, theirs in zip(got, wanted, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6, err_msg=name)


def test_keras_imported_before_kseq_loads_too(tmp_path):
    """The other order: Keras is already imported when kseq registers its names."""
    code = (
        "import keras, kseq\n"
        "stand_in = keras.saving.get_custom_objects()['kseq>TokenEmbedding']\n"
        "print(stand_in.resolve().__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "TokenEmbedding"


def test_load_gives_the_model_spec_and_tokenizers(tmp_path):
    spec = kseq.load_spec(
        SPECS / "rnn_seq2seq_bahdanau.yaml",
        [*FAST, *SMALL["rnn_seq2seq_bahdanau"], "model.encoder.units=16", "model.decoder.units=16"],
    )
    run_dir = kseq.train(spec, output=tmp_path / "run")
    run = kseq.load(run_dir)
    assert run.spec == kseq.load_spec(run_dir / "spec.yaml")
    assert run.path == run_dir
    assert sorted(run.tokenizers) == ["source", "target"]
    assert all(isinstance(t, TextTokenizer) for t in run.tokenizers.values())
    ids = run.tokenizers["source"].encode(["3/3/99"])[0]
    assert ids == kseq.tokenize(run_dir, ["3/3/99"])[0]
    assert run.predict(["3/3/99"]) == kseq.predict(run_dir, ["3/3/99"])
