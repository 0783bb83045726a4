"""Resume after a crash: a persistent staging directory next to RUN_DIR, and its callbacks.

`kseq train SPEC --output runs/x` trains inside `runs/.x.partial/`:

```
runs/.x.partial/
  lock                   flock held while a process trains here (a killed process drops it)
  spec.json              the spec this run belongs to
  state.json             the newest checkpoint: epochs finished and steps of the next, its
                         weights file, the files' SHA-256, history so far, callback states
  state.previous.json    the checkpoint before it (the fallback if the newest is damaged)
  epoch-0003.weights.h5  model + optimizer state after that epoch
  epoch-0003-step-0000120.weights.h5  ... after 120 steps of the next (train.checkpoint_every)
  best-0002.npz          early stopping's best weights (with restore_best_weights)
  best-val-0002.weights.h5  the best epoch's weights, for run/checkpoints/best.weights.h5
  average-0003.npz       float weights after that epoch (train.average_checkpoints)
  run/                   what becomes RUN_DIR: checkpoints/, logs/, then model.keras, ...
```

Every file is written under a temporary name and renamed, and `state.json` is renamed last and
names the weights file it belongs to: a SIGKILL at any moment leaves the previous consistent
state. Run again with the same command, training resumes where the newest intact checkpoint
is: after an epoch, or inside one at the next unseen batch (`kseq.train.fit`); when it ends,
`run/` is renamed to RUN_DIR and the staging directory deleted. Non-chief workers of a
multi-worker run keep their own `runs/.x.partial.worker-1/` and delete it at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import time
from pathlib import Path

import keras
import numpy as np

from kseq import interrupt
from kseq.errors import DiskFullError, KseqError, write_error
from kseq.io import atomic_save_arrays, atomic_write_bytes, atomic_write_text

STATE_FILE = "state.json"
PREVIOUS_STATE_FILE = "state.previous.json"
SPEC_FILE = "spec.json"
LOCK_FILE = "lock"
RUN_SUBDIR = "run"
TMP_PREFIX = ".tmp-"

# Spec fields that may change between a crash and the restart without invalidating the
# checkpoint: they change how the remaining epochs run, not what was trained so far.
RESUMABLE_CHANGES = {
    "train.restart",
    "train.verbose",
    "train.epochs",
    "train.distribute",
    "train.jit_compile",
    "train.checkpoint_every",
}


def partial_dir(target: Path, task: str | None = None) -> Path:
    """`.NAME.partial` next to RUN_DIR (`.NAME.partial.TASK` for a non-chief worker)."""
    return target.parent / (f".{target.name}.partial" + (f".{task}" if task else ""))


def _flatten(data, prefix: str = "") -> dict:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def spec_differences(stored: dict, current: dict) -> list[str]:
    """Dotted paths whose values differ, leaving out the ones a resume may change."""
    old, new = _flatten(stored), _flatten(current)
    keys = sorted(set(old) | set(new))
    return [
        key
        for key in keys
        if old.get(key) != new.get(key)
        and not any(key == p or key.startswith(p + ".") for p in RESUMABLE_CHANGES)
    ]


def saved_size(objects) -> int:
    """Bytes a weights file of these objects' variables needs: data plus HDF5's overhead."""
    variables = [v for obj in objects if obj is not None for v in obj.variables]
    data = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    return data + 4096 * len(variables) + (64 << 10)


def ensure_space(path: Path, needed: int) -> None:
    """Refuse to start a write that the disk can't hold. HDF5 crashes the process (SIGSEGV) on a
    full disk instead of raising, so the space is checked before it writes anything."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return
    if free < needed:
        detail = f" (needs about {needed / 1e6:.1f} MB, {free / 1e6:.1f} MB free)"
        raise DiskFullError(path, detail)


