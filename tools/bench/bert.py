"""BERT-mini against keras-hub's BertBackbone, and domain-adaptive pretraining on a built-in task.

For a BERT-mini configuration (4 layers, hidden 256, 4 heads, intermediate 1024, length 128,
BERT's 30,522-token vocabulary), in one run:

- training throughput of kseq's BERT with a classification head (`kseq.build` on
  `specs/bert_classification.yaml` with BERT-mini sizes) and of keras-hub's `BertBackbone` with
  the same configuration plus the same head (dropout + dense on the pooled output), on the same
  16x128 batches of random token ids with realistic padding, the same optimizer, alternating
  rounds, best epoch: non-padding tokens/s and the ratio;
- batch-1 latency of both encoders as builtin-only float32 TFLite files (kseq: the family's
  `encoder` endpoints through `kseq.export.write_saved_model` / `write_tflite`; keras-hub: a
  `keras.export.ExportArchive` of the backbone through the same converter setup,
  `kseq.export.convert`: `TFLiteConverter.from_saved_model`, `supported_ops=[TFLITE_BUILTINS]`),
  with a dynamic and a fixed (128) sequence axis, and the max abs diff of each file against its
  Keras model;
- validation accuracy of the built-in sentiment classification task
  (`specs/bert_classification.yaml`, with a small labelled training set so that the task is
  not saturated) fine-tuned from scratch and from a masked-LM run pretrained on unlabelled
  in-domain text (`specs/bert_domain_adaptation.yaml`, then `model.init.from`), same budget,
  several seeds.

keras-hub (0.32) is a comparison point, not a kseq dependency: when it cannot be imported its
rows are left out with a note. No weights are downloaded (the backbone is built from a config).

Writes the "bert" section of docs/benchmarks.md and docs/bench-results/bert.json.

    python tools/bench/bert.py [--rounds 8] [--batches 8] [--seeds 5] [--finetune-train-size 32]
                               [--finetune-epochs 30] [--parts throughput tflite finetune]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "bench"))
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from markdown import table, write_section  # noqa: E402
from throughput import EpochTimer, latency_ms  # noqa: E402

import kseq  # noqa: E402
from kseq.models.family import family_for  # noqa: E402

RESULTS = ROOT / "docs" / "bench-results" / "bert.json"
SPECS = ROOT / "specs"
# BERT-mini (Turc et al., 2019) with BERT's uncased vocabulary.
MINI = {
    "vocab_size": 30522,
    "num_layers": 4,
    "hidden_size": 256,
    "num_heads": 4,
    "intermediate_size": 1024,
    "max_sequence_length": 128,
}
INPUTS = ("token_ids", "segment_ids", "padding_mask")
CLS, SEP, FIRST_WORD_ID = 101, 102, 1000  # BERT's ids; pad is 0 in both implementations


def keras_hub_or_none():
    try:
        import keras_hub
    except ImportError:
        return None
    return keras_hub


# ---- data ------------------------------------------------------------------------------------


def random_batches(count: int, batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`count * batch` packed rows of random word ids, `[CLS] ... [SEP] [PAD]...` to `length`.

    Lengths follow a log-normal around 40 tokens (clipped to 8..length), as in sentence and
    sentence-pair classification sets packed to 128; half the rows are pairs (segment 1 after
    the middle [SEP]). Labels are random 0/1.
    """
    rng = np.random.default_rng(seed)
    rows = count * batch
    lengths = np.clip(np.round(rng.lognormal(np.log(40), 0.6, rows)), 8, length).astype(int)
    token_ids = np.zeros((rows, length), np.int32)
    segment_ids = np.zeros((rows, length), np.int32)
    padding_mask = np.zeros((rows, length), np.int32)
    for i, n in enumerate(lengths):
        token_ids[i, :n] = rng.integers(FIRST_WORD_ID, MINI["vocab_size"], n)
        token_ids[i, 0], token_ids[i, n - 1] = CLS, SEP
        padding_mask[i, :n] = 1
        if i % 2:  # a sentence pair
            middle = n // 2
            token_ids[i, middle] = SEP
            segment_ids[i, middle + 1 : n] = 1
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
        "labels": rng.integers(0, 2, rows).astype(np.int32),
    }


