"""Edge variants of the date-task seq2seq specs: every precision, dynamic and `--static`, greedy
and beam search.

Each spec is trained as it is (greedy decoding), then exported as fp32, dynamic-range, float16
and int8 TFLite with `generate` decoding greedily and with beam search (the whole loop in the
file), and as `--static` fp32, dynamic-range and int8 files at batch 4, the beam width
(`encode` + `decode_step`; the export report runs the app loops of `kseq.decoding.app_loop`,
greedy and beam, over each). Per file: size, batch-1 latency on the LiteRT Interpreter and on
CompiledModel (CPU), and the task cost on held-out dates: exact match against the references
beside the float Keras model's with the same decoding, and the share of sequences identical to
it. Side by side in one run, so the ratios are comparable.

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

from markdown import table, write_section  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results" / "edge_variants.json"
DEFAULT_SPECS = [
    "rnn_seq2seq_bahdanau.yaml",
    "transformer_seq2seq.yaml",
]
VARIANTS = ["none", "dynamic", "float16", "int8"]
STATIC_VARIANTS = ["none", "dynamic", "int8"]
STRATEGIES = ["greedy", "beam"]
BEAM_WIDTH = 4  # the static files' batch: one source's beams a call
STATIC_ROWS = 300  # held-out rows a static file's app loops decode (export.parity_samples)


def measure(spec_path: Path, workdir: Path) -> list[dict]:
    import kseq
    from kseq.export.static_shapes import StaticShape

    started = time.perf_counter()
    run_dir = kseq.train(
        spec_path, output=workdir / spec_path.stem, overrides=["decode.strategy=greedy"]
    )
    train_minutes = (time.perf_counter() - started) / 60
    beam = [f"decode.beam_width={BEAM_WIDTH}"]
    rows = []

    def row(report, quantize, static, strategy, figures, export_seconds):
        rows.append(
            {
                "spec": spec_path.stem,
                "quantize": quantize,
                "static": static,
                "strategy": strategy,
                "size_kib": report["size_bytes"] / 1024,
                "latency_ms": report["latency_ms_batch1"],
                "latency_ms_compiled": report.get("latency_ms_batch1_compiled_model"),
                "latency_batch_size": report.get("latency_batch_size", 1),
                "signature": "encode" if static else "generate",
                "export_seconds": export_seconds,
                "train_minutes": train_minutes,
                "ops_outside_static_profile": len(
                    report.get("static_profile", {}).get("ops_outside_allowlist", [])
                ),
                **{k: figures[k] for k in ("exact_match_export", "exact_match_keras")},
                "sequences_identical_to_keras": figures["sequences_identical_to_keras"],
                "rows": figures["rows"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    for quantize in VARIANTS:
        for strategy in STRATEGIES:
            started = time.perf_counter()
            report = kseq.export(
                run_dir,
                format="tflite",
                quantize=quantize,
                output=workdir / f"{spec_path.stem}_{quantize}_{strategy}.tflite",
                overrides=[f"decode.strategy={strategy}", *beam],
            )
            seconds = time.perf_counter() - started
            metric = report["parity"]["generate"]["metric"]
            samples = report["parity"]["generate"]["batch_sizes"][0]
            row(report, quantize, False, strategy, {**metric, "rows": samples}, seconds)
    for quantize in STATIC_VARIANTS:
        started = time.perf_counter()
        report = kseq.export(
            run_dir,
            format="tflite",
            quantize=quantize,
            static=StaticShape(batch_size=BEAM_WIDTH),
            overrides=[f"export.parity_samples={STATIC_ROWS}", *beam],
        )
        seconds = time.perf_counter() - started
        loop = report["app_loop"]
        row(report, quantize, True, "greedy", loop, seconds)
        row(report, quantize, True, "beam", {**loop["beam"], "rows": loop["rows"]}, seconds)
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
                    r.get("strategy", "greedy"),
                    f"{r['size_kib']:,.0f} ({r['size_kib'] / base['size_kib']:.2f}×)",
                    f"{r['latency_ms']:.3g} ms ({r['latency_ms'] / base['latency_ms']:.2f}×)"
                    if not r["static"]
                    else f"{r['latency_ms']:.3g} ms (encode, batch {r['latency_batch_size']})",
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
        "decoding",
        "size KiB (vs fp32)",
        "batch-1 latency, Interpreter (vs fp32)",
        "CompiledModel",
        "exact match",
        "Keras fp32, same decoding",
        "points vs Keras",
        "identical to Keras",
        "rows",
        "ops outside static profile",
    ]
    notes = (
        "\n\nEach spec trained as it is with `decode.strategy=greedy` (the date task, 1,000 "
        "held-out dates), then exported with `decode.strategy` greedy and beam "
        f"(`beam_width={BEAM_WIDTH}`). Dynamic-shape rows time `generate` (the whole decoding "
        "loop in the file) on one held-out date and score it on all 1,000 against the float "
        "Keras model decoding the same way; static rows are one file each at batch "
        f"{BEAM_WIDTH}, timed on `encode` at that batch, scored through the app loops of "
        "`kseq.decoding.app_loop` (greedy, and beam search with its bookkeeping in float, "
        f"as the export report runs them) on the first {STATIC_ROWS} dates. int8 files are "
        "full-integer inside (float inputs and outputs), calibrated on 128 training pairs "
        "(`export.calibration_samples`, the default); a beam `generate` keeps its bookkeeping "
        "(scores, lengths, ranking) in float. Ratios are against the fp32 greedy dynamic file "
        "of the same spec in the same run. Raw results: `docs/bench-results/edge_variants.json`."
    )
    print(
        write_section(
            "edge-variants",
            "Edge variants: precisions, static files, greedy and beam on the date task",
            table(columns, body_rows) + notes,
        )
    )


if __name__ == "__main__":
    main()
