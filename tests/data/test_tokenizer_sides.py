"""Per-side tokenizers (`data.source_tokenizer` / `data.target_tokenizer`) and the `data.tokenizer`
shorthand: spec rules, fitting through the seq2seq family, assets, and the <unk> warning."""

from __future__ import annotations

import textwrap

import pytest

from kseq.models.family import family_for
from kseq.spec.errors import SpecError
from kseq.spec.load import dump_spec, load_spec, spec_schema
from kseq.tokenizers.kinds import load_tokenizer

# Spelled-out numbers -> phoneme strings: a char source and a whitespace target are natural here.
WORDS = {
    "one": "W AH N",
    "two": "T UW",
    "three": "TH R IY",
    "four": "F AO R",
    "five": "F AY V",
    "six": "S IH K S",
    "seven": "S EH V AH N",
    "eight": "EY T",
}


def tsv(tmp_path, pairs, name="pairs.tsv"):
    path = tmp_path / name
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def spec_with(tmp_path, data: dict, model_type="rnn_seq2seq"):
    pairs = [(word, phones) for _ in range(5) for word, phones in WORDS.items()]
    data = {"train": str(tsv(tmp_path, pairs)), "validation_split": 0.1, **data}
    return load_spec({"model": {"type": model_type}, "data": data})


