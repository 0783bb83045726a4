"""A corpus of bad inputs and faults through the real CLI: each ends with its exit status and one
line on stderr, no traceback, in bounded time, with nothing half-written or lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import FAST, ROOT, SPECS, run_cli

AUTOENCODER = str(SPECS / "autoencoder_dense.yaml")
SEQ2SEQ = str(SPECS / "rnn_seq2seq_none.yaml")
LIMIT_SECONDS = 30


def sets(*overrides):
    return [arg for item in overrides for arg in ("--set", item)]


def tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def run_timed(*args):
    started = time.perf_counter()
    result = run_cli(*args)
    return result, time.perf_counter() - started


def assert_one_line(result, seconds, *fragments, code=2):
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output and "Warning" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert seconds < LIMIT_SECONDS


# ---- specs ----

BOMB = "\n".join(
    ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    + ["name: *a9", "model: {type: autoencoder}", ""]
)


@pytest.mark.parametrize(
    "content, fragments",
    [
        (BOMB, ["too many values once aliases are expanded"]),
        ("name: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nested too deeply"]),
        (b"name: x\x00\nmodel: {type: autoencoder}\n", [":1:8:", "U+0000"]),
        ("model:\n  type: autoencoder\n  encoder: {type: dense, units: [1099511627776]}\n", []),
        ("model: {type: autoencoder, bottleneck: 1099511627776}\n", ["out of range"]),
        ("model: {type: autoencoder}\ndata: {synthetic: {samples: 1000000000000}}\n", []),
        ("model: {type: autoencoder}\ntrain: {batch_size: 100000000000000000000}\n", []),
    ],
    ids=["alias-bomb", "deep", "nul", "units", "bottleneck", "samples", "batch-size"],
)
def test_bad_specs(tmp_path, content, fragments):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result, seconds = run_timed("validate", str(path))
    assert_one_line(result, seconds, "kseq: error: ", str(path), *fragments)


def test_fifo_spec(tmp_path):
    path = tmp_path / "spec.yaml"
    os.mkfifo(path)
    result, seconds = run_timed("validate", str(path))
    assert_one_line(result, seconds, "not a regular file")


def test_a_model_too_big_for_memory_is_refused_before_allocating(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(
        "name: big\nmodel: {type: autoencoder, encoder: {type: dense, units: [65536, 65536]}}\n"
    )
    result, seconds = run_timed("train", str(spec), "--output", str(tmp_path / "run"))
    assert_one_line(result, seconds, "parameters) would need about", "units=[65536, 65536]")
    assert tree(tmp_path) == {"big.yaml"}


# ---- data files ----


def test_fifo_data_file(tmp_path):
    fifo = tmp_path / "data.npy"
    os.mkfifo(fifo)
    result, seconds = run_timed(
        "train", AUTOENCODER, "--output", str(tmp_path / "run"), *sets(f"data.train={fifo}")
    )
    assert_one_line(result, seconds, str(fifo))
    assert tree(tmp_path) == {"data.npy"}


def test_deeply_nested_jsonl_line(tmp_path):
    data = tmp_path / "pairs.jsonl"
    good = '{"source": "a b", "target": "b a"}\n'
    data.write_text(good * 20 + '{"source": ' + "[" * 100_000 + "\n" + good * 5)
    result, seconds = run_timed(
        "train", SEQ2SEQ, "--output", str(tmp_path / "run"), *sets(*FAST, f"data.train={data}")
    )
    assert_one_line(result, seconds, f"{data}:21:", "nested too deeply")
    assert tree(tmp_path) == {"pairs.jsonl"}


# ---- run directories ----


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli("train", AUTOENCODER, "--output", str(run_dir), *sets(*FAST))
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.mark.parametrize(
    "command, extra",
    [
        ("predict", ["1 2 3"]),
        ("tokenize", ["1 2 3"]),
        ("plot-attention", ["1 2 3", "--output", "a.png"]),
    ],
)
def test_a_command_the_family_cannot_do_is_one_line(trained, tmp_path, command, extra):
    extra = [str(tmp_path / a) if a.endswith(".png") else a for a in extra]
    result, seconds = run_timed(command, str(trained), *extra)
    assert_one_line(result, seconds, f"{command} is not available for autoencoder models")
    assert not (tmp_path / "a.png").exists()


def test_a_finished_run_is_not_replaced_without_overwrite(run_copy):
    exported = run_copy / "export" / "model.tflite"
    exported.parent.mkdir()
    exported.write_bytes(b"an export the user made")
    before = {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()}
    result, seconds = run_timed("train", AUTOENCODER, "--output", str(run_copy), *sets(*FAST))
    assert_one_line(result, seconds, "already holds a finished run with 1 export(s)", "--overwrite")
    assert {p: p.read_bytes() for p in run_copy.rglob("*") if p.is_file()} == before

    result = run_cli("train", AUTOENCODER, "--output", str(run_copy), "--overwrite", *sets(*FAST))
    assert result.returncode == 0, result.stderr
    assert "--overwrite" in result.stdout
    assert not exported.exists() and (run_copy / "model.keras").is_file()


def test_a_folder_of_user_files_is_not_replaced(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result, seconds = run_timed("run", AUTOENCODER, "--output", str(folder), *sets(*FAST))
    assert_one_line(result, seconds, "files that are not a kseq run")
    assert (folder / "notes.txt").read_text() == "keep me"


def test_truncated_model_file(run_copy):
    model = run_copy / "model.keras"
    model.write_bytes(model.read_bytes()[:5000])
    result, seconds = run_timed("evaluate", str(run_copy))
    assert_one_line(result, seconds, "not a .keras archive (truncated or corrupt zip file)")


def test_model_file_with_a_lambda_is_refused_in_safe_mode(run_copy):
    import json
    import zipfile

    model = run_copy / "model.keras"
    with zipfile.ZipFile(model) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1] = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {}}},
        "registered_name": None,
    }
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    result, seconds = run_timed("evaluate", str(run_copy))
    assert_one_line(result, seconds, "cannot load the model")


def test_hand_edited_spec_that_no_longer_describes_the_model(run_copy):
    spec = run_copy / "spec.yaml"
    spec.write_text(spec.read_text().replace("bottleneck: 8", "bottleneck: 5"))
    assert "bottleneck: 5" in spec.read_text()
    result, seconds = run_timed("evaluate", str(run_copy))
    assert_one_line(result, seconds, "does not describe", "was spec.yaml edited?")


# ---- faults ----


def _small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if sys.platform != "linux" or not shutil.which("mount"):
        return False
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return mounted.returncode == 0


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    disk = tmp_path / "disk"
    if not _small_tmpfs(disk, "1400k"):
        pytest.skip("mounting a small tmpfs is not allowed on this machine")
    try:
        target = disk / "run"
        result, seconds = run_timed(
            "train", AUTOENCODER, "--output", str(target), *sets("train.epochs=3")
        )
        assert_one_line(
            result, seconds, "kseq: no space left on device while writing", "checkpoint of epoch 1"
        )
        import json

        state = json.loads((disk / ".run.partial" / "state.json").read_text())
        assert state["epoch"] == 1
        assert (disk / ".run.partial" / state["weights"]).stat().st_size > 100_000
        assert not target.exists()
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_sigterm_stops_at_a_safe_point_and_the_run_resumes(tmp_path):
    target = tmp_path / "run"
    base = ["train", SEQ2SEQ, "--output", str(target)]
    base += sets("train.steps_per_epoch=2", "train.batch_size=8", "data.synthetic.train_size=200")
    command = [sys.executable, "-m", "kseq.cli", *base, *sets("train.epochs=200")]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    state = tmp_path / ".run.partial" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.exists(), "no epoch finished in time"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=LIMIT_SECONDS)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    line = stderr.strip()
    saved = json.loads(state.read_text())
    epoch, step = saved["epoch"], saved.get("step")
    # Two safe points: an epoch's end, or a mid-epoch checkpoint when the signal lands in one.
    if step:
        assert line == (
            f"kseq: interrupted at step {step} of epoch {epoch + 1}; run the same command to resume"
        )
    else:
        assert line == (
            f"kseq: interrupted after epoch {epoch} of 200; run the same command to resume"
        )

    total = epoch + 1
    resumed = run_cli(*base, *sets(f"train.epochs={total}"))
    assert resumed.returncode == 0, resumed.stderr
    if step:
        assert f"resuming epoch {epoch + 1} at step {step} of 2 ({target};" in resumed.stdout
    else:
        assert f"resuming {target} after epoch {epoch} of {total}" in resumed.stdout
    assert (target / "model.keras").is_file()


# ---- what users see in their logs ----


def test_logs_off_a_terminal_are_one_line_per_epoch_with_known_step_counts(tmp_path):
    overrides = ["train.epochs=2", "train.batch_size=16", "data.synthetic.train_size=80"]
    result = run_cli("train", SEQ2SEQ, "--output", str(tmp_path / "run"), *sets(*overrides))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "Unknown" not in result.stdout  # bucketed batches, yet epoch 1 knows its length
    epochs = [line for line in result.stdout.splitlines() if " - loss: " in line]
    assert len(epochs) == 2
    for line in epochs:
        done, total = line.split(" - ")[0].split("/")
        assert done == total and int(total) >= 5


def test_early_stopping_says_what_it_did(tmp_path):
    overrides = [*FAST, "train.epochs=6", "train.early_stopping.patience=2"]
    overrides.append("train.early_stopping.min_delta=1000")  # no epoch after the first improves
    result = run_cli("train", AUTOENCODER, "--output", str(tmp_path / "run"), *sets(*overrides))
    assert result.returncode == 0, result.stderr
    assert (
        "kseq: stopped after epoch 3 of 6 (val_loss no better for 2 epochs); "
        "kept the weights of epoch 1"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize("debug", ["", "1"])
def test_import_kseq_keeps_library_chatter_off_stderr(debug):
    code = (
        "import kseq, keras, numpy as np\n"
        "keras.layers.Dense(2)(np.zeros((1, 3), 'float32'))\n"
        "keras.ops.softmax(np.zeros((1, 1), 'float32'))\n"  # Keras warns: axis of size 1
    )
    env = {**os.environ, "KSEQ_DEBUG": debug}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    if debug:  # the check can fail: with KSEQ_DEBUG=1 the same program is noisy
        assert "UserWarning" in result.stderr and "softmax" in result.stderr
    else:
        assert result.stderr == ""


def test_import_does_not_replace_a_folder_without_overwrite(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result, seconds = run_timed("import", "hf-bert", str(tmp_path), "--output", str(folder))
    assert_one_line(result, seconds, "files that are not a kseq run", "--overwrite")
    assert (folder / "notes.txt").read_text() == "keep me"