# ---- models ----------------------------------------------------------------------------------


def mini_overrides(batch_size: int) -> list[str]:
    return [f"model.{k}={v}" for k, v in MINI.items()] + [
        f"train.batch_size={batch_size}",
        "data.sequence_length=128",
    ]


def kseq_mini(batch_size: int):
    """kseq's BERT-mini classifier, built and compiled as `kseq.build` does (spec, family)."""
    spec = kseq.load_spec(SPECS / "bert_classification.yaml", mini_overrides(batch_size))
    family = family_for(spec)
    data = family.load_data(spec)
    keras.utils.set_random_seed(0)
    model = family.build(spec, data)
    family.compile(model, spec)
    return spec, family, data, model


def hub_backbone(keras_hub, spec):
    m = spec.model
    return keras_hub.models.BertBackbone(
        vocabulary_size=m.vocab_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        hidden_dim=m.hidden_size,
        intermediate_dim=m.intermediate_size,
        dropout=m.dropout,
        max_sequence_length=m.max_sequence_length,
        num_segments=m.num_segments,
    )


def hub_classifier(keras_hub, spec, num_labels: int):
    """keras-hub's BertBackbone + the same head as kseq's: dropout, dense on the pooled output.

    Compiled as a keras-hub user would: the same optimizer (built from the same spec section),
    sparse cross-entropy on logits, accuracy.
    """
    from kseq.train.components import make_optimizer

    keras.utils.set_random_seed(0)
    backbone = hub_backbone(keras_hub, spec)
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUTS}
    pooled = backbone(inputs)["pooled_output"]
    x = keras.layers.Dropout(spec.model.dropout)(pooled)
    init = keras.initializers.TruncatedNormal(stddev=spec.model.initializer_range)
    logits = keras.layers.Dense(num_labels, kernel_initializer=init, name="logits")(x)
    model = keras.Model(inputs, {"logits": logits})
    model.compile(
        optimizer=make_optimizer(spec.train.optimizer),
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        metrics={"logits": ["accuracy"]},
    )
    return model, backbone


# ---- 1. training throughput ------------------------------------------------------------------


def epoch_times(models: dict, dataset, rounds: int) -> dict[str, list[float]]:
    """Seconds of one epoch per model per round, the models alternating epoch by epoch (after
    a warm-up epoch each, which traces). Short alternating units let bursts of other work on
    the machine hit both models alike; the fastest epoch is the least disturbed one."""
    for model in models.values():
        model.fit(dataset, epochs=1, verbose=0)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            timer = EpochTimer()
            model.fit(dataset, epochs=1, verbose=0, callbacks=[timer])
            times[name] += timer.seconds
    return times


def bench_throughput(args, keras_hub, rows) -> tuple[dict, dict]:
    spec, family, data, ours = kseq_mini(args.batch_size)
    models = {"kseq": ours}
    hub = None
    if keras_hub is not None:
        models["keras-hub"], hub = hub_classifier(keras_hub, spec, len(data.info.labels))
    inputs = {k: rows[k] for k in INPUTS}
    dataset = (
        tf.data.Dataset.from_tensor_slices((inputs, {"logits": rows["labels"]}))
        .batch(args.batch_size)
        .cache()
    )
    tokens = int(rows["padding_mask"].sum())
    times = epoch_times(models, dataset, args.rounds)
    seconds = {name: min(values) for name, values in times.items()}
    result = {
        "batch": [args.batch_size, MINI["max_sequence_length"]],
        "batches": args.batches,
        "non_padding_tokens": tokens,
        "padding_share": 1 - tokens / rows["padding_mask"].size,
        "epoch_seconds": seconds,
        "tokens_per_second": {name: tokens / s for name, s in seconds.items()},
        "params": {name: int(model.count_params()) for name, model in models.items()},
        "optimizer": f"{spec.train.optimizer.type} lr={spec.train.optimizer.learning_rate:g}",
    }
    result["all_epoch_seconds"] = times
    if hub is not None:
        rate = result["tokens_per_second"]
        result["ratio_kseq_over_keras_hub"] = rate["kseq"] / rate["keras-hub"]
        # Robustness check against bursts of other work: each round's two epochs ran back to
        # back, so their ratio is paired; the median over rounds should tell the same story.
        paired = [h / k for k, h in zip(times["kseq"], times["keras-hub"], strict=True)]
        result["median_paired_ratio"] = statistics.median(paired)
    context = {"spec": spec, "family": family, "data": data, "kseq": ours, "hub": hub}
    return result, context