def write_spec(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# ---- spec rules ---------------------------------------------------------------------------------


def test_the_shorthand_is_one_shared_tokenizer_for_both_sides():
    sides = load_spec({"model": {"type": "rnn_seq2seq"}}).data.sides()
    assert (sides.source.type, sides.shared, sides.source is sides.target) == ("char", True, True)
    data = {"tokenizer": {"type": "word", "vocab_size": 500, "shared": False}}
    sides = load_spec({"model": {"type": "rnn_seq2seq"}, "data": data}).data.sides()
    assert (sides.source.type, sides.target.vocab_size, sides.shared) == ("word", 500, False)
    assert sides.source_path == sides.target_path == "data.tokenizer"


def test_per_side_tokenizers_are_separate_and_default_to_char():
    data = {"source_tokenizer": {"type": "wordpiece", "vocab_size": 100, "min_count": 2}}
    sides = load_spec({"model": {"type": "transformer_seq2seq"}, "data": data}).data.sides()
    source = sides.source
    assert (source.type, source.vocab_size, source.min_count) == ("wordpiece", 100, 2)
    assert (sides.target.type, sides.shared) == ("char", False)
    assert (sides.source_path, sides.target_path) == (
        "data.source_tokenizer",
        "data.target_tokenizer",
    )


def test_shorthand_together_with_a_per_side_tokenizer_is_a_located_error(tmp_path):
    path = write_spec(
        tmp_path,
        """\
        model: {type: rnn_seq2seq}
        data:
          tokenizer: {type: word}
          target_tokenizer: {type: whitespace}
        """,
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (issue,) = caught.value.issues
    assert (issue.file, issue.line, issue.path) == (str(path), 3, "data.tokenizer")
    assert str(issue).startswith(f"{path}:3:")
    assert "data.tokenizer: given together with data.target_tokenizer" in str(issue)


def test_shared_true_inside_a_per_side_tokenizer_is_an_error(tmp_path):
    path = write_spec(
        tmp_path,
        """\
        model: {type: transformer_seq2seq}
        data:
          source_tokenizer: {type: char}
          target_tokenizer:
            type: word
            shared: true
        """,
    )
    with pytest.raises(SpecError, match=r"spec.yaml:6:\d+: data.target_tokenizer.shared: per-side"):
        load_spec(path)
    ok = {"source_tokenizer": {"shared": False}}
    assert load_spec({"model": {"type": "rnn_seq2seq"}, "data": ok}).data.sides().shared is False


@pytest.mark.parametrize("model_type", ["rnn_seq2seq", "transformer_seq2seq"])
def test_shared_embeddings_need_the_shared_shorthand(model_type):
    model = {"type": model_type, "shared_embeddings": True}
    assert load_spec({"model": model}).model.shared_embeddings  # default: shared char tokenizer
    for data, received in (
        ({"source_tokenizer": {"type": "char"}}, "per-side tokenizers"),
        ({"tokenizer": {"shared": False}}, "data.tokenizer.shared: false"),
    ):
        with pytest.raises(SpecError) as caught:
            load_spec({"model": model, "data": data})
        (issue,) = caught.value.issues
        assert issue.path == "model.shared_embeddings" and issue.received == received


def test_schema_lists_the_per_side_tokenizers_and_the_whitespace_kind():
    data = spec_schema()["properties"]["data"]["anyOf"]
    text_data = next(d for d in data if "source_tokenizer" in d["properties"])
    for key in ("tokenizer", "source_tokenizer", "target_tokenizer"):
        (tokenizer, null) = text_data["properties"][key]["anyOf"]
        assert null == {"type": "null"}
        assert "whitespace" in tokenizer["properties"]["type"]["enum"]


@pytest.mark.parametrize(
    "data",
    [{}, {"tokenizer": {"type": "word"}}, {"target_tokenizer": {"type": "whitespace"}}],
    ids=["default", "shorthand", "per-side"],
)
def test_specs_with_either_form_round_trip_through_yaml(tmp_path, data):
    spec = load_spec({"model": {"type": "rnn_seq2seq"}, "data": data})
    again = load_spec(write_spec(tmp_path, dump_spec(spec)))
    assert again == spec and again.data.sides() == spec.data.sides()


# ---- fitting through the family -----------------------------------------------------------------


def test_each_side_is_fitted_with_its_own_kind_saved_and_reloaded(tmp_path, capsys):
    data = {"source_tokenizer": {"type": "char"}, "target_tokenizer": {"type": "whitespace"}}
    spec = spec_with(tmp_path, data)
    family = family_for(spec)
    prepared = family.load_data(spec)
    toks = prepared.info.tokenizers
    assert (toks.source.kind, toks.target.kind) == ("char", "whitespace")
    assert set(toks.source.vocab[4:]) == set("".join(WORDS))
    assert set(toks.target.vocab[4:]) == {p for phones in WORDS.values() for p in phones.split()}
    assert toks.target.decode(toks.target.encode(["S IH K S"])[0]) == "S IH K S"
    assert "warning" not in capsys.readouterr().err

    run_dir = tmp_path / "run"
    family.save_assets(run_dir, prepared)
    assert load_tokenizer(run_dir / "assets" / "source_tokenizer").kind == "char"
    assert load_tokenizer(run_dir / "assets" / "target_tokenizer").kind == "whitespace"
    loaded = family.load_tokenizers(run_dir)
    assert (loaded.source.vocab, loaded.target.vocab) == (toks.source.vocab, toks.target.vocab)
    again = family.load_data(spec, run_dir=run_dir)
    assert again.info.train_ids == prepared.info.train_ids


def test_the_shorthand_fits_one_tokenizer_for_both_sides(tmp_path):
    spec = spec_with(tmp_path, {"tokenizer": {"type": "whitespace"}})
    family = family_for(spec)
    prepared = family.load_data(spec)
    toks = prepared.info.tokenizers
    assert toks.source is toks.target and "seven" in toks.source.vocab and "AH" in toks.source.vocab
    family.save_assets(tmp_path / "run", prepared)
    assert not (tmp_path / "run" / "assets" / "target_tokenizer").exists()


# ---- the <unk> warning --------------------------------------------------------------------------


def _unk_lines(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if "<unk>" in line]


def test_unk_warning_names_the_per_side_key(tmp_path, capsys):
    # target vocabulary of 4 + 4 phonemes: EY, T, ... beyond it are <unk> (well over 5%)
    data = {
        "source_tokenizer": {"type": "char"},
        "target_tokenizer": {"type": "whitespace", "vocab_size": 8},
    }
    spec = spec_with(tmp_path, data)
    family_for(spec).load_data(spec)
    (line,) = _unk_lines(capsys)
    assert line.startswith("kseq: warning: ") and "% of target training tokens are <unk>" in line
    assert "(whitespace tokenizer, 8-token vocabulary)" in line
    assert "raise data.target_tokenizer.vocab_size, lower its min_count" in line
    assert line.endswith("or use a finer kind (char, wordpiece)")
    assert 5 < float(line.split("warning: ")[1].split("%")[0]) < 100


def test_unk_warning_with_the_shared_shorthand_reports_each_side(tmp_path, capsys):
    spec = spec_with(tmp_path, {"tokenizer": {"type": "word", "vocab_size": 10}})
    family_for(spec).load_data(spec)
    lines = _unk_lines(capsys)
    assert [line.split(" of ")[1].split(" ")[0] for line in lines] == ["source", "target"]
    assert all("raise data.tokenizer.vocab_size" in line for line in lines)


def test_no_unk_warning_at_or_below_five_percent(tmp_path, capsys):
    # One rare pair in 40: min_count drops its 2 characters (of 159 source tokens, 1.3%) and its
    # 2 phonemes (of 124 target tokens, 1.6%): <unk>, but too few to warn about.
    pairs = [(word, phones) for _ in range(5) for word, phones in WORDS.items()]
    pairs[0] = ("zq", "Z Q")
    data = {
        "train": str(tsv(tmp_path, pairs)),
        "validation": str(tsv(tmp_path, pairs[:4], "valid.tsv")),
        "source_tokenizer": {"type": "char", "min_count": 2},
        "target_tokenizer": {"type": "whitespace", "min_count": 2},
    }
    spec = load_spec({"model": {"type": "rnn_seq2seq"}, "data": data})
    prepared = family_for(spec).load_data(spec)
    toks = prepared.info.tokenizers
    assert toks.source.encode(["zq"]) == [[1, 1]] and toks.target.encode(["Z Q"]) == [[1, 1]]
    assert _unk_lines(capsys) == []


def test_no_unk_warning_when_tokenizers_come_from_a_run(tmp_path, capsys):
    data = {"target_tokenizer": {"type": "whitespace", "vocab_size": 8}}
    spec = spec_with(tmp_path, data)
    family = family_for(spec)
    family.save_assets(tmp_path / "run", family.load_data(spec))
    assert len(_unk_lines(capsys)) == 1
    family.load_data(spec, run_dir=tmp_path / "run")
    assert _unk_lines(capsys) == []
