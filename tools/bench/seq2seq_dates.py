"""Date-normalisation benchmark: each RNN attention type, `none` and the Transformer.

Reports exact match on the 1,000 held-out examples (overall, and on short vs long inputs),
training wall time and training throughput in non-padding tokens per second, all from one run,
and writes the table to docs/benchmarks.md.

    python tools/bench/seq2seq_dates.py [--epochs N] [--specs a.yaml b.yaml]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))

from markdown import table, write_section  # noqa: E402

DEFAULT_SPECS = [
    "rnn_seq2seq_none.yaml",
    "rnn_seq2seq_bahdanau.yaml",
    "rnn_seq2seq_luong_dot.yaml",
    "rnn_seq2seq_luong_general.yaml",
    "rnn_seq2seq_luong_concat.yaml",
    "transformer_seq2seq.yaml",
]
LONG_INPUT = 25  # characters; the spelled-out forms ("Wednesday, the third of March ...")


def measure(spec_path: Path, overrides: list[str], workdir: Path) -> dict:
    import json

    import numpy as np

    import kseq
    from kseq.models.family import family_for
    from kseq.models.seq2seq.rnn.attention_kinds import decoder_attention

    spec = kseq.load_spec(spec_path, overrides)
    data = family_for(spec).load_data(spec)
    train_tokens = sum(len(s) + len(t) + 1 for s, t in data.info.train_ids)
    started = time.perf_counter()
    run_dir = kseq.train(spec, output=workdir / spec.name)
    seconds = time.perf_counter() - started
    spec, family, model = kseq.load_run(run_dir)  # evaluate what was saved, as a user would
    pairs = data.info.validation_pairs
    results = family.predict(model, spec, run_dir, [s for s, _ in pairs])
    hits = np.array([r["output"] == t for r, (_, t) in zip(results, pairs, strict=True)])
    long = np.array([len(s) >= LONG_INPUT for s, _ in pairs])
    epochs = len(json.loads((run_dir / "history.json").read_text()))
    # The edge artifacts on the same 1,000 held-out dates (the export's quality metric).
    exported = {}
    for quantize in ("none", "dynamic"):
        report = kseq.export(run_dir, format="tflite", quantize=quantize)
        metric = report["parity"]["generate"]["metric"]
        exported[quantize] = (metric["exact_match_export"], report["size_bytes"])
    att = getattr(spec.model, "attention", None)
    kind = f"{spec.model.type} " + (
        "self/cross-attention"
        if att is None
        else decoder_attention(att.type, att.score, att.units, att.input_feeding).label
    )
    return {
        "name": spec_path.stem,
        "attention": kind,
        "exact": hits.mean(),
        "exact_short": hits[~long].mean(),
        "exact_long": hits[long].mean(),
        "n_long": int(long.sum()),
        "epochs": epochs,
        "seconds": seconds,
        "tokens_per_second": train_tokens * epochs / seconds,
        "params": model.count_params(),
        "exact_tflite": exported["none"][0],
        "exact_tflite_dynamic": exported["dynamic"][0],
        "tflite_kib": exported["none"][1] / 1024,
        "tflite_dynamic_kib": exported["dynamic"][1] / 1024,
    }


RESULTS = ROOT / "docs" / "bench-results" / "seq2seq_dates.json"


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="*", default=DEFAULT_SPECS)
    parser.add_argument("--set", action="append", default=[], help="override for every spec")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from results")
    args = parser.parse_args()
    if args.table_only:
        args.specs = []
    # Results of earlier runs are kept per spec, so one spec can be re-measured alone.
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="kseq-bench-") as scratch:
        for name in args.specs:
            result = measure(ROOT / "specs" / name, args.set, Path(scratch))
            result = {k: (float(v) if hasattr(v, "dtype") else v) for k, v in result.items()}
            result["overrides"] = args.set
            result["date"] = time.strftime("%Y-%m-%d")
            print(result, flush=True)
            key = " ".join([result["name"], *args.set])  # one row per spec and budget
            results[key] = result
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    rows = [
        [
            f"`{r['name']}`",
            r["attention"],
            " ".join(r["overrides"]) or "spec as is",
            f"{r['exact']:.1%}",
            f"{r['exact_short']:.1%}",
            f"{r['exact_long']:.1%} (n={r['n_long']})",
            r["epochs"],
            f"{r['seconds'] / 60:.1f} min",
            f"{r['tokens_per_second']:,.0f}",
            f"{r['params']:,}",
            f"{r['exact_tflite']:.1%} ({r['tflite_kib']:,.0f} KiB)",
            f"{r['exact_tflite_dynamic']:.1%} ({r['tflite_dynamic_kib']:,.0f} KiB)",
            r["date"],
        ]
        for r in results.values()
    ]
    body = table(
        [
            "spec",
            "attention",
            "budget",
            "exact match",
            f"short inputs (<{LONG_INPUT} chars)",
            f"long inputs (≥{LONG_INPUT} chars)",
            "epochs",
            "train time",
            "train tokens/s",
            "params",
            "TFLite fp32 exact match",
            "TFLite dynamic-range exact match",
            "measured",
        ],
        rows,
    )
    notes = (
        "\n\nExact match is over the 1,000 held-out dates of the built-in task, decoded as each "
        "spec says (greedy; beam search of width 4 for `default`), with the trained model "
        "reloaded from RUN_DIR. Rows with a budget override show how fast each model learns: at "
        "an equal two-epoch budget attention clearly beats the fixed-summary `none` model, most "
        "of all on the long inputs; with the full budget every RNN variant reaches 99%+. "
        "Tokens/s counts non-padding source and target "
        "tokens of the training set per second of `kseq train` wall time (data, fit, save). "
        "The TFLite columns run the exported `generate` signature (the whole decode loop in the "
        "graph) on the plain LiteRT interpreter over the same 1,000 dates. "
        "Raw results: `docs/bench-results/seq2seq_dates.json`."
    )
    print(write_section("seq2seq-dates", "Date normalisation: attention types", body + notes))


if __name__ == "__main__":
    main()