# ---- 2. TFLite batch-1 latency ---------------------------------------------------------------


def interpreter_runner(path: Path, signature: str):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=str(path)).get_signature_runner(signature)


def max_abs_diff(reference: dict, got: dict) -> float:
    return max(
        float(np.max(np.abs(np.asarray(reference[k], np.float64) - np.asarray(got[k]))))
        for k in ("sequence_output", "pooled_output")
    )


def parity(path: Path, signature: str, keras_fn, batches: list[dict]) -> float:
    runner = interpreter_runner(path, signature)
    return max(max_abs_diff(keras_fn(batch), runner(**batch)) for batch in batches)


def op_counts(path: Path) -> dict[str, int]:
    from kseq.export.tflite_inspect import op_summary

    return op_summary(path.read_bytes())["ops"]


def export_hub(hub, sequence_length: int | None, scratch: Path) -> Path:
    """keras-hub's backbone as a builtin-only .tflite: an ExportArchive, kseq's converter setup.

    Raises kseq's ExportError (which names the op without a builtin kernel) when it cannot.
    """
    from kseq.export import convert

    archive = keras.export.ExportArchive()
    archive.track(hub)

    def encode(token_ids, segment_ids, padding_mask):
        batch = {"token_ids": token_ids, "segment_ids": segment_ids}
        return dict(hub({**batch, "padding_mask": padding_mask}, training=False))

    signature = [tf.TensorSpec((None, sequence_length), tf.int32, name=n) for n in INPUTS]
    archive.add_endpoint("encode", encode, input_signature=signature)
    saved = scratch / f"hub-{sequence_length}"
    archive.write_out(str(saved), verbose=False)
    path = scratch / f"hub-{sequence_length}.tflite"
    path.write_bytes(convert(saved, ["encode"]))
    return path


def export_kseq(context, sequence_length: int | None, scratch: Path) -> tuple[Path, float]:
    """kseq's encoder through the family's endpoint, SavedModel and TFLite with the parity gate."""
    from kseq.export import write_saved_model, write_tflite

    model, family = context["kseq"], context["family"]
    endpoints = family.endpoints(
        model, context["spec"], context["data"], "encoder", sequence_length=sequence_length
    )
    saved = scratch / f"kseq-{sequence_length}"
    write_saved_model(endpoints, saved, track=model)
    path = scratch / f"kseq-{sequence_length}.tflite"
    report = write_tflite(endpoints, saved, path)
    gate = max(o["max_abs_diff"] for o in report["parity"]["encode"]["outputs"].values())
    return path, gate


