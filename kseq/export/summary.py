"""The export report for people: one table row per artifact, then each file's most used ops.

Every figure comes from the artifact's report (`PATH.report.json`, `report.json` in a
SavedModel), which keeps all of them; this is what the CLI prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["format_report", "format_reports"]

# Op kinds shown per file; the rest are counted, and listed in the JSON.
TOP_OPS = 6
COLUMNS = [
    "artifact",
    "format",
    "precision",
    "static",
    "size",
    "batch-1 latency",
    "parity",
    "task score (Keras)",
]


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # unreachable


def _precision(report: dict) -> str:
    quantize = report.get("quantize", "none")
    precision = "float32" if quantize == "none" else quantize
    return precision + (", int8 I/O" if report.get("io") == "int8" else "")


def _static(report: dict) -> str:
    if "static_profile" not in report:
        return "no"
    return f"yes (batch {report.get('latency_batch_size', 1)})"


def _latency(report: dict) -> str:
    if "latency_ms_batch1" not in report:
        return "-"
    text = f"{report['latency_ms_batch1']:.3g} ms"
    if "latency_ms_batch1_compiled_model" in report:
        text += f" ({report['latency_ms_batch1_compiled_model']:.3g} CompiledModel)"
    return text


def _parity(report: dict) -> str:
    """The gate's verdict in words: ids identical on N rows, the largest float difference."""
    parity = report.get("parity", {})
    rows = max((max(e.get("batch_sizes") or [0]) for e in parity.values()), default=0)
    figures = [f for entry in parity.values() for f in entry.get("outputs", {}).values()]
    exact = [f["equal_fraction"] for f in figures if f.get("compare") == "exact"]
    floats = [f for f in figures if f.get("compare") != "exact"]
    gated = report.get("quantize", "none") == "none"
    words = []
    if exact:
        worst = min(exact)
        if worst == 1.0:
            words.append(f"identical to Keras on {rows:,} rows")
        else:
            words.append(f"{worst:.1%} of integer outputs as Keras's on {rows:,} rows")
    if floats:
        largest = max(f["max_abs_diff"] for f in floats)
        text = f"max |diff| {largest:.1g}"
        if gated:
            text += f" (gate {min(f.get('atol', 1e-4) for f in floats):g})"
        else:
            text += f", cosine {min(f['cosine_similarity'] for f in floats):.4f}"
        words.append(text)
    if report.get("parity_compiled_model"):
        words.append("both LiteRT APIs" if report.get("format") == "tflite" else "")
    verdict = "pass" if gated else "measured"
    return f"{verdict}: " + ", ".join(w for w in words if w) if words else verdict


def _percent_or_number(name: str, value: float) -> str:
    if any(word in name for word in ("match", "accuracy", "identical", "same")) and 0 <= value <= 1:
        return f"{value:.1%}"
    return f"{value:.3g}"


def _score_pair(metric: dict) -> str | None:
    """The first `X_export` / `X_keras` pair of a metric: "exact match 96.5% (96.5%)"."""
    for key, value in metric.items():
        if key.endswith("_export") and f"{key[:-7]}_keras" in metric:
            name = key[:-7]
            keras = metric[f"{name}_keras"]
            shown = name.replace("_", " ")
            return f"{shown} {_percent_or_number(name, value)} ({_percent_or_number(name, keras)})"
    return None


def _app_loops(app_loop: dict) -> list[str]:
    """ "exact match 99.0% (99.0%), greedy app loop" and the same for beam search, if run."""
    loops = []
    for name, figures in (("greedy", app_loop), ("beam", app_loop.get("beam"))):
        if isinstance(figures, dict) and _score_pair(figures):
            loops.append(f"{_score_pair(figures)}, {name} app loop")
    return loops


def _task_score(report: dict) -> str:
    """The family's metric as a file/Keras pair, else its first figure. A file without one (a
    static seq2seq file) is scored by the app loops run over it; a quantized file's loop
    scores follow its own, since there the loop and `generate` can differ."""
    app_loop = report.get("app_loop") or {}
    for entry in report.get("parity", {}).values():
        metric = entry.get("metric") or {}
        if _score_pair(metric):
            quantized = report.get("quantize", "none") != "none"
            return "; ".join([_score_pair(metric), *(_app_loops(app_loop) if quantized else [])])
        for key, value in metric.items():
            if isinstance(value, int | float):
                return f"{key.replace('_', ' ')} {_percent_or_number(key, value)}"
    return "; ".join(_app_loops(app_loop)) or "-"


def _row(report: dict) -> list[str]:
    path = report.get("path", "")
    return [
        Path(path).name or "?",
        "SavedModel" if report.get("format") == "saved_model" else "TFLite",
        _precision(report),
        _static(report),
        _size(int(report.get("size_bytes", 0))),
        _latency(report),
        _parity(report),
        _task_score(report),
    ]


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [line(COLUMNS).rstrip(), *(line(row).rstrip() for row in rows)]


def _ops(report: dict) -> str:
    ops = sorted(report.get("ops", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    if not ops:
        return ""
    shown = ", ".join(f"{name}×{count}" for name, count in ops[:TOP_OPS])
    rest = len(ops) - TOP_OPS
    more = f", and {rest} more kind{'s' if rest != 1 else ''} in its report" if rest > 0 else ""
    return f"  ops: {shown}{more}"


def format_reports(reports: list[dict[str, Any]]) -> str:
    """The table, then for each artifact its path, its top ops and what it needs."""
    lines = _table([_row(r) for r in reports])
    for report in reports:
        lines.append(f"{Path(report.get('path', '?')).name}: {report.get('path', '')}")
        if _ops(report):
            lines.append(_ops(report))
        if report.get("requires_custom_ops"):
            lines.append(f"  needs custom ops: {', '.join(report['requires_custom_ops'])}")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    return format_reports([report])
