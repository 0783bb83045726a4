"""`kseq init`: choices from small hand-made files of each kind, specs that validate and train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from helpers import FAST, run_cli

import kseq
from kseq.init import init_spec
from kseq.init.text_facts import text_facts

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "my",
    "dog",
    "ran",
    "to",
    "the",
    "park",
    "and",
    "back",
]


def _tsv(path, pairs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return str(path)


def _spec(text: str) -> dict:
    return yaml.safe_load(text)


def _comment(text: str, key: str) -> str:
    """The comment of the first line of `key` that has one."""
    lines = [line for line in text.splitlines() if line.strip().startswith(f"{key}:")]
    return next((line.split("# ", 1)[1] for line in lines if "# " in line), "")


@pytest.mark.parametrize(
    ("texts", "kind"),
    [
        (["cat", "dog", "mouse", "elephant"], "char"),  # letters
        (["K AE T", "D AO G", "M AW S", "EH L AH F AH N T"], "whitespace"),  # phonemes
        (["The cat sat, then ran.", "A dog's park!", "Why not?", "Yes, it is."], "word"),
        (["你好", "北京大学", "中华人民共和国"], "char"),  # CJK
        (["123", "4567", "89", "1000000"], "char"),  # numbers
        (["ni3 hao3", "bei3 jing1 da4 xue2", "zhong1 hua2"], "whitespace"),  # tone syllables
    ],
)
def test_tokenizer_kind_from_the_texts(texts, kind):
    facts = text_facts(texts, "sources")
    assert facts.kind == kind, facts.why
    assert facts.why.startswith("sources: ")
    assert facts.lengths.total == len(texts)


def test_many_distinct_words_take_wordpiece():
    texts = [f"w{i} x{i} y{i} z{i}" for i in range(6000)]  # 24,000 distinct long-ish words
    facts = text_facts(texts, "targets")
    assert facts.kind == "wordpiece" and facts.vocab_size == 16_000


def test_pairs_spec_names_its_facts_and_trains(tmp_path):
    pairs = [(w, " ".join(ch.upper() for ch in w)) for w in WORDS * 4]
    data = _tsv(tmp_path / "g2p.tsv", pairs)
    text = init_spec(data, minutes=2)
    spec = _spec(text)
    assert spec["model"]["type"] == "rnn_seq2seq"
    assert spec["data"]["source_tokenizer"] == {"type": "char"}
    assert spec["data"]["target_tokenizer"] == {"type": "whitespace"}
    assert spec["data"]["train"] == str((tmp_path / "g2p.tsv").resolve())
    assert spec["train"]["time_budget"] == 2
    longest = max(len(w) for w in WORDS)
    assert _comment(text, "max_source_length") == (
        f"sources: longest {longest} tokens, 99th percentile {longest} (in the sample)"
    )
    assert _comment(text, "embedding_dim") == "60 pairs: small (the default spec's size)"
    assert "symbols" in _comment(text, "target_tokenizer")
    # The spec trains as written (a step, with the test's small overrides).
    run_dir = kseq.train(
        kseq.load_spec(spec, [*FAST, "train.time_budget=null"]), output=tmp_path / "run"
    )
    assert (run_dir / "model.keras").is_file()


def test_output_is_relative_to_the_spec_and_validates(tmp_path):
    data = _tsv(tmp_path / "data" / "pairs.tsv", [("3", "three"), ("4", "four")] * 10)
    (tmp_path / "specs").mkdir()
    result = run_cli("init", data, "--output", str(tmp_path / "specs" / "mine.yaml"))
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "specs" / "mine.yaml").read_text(encoding="utf-8")
    assert _spec(written)["data"]["train"] == "../data/pairs.tsv"
    check = run_cli("validate", str(tmp_path / "specs" / "mine.yaml"))
    assert check.returncode == 0, check.stderr
    again = run_cli("init", data, "--output", str(tmp_path / "specs" / "mine.yaml"))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert (tmp_path / "specs" / "mine.yaml").read_text(encoding="utf-8") == written
    printed = run_cli("init", data)
    assert printed.returncode == 0 and printed.stdout.startswith("# Written by `kseq init")
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == ["mine.yaml"]


def test_bad_data_is_a_user_error(tmp_path):
    (tmp_path / "empty.tsv").write_bytes(b"")
    result = run_cli("init", str(tmp_path / "empty.tsv"))
    assert result.returncode == 2 and "data file is empty" in result.stderr
    (tmp_path / "bad.tsv").write_text("1\tone\nno tab\n")
    result = run_cli("init", str(tmp_path / "bad.tsv"))
    assert result.returncode == 2 and "bad.tsv:2: no tab" in result.stderr
    (tmp_path / "notes.md").write_text("hello\n")
    result = run_cli("init", str(tmp_path / "notes.md"))
    assert result.returncode == 2 and "cannot tell the task" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("shape", "encoder"),
    [((200, 24), "dense"), ((120, 16, 3), "conv1d"), ((64, 8, 8, 1), "conv2d")],
)
def test_arrays_pick_the_stack_of_their_shape(tmp_path, shape, encoder):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=shape).astype("float32"))
    spec = _spec(init_spec(str(tmp_path / "x.npy")))
    assert spec["model"]["type"] == "autoencoder"
    assert spec["model"]["encoder"]["type"] == encoder
    values = int(np.prod(shape[1:]))
    assert spec["model"]["bottleneck"] == max(2, min(64, values // 8))


def test_an_autoencoder_spec_trains(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(200, 24)).astype("float32"))
    spec = kseq.load_spec(_spec(init_spec(str(tmp_path / "x.npy"))), FAST)
    assert (kseq.train(spec, output=tmp_path / "run") / "model.keras").is_file()


def _bert_files(tmp_path) -> dict:
    sentences = [" ".join(WORDS[i : i + 5]) for i in range(10)]
    classification = tmp_path / "reviews.tsv"
    classification.write_text(
        "".join(f"{s}\t{'pos' if i % 2 else 'neg'}\n" for i, s in enumerate(sentences * 3))
    )
    tagging = tmp_path / "tags.jsonl"
    tagging.write_text(
        "".join(
            json.dumps({"tokens": s.split(), "tags": ["O"] * 4 + ["B-X"]}) + "\n"
            for s in sentences * 3
        )
    )
    context = "Ada wrote the first program in 1843 in London ."
    squad = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": str(i),
                                "question": "When did Ada write it ?",
                                "answers": [
                                    {"text": "1843", "answer_start": context.index("1843")}
                                ],
                            }
                            for i in range(30)
                        ],
                    }
                ]
            }
        ]
    }
    qa = tmp_path / "squad.json"
    qa.write_text(json.dumps(squad))
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(sentences * 3) + "\n")
    return {"classification": classification, "tagging": tagging, "qa": qa, "masked_lm": text}


@pytest.mark.parametrize(
    ("task", "head"),
    [
        ("classification", "classification"),
        ("tagging", "token_classification"),
        ("qa", "span_qa"),
        ("masked_lm", "masked_lm"),
    ],
)
def test_each_bert_format_gets_its_head_and_window(tmp_path, task, head):
    path = _bert_files(tmp_path)[task]
    text = init_spec(str(path), task=task)
    spec = _spec(text)
    assert spec["model"]["type"] == "bert"
    assert spec["model"]["head"]["type"] == head
    assert 32 <= spec["model"]["max_sequence_length"] <= 512
    assert spec["model"]["max_sequence_length"] % 16 == 0
    assert "30 examples" in _comment(text, "train")
    if task == "classification":
        assert "2 labels" in _comment(text, "train")


def test_a_bert_classification_spec_trains(tmp_path):
    path = _bert_files(tmp_path)["classification"]
    spec = kseq.load_spec(_spec(init_spec(str(path), task="classification")), FAST)
    assert (kseq.train(spec, output=tmp_path / "run") / "model.keras").is_file()


def _pretrained_run(tmp_path, hidden: int, table: int):
    """What `kseq init --from` reads of a BERT RUN_DIR: its spec.yaml."""
    run = tmp_path / "minilm"
    run.mkdir()
    run.joinpath("spec.yaml").write_text(
        f"name: imported\nmodel: {{type: bert, hidden_size: {hidden}, "
        f"max_sequence_length: {table}, num_heads: 4}}\n"
    )
    return run


def test_init_from_a_pretrained_bert_writes_the_fine_tuning_recipe(tmp_path):
    """`--from`: no architecture or tokenizer of its own, the window cut to the checkpoint's
    table (the stride with it), the recipe's peak for the width and a tenth of warmup."""
    path = _bert_files(tmp_path)["qa"]
    run = _pretrained_run(tmp_path, hidden=384, table=24)
    text = init_spec(str(path), task="qa", pretrained=str(run))
    spec = _spec(text)
    model = spec["model"]
    assert model["init"] == {"from": str(run)}
    assert "hidden_size" not in model and "tokenizer" not in spec["data"]
    assert model["max_sequence_length"] == 24 and model["head"]["doc_stride"] == 16
    assert "at most the checkpoint's 24 positions" in _comment(text, "max_sequence_length")
    optimizer = spec["train"]["optimizer"]
    assert optimizer["learning_rate"] == 1e-4
    assert optimizer["schedule"] == {"type": "warmup_linear", "warmup_fraction": 0.1}
    assert spec["train"]["epochs"] == 3
    wide = init_spec(str(path), task="qa", pretrained=str(_wide_run(tmp_path)))
    assert _spec(wide)["train"]["optimizer"]["learning_rate"] == 5e-5


def _wide_run(tmp_path):
    wide = tmp_path / "wide"
    wide.mkdir()
    wide.joinpath("spec.yaml").write_text(
        "model: {type: bert, hidden_size: 768, max_sequence_length: 512}\n"
    )
    return wide


def test_init_from_needs_a_bert_run_and_a_bert_task(tmp_path):
    files = _bert_files(tmp_path)
    result = run_cli("init", str(files["qa"]), "--task", "qa", "--from", str(tmp_path))
    assert result.returncode == 2
    assert "--from" in result.stderr and "expected a kseq BERT RUN_DIR" in result.stderr
    pairs = _tsv(tmp_path / "pairs.tsv", [("a b", "c d")] * 20)
    result = run_cli("init", str(pairs), "--from", str(_wide_run(tmp_path)))
    assert result.returncode == 2 and "--from: a pretrained BERT needs --task" in result.stderr