def bench_tflite(args, context, rows, scratch: Path) -> dict:
    from kseq.models.bert.network import backbone_of

    hub = context["hub"]
    # Batch 1: one row packed to 128 (at a fixed S=128 its padding changes no work); parity on
    # that row and on 8 more rows of mixed lengths.
    row = {k: rows[k][:1] for k in INPUTS}
    batches = [row, {k: rows[k][1:9] for k in INPUTS}]
    encoder = backbone_of(context["kseq"])
    keras_fns = {
        "kseq": lambda b: {k: v.numpy() for k, v in encoder(b, training=False).items()},
        "keras-hub": lambda b: {k: v.numpy() for k, v in hub(b, training=False).items()},
    }
    results: dict = {"row_tokens": int(row["padding_mask"].sum()), "kseq": {}, "keras-hub": {}}
    files = {}
    for axis, sequence_length in (("dynamic", None), ("static 128", MINI["max_sequence_length"])):
        started = time.perf_counter()
        path, gate = export_kseq(context, sequence_length, scratch)
        results["kseq"][axis] = {
            "gate_max_abs_diff": gate,
            "export_seconds": time.perf_counter() - started,
        }
        files["kseq", axis] = path
        if hub is None:
            continue
        started = time.perf_counter()
        try:
            files["keras-hub", axis] = export_hub(hub, sequence_length, scratch)
        except Exception as error:  # kseq's ExportError names the op that has no builtin
            results["keras-hub"][axis] = {"error": str(error).splitlines()[0][:300]}
            continue
        results["keras-hub"][axis] = {"export_seconds": time.perf_counter() - started}
    runners = {key: interpreter_runner(path, "encode") for key, path in files.items()}
    latencies: dict = {key: [] for key in files}
    for _ in range(args.latency_rounds):  # alternate the files; keep each one's best median
        for key, runner in runners.items():
            latencies[key].append(
                latency_ms(lambda runner=runner: runner(**row), args.latency_runs)
            )
    for (name, axis), path in files.items():
        results[name][axis].update(
            latency_ms=min(latencies[name, axis]),
            max_abs_diff=parity(path, "encode", keras_fns[name], batches),
            size_bytes=path.stat().st_size,
            ops=op_counts(path),
        )
    for name in ("kseq", "keras-hub"):
        for axis, figures in results[name].items():
            print(name, axis, {k: v for k, v in figures.items() if k != "ops"}, flush=True)
    return results


# ---- 3. fine-tuning before and after domain-adaptive pretraining ----------------------------


def quiet(*extra: str) -> list[str]:
    return ["train.verbose=0", "train.tensorboard=false", "train.checkpoints=false", *extra]


def in_domain_text(path: Path, count: int, seed: int) -> Path:
    """Unlabelled sentences of the sentiment task's domain, one per line (labels dropped)."""
    from kseq.models.bert import synthetic

    path.write_text("\n".join(e["text"] for e in synthetic.sentiment(count, seed)) + "\n")
    return path


def accuracy(run_dir: Path) -> float:
    metrics = kseq.evaluate(run_dir)
    return float(metrics.get("accuracy", metrics.get("logits_accuracy", float("nan"))))


