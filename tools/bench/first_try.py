"""Your own data, first try: `kseq init` + `kseq train` with no edit, as a new user runs them.

Each task is a data file the project did not tune for, run through the CLI exactly as the README
says (`kseq init DATA --minutes N --output SPEC`, `kseq train SPEC`, `kseq evaluate RUN_DIR --data
TEST`), and scored on held-out pairs the run never saw. Beside each, the example spec a user
would otherwise have copied (`specs/rnn_seq2seq_bahdanau.yaml` with only `data.train` set), in
the same run on the same machine.

- numbers: 3,000 numbers below 1,000,000 -> English words ("40213" -> "forty thousand two
  hundred thirteen"), the file of the issue that found 26 of 3,000 pairs trained; 500 test pairs.
- dates: the built-in date task written out as TSV (20,000 training pairs), its 1,000 held-out
  pairs as the test.
- cmudict: the G2P benchmark's split (`tools/bench/g2p_cmudict.py`), `--minutes 60`.

Writes the "first-try" section of docs/benchmarks.md and docs/bench-results/first_try.json.

    python tools/bench/first_try.py [--tasks numbers dates cmudict]
    python tools/bench/first_try.py --render
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

from markdown import table, write_section  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results" / "first_try.json"
G2P_RESULTS = ROOT / "docs" / "bench-results" / "g2p_cmudict.json"
KSEQ = [sys.executable, "-m", "kseq.cli"]
MINUTES = {"numbers": 5, "dates": 10, "cmudict": 60}
GOALS = {
    "numbers": ">= 95% exact match",
    "dates": ">= 99% exact match",
    "cmudict": "WER <= g2p_rnn",
}

ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spelled(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + (" " + spelled(rest) if rest else "")
    rest = n % 1000
    return spelled(n // 1000) + " thousand" + (" " + spelled(rest) if rest else "")


def numbers(directory: Path) -> dict[str, Path]:
    chosen = random.Random(7).sample(range(1_000_000), 3500)
    files = {"train": chosen[:3000], "test": chosen[3000:]}
    paths = {}
    for name, values in files.items():
        paths[name] = directory / f"numbers-{name}.tsv"
        paths[name].write_text("".join(f"{n}\t{spelled(n)}\n" for n in values), encoding="utf-8")
    return paths


def dates(directory: Path) -> dict[str, Path]:
    from kseq.data.dates import date_splits

    train, test = date_splits(20_000, 1_000, 0)
    paths = {}
    for name, pairs in (("train", train), ("test", test)):
        paths[name] = directory / f"dates-{name}.tsv"
        paths[name].write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return paths


def cmudict(directory: Path) -> dict[str, Path]:
    from g2p_cmudict import prepare

    return prepare(directory)


DATA = {"numbers": numbers, "dates": dates, "cmudict": cmudict}


def kseq(*args: str) -> str:
    done = subprocess.run([*KSEQ, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"kseq {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def trained(spec: str, run_dir: Path, test: Path, *overrides: str) -> dict:
    start = time.perf_counter()
    kseq("train", spec, "--output", str(run_dir), *overrides)
    minutes = (time.perf_counter() - start) / 60
    metrics = json.loads(kseq("evaluate", str(run_dir), "--data", str(test)))
    history = json.loads((run_dir / "history.json").read_text())
    saved = (run_dir / "spec.yaml").read_text()
    return {
        "exact_match": metrics["exact_match"],
        "token_error_rate": metrics["token_error_rate"],
        "epochs": len(history),
        "train_minutes": round(minutes, 1),
        "spec": saved,
    }


def run_task(name: str, directory: Path) -> dict:
    paths = DATA[name](directory)
    validation = ["--validation", str(paths["validation"])] if "validation" in paths else []
    spec = directory / f"{name}.yaml"
    kseq(
        "init",
        str(paths["train"]),
        *validation,
        "--minutes",
        str(MINUTES[name]),
        "--output",
        str(spec),
    )
    pairs = len(paths["train"].read_text(encoding="utf-8").splitlines())
    result = {"task": name, "pairs": pairs}
    result["init"] = trained(str(spec), directory / f"{name}-init", paths["test"])
    if name == "cmudict":  # the preset it must match: its figures from the g2p-cmudict section
        return result
    example = ["--set", f"data.train={paths['train']}"]
    if validation:
        example += ["--set", f"data.validation={paths['validation']}"]
    result["example"] = trained(
        str(ROOT / "specs" / "rnn_seq2seq_bahdanau.yaml"),
        directory / f"{name}-example",
        paths["test"],
        *example,
    )
    return result


def render(results: dict) -> None:
    rows = []
    preset = json.loads(G2P_RESULTS.read_text())["rnn"] if G2P_RESULTS.exists() else None
    for name, result in results.items():
        if name == "cmudict" and preset is not None and "example" not in result:
            result["example"] = {
                "exact_match": 1 - preset["wer_greedy"],
                "token_error_rate": preset["per_greedy"],
                "epochs": preset["epochs"],
                "train_minutes": round(preset["minutes"], 1),
            }
        baseline = (
            "`specs/g2p_rnn.yaml` (its g2p-cmudict row)"
            if name == "cmudict"
            else "`specs/rnn_seq2seq_bahdanau.yaml`, data set"
        )
        for who, label in (
            ("init", f"`kseq init --minutes {MINUTES[name]}`"),
            ("example", baseline),
        ):
            r = result[who]
            rows.append(
                [
                    name,
                    f"{result['pairs']:,}",
                    label,
                    f"{100 * r['exact_match']:.1f}",
                    f"{100 * r['token_error_rate']:.1f}",
                    r["epochs"],
                    r["train_minutes"],
                    GOALS[name] if who == "init" else "",
                ]
            )
    body = (
        "A data file, the README's commands, no edit: `kseq init DATA --minutes N --output "
        "SPEC`, `kseq train SPEC`, `kseq evaluate RUN_DIR --data TEST` on held-out pairs. The "
        "example spec is what a user copied before `kseq init` (only `data.train` set; its "
        "lengths are `auto` now: with the fixed 12-token target limit it had, the numbers file "
        "trained on 26 of 3,000 pairs, 0.0% exact match). For CMUdict the baseline is the "
        "G2P preset's row of the g2p-cmudict section, on the same split (word error rate = 100 - "
        "exact match; token error = phoneme error rate). Training minutes include data "
        "preparation.\n\n"
        + table(
            [
                "task",
                "training pairs",
                "spec",
                "exact match %",
                "token error %",
                "epochs",
                "training min",
                "goal",
            ],
            rows,
        )
    )
    if "cmudict" in results:
        init, preset = results["cmudict"]["init"], results["cmudict"]["example"]
        body += (
            f"\n\nCMUdict word error rate: `kseq init --minutes 60` "
            f"{100 * (1 - init['exact_match']):.1f}% (PER {100 * init['token_error_rate']:.1f}%, "
            f"{init['epochs']} epochs, {init['train_minutes']} min: early stopping on val_loss "
            f"ended the budgeted run), `specs/g2p_rnn.yaml` "
            f"{100 * (1 - preset['exact_match']):.1f}% "
            f"(PER {100 * preset['token_error_rate']:.1f}%)."
        )
    write_section("first-try", "Your own data, first try: kseq init against the example spec", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(DATA), default=["numbers", "dates"])
    parser.add_argument("--render", action="store_true", help="only rewrite the section")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.render:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        for name in args.tasks:
            with tempfile.TemporaryDirectory(prefix=f"kseq-first-try-{name}-") as scratch:
                results[name] = run_task(name, Path(scratch))
                print(json.dumps({k: v for k, v in results[name].items()}, indent=1)[:2000])
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    render(results)


if __name__ == "__main__":
    main()
