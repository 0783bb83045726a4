"""Distribution strategies for `model.fit`: none, mirrored (one machine), multi_worker (a cluster).

The spec's `train.batch_size` is the global batch: Keras splits each batch of the input pipeline
over the replicas and averages the gradients, so a step sees the same samples as on one device.

Two Keras 3.15 (TensorFlow backend) bugs are worked around here, both only under a strategy:

- `fit`/`evaluate` peek one batch of a fresh pass of the data to build metrics, then reduce the
  whole `(x, y)` structure with `strategy.reduce`, which fails under MultiWorkerMirroredStrategy
  (keras-team/keras#20585). The peek also spends one pass of a reshuffling dataset, so the data
  order would differ from single-device training. `prepare_model` builds model, metrics and
  optimizer from the dataset's element spec instead and turns the peek off.
- the per-step logs are reduced with `strategy.reduce("MEAN", v, axis=0)` under
  MultiWorkerMirroredStrategy, which fails for the scalar loss and metrics. `multi_worker_logs`
  reduces them over the replicas only (axis=None) while `fit` runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

from kseq.errors import KseqError


@dataclass
class Placement:
    """Where this process trains: its strategy (None: plain Keras) and its role in the cluster.

    `chief` is the one process that writes RUN_DIR; `task` names this worker in file names
    (None for the chief).
    """

    strategy: object | None
    chief: bool = True
    task: str | None = None
    multi_worker: bool = False
    workers: int = 1  # tasks that train (chief and workers) and this one's index among them
    index: int = 0

    @property
    def replicas(self) -> int:
        return 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync)

    def scope(self):
        return contextlib.nullcontext() if self.strategy is None else self.strategy.scope()


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise KseqError(
            "train.distribute.strategy: multi_worker needs the cluster in the TF_CONFIG "
            'environment variable (e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}); see README "Training at scale"'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise KseqError(f"TF_CONFIG: not valid JSON ({error}); Received: {raw[:80]!r}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise KseqError(f"TF_CONFIG: expected a 'cluster' mapping; Received: {raw[:80]!r}")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise KseqError(
            f"TF_CONFIG: expected a 'task' with 'type' and 'index'; Received: {raw[:80]!r}"
        )
    return config


def _is_chief(config: dict) -> tuple[bool, str | None]:
    """TensorFlow's rule: the 'chief' task if the cluster has one, else worker 0."""
    kind, index = config["task"]["type"], int(config["task"].get("index", 0))
    if kind == "chief" or ("chief" not in config["cluster"] and kind == "worker" and index == 0):
        return True, None
    return False, f"{kind}-{index}"


def worker_shard(spec) -> tuple[int, int]:
    """(workers, this worker's index) among the tasks that read training data: (1, 0) unless
    the spec trains on several workers. A chief counts as a worker, first, as TensorFlow's
    multi-worker strategy has it."""
    if spec.train.distribute.strategy != "multi_worker":
        return 1, 0
    config = _tf_config()
    cluster = config["cluster"]
    tasks = [("chief", i) for i in range(len(cluster.get("chief", [])))]
    tasks += [("worker", i) for i in range(len(cluster.get("worker", [])))]
    me = (config["task"]["type"], int(config["task"].get("index", 0)))
    if me not in tasks:
        raise KseqError(f"TF_CONFIG: task {me[0]}-{me[1]} is not in the cluster's chief/worker")
    return len(tasks), tasks.index(me)


def placement(spec) -> Placement:
    """Create the spec's strategy. Call it first: multi_worker must precede any TensorFlow op."""
    kind = spec.train.distribute.strategy
    if kind == "none":
        return Placement(None)
    import tensorflow as tf

    if kind == "mirrored":
        # MirroredStrategy() alone takes GPUs or CPU:0 only; logical CPUs count as devices too.
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
        return Placement(strategy)
    config = _tf_config()
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as error:
        raise KseqError(f"train.distribute.strategy: multi_worker: {error}") from None
    chief, task = _is_chief(config)
    workers, index = worker_shard(spec)
    return Placement(
        strategy, chief=chief, task=task, multi_worker=True, workers=workers, index=index
    )