def bench_finetune(args, scratch: Path) -> dict:
    text = in_domain_text(scratch / "in_domain.txt", args.pretrain_sentences, seed=1000)
    pretrain_overrides = quiet(
        f"data.train={text}",
        f"train.epochs={args.pretrain_epochs}",
        # From scratch there is nothing to protect: train the embeddings, one learning rate.
        "model.freeze.embeddings=false",
        "model.layerwise_lr_decay=1.0",
    )
    spec = kseq.load_spec(SPECS / "bert_domain_adaptation.yaml", pretrain_overrides)
    started = time.perf_counter()
    pretrained = kseq.train(spec, scratch / "pretrained")
    pretrain_seconds = time.perf_counter() - started
    mlm = kseq.evaluate(pretrained)
    print("pretrained", f"{pretrain_seconds:.0f}s", mlm, flush=True)

    def fine_tune(arm: str, label: str, overrides: list[str]) -> tuple[float, float]:
        extra = [f"model.init.from={pretrained}"] if arm == "pretrained" else []
        spec = kseq.load_spec(SPECS / "bert_classification.yaml", quiet(*overrides, *extra))
        started = time.perf_counter()
        run_dir = kseq.train(spec, scratch / f"{arm}-{label}")
        return accuracy(run_dir), time.perf_counter() - started

    classification = kseq.load_spec(SPECS / "bert_classification.yaml")
    validation_size = classification.data.synthetic.validation_size
    budget = [
        f"data.synthetic.train_size={args.finetune_train_size}",
        f"train.epochs={args.finetune_epochs}",
    ]
    runs: list[dict] = []
    for seed in range(args.seeds):
        row: dict = {"seed": seed}
        for arm in ("scratch", "pretrained"):
            seeded = [*budget, f"data.synthetic.seed={seed}", f"train.seed={seed}"]
            row[arm], row[f"{arm}_seconds"] = fine_tune(arm, str(seed), seeded)
        print(row, flush=True)
        runs.append(row)
    spec_budget = None
    if args.spec_budget:  # the spec as it is (2,000 examples): is the task saturated there?
        spec_budget = {}
        for arm in ("scratch", "pretrained"):
            spec_budget[arm], spec_budget[f"{arm}_seconds"] = fine_tune(arm, "spec", [])
        print("spec budget", spec_budget, flush=True)
    return {
        "pretrain": {
            "spec": "bert_domain_adaptation",
            "sentences": args.pretrain_sentences,
            "epochs": args.pretrain_epochs,
            "seconds": pretrain_seconds,
            "masked_lm_accuracy": mlm.get("accuracy"),
            "perplexity": mlm.get("perplexity"),
            "vocab_size": len((pretrained / "assets" / "vocab.txt").read_text().splitlines()),
        },
        "finetune": {
            "spec": "bert_classification",
            "train_size": args.finetune_train_size,
            "epochs": args.finetune_epochs,
            "validation_size": validation_size,
            "seconds_per_run": statistics.mean(
                r[f"{arm}_seconds"] for r in runs for arm in ("scratch", "pretrained")
            ),
            "runs": runs,
            "scratch_mean": statistics.mean(r["scratch"] for r in runs),
            "pretrained_mean": statistics.mean(r["pretrained"] for r in runs),
            "spec_budget_seed_0": spec_budget,
        },
    }


# ---- report ----------------------------------------------------------------------------------


