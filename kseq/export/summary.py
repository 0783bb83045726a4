"""A few human-readable lines from an export report (the CLI prints these; the JSON has it all)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report"]


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # unreachable


def _figures(fig: dict[str, Any]) -> str:
    if fig.get("compare") == "exact":
        return f"equal {fig['equal_fraction']:.2%}"
    return f"max|diff| {fig['max_abs_diff']:.2g}, cos {fig['cosine_similarity']:.6f}"


def format_report(report: dict[str, Any]) -> str:
    """One header line per artifact, then one line per endpoint with its parity figures."""
    kind = report.get("format", "?")
    head = f"{kind}"
    if "quantize" in report:
        io = ", int8 inputs/outputs" if report.get("io") == "int8" else ""
        head += f" ({report['quantize']}{io})"
    head += f": {_size(int(report.get('size_bytes', 0)))}"
    if "size_ratio_vs_float32" in report:
        head += f" = {report['size_ratio_vs_float32']:.0%} of fp32"
    if "latency_ms_batch1" in report:
        head += f", {report['latency_ms_batch1']:.3g} ms/row"
    if report.get("ops"):
        head += ", ops " + " ".join(f"{k}×{v}" for k, v in report["ops"].items())
    lines = [head]
    if report.get("path"):
        lines.append(f"  written to {report['path']}")
    for name, entry in report.get("parity", {}).items():
        sizes = "/".join(str(s) for s in entry.get("batch_sizes", []))
        outs = "; ".join(f"{o} {_figures(f)}" for o, f in entry.get("outputs", {}).items())
        line = f"  {name} [batch {sizes}]: {outs}"
        if entry.get("metric"):
            shown = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in entry["metric"].items()
            )
            line += f"; {shown}"
        lines.append(line)
    if report.get("parity_compiled_model"):
        # Quantized files are compared, not gated, except that decoders' ids must agree.
        verdict = "pass" if report.get("quantize", "none") == "none" else "run"
        line = (
            f"  also on CompiledModel (CPU): {', '.join(report['parity_compiled_model'])} {verdict}"
        )
        if "latency_ms_batch1_compiled_model" in report:
            line += f", {report['latency_ms_batch1_compiled_model']:.3g} ms/row"
        lines.append(line)
    if report.get("requires_custom_ops"):
        lines.append(f"  needs custom ops: {', '.join(report['requires_custom_ops'])}")
    return "\n".join(lines)
