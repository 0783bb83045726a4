"""Span QA on long contexts: `specs/bert_span_qa.yaml` with and without a document stride.

Trains the example spec on the built-in `qa_long` task (each context 3-6 windows long, the answer
anywhere in it) twice with the same budget and seed — `doc_stride: 48` (overlapping windows) and
`doc_stride: null` (the context cut after the first window, kseq's behaviour before strides) —
and evaluates both with the official SQuAD exact match and F1 on the held-out questions. The
short-context `qa` task is the reference row. Writes the "qa-long" section of docs/benchmarks.md.

    python tools/bench/qa_long.py [--epochs N] [--train-size N] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

from markdown import table, write_section  # noqa: E402

import kseq  # noqa: E402

SPEC = ROOT / "specs" / "bert_span_qa.yaml"
# (label, task, doc_stride, no_answer_share)
VARIANTS = [
    ("qa (short contexts, reference)", "qa", "48", "null"),
    ("qa_long, stride 48, answer windows only", "qa_long", "48", "null"),
    ("qa_long, stride 48, + half the answer-less windows at [CLS]", "qa_long", "48", "0.5"),
    ("qa_long, stride 48, + all answer-less windows at [CLS]", "qa_long", "48", "1.0"),
    ("qa_long, no stride (cut after one window)", "qa_long", "null", "null"),
]


def run(task: str, stride: str, share: str, args, scratch: Path) -> dict:
    overrides = [
        f"data.synthetic.task={task}",
        f"model.head.doc_stride={stride}",
        f"model.head.no_answer_share={share}",
        f"data.synthetic.train_size={args.train_size}",
        f"data.synthetic.validation_size={args.validation_size}",
        f"train.epochs={args.epochs}",
        "train.verbose=2",
    ]
    started = time.perf_counter()
    run_dir = kseq.train(SPEC, scratch / f"{task}-{stride}-{share}", overrides)
    seconds = time.perf_counter() - started
    metrics = kseq.evaluate(run_dir)
    return {"seconds": seconds, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--validation-size", type=int, default=200)
    parser.add_argument(
        "--variants", type=int, nargs="*", help="indices into VARIANTS (default: all)"
    )
    parser.add_argument("--notes", default="", help="a paragraph appended to the section")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="kseq-bench-qa-") as scratch:
        chosen = [VARIANTS[i] for i in args.variants] if args.variants else VARIANTS
        for label, task, stride, share in chosen:
            found = run(task, stride, share, args, Path(scratch))
            print(label, json.dumps(found), flush=True)
            results.append((label, found))
    rows = [
        [
            label,
            f"{100 * m['exact_match']:.1f}",
            f"{100 * m['f1']:.1f}",
            m["examples"],
            m["windows"],
            f"{100 * m['start_logits_accuracy']:.1f}",
            f"{m['seconds'] / 60:.1f}",
        ]
        for label, m in results
    ]
    columns = [
        "data, training windows",
        "exact match %",
        "F1 %",
        "questions",
        "windows",
        "start accuracy in labelled windows %",
        "training min",
    ]
    stride = [item for item in results if "no stride" not in item[0] and "reference" not in item[0]]
    cut = [item for item in results if "no stride" in item[0]]
    body = (
        f"`specs/bert_span_qa.yaml` (BERT 2×64, windows of 96 tokens), {args.epochs} epochs on "
        f"{args.train_size} generated questions, scored on {args.validation_size} held-out "
        "ones with the official SQuAD exact match and F1 (answer normalisation: case, "
        "punctuation, articles, whitespace). `qa_long` contexts are 250-490 words (3-6 "
        "windows of the spec) with the answering biography among distractor biographies of the "
        "same grammar; with a stride, prediction takes the best span over all windows of a "
        "context. The accuracy column is Keras's start-position accuracy over the validation "
        "windows that carry a label (answer windows, plus [CLS] windows where labelled).\n\n"
        + table(columns, rows)
    )
    if stride and cut:
        best = max(stride, key=lambda item: item[1]["exact_match"])
        body += (
            f"\n\nBest stride variant ({best[0]}) vs cut: exact match "
            f"{100 * best[1]['exact_match']:.1f}% vs {100 * cut[0][1]['exact_match']:.1f}%."
        )
    if args.notes:
        body += "\n\n" + args.notes
    print(body)
    if not args.no_write:
        write_section("qa-long", "Question answering on long contexts: document stride", body)


if __name__ == "__main__":
    main()