def render(results: dict, args) -> str:
    parts = []
    if "throughput" in results:
        t = results["throughput"]
        rates = t["tokens_per_second"]
        rows = [
            [
                name,
                f"{rates[name]:,.0f}",
                f"{t['epoch_seconds'][name] / t['batches'] * 1e3:,.0f}",
                f"{t['params'][name]:,}",
            ]
            for name in rates
        ]
        parts += ["### Training throughput (BERT-mini, classification head)"]
        parts += [table(["model", "non-padding tokens/s", "ms per step", "params"], rows)]
        ratio = t.get("ratio_kseq_over_keras_hub")
        parts += [
            (f"**kseq / keras-hub: {ratio:.2f}.** " if ratio else "")
            + (
                f"(Median of the per-round ratios: {t['median_paired_ratio']:.2f}.) "
                if ratio
                else ""
            )
            + f"Batches of {t['batch'][0]}x{t['batch'][1]} random token ids, "
            f"{t['padding_share']:.0%} padding (log-normal lengths around 40 tokens, half of "
            f"the rows sentence pairs), {t['batches']} batches per epoch; {t['optimizer']} for "
            "both (the spec's optimizer). Fastest of "
            f"{args.rounds} epochs per model, the models alternating epoch by epoch after a "
            "warm-up epoch each. kseq: `specs/bert_classification.yaml` with BERT-mini sizes and "
            "BERT's 30,522-token vocabulary, built and compiled by the family (its "
            "ignore-index loss); keras-hub: `BertBackbone` with the same configuration + "
            "dropout + dense on `pooled_output`, sparse cross-entropy. Same parameter count. "
            "kseq's feed-forward uses exact (erf) GELU, keras-hub's the tanh "
            "approximation."
        ]
    if "tflite" in results:
        t = results["tflite"]
        rows = []
        for name in ("kseq", "keras-hub"):
            for axis, f in t.get(name, {}).items():
                if "error" in f:
                    rows.append([name, axis, f"fails: {f['error']}", "", "", ""])
                    continue
                rows.append(
                    [
                        name,
                        axis,
                        f"{f['latency_ms']:.2f}",
                        f"{f['max_abs_diff']:.1e}",
                        f"{f['size_bytes'] / 2**20:.1f} MiB",
                        f"{sum(f['ops'].values())} ({len(f['ops'])} kinds)",
                    ]
                )
        latency = {
            axis: t["kseq"][axis]["latency_ms"] / f["latency_ms"]
            for axis, f in t.get("keras-hub", {}).items()
            if "error" not in f
        }
        parts += ["### TFLite batch-1 latency (BERT-mini encoder, float32, builtin ops only)"]
        parts += [
            table(
                [
                    "model",
                    "sequence axis",
                    "ms (1x128)",
                    "max abs diff vs Keras",
                    "size",
                    "ops (distinct)",
                ],
                rows,
            )
        ]
        ratios = ", ".join(f"{axis} {r:.2f}" for axis, r in latency.items())
        differences = []
        for axis, f in t.get("keras-hub", {}).items():
            if "error" in f:
                continue
            ours, theirs = t["kseq"][axis]["ops"], f["ops"]
            changed = [
                f"{op} {ours.get(op, 0)}/{theirs.get(op, 0)}"
                for op in sorted(set(ours) | set(theirs))
                if ours.get(op, 0) != theirs.get(op, 0)
            ]
            differences.append(f"{axis}: {', '.join(changed) or 'none'}")
        parts += [
            (f"**Latency kseq / keras-hub: {ratios}.** " if ratios else "")
            + f"Best of {args.latency_rounds} alternating medians of {args.latency_runs} "
            "calls of the plain `ai_edge_litert` interpreter (default threads) on one row "
            "packed to 128, after warm-up. Both files hold the encoder "
            "alone (`sequence_output`, `pooled_output`) and come from `TFLiteConverter."
            "from_saved_model` with `supported_ops=[TFLITE_BUILTINS]` (`kseq.export.convert`); "
            "kseq's through its family's `encoder` endpoint and parity gate (1e-4), keras-hub's "
            "from a `keras.export.ExportArchive` of `BertBackbone`. Max abs diff: the TFLite "
            "outputs against the same Keras model on that row and on 8 rows of mixed lengths, "
            "all positions."
            + (
                " Op counts that differ (kseq/keras-hub): " + "; ".join(differences) + "."
                if differences
                else ""
            )
        ]
    if "finetune" in results:
        f = results["finetune"]
        pre, fine = f["pretrain"], f["finetune"]
        budget = f"{fine['train_size']} examples, {fine['epochs']} epochs"
        rows = [
            [budget, r["seed"], f"{r['scratch']:.1%}", f"{r['pretrained']:.1%}"]
            for r in fine["runs"]
        ]
        rows.append(
            [
                budget,
                f"mean of {len(fine['runs'])}",
                f"**{fine['scratch_mean']:.1%}**",
                f"**{fine['pretrained_mean']:.1%}**",
            ]
        )
        reference = fine.get("spec_budget_seed_0")
        if reference:
            rows.append(
                [
                    "the spec's: 2,000 examples, 3 epochs",
                    0,
                    f"{reference['scratch']:.1%}",
                    f"{reference['pretrained']:.1%}",
                ]
            )
        parts += ["### Fine-tuning before and after domain-adaptive pretraining"]
        parts += [
            table(
                ["fine-tuning budget", "seed", "from scratch", "from the in-domain masked-LM run"],
                rows,
            )
        ]
        parts += [
            f"Validation accuracy ({fine['validation_size']} held-out sentences) of the "
            "built-in sentiment task (`specs/bert_classification.yaml`: 2 layers, hidden 64, "
            "AdamW 2e-3, batch 32). The spec's own budget saturates the task, so the "
            f"comparison fine-tunes on **{fine['train_size']} labelled examples for "
            f"{fine['epochs']} epochs** (`--set data.synthetic.train_size={fine['train_size']} "
            f"--set train.epochs={fine['epochs']}`); data and weight seed = the row's seed "
            "(`data.synthetic.seed`, `train.seed`), so each seed is a different small training "
            "set. The pretrained arm adds `model.init.from` = one masked-LM run of "
            "`specs/bert_domain_adaptation.yaml` on "
            f"{pre['sentences']:,} unlabelled sentences of the task's domain (the sentiment "
            "generator with another seed, labels dropped, as a `.txt` file), "
            f"{pre['epochs']} epochs, from scratch with its embeddings trained "
            "(`model.freeze.embeddings=false`, `model.layerwise_lr_decay=1.0`: the spec's "
            "freezing and decay protect an already pretrained model): "
            f"**{pre['seconds']:.0f} s of pretraining**, held-out masked-token accuracy "
            f"{pre['masked_lm_accuracy']:.1%} (perplexity {pre['perplexity']:.2f}). The "
            "fine-tuned model reuses the pretraining run's vocabulary "
            f"({pre['vocab_size']} tokens); the scratch one learns its own from its few "
            "training texts. Fine-tuning takes "
            f"{fine['seconds_per_run']:.0f} s a run (`kseq.train` wall time)."
        ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="*", default=["throughput", "tflite", "finetune"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=8, help="training batches per epoch")
    parser.add_argument("--rounds", type=int, default=8, help="alternating timed epochs")
    parser.add_argument("--latency-runs", type=int, default=50, help="calls per median")
    parser.add_argument("--latency-rounds", type=int, default=3, help="alternating medians")
    parser.add_argument("--pretrain-sentences", type=int, default=4000)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--finetune-train-size", type=int, default=32)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--no-spec-budget",
        dest="spec_budget",
        action="store_false",
        help="skip the reference fine-tuning at the spec's own budget (2,000 examples)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the docs")
    args = parser.parse_args()
    keras_hub = keras_hub_or_none()
    results: dict = {"date": time.strftime("%Y-%m-%d"), "args": vars(args)}
    results["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__}
    if keras_hub is not None:
        results["versions"]["keras_hub"] = keras_hub.__version__
    started = time.perf_counter()
    rows = random_batches(args.batches, args.batch_size, MINI["max_sequence_length"])
    with tempfile.TemporaryDirectory(prefix="kseq-bench-bert-") as scratch:
        scratch = Path(scratch)
        context = None
        if {"throughput", "tflite"} & set(args.parts):
            results["throughput"], context = bench_throughput(args, keras_hub, rows)
            print(results["throughput"], f"{time.perf_counter() - started:.0f}s", flush=True)
        if "tflite" in args.parts:
            results["tflite"] = bench_tflite(args, context, rows, scratch)
            print(f"tflite done {time.perf_counter() - started:.0f}s", flush=True)
        if "finetune" in args.parts:
            results["finetune"] = bench_finetune(args, scratch)
            print(results["finetune"], f"{time.perf_counter() - started:.0f}s", flush=True)
    results["seconds"] = time.perf_counter() - started
    body = render(results, args)
    if keras_hub is None:
        body += (
            "\n\nkeras-hub is not importable in this environment: its comparison rows are left "
            "out (`pip install --no-deps keras-hub==0.32.0 tokenizers` adds it without changing "
            "tensorflow, keras or numpy)."
        )
    load = os.getloadavg()[0]
    body += (
        f"\n\nWhole run: {results['seconds'] / 60:.1f} min. Load average (1 min) at the end: "
        f"{load:.1f} on {os.cpu_count()} cores (other work on the machine slows both sides of "
        "a comparison alike). Raw results: `docs/bench-results/bert.json`."
    )
    if args.no_write:
        print(body)
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(write_section("bert", "BERT-mini against keras-hub; domain-adaptive pretraining", body))


if __name__ == "__main__":
    main()