def _atomic_save_weights(model, path: Path) -> None:
    """`model.save_weights` to a temporary name (it must end in .weights.h5), then rename."""
    ensure_space(path, saved_size([model, model.optimizer]))
    tmp = path.with_name(TMP_PREFIX + path.name)
    try:
        model.save_weights(str(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:  # h5py reports write failures as RuntimeError
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise write_error(path, error) from None
        raise KseqError(f"cannot write {path}: {' '.join(str(error).split())[:200]}") from None


def trim_event_file(path: Path) -> None:
    """Cut a TensorBoard event file after its last complete record (a kill can leave half of
    one). Records are: uint64 length, uint32 crc, data, uint32 crc."""
    data = path.read_bytes()
    end = 0
    while end + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, end)
        record_end = end + 12 + length + 4
        if record_end > len(data):
            break
        end = record_end
    if end < len(data):
        with open(path, "rb+") as handle:
            handle.truncate(end)


def remove_temporaries(directory: Path) -> None:
    """Delete files a killed writer left under a temporary name."""
    if not directory.is_dir():
        return
    for path in directory.rglob(TMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            path.unlink()
    for path in directory.rglob(".*.tmp"):  # kseq.io's temporary files
        with contextlib.suppress(OSError):
            path.unlink() if path.is_file() else shutil.rmtree(path)


class PartialRun:
    """The staging directory of one training run of RUN_DIR (see the module docstring)."""

    def __init__(self, target: Path, task: str | None = None):
        self.target = target
        self.task = task
        self.path = partial_dir(target, task)
        self.run = self.path / RUN_SUBDIR
        self._lock: int | None = None
        self.states: list[dict] = []  # the intact checkpoints `open` found, newest first

    # ---- locking ---------------------------------------------------------------------------------
    def lock(self) -> None:
        """Hold the directory's flock; another live process training here is an error."""
        import fcntl

        if self.target.exists() and not self.target.is_dir():
            raise KseqError(f"cannot write {self.target}: it exists and is not a directory")
        while True:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise KseqError(f"cannot write {self.target}: {error.strerror or error}") from None
            lock_path = self.path / LOCK_FILE
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise KseqError(
                    f"{self.target}: another kseq train is writing this run "
                    f"(its checkpoint {self.path} is locked)"
                ) from None
            # The holder may have finished and deleted the directory between open and flock.
            try:
                if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                    self._lock = fd
                    return
            except FileNotFoundError:
                pass
            os.close(fd)

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None

    @staticmethod
    def is_locked(path: Path) -> bool:
        import fcntl

        try:
            fd = os.open(path / LOCK_FILE, os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    # ---- state -----------------------------------------------------------------------------------
    def read_state(self) -> dict | None:
        """The newest checkpoint whose files are there (checksums unread)."""
        for name in (STATE_FILE, PREVIOUS_STATE_FILE):
            state, problem = self._load_state(name)
            if problem is None:
                return state
        return None

    def _load_state(self, name: str) -> tuple[dict | None, str | None]:
        try:
            state = json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None, "missing"
        except (OSError, ValueError):
            return None, f"{name} is unreadable"
        if not isinstance(state, dict) or not isinstance(state.get("weights"), str):
            return None, f"{name} is unreadable"
        if not (self.path / state["weights"]).is_file():
            return None, f"{state['weights']} is missing"
        return state, None

    def intact_states(self) -> list[dict]:
        """The checkpoints whose files match the checksums their states record, newest first
        (at most two); one line says so when a damaged newest checkpoint leaves the previous
        one, or none is left."""
        damaged, intact = [], []
        for name in (STATE_FILE, PREVIOUS_STATE_FILE):
            state, problem = self._load_state(name)
            for file, digest in (state or {}).get("files", {}).items():
                path = self.path / file
                if problem is None and (not path.is_file() or file_checksum(path) != digest):
                    problem = f"{file} does not match its checksum"
            if problem is None:
                intact.append(state)
            elif problem != "missing" and not intact:
                damaged.append(problem)
        if damaged and intact:
            print(
                f"kseq: the newest checkpoint in {self.path} is damaged ({damaged[0]}); "
                f"resuming from the one before it ({describe(intact[0])})"
            )
        elif damaged:
            print(
                f"kseq: no intact checkpoint in {self.path} ({'; '.join(damaged)}); "
                "training starts afresh"
            )
        return intact

    def read_spec(self) -> dict | None:
        try:
            return json.loads((self.path / SPEC_FILE).read_text())
        except (OSError, ValueError):
            return None

    def open(self, spec_data: dict, restart: bool) -> dict | None:
        """Lock the directory and decide: resume (returns the saved state) or start afresh (None).

        Raises:
            KseqError: another process trains here, or the unfinished run belongs to a different
                spec (names the fields; `--restart` discards it).
        """
        self.lock()
        self.states = [] if restart else self.intact_states()
        state = self.states[0] if self.states else None
        if state is not None and self.run.is_dir() and not restart:
            stored = self.read_spec() or {}
            changed = spec_differences(stored, spec_data)
            if changed:
                self.unlock()
                raise KseqError(
                    f"{self.target}: an unfinished run of a different spec is waiting in "
                    f"{self.path} (differs at {', '.join(changed[:5])}); pass --restart to "
                    "discard it, or choose another --output"
                )
            remove_temporaries(self.path)
            for events in (self.run / "logs").rglob("events.out.tfevents.*"):
                trim_event_file(events)
            return state
        self.clear()
        self.states = []
        atomic_write_text(self.path / SPEC_FILE, json.dumps(spec_data, indent=1) + "\n")
        self.run.mkdir()
        return None

    def clear(self) -> None:
        """Empty the directory but keep the lock file we hold; the state goes first, so a kill
        half-way leaves no checkpoint that looks usable."""
        (self.path / STATE_FILE).unlink(missing_ok=True)
        (self.path / PREVIOUS_STATE_FILE).unlink(missing_ok=True)
        for entry in self.path.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def abandon_if_empty(self) -> None:
        """After a failure before the first checkpoint there is nothing to resume: tidy up."""
        if self.read_state() is None and self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        self.unlock()

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.unlock()


def find_partial(parent: Path, stem: str, spec_data: dict) -> Path | None:
    """The RUN_DIR of the newest unlocked partial run of this spec named `stem-*` in `parent`,
    so `kseq train SPEC` without --output resumes too."""
    if not parent.is_dir():
        return None
    candidates = sorted(
        parent.glob(f".{stem}-*.partial"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for path in candidates:
        run = PartialRun(parent / path.name[1 : -len(".partial")])
        stored = run.read_spec()
        matches = stored is not None and not spec_differences(stored, spec_data)
        if matches and not PartialRun.is_locked(path):
            return run.target
    return None


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose patience counter, best value and best weights survive a restart."""

    def __init__(self, restored: dict | None = None, best_weights: list | None = None, **kwargs):
        super().__init__(**kwargs)
        self._restored = restored
        self._restored_weights = best_weights

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # resets the state; put the saved one back
        if self._restored:
            self.wait = int(self._restored["wait"])
            self.stopped_epoch = int(self._restored["stopped_epoch"])
            self.best = self._restored["best"]
            self.best_epoch = int(self._restored["best_epoch"])
            self.best_weights = self._restored_weights

    def state(self) -> dict:
        best = self.best
        return {
            "wait": int(self.wait),
            "stopped_epoch": int(self.stopped_epoch),
            "best": None if best is None else float(best),
            "best_epoch": int(self.best_epoch),
        }


class BestWeights(keras.callbacks.Callback):
    """`checkpoints/best.weights.h5`: the weights of the best epoch by `val_loss`.

    Each new best goes into the staging directory under its epoch's name and the epoch
    checkpoint records which file is current, so after a crash the best weights are those of the
    best epoch in the kept history, not of an epoch the crash threw away. The file is copied to
    `destination` when training ends (Keras's ModelCheckpoint would write it in place).
    """

    def __init__(
        self,
        staging: Path,
        destination: Path,
        best: float | None = None,
        file: str | None = None,
        monitor: str = "val_loss",
    ):
        super().__init__()
        self.staging = staging
        self.destination = destination
        self.best = best
        self.file = file
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if self.best is None or value < self.best:
            self.best = value
            with interrupt.deferred():
                _atomic_save_weights(
                    self.model, self.staging / f"best-val-{epoch + 1:04d}.weights.h5"
                )
                self.file = f"best-val-{epoch + 1:04d}.weights.h5"

    def on_train_end(self, logs=None):
        if self.file is None or not (self.staging / self.file).is_file():
            return
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.destination, (self.staging / self.file).read_bytes())


class RunCheckpoint(keras.callbacks.Callback):
    """Checkpoints into the staging directory: at every epoch's end and, with
    `train.checkpoint_every`, inside an epoch; atomic, checksummed, with the history, the
    position in the data and the other callbacks' states. Keras's public Callback API only:
    `restore` loads the weights before `fit`, which gets `initial_epoch` explicitly.

    Each checkpoint gets a new weights file; `state.json` (renamed into place last) says which
    is current and holds the SHA-256 of every file it names, and the checkpoint before it stays
    as `state.previous.json` with its files, so a damaged newest checkpoint falls back to the
    previous one. A training step holds SIGTERM/SIGINT until its end, so the step count always
    matches the weights: an interrupted run writes a checkpoint of the step it reached. It must
    come after the callbacks whose state it records (early stopping, best weights, the plateau
    schedule, the averaging snapshots, the time budget) in the callback list.
    """

    def __init__(
        self,
        partial: PartialRun,
        state: dict | None,
        epochs: int,
        every=None,
        batches_per_epoch: int | None = None,
        early_stopping: ResumableEarlyStopping | None = None,
        best: BestWeights | None = None,
        plateau=None,
        snapshots=None,
        clock=None,
        multi_worker: bool = False,
    ):
        super().__init__()
        self.partial = partial
        # Workers must checkpoint at the same steps (their checkpoints are compared on a
        # resume): by step count only, never by their own clocks or signals.
        self.multi_worker = multi_worker
        self.state = state
        self.epochs = epochs
        self.every = every  # kseq.spec.common.CheckpointEverySpec or None
        self.batches_per_epoch = batches_per_epoch
        self.early_stopping = early_stopping
        self.best = best
        self.plateau = plateau  # kseq.train.schedules.PlateauDecay
        self.snapshots = snapshots  # kseq.train.averaging.WeightSnapshots
        self.clock = clock  # kseq.train.time_budget.BudgetClock
        self.history: dict[str, list[float]] = {
            key: [float(v) for v in values]
            for key, values in (state or {}).get("history", {}).items()
        }
        self._best_weights_file = (state or {}).get("best_weights")
        self._saved_best_weights = early_stopping._restored_weights if early_stopping else None
        self.epoch = int((state or {}).get("epoch", 0))  # the epoch in progress, from 0
        self.step = int((state or {}).get("step", 0))  # its batches trained
        self._written = state  # the newest checkpoint on disk
        self._since = 0
        self._last_write = time.monotonic()
        self._holding = False
        self._training = False

    @property
    def initial_epoch(self) -> int:
        if not self.state:
            return 0
        if self.state.get("stopped"):
            return self.epochs  # early stopping had ended it: nothing left to run
        return min(int(self.state["epoch"]), self.epochs)

    def restore(self, model) -> None:
        """Load the checkpoint's model and optimizer weights (before `fit`)."""
        if not self.state:
            return
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(self.partial.path / self.state["weights"]))

    # ---- Keras hooks -----------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._last_write = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.epoch:
            self.epoch, self.step = epoch, 0
        self._training = True

    def on_train_batch_begin(self, batch, logs=None):
        interrupt.hold()  # until this step's callbacks are done: weights and count agree
        self._holding = True

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self._since += 1
        self.stop_holding(raise_held=True)
        interrupt.raise_if_swallowed()
        if self._due():
            with interrupt.deferred():
                self._write(self.epoch, self.step)

    def on_test_begin(self, logs=None):
        self._training = False  # the epoch's batches are done; its checkpoint comes at its end

    def on_epoch_end(self, epoch, logs=None):
        self._training = False
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.clock is not None:  # what a time budget bought so far
            self.history.setdefault("steps", []).append(float(self.clock.steps))
            self.history.setdefault("seconds", []).append(round(self.clock.seconds(), 1))
        with interrupt.deferred():  # a signal waits until the checkpoint is whole
            self._write(epoch + 1, 0)
        self.epoch, self.step = epoch + 1, 0

    # ---- for kseq.train.fit ----------------------------------------------------------------------
    def stop_holding(self, raise_held: bool = False) -> None:
        if self._holding:
            self._holding = False
            if raise_held:
                interrupt.release()
            else:
                interrupt.release_quietly()

    def save_interrupted(self) -> None:
        """After SIGTERM/SIGINT inside an epoch's training: a checkpoint of the step reached,
        unless the newest one is already there."""
        if self.multi_worker:
            return
        written = self._written or {}
        already = (int(written.get("epoch", 0)), int(written.get("step", 0)))
        if self._training and self.step and (self.epoch, self.step) != already:
            with interrupt.deferred():
                self._write(self.epoch, self.step)

    # ---- writing ---------------------------------------------------------------------------------
    def _due(self) -> bool:
        every = self.every
        if every is None or not self._training:
            return False
        if every.steps is not None and self._since >= every.steps:
            return True
        if self.multi_worker or every.minutes is None:
            return False
        return time.monotonic() - self._last_write >= 60 * every.minutes

    def _write(self, epoch: int, step: int) -> None:
        """A checkpoint after `epoch` finished epochs and `step` batches of the next."""
        directory = self.partial.path
        name = f"epoch-{epoch:04d}" + (f"-step-{step:07d}" if step else "")
        weights = f"{name}.weights.h5"
        _atomic_save_weights(self.model, directory / weights)
        stopping = self.early_stopping
        if stopping is not None and stopping.best_weights is not self._saved_best_weights:
            self._best_weights_file = f"best-{epoch:04d}.npz"
            atomic_save_arrays(stopping.best_weights, directory / self._best_weights_file)
            self._saved_best_weights = stopping.best_weights
        named = [weights, self._best_weights_file, self.best.file if self.best else None]
        state = {
            "epoch": epoch,
            "step": step,
            "batches_per_epoch": self.batches_per_epoch,
            "weights": weights,
            "files": {n: file_checksum(directory / n) for n in named if n},
            "stopped": bool(self.model.stop_training) and not step,
            "history": self.history,
            "early_stopping": stopping.state() if stopping is not None else None,
            "best_weights": self._best_weights_file,
            "best_val_loss": self.best.best if self.best is not None else None,
            "best_val_file": self.best.file if self.best is not None else None,
            "reduce_on_plateau": self.plateau.state() if self.plateau is not None else None,
            "time_budget": self.clock.state() if self.clock is not None else None,
        }
        if self._written is not None:  # the fallback if the new one turns out damaged
            atomic_write_text(directory / PREVIOUS_STATE_FILE, json.dumps(self._written) + "\n")
        atomic_write_text(directory / STATE_FILE, json.dumps(state) + "\n")
        previous, self._written = self._written, state
        self._since, self._last_write = 0, time.monotonic()
        # Only now are the files that neither checkpoint names unreferenced.
        keep = set(named) | set((previous or {}).get("files", {}))
        keep |= {(previous or {}).get("weights"), (previous or {}).get("best_weights")}
        keep.add((previous or {}).get("best_val_file"))
        if self.snapshots is not None:
            keep |= self.snapshots.needed(stopping, epoch)
        old = ["epoch-*.weights.h5", "best-*", "average-*.npz"]
        for path in [path for pattern in old for path in directory.glob(pattern)]:
            if path.name not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()


def describe(state: dict) -> str:
    """`epoch 3` (after it) or `step 120 of epoch 4` (inside it)."""
    epoch, step = int(state["epoch"]), int(state.get("step", 0))
    return f"step {step} of epoch {epoch + 1}" if step else f"after epoch {epoch}"


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def restored_best_weights(partial: PartialRun, state: dict | None) -> list | None:
    if not state or not state.get("best_weights"):
        return None
    with np.load(partial.path / state["best_weights"]) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]
