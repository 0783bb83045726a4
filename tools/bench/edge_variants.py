"""Edge variants of the date-task seq2seq specs: every precision, dynamic and `--static`.

Each spec is trained as it is (greedy decoding), then exported as fp32, dynamic-range, float16
and int8 TFLite (the whole decoding loop in `generate`) and as `--static` fp32, dynamic-range and
int8 files (`encode` + `decode_step` at batch 1, the loop run by the app as the README shows).
Per file:
size, batch-1 latency on the LiteRT Interpreter and on CompiledModel (CPU), and the task cost
on the 1,000 held-out dates: exact match against the references and the share of sequences
identical to the float Keras model. Side by side in one run, so the ratios are comparable.

    python tools/bench/edge_variants.py [--specs rnn_seq2seq_bahdanau.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "tests"))

from helpers import readme_app_loop  # noqa: E402  (the README's app loop, as the tests run it)
from markdown import table, write_section  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results" / "edge_variants.json"
DEFAULT_SPECS = [
    "rnn_seq2seq_bahdanau.yaml",
    "transformer_seq2seq.yaml",
]
VARIANTS = [("none", False), ("dynamic", False), ("float16", False), ("int8", False)]
STATIC_VARIANTS = [("none", True), ("dynamic", True), ("int8", True)]
STATIC_ROWS = 300  # held-out rows decoded row by row through a static file's app loop


def static_task_cost(path, family, model, spec, data) -> dict:
    """Exact match of the app loop over a static file, batch 1, on the first held-out rows."""
    import numpy as np

    from kseq.models.seq2seq.family import strip_ids

    greedy_decode = readme_app_loop()
    length, steps = spec.data.max_source_length, spec.data.max_target_length
    sources = data.samples["source_ids"][:STATIC_ROWS, :length]
    padded = np.zeros((len(sources), length), np.int32)
    padded[:, : sources.shape[1]] = sources
    truth = [t for _, t in data.info["validation_ids"][: len(padded)]]
    keras_ids = [family.best_ids(r) for r in family.decode_ids(model, spec, padded.tolist())]
    ids = [strip_ids(greedy_decode(str(path), row[None], steps)[0]) for row in padded]
    return {
        "exact_match_export": float(np.mean([a == b for a, b in zip(ids, truth, strict=True)])),
        "exact_match_keras": float(
            np.mean([a == b for a, b in zip(keras_ids, truth, strict=True)])
        ),
        "sequences_identical_to_keras": float(
            np.mean([a == b for a, b in zip(ids, keras_ids, strict=True)])
        ),
        "rows": len(padded),
    }


def measure(spec_path: Path, workdir: Path) -> list[dict]:
    import kseq
    from kseq.export.static_shapes import StaticShape

    overrides = ["decode.strategy=greedy"]
    started = time.perf_counter()
    run_dir = kseq.train(spec_path, output=workdir / spec_path.stem, overrides=overrides)
    train_minutes = (time.perf_counter() - started) / 60
    spec, family, model = kseq.load_run(run_dir)
    data = family.load_data(spec, run_dir=run_dir)
    rows = []
    for quantize, static in VARIANTS + STATIC_VARIANTS:
        started = time.perf_counter()
        report = kseq.export(
            run_dir,
            format="tflite",
            quantize=quantize,
            static=StaticShape() if static else None,
        )
        export_seconds = time.perf_counter() - started
        if static:
            cost = static_task_cost(report["path"], family, model, spec, data)
        else:
            cost = {
                **report["parity"]["generate"]["metric"],
                "rows": len(data.samples["source_ids"]),
            }
        rows.append(
            {
                "spec": spec_path.stem,
                "quantize": quantize,
                "static": static,
                "size_kib": report["size_bytes"] / 1024,
                "latency_ms": report["latency_ms_batch1"],
                "latency_ms_compiled": report.get("latency_ms_batch1_compiled_model"),
                "signature": "encode" if static else "generate",
                "export_seconds": export_seconds,
                "train_minutes": train_minutes,
                "ops_outside_static_profile": len(
                    report.get("static_profile", {}).get("ops_outside_allowlist", [])
                ),
                **cost,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="*", default=DEFAULT_SPECS)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="kseq-bench-edge-") as scratch:
        for name in [] if args.table_only else args.specs:
            results[Path(name).stem] = measure(ROOT / "specs" / name, Path(scratch))
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    body_rows = []
    for rows in results.values():
        base = rows[0]
        for r in rows:
            compiled = r["latency_ms_compiled"]
            body_rows.append(
                [
                    f"`{r['spec']}`",
                    ("static " if r["static"] else "") + r["quantize"],
                    f"{r['size_kib']:,.0f} ({r['size_kib'] / base['size_kib']:.2f}×)",
                    f"{r['latency_ms']:.3g} ms ({r['latency_ms'] / base['latency_ms']:.2f}×)"
                    if not r["static"]
                    else f"{r['latency_ms']:.3g} ms (encode)",
                    "n/a" if compiled is None else f"{compiled:.3g} ms",
                    f"{r['exact_match_export']:.1%}",
                    f"{r['exact_match_keras']:.1%}",
                    f"{100 * (r['exact_match_export'] - r['exact_match_keras']):+.1f}",
                    f"{r['sequences_identical_to_keras']:.1%}",
                    r["rows"],
                    r["ops_outside_static_profile"] if r["static"] else "",
                ]
            )
    columns = [
        "spec",
        "variant",
        "size KiB (vs fp32)",
        "batch-1 latency, Interpreter (vs fp32)",
        "CompiledModel",
        "exact match",
        "Keras fp32",
        "points vs Keras",
        "identical to Keras",
        "rows",
        "ops outside static profile",
    ]
    notes = (
        "\n\nEach spec trained as it is with `decode.strategy=greedy` (the date task, 1,000 "
        "held-out dates). Dynamic-shape rows time `generate` (the whole decoding loop in the "
        "file) on one held-out date and score it on all 1,000; static rows time `encode` at "
        "batch 1 and score the README's app loop over `encode` + `decode_step` on the first "
        f"{STATIC_ROWS} dates. Ratios are against the fp32 dynamic file of the same spec in the "
        "same run. int8 files are full-integer (float inputs and outputs), calibrated on "
        "128 training pairs (`export.calibration_samples`, the default). "
        "Raw results: `docs/bench-results/edge_variants.json`."
    )
    print(
        write_section(
            "edge-variants",
            "Edge variants: precisions and static files on the date task",
            table(columns, body_rows) + notes,
        )
    )


if __name__ == "__main__":
    main()
