"""Distributed training gives the single-device weights: mirrored over two logical CPUs, and
multi_worker with two worker processes on localhost.

Same data, same global batch, same shuffle seed (kseq keeps the data order independent of the
strategy), plain SGD: the only difference is the order of float32 additions when the replicas'
gradients are summed. Measured here: max |difference| of any weight 4.5e-8 after 18 steps (both);
the gate is 1e-5.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
from helpers import ROOT, SPECS

import kseq
from kseq.errors import KseqError

TOLERANCE = 1e-5
OVERRIDES = [
    "data.synthetic.samples=320",  # 288 training rows: 9 steps of 32 (the last one short)
    "train.epochs=2",
    "train.batch_size=32",
    "train.optimizer.type=sgd",
    "train.optimizer.learning_rate=0.05",
    "train.optimizer.momentum=0.5",
    "train.early_stopping=null",
    "train.tensorboard=false",
    "train.verbose=0",
]
SPEC = str(SPECS / "autoencoder_dense.yaml")


def weights(run_dir) -> list[np.ndarray]:
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    return [np.asarray(w) for w in model.get_weights()]


def max_difference(a, b) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def single_device(tmp_path_factory):
    run_dir = kseq.train(kseq.load_spec(SPEC, OVERRIDES), tmp_path_factory.mktemp("one") / "run")
    history = json.loads((run_dir / "history.json").read_text())
    return weights(run_dir), history


def _env() -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KSEQ_DEBUG": "1"}
    env.pop("TF_CONFIG", None)
    return env


def test_mirrored_on_two_logical_cpus_matches_single_device(tmp_path, single_device):
    # Logical devices must be configured before TensorFlow initialises its runtime: a fresh process.
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        import kseq
        overrides = {OVERRIDES!r} + ["train.distribute.strategy=mirrored"]
        kseq.train(kseq.load_spec({SPEC!r}, overrides), {str(tmp_path / "run")!r})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mirrored training on 2 replicas" in result.stdout
    reference, history = single_device
    assert max_difference(weights(tmp_path / "run"), reference) < TOLERANCE
    mirrored = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(mirrored) == len(history) == 2
    for ours, theirs in zip(mirrored, history, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multi_worker_two_processes_match_single_device(tmp_path, single_device):
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    output = tmp_path / "runs" / "mw"
    workers = []
    for index in range(2):
        env = _env()
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        command = [sys.executable, "-m", "kseq.cli", "train", SPEC, "--output", str(output)]
        command += [arg for item in OVERRIDES for arg in ("--set", item)]
        command += ["--set", "train.distribute.strategy=multi_worker"]
        workers.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
        )
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    assert "multi_worker training on 2 replicas" in outputs[0][0]
    assert "trained model written" in outputs[0][0]
    assert "trained model written" not in outputs[1][0]  # only the chief writes RUN_DIR
    # Only RUN_DIR is left: the worker's own staging copy is gone, and so is the chief's.
    assert sorted(p.name for p in output.parent.iterdir()) == ["mw"]
    reference, _ = single_device
    assert max_difference(weights(output), reference) < TOLERANCE


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "needs the cluster in the TF_CONFIG"),
        ("{not json", "TF_CONFIG: not valid JSON"),
        ('{"cluster": {"worker": ["localhost:1"]}}', "expected a 'task'"),
    ],
)
def test_multi_worker_needs_a_valid_tf_config(tmp_path, monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    spec = kseq.load_spec(SPEC, [*OVERRIDES, "train.distribute.strategy=multi_worker"])
    with pytest.raises(KseqError, match=message):
        kseq.train(spec, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_chief_is_the_chief_task_or_worker_zero():
    from kseq.train.distribute import _is_chief

    workers = {"worker": ["a:1", "b:1"]}
    assert _is_chief({"cluster": workers, "task": {"type": "worker", "index": 0}}) == (True, None)
    assert _is_chief({"cluster": workers, "task": {"type": "worker", "index": 1}}) == (
        False,
        "worker-1",
    )
    with_chief = {"chief": ["c:1"], **workers}
    assert _is_chief({"cluster": with_chief, "task": {"type": "chief", "index": 0}})[0]
    assert not _is_chief({"cluster": with_chief, "task": {"type": "worker", "index": 0}})[0]


@pytest.mark.parametrize(
    ("everyone", "agreed"),
    [
        ([[5.0, 3.0], [5.0, 3.0]], 5.0),  # the same newest checkpoint
        ([[7.0, 5.0], [5.0, 3.0]], 5.0),  # one worker was killed before it wrote 7
        ([[9.0, 7.0], [5.0, 3.0]], None),  # two apart: nothing common
        ([[0.0, -1.0], [0.0, -1.0]], 0.0),  # every worker starts afresh
        ([[3.0, -1.0], [0.0, -1.0]], None),  # one lost its checkpoint
    ],
)
def test_workers_resume_from_the_newest_checkpoint_they_all_hold(everyone, agreed):
    from kseq.train.distribute import common_position

    assert common_position(everyone) == agreed


@pytest.mark.slow
def test_a_killed_worker_started_again_rejoins_and_the_cluster_finishes(tmp_path):
    """Two workers on localhost; worker 1 is killed (SIGKILL) inside an epoch and started again
    with the same command. The survivor's collectives are aborted by TensorFlow's health check,
    it starts itself again, both resume from the newest checkpoint they both hold, and the
    chief writes a whole RUN_DIR."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    output = tmp_path / "runs" / "mw"
    overrides = [
        *OVERRIDES,
        "data.synthetic.samples=12800",  # 360 steps of 32 per epoch
        "train.checkpoint_every.steps=20",
        "train.distribute.strategy=multi_worker",
    ]
    command = [sys.executable, "-m", "kseq.cli", "train", SPEC, "--output", str(output)]
    command += [arg for item in overrides for arg in ("--set", item)]

    def start(index: int, log):
        env = _env()
        task = {"type": "worker", "index": index}
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": task})
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)

    logs = [open(tmp_path / f"worker-{i}.log", "w+") for i in range(2)]  # noqa: SIM115
    workers = [start(0, logs[0]), start(1, logs[1])]
    state_file = output.parent / ".mw.partial.worker-1" / "state.json"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and workers[1].poll() is None:
            try:
                if json.loads(state_file.read_text())["step"] >= 40:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        workers[1].send_signal(signal.SIGKILL)
        workers[1].wait(timeout=60)
        assert workers[1].returncode == -signal.SIGKILL, "training ended before the kill"
        killed_at = json.loads(state_file.read_text())
        assert killed_at["epoch"] == 0
        workers[1] = start(1, logs[1])
        for worker in workers:
            worker.wait(timeout=400)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    text = []
    for log in logs:
        log.seek(0)
        text.append(log.read())
        log.close()
    for worker, out in zip(workers, text, strict=True):
        assert worker.returncode == 0, out[-3000:]
    assert "a worker of the cluster was lost" in text[0] and "rejoining the cluster" in text[0]
    assert all("kseq: resuming epoch 1 at step" in out for out in text)
    assert "trained model written" in text[0]
    assert sorted(p.name for p in output.parent.iterdir()) == ["mw"]
    assert [e["epoch"] for e in json.loads((output / "history.json").read_text())] == [1, 2]
    assert (output / "model.keras").is_file()
