"""`kseq ensemble RUN_DIR... --output RUN_DIR`: a RUN_DIR whose model is its members' ensemble.

Members are runs of one spec's model on the same data (their seeds or training may differ):
the same `model` section, lengths and tokenizers, checked before anything is written. The new
RUN_DIR holds the first member's spec and tokenizers, the ensemble model and `ensemble.json`
(where the members came from); `kseq evaluate`, `predict` and `export` read it like any run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kseq.errors import KseqError
from kseq.io import atomic_directory, atomic_write_text
from kseq.io.run_dir import ASSETS_DIR, MODEL_FILE, SPEC_FILE
from kseq.models.seq2seq import ensemble
from kseq.models.seq2seq.family import Seq2SeqFamily
from kseq.spec.fields import to_data
from kseq.spec.load import dump_spec

ENSEMBLE_FILE = "ensemble.json"


def _differing_field(first, other, path: str) -> tuple[str, object, object] | None:
    """The first dotted path where two plain-data trees differ (None: equal)."""
    if isinstance(first, dict) and isinstance(other, dict):
        for key in sorted(set(first) | set(other), key=str):
            found = _differing_field(first.get(key), other.get(key), f"{path}.{key}")
            if found:
                return found
        return None
    return None if first == other else (path, first, other)


def check_members(members: list) -> None:
    """Refuse members that are not runs of one spec's model on the same data.

    `members`: `(run_dir, spec, family, model)` of each member, as `kseq.load_run` gives them.
    """
    if not 2 <= len(members) <= ensemble.MAX_MEMBERS:
        raise KseqError(
            f"kseq ensemble: give 2 to {ensemble.MAX_MEMBERS} member RUN_DIRs, got {len(members)}"
        )
    first_dir, first_spec, first_family, _ = members[0]
    for run_dir, spec, family, model in members:
        if not isinstance(family, Seq2SeqFamily):
            raise KseqError(
                f"{run_dir}: a {spec.model.type} run; kseq ensemble combines "
                "sequence-to-sequence runs (rnn_seq2seq, transformer_seq2seq)"
            )
        if ensemble.members(model):
            raise KseqError(f"{run_dir}: already an ensemble; give its members instead")
    first_tokenizers = first_family.saved_tokenizers(first_dir)
    for run_dir, spec, family, _ in members[1:]:
        for section in ("model", "data.max_source_length", "data.max_target_length"):
            a = to_data(_field(first_spec, section))
            b = to_data(_field(spec, section))
            found = _differing_field(a, b, section)
            if found:
                path, expected, got = found
                raise KseqError(
                    f"{run_dir}: {path} is {got!r} where {first_dir} has {expected!r}; an "
                    "ensemble's members share one spec's model and lengths (only training may "
                    "differ)"
                )
        for role, tokenizer in family.saved_tokenizers(run_dir).items():
            reference = first_tokenizers[role]
            if (tokenizer.kind, list(tokenizer.vocab)) != (reference.kind, list(reference.vocab)):
                raise KseqError(
                    f"{run_dir}: its {role} tokenizer differs from {first_dir}'s; an ensemble's "
                    "members are trained on the same data (the same vocabularies)"
                )


def _field(spec, dotted: str):
    value = spec
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def write_ensemble(members: list, output: Path) -> Path:
    """Write the ensemble of `members` (see `check_members`) as the RUN_DIR `output`."""
    import keras

    check_members(members)
    first_dir, first_spec, _, _ = members[0]
    model = ensemble.ensemble_model([model for _, _, _, model in members])
    record = {
        "members": [
            {"run_dir": str(Path(run_dir).resolve()), "seed": spec.train.seed}
            for run_dir, spec, _, _ in members
        ],
        "keras_version": keras.__version__,
    }
    with atomic_directory(output) as staging:
        model.save(staging / MODEL_FILE)
        atomic_write_text(staging / SPEC_FILE, dump_spec(first_spec))
        shutil.copytree(Path(first_dir) / ASSETS_DIR, staging / ASSETS_DIR)
        atomic_write_text(staging / ENSEMBLE_FILE, json.dumps(record, indent=2) + "\n")
    return output
