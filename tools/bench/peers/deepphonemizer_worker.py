"""DeepPhonemizer's side of `g2p_cmudict.py --peer deepphonemizer`; runs in the peer's own
virtual environment (torch + deep-phonemizer), never in kseq's.

    python deepphonemizer_worker.py --config forward|autoreg --data DIR --work DIR --minutes M

Trains DeepPhonemizer's own packaged config (`forward_config.yaml` or `autoreg_config.yaml`),
changing only what the data dictates (paths, the one language, the grapheme and phoneme symbol
sets, no data-size-bound step counts), on DIR/train.tsv with DIR/validation.tsv, for M minutes of
wall-clock from the start of its preprocessing: DeepPhonemizer has no time budget, so training
is stopped at the deadline and the checkpoint it saved at its last finished epoch
(`latest_model.pt`) is the model a user has then. That model then predicts DIR/test.tsv, and
the worker writes WORK/predictions.tsv (word, predicted phonemes) and WORK/result.json
(parameters, checkpoint size, epochs and steps trained, batch-1 latency per word). The scores
are computed by the bench with kseq's own metric code, the same as for kseq's presets.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import time
from pathlib import Path

LANGUAGE = "en_us"
LATENCY_WORDS = 200


def read_pairs(path: Path) -> list[tuple[str, list[str]]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word, phonemes = line.split("\t")
        pairs.append((word, phonemes.split()))
    return pairs


def make_config(kind: str, data: Path, work: Path) -> Path:
    """DeepPhonemizer's own config of `kind`, with this data's paths, language and symbols."""
    import dp
    import yaml

    packaged = Path(dp.__file__).parent / "configs" / f"{kind}_config.yaml"
    config = yaml.safe_load(packaged.read_text())
    pairs = read_pairs(data / "train.tsv") + read_pairs(data / "validation.tsv")
    config["paths"] = {
        "checkpoint_dir": str(work / "checkpoints"),
        "data_dir": str(work / "datasets"),
    }
    config["preprocessing"]["languages"] = [LANGUAGE]
    config["preprocessing"]["text_symbols"] = "".join(sorted({c for w, _ in pairs for c in w}))
    config["preprocessing"]["phoneme_symbols"] = sorted({p for _, ps in pairs for p in ps})
    config["training"]["epochs"] = 10_000  # the deadline ends training, not an epoch count
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def train_until_killed(config: str, data: str) -> None:
    from dp.preprocess import preprocess
    from dp.train import train

    rows = {
        name: [(LANGUAGE, w, p) for w, p in read_pairs(Path(data) / f"{name}.tsv")]
        for name in ("train", "validation")
    }
    preprocess(
        config_file=config,
        train_data=rows["train"],
        val_data=rows["validation"],
        deduplicate_train_data=False,
    )
    train(rank=0, num_gpus=0, config_file=config)


def train_for(minutes: float, config: Path, data: Path, work: Path) -> dict:
    """Trains in a child process until the deadline, keeping a copy of each `latest_model.pt`
    once it is completely written (the kill may land mid-save)."""
    latest = work / "checkpoints" / "latest_model.pt"
    kept = work / "kept_model.pt"
    started = time.monotonic()
    deadline = started + 60 * minutes
    child = multiprocessing.get_context("spawn").Process(
        target=train_until_killed, args=(str(config), str(data))
    )
    child.start()
    seen, epochs = None, 0
    while child.is_alive() and time.monotonic() < deadline:
        time.sleep(5)
        if latest.exists():
            stamp = (latest.stat().st_mtime_ns, latest.stat().st_size)
            time.sleep(2)  # a save in progress changes size or time within this wait
            now = (latest.stat().st_mtime_ns, latest.stat().st_size)
            if stamp == now and now != seen:
                shutil.copyfile(latest, kept)
                seen, epochs = now, epochs + 1
                print(f"deepphonemizer: epoch {epochs} kept at {time.monotonic() - started:.0f} s")
    child.terminate()
    child.join()
    if not kept.exists():
        raise SystemExit(f"DeepPhonemizer finished no epoch in {minutes} minutes")
    return {"minutes": (time.monotonic() - started) / 60, "epochs": epochs}


def predict(model_path: Path, test: Path, work: Path) -> dict:
    import torch
    from dp.phonemizer import Phonemizer
    from dp.preprocessing.text import LanguageTokenizer, Preprocessor, SequenceTokenizer

    # deep-phonemizer 0.0.19 predates torch's weights-only loading; its checkpoints pickle
    # these three classes (and this one was written by this run).
    trusted = [LanguageTokenizer, Preprocessor, SequenceTokenizer]
    with torch.serialization.safe_globals(trusted):
        phonemizer = Phonemizer.from_checkpoint(str(model_path))
        checkpoint = torch.load(str(model_path), map_location="cpu")
    predictor = phonemizer.predictor
    words = [w for w, _ in read_pairs(test)]
    special = predictor.phoneme_tokenizer.special_tokens
    rows = predictor(words, lang=LANGUAGE, batch_size=64)
    lines = [f"{r.word}\t{' '.join(t for t in r.phoneme_tokens if t not in special)}" for r in rows]
    (work / "predictions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    timings = []
    for i, word in enumerate(words[: LATENCY_WORDS + 10]):
        start = time.perf_counter()
        predictor([word], lang=LANGUAGE, batch_size=1)
        if i >= 10:  # after a warm-up
            timings.append(time.perf_counter() - start)
    weights = work / "weights_only.pt"  # the file an app ships: no optimizer state
    torch.save(predictor.model.state_dict(), str(weights))
    return {
        "parameters": sum(p.numel() for p in predictor.model.parameters()),
        "model_mb": weights.stat().st_size / 1e6,
        "latency_ms_per_word": 1000 * statistics.median(timings),
        "steps": checkpoint.get("step"),
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["forward", "autoreg"], required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--minutes", type=float, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    config = make_config(args.config, args.data, args.work)
    result = {
        "config": f"{args.config}_config.yaml",
        **train_for(args.minutes, config, args.data, args.work),
    }
    result.update(predict(args.work / "kept_model.pt", args.data / "test.tsv", args.work))
    (args.work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