def prepare_model(model, element_spec, where: Placement) -> None:
    """Build metrics, loss and optimizer state in the strategy's scope; turn off Keras's peek.

    See the module docstring. Without a strategy Keras builds lazily and nothing is needed.
    """
    if where.strategy is None:
        return
    with where.scope():
        model._symbolic_build(data_batch=element_spec)
    # Everything is built, so the peek would only spend a batch (and fail on multi_worker).
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def shard_by_data(dataset, where: Placement):
    """multi_worker: shard in-memory datasets by element (no files to shard), without the warning
    TensorFlow logs when its AUTO policy falls back to DATA."""
    if not where.multi_worker:
        return dataset
    import tensorflow as tf

    policy = dataset.options().experimental_distribute.auto_shard_policy
    if policy != tf.data.experimental.AutoShardPolicy.AUTO:
        return dataset  # sharded where it was made (a stream split by file)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def multi_worker_logs(where: Placement) -> Iterator[None]:
    """While `fit` traces its steps, reduce the scalar logs over the replicas (see docstring)."""
    if not where.multi_worker:
        yield
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = original


def _position(state: dict | None) -> int:
    """A checkpoint's place in the run as one number: steps-in-epoch below 2**24 per epoch."""
    if not state:
        return 0
    return int(state["epoch"]) * (1 << 24) + int(state.get("step", 0))


def _gathered(where: Placement, values: list[float]) -> list[list[float]]:
    """Every worker's `values` (the same length on each), by a SUM of one-hot rows: only SUM
    and MEAN reductions exist across workers."""
    import tensorflow as tf

    rows = [[0.0] * len(values) for _ in range(where.workers)]
    rows[where.index] = [float(v) for v in values]
    per_replica = where.strategy.run(lambda: tf.identity(tf.constant(rows, tf.float64)))
    summed = where.strategy.reduce("SUM", per_replica, axis=None).numpy()
    return summed.tolist()


def agree_on_checkpoint(where: Placement, states: list[dict]) -> dict | None:
    """The checkpoint every worker resumes from: the newest one that every worker holds intact
    (each keeps its newest and the one before, so a worker killed while the others wrote their
    next checkpoint still agrees on the previous). None: every worker starts afresh.

    Raises:
        KseqError: no checkpoint is common to all workers (a worker's was lost, or --restart on
            only one); the collectives would hang at the end.
    """
    newest = states[0] if states else None
    if not where.multi_worker:
        return newest
    mine = [float(_position(s)) for s in states[:2]] + [-1.0] * (2 - len(states[:2]))
    everyone = _gathered(where, mine if states else [0.0, -1.0])
    agreed = common_position(everyone)
    if agreed is None:
        raise KseqError(
            "the workers' checkpoints disagree (no checkpoint is common to every worker: their "
            "newest are at " + ", ".join(_described(row[0]) for row in everyone) + "); start "
            "every worker again with --restart"
        )
    for state in states:
        if _position(state) == agreed:
            if state is not newest:
                print(
                    f"kseq: resuming from this worker's previous checkpoint "
                    f"({_described(agreed)}), the newest every worker holds"
                )
            return state
    return None  # every worker starts afresh


def common_position(everyone: list[list[float]]) -> float | None:
    """The newest checkpoint position every worker holds: the oldest of their newest ones, if
    each holds it (as its newest or the one before); a fresh start (0) counts only when every
    worker has none."""
    agreed = min(row[0] for row in everyone)
    return agreed if all(agreed in row for row in everyone) else None


def _described(position: float) -> str:
    epoch, step = divmod(int(position), 1 << 24)
    if position <= 0:
        return "the start"
    return f"step {step} of epoch {epoch + 1}" if step else f"after epoch {epoch}"


def lost_worker(error: BaseException) -> bool:
    """Whether `error` is what a multi-worker `fit` raises when a peer is gone: TensorFlow's
    health check aborts the collectives (Unavailable), a restarted peer answers
    FailedPrecondition, a collective may time out."""
    import tensorflow as tf

    kinds = (
        tf.errors.UnavailableError,
        tf.errors.FailedPreconditionError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
        tf.errors.AbortedError,
    )
    return isinstance(error, kinds)


def lost_worker_cause(error: BaseException) -> str:
    """The line of TensorFlow's message that says what happened (it also holds a traceback of
    the graph node that failed)."""
    lines = [line.strip() for line in str(error).splitlines()]
    said = [
        line
        for line in lines
        if line
        and not line.startswith(("File ", "Detected at node", "[[", "Graph execution error"))
        and not line.endswith(":")
    ]
    return f"{type(error).__name__}: {said[0][:200] if said else 'collectives failed'}"
