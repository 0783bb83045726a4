"""Every example spec in every TFLite variant: does it export, pass the gate on both LiteRT APIs,
and fit what an all-int8 or static accelerator needs?

Each spec in `specs/` (the CMUdict presets aside: their architectures are the date specs') is
trained a few steps on small built-in data — the point is whether each file can be made, not
its quality, which `edge_variants.py` measures on trained models — then exported as fp32,
dynamic, float16 and int8, `--static` fp32 and `--static --quantize int8`, and int8 with
`--io int8`. Per file: exported or the error's first line, whether every signature ran on
CompiledModel as well as on the Interpreter, size, and for int8 the ops still fed a float tensor
(QUANTIZE at float inputs aside: 0 means all-int8 inside), for static files the ops outside the
static profile and the tensors with a dynamic dimension.

    python tools/bench/edge_matrix.py [--specs default.yaml ...]
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

RESULTS = ROOT / "docs" / "bench-results" / "edge_matrix.json"
SKIPPED = ("g2p_rnn.yaml", "g2p_transformer.yaml")  # CMUdict data; same layers as the date specs
COMMON = [
    "train.epochs=1",
    "train.steps_per_epoch=4",
    "train.batch_size=16",
    "export.parity_samples=16",
    "export.calibration_samples=32",
]
DATA = {  # small built-in data per family (the spec's own generator and settings otherwise)
    "autoencoder": ["data.synthetic.samples=256"],
    "text": ["data.synthetic.train_size=400", "data.synthetic.validation_size=48"],
}
VARIANTS = [  # (label, quantize, static, io)
    ("fp32", "none", False, "float"),
    ("dynamic", "dynamic", False, "float"),
    ("float16", "float16", False, "float"),
    ("int8", "int8", False, "float"),
    ("int8 io", "int8", False, "int8"),
    ("static fp32", "none", True, "float"),
    ("static int8", "int8", True, "float"),
]


def float_fed_ops(report: dict) -> list[str]:
    """Ops with a float32 input in the file, QUANTIZE (a float input's own edge) aside."""
    return sorted(
        op
        for op, kinds in report["op_input_types"].items()
        if "float32" in kinds and op != "QUANTIZE"
    )


def export_row(
    run_dir: Path, label: str, quantize: str, static: bool, io: str, overrides=()
) -> dict:
    import kseq
    from kseq.errors import KseqError
    from kseq.export.static_shapes import StaticShape

    row = {"variant": label}
    started = time.perf_counter()
    try:
        report = kseq.export(
            run_dir,
            format="tflite",
            quantize=quantize,
            static=StaticShape() if static else None,
            io=io,
            overrides=list(overrides),
            output=run_dir / "matrix" / f"{label.replace(' ', '_')}.tflite",
        )
    except KseqError as e:
        return {**row, "exported": False, "error": str(e).strip().splitlines()[0][:200]}
    compiled = report.get("parity_compiled_model", {})
    row.update(
        exported=True,
        seconds=round(time.perf_counter() - started, 1),
        size_kib=report["size_bytes"] / 1024,
        both_apis=set(compiled) == set(report["parity"]),
        signatures=sorted(report["parity"]),
    )
    if quantize == "int8":
        row["float_fed_ops"] = float_fed_ops(report)
    if static:
        profile = report["static_profile"]
        row["outside_profile"] = len(profile["ops_outside_allowlist"])
        row["dynamic_tensors"] = profile["dynamic_tensors"]
    return row


def measure(spec_path: Path, workdir: Path) -> list[dict]:
    import kseq

    spec = kseq.load_spec(spec_path)
    family_data = DATA["autoencoder" if spec.model.type.startswith("autoencoder") else "text"]
    overrides = COMMON + family_data
    run_dir = kseq.train(spec_path, output=workdir / spec_path.stem, overrides=overrides)
    rows = []
    for label, quantize, static, io in VARIANTS:
        rows.append(export_row(run_dir, label, quantize, static, io))
        print(spec_path.stem, json.dumps(rows[-1]), flush=True)
    if getattr(spec.decode, "strategy", "greedy") != "greedy":  # int8 decodes greedily
        greedy = ["decode.strategy=greedy"]
        rows.append(export_row(run_dir, "int8 (greedy)", "int8", False, "float", greedy))
        print(spec_path.stem, json.dumps(rows[-1]), flush=True)
    return rows


def cell(row: dict) -> str:
    if not row["exported"]:  # "--flag: <the reason>: <the measurement>", or a gate failure
        error = row["error"]
        if error.startswith("--"):
            return f"refused: {error.split(': ')[1]}"
        return f"failed: {error}"
    text = f"ok, {row['size_kib']:,.0f} KiB"
    text += "" if row["both_apis"] else ", Interpreter only"
    if "float_fed_ops" in row:
        ops = row["float_fed_ops"]
        text += ", all-int8" if not ops else f", float at {len(ops)} op kinds"
    if "outside_profile" in row:
        text += f", {row['outside_profile']} ops outside / {row['dynamic_tensors']} dynamic"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", nargs="*")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    names = args.specs or sorted(
        p.name for p in (ROOT / "specs").glob("*.yaml") if p.name not in SKIPPED
    )
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory(prefix="kseq-bench-matrix-") as scratch:
        for name in [] if args.table_only else names:
            results[Path(name).stem] = measure(ROOT / "specs" / name, Path(scratch))
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    labels = [v[0] for v in VARIANTS] + ["int8 (greedy)"]
    rows = []
    for spec, spec_rows in results.items():
        by_label = {r["variant"]: r for r in spec_rows}
        rows.append([f"`{spec}`"] + [cell(by_label[v]) if v in by_label else "" for v in labels])
    exported = [r for spec_rows in results.values() for r in spec_rows if r["exported"]]
    total = sum(len(spec_rows) for spec_rows in results.values())
    float_ops = sorted({op for r in exported for op in r.get("float_fed_ops", [])})
    notes = (
        f"\n\n{len(exported)} of {total} files exported and passed the parity gate; "
        f"{sum(r['both_apis'] for r in exported)} of them ran every signature on both the "
        "Interpreter and CompiledModel. Each spec trained 4 steps on small built-in data: "
        "this table says which files can be made and what they contain, `edge-variants` "
        "what they cost on trained models. "
        "'all-int8': no op but the float inputs' QUANTIZE is fed a float tensor; otherwise the "
        f"number of op kinds still fed one (seen here: {', '.join(float_ops) or 'none'}). "
        "Static cells: ops outside the static profile / tensors with a dynamic dimension. "
        "A beam-search spec refuses int8 (greedy only) and gets an extra greedy int8 row. "
        "Not run: the CMUdict presets (the date specs' architectures on CMUdict data). "
        "Raw results: `docs/bench-results/edge_matrix.json`."
    )
    print(
        write_section(
            "edge-matrix",
            "Edge matrix: every example spec in every TFLite variant",
            table(["spec", *labels], rows) + notes,
        )
    )


if __name__ == "__main__":
    main()
