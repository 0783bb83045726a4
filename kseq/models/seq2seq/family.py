"""What the sequence-to-sequence families share: text data, tokenizers, decoding, metrics, export.

A family subclasses `Seq2SeqFamily` and supplies only `build_network` (the Keras training graph)
and `graph` (the adapter the generic in-graph decoders drive).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kseq import decoding
from kseq.data.lengths import LengthProfile
from kseq.data.pipeline import make_dataset
from kseq.data.shards import streams
from kseq.data.unknown_input import warn_unknown_input
from kseq.errors import KseqError
from kseq.models.family import Family, PreparedData
from kseq.models.seq2seq import ensemble
from kseq.models.seq2seq.app_loop_check import app_loop_check
from kseq.models.seq2seq.export import seq2seq_endpoints
from kseq.models.seq2seq.metrics import (
    decoding_task_cost,
    token_error_rate,
)
from kseq.models.seq2seq.pairs import (
    SOURCE_TOKENIZER,
    TARGET_TOKENIZER,
    Seq2SeqInfo,
    Tokenizers,
    calibration_pairs,
    check_training_lengths,
    encode_pairs,
    held_out_samples,
    length_sides,
    limited_pairs,
    pad_ids,
    read_pairs,
    strip_ids,
    tokenized_pairs,
    warn_about_unknown_tokens,
    with_lengths,
)
from kseq.models.seq2seq.static import static_seq2seq_endpoints
from kseq.models.seq2seq.stream import load_stream
from kseq.tokenizers import TextTokenizer
from kseq.tokenizers.kinds import load_tokenizer, make_tokenizer
from kseq.tokenizers.special_tokens import BOS_ID, EOS_ID
from kseq.train.components import make_loss, make_optimizer
from kseq.train.sequence_losses import MaskedTokenAccuracy


class Seq2SeqFamily(Family):
    """Base of families that map a token sequence to a token sequence."""

    # ---- what a family supplies ----------------------------------------------------------------
    def build_network(self, spec, source_vocab_size: int, target_vocab_size: int):
        raise NotImplementedError

    def network_graph(self, model, max_steps: int | None = None):
        """The `kseq.decoding.protocol.Seq2SeqGraph` adapter over one built or loaded network.

        `max_steps`: the most decoder steps the caller will run; a decoder whose state grows
        with the steps (a Transformer's caches) sizes its state by it (default: the model's).
        """
        raise NotImplementedError

    # ---- what the family does with it ----------------------------------------------------------
    def graph(self, model, max_steps: int | None = None):
        """The decoders' view of `model`: its network's graph, or an ensemble's (`kseq
        ensemble`: the members' graphs, their log-probabilities averaged at every step)."""
        parts = ensemble.members(model)
        if parts:
            return ensemble.EnsembleGraph([self.network_graph(m, max_steps) for m in parts])
        return self.network_graph(model, max_steps)

    def activation_length(self, spec) -> int:
        return max(spec.data.max_source_length, spec.data.max_target_length + 1)

    def length_capacity(self, spec) -> tuple[int | None, int | None]:
        """The longest source and target the model can hold (None: any); bounds `auto`."""
        return None, None

    # ---- tokenizers ----------------------------------------------------------------------------
    def fit_tokenizers(self, spec, pairs) -> Tokenizers:

        sides = spec.data.sides()

        def fitted(options, texts):
            tokenizer = make_tokenizer(options.type)
            tokenizer.fit(texts, vocab_size=options.vocab_size, min_count=options.min_count)
            return tokenizer

        sources = [s for s, _ in pairs]
        targets = [t for _, t in pairs]
        if sides.shared:
            shared = fitted(sides.source, sources + targets)
            return Tokenizers(shared, shared)
        return Tokenizers(fitted(sides.source, sources), fitted(sides.target, targets))

    def load_tokenizers(self, run_dir: Path) -> Tokenizers:

        assets = Path(run_dir) / "assets"
        source = load_tokenizer(assets / SOURCE_TOKENIZER)
        target_dir = assets / TARGET_TOKENIZER
        return Tokenizers(source, load_tokenizer(target_dir) if target_dir.is_dir() else source)

    def saved_tokenizers(self, run_dir: Path) -> dict[str, TextTokenizer]:
        tokenizers = self.load_tokenizers(run_dir)
        return {"source": tokenizers.source, "target": tokenizers.target}

    def save_assets(self, run_dir: Path, data: PreparedData) -> None:
        tokenizers = data.info.tokenizers
        tokenizers.source.save(Path(run_dir) / "assets" / SOURCE_TOKENIZER)
        if tokenizers.target is not tokenizers.source:
            tokenizers.target.save(Path(run_dir) / "assets" / TARGET_TOKENIZER)

    # ---- data ----------------------------------------------------------------------------------
    def load_data(self, spec, run_dir=None, data_file=None) -> PreparedData:

        data = spec.data
        if data_file is None and streams(data):
            return load_stream(self, spec, run_dir)
        train_pairs, validation_pairs = read_pairs(spec, data_file)
        tokenizers = (
            self.load_tokenizers(run_dir) if run_dir else self.fit_tokenizers(spec, train_pairs)
        )
        train_tokens = tokenized_pairs(tokenizers, train_pairs)
        sides = length_sides(
            self,
            spec,
            LengthProfile.of(len(s) for s, _ in train_tokens),
            LengthProfile.of(len(t) for _, t in train_tokens),
        )
        spec = with_lengths(spec, sides)
        data = spec.data
        if run_dir is None:
            warn_about_unknown_tokens(
                data.sides(), tokenizers, [s for s, _ in train_tokens], [t for _, t in train_tokens]
            )
        train_ids, train_counts = limited_pairs(data, train_tokens)
        if run_dir is None:
            check_training_lengths(data, sides, train_counts)
        validation_ids, validation_counts = encode_pairs(data, tokenizers, validation_pairs)
        if not train_ids or not validation_ids:
            raise KseqError("data: no training or validation pair is left after the length policy")

        def dataset(ids, shuffle):
            return make_dataset(
                [s for s, _ in ids],
                [t for _, t in ids],
                spec.train.batch_size,
                shuffle=shuffle,
                seed=spec.train.seed,
                bucketing=data.bucketing,
            )

        return PreparedData(
            spec=spec,
            train=dataset(train_ids, True),
            validation=dataset(validation_ids, False),
            samples=held_out_samples(validation_ids),
            calibration=calibration_pairs(spec, train_ids),
            info=Seq2SeqInfo(
                tokenizers=tokenizers,
                validation_pairs=[(s, t) for s, t in validation_pairs if s.strip() and t.strip()],
                train_ids=train_ids,
                validation_ids=validation_ids,
                length_counts={"train": train_counts, "validation": validation_counts},
            ),
        )

    # ---- model ---------------------------------------------------------------------------------
    def build(self, spec, data):
        tokenizers = data.info.tokenizers
        return self.build_network(spec, tokenizers.source.vocab_size, tokenizers.target.vocab_size)

    def networks(self, model) -> list:
        return ensemble.members(model) or [model]

    def compile(self, model, spec) -> None:

        loss = make_loss(
            spec.train.loss or spec.model.default_loss,
            **({"label_smoothing": spec.model.label_smoothing} if not spec.train.loss else {}),
        )
        model.compile(
            optimizer=make_optimizer(spec.train.optimizer),
            loss=loss,
            metrics=[MaskedTokenAccuracy()],
        )

    # ---- decoding ------------------------------------------------------------------------------
    def decoder_fn(self, model, spec, strategy: str | None = None, **overrides):
        """A tf.function: source_ids (B, S) int32 -> dict (target_ids, and scores/attention)."""
        import tensorflow as tf

        graph = self.graph(model)
        options = {**vars(spec.decode), **overrides}
        strategy = strategy or options["strategy"]
        max_length = spec.data.max_target_length
        ids = {"bos_id": BOS_ID, "eos_id": EOS_ID}

        if strategy not in decoding.STRATEGIES:
            expected = ", ".join(decoding.STRATEGIES)
            raise KseqError(f"unknown decoding strategy {strategy!r}; expected {expected}")
        decoder, option_names = decoding.STRATEGIES[strategy]
        settings = {name: options[name] for name in option_names}

        def run(source_ids):
            return decoder(graph, source_ids, max_length, **settings, **ids)

        signature = [tf.TensorSpec((None, None), tf.int32, name="source_ids")]
        return tf.function(run, input_signature=signature, reduce_retracing=True)

    def decode_ids(self, model, spec, source_rows, strategy=None, batch_size=64, **overrides):
        """Decode id lists in batches; returns a list of (B-row) dicts of numpy arrays."""
        fn = self.decoder_fn(model, spec, strategy, **overrides)
        results = []
        for start in range(0, len(source_rows), batch_size):
            chunk = source_rows[start : start + batch_size]
            batch = pad_ids([row[: spec.data.max_source_length] for row in chunk])
            out = {k: np.asarray(v) for k, v in fn(batch).items()}
            results += [{k: v[i] for k, v in out.items()} for i in range(len(batch))]
        return results

    def best_ids(self, result) -> list[int]:
        ids = result["target_ids"]
        return strip_ids(ids[0] if ids.ndim == 2 else ids)  # beam: (n_best, L)

    # ---- evaluation and prediction -------------------------------------------------------------
    def evaluate(self, model, spec, data) -> dict:
        import sacrebleu

        metrics = model.evaluate(data.validation, return_dict=True, verbose=0)
        pairs = data.info.validation_pairs
        tokenizers = data.info.tokenizers
        sources = tokenizers.source.encode([s for s, _ in pairs])
        sources = [s[: spec.data.max_source_length] or [1] for s in sources]
        hypotheses = [
            tokenizers.target.decode(self.best_ids(r))
            for r in self.decode_ids(model, spec, sources)
        ]
        references = [t for _, t in pairs]
        exact = np.mean([h == r for h, r in zip(hypotheses, references, strict=True)])
        # Character BLEU for character-level tasks (an ISO date is one 13a token).
        style = "char" if spec.data.sides().target.type == "char" else "13a"
        bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=style)
        return {
            "loss": float(metrics["loss"]),
            "token_accuracy": float(metrics["token_accuracy"]),
            "exact_match": float(exact),
            "bleu": round(float(bleu.score), 4),
            # Both sides re-encoded from text, so two spellings of one output count as equal.
            "token_error_rate": token_error_rate(
                tokenizers.target.encode(hypotheses), tokenizers.target.encode(references)
            ),
            "examples": len(pairs),
        }

    def predict(
        self, model, spec, run_dir, texts, strategy=None, tokenizers=None, **overrides
    ) -> list[dict]:
        tokenizers = tokenizers or self.load_tokenizers(run_dir)
        warn_unknown_input(tokenizers.source, texts, "source vocabulary")
        sources = [ids[: spec.data.max_source_length] for ids in tokenizers.source.encode(texts)]
        rows = [ids or [1] for ids in sources]  # an empty text decodes from a lone unk
        results = self.decode_ids(model, spec, rows, strategy, **overrides)
        out = []
        for text, ids, result in zip(texts, sources, results, strict=True):
            best = self.best_ids(result)
            item = {
                "input": text,
                "output": tokenizers.target.decode(best),
                "source_ids": ids,
                "output_ids": best,
            }
            if result["target_ids"].ndim == 2:  # beam n-best
                item["n_best"] = [
                    {"output": tokenizers.target.decode(strip_ids(row)), "score": float(score)}
                    for row, score in zip(result["target_ids"], result["scores"], strict=True)
                ]
            out.append(item)
        return out

    def tokenize(self, run_dir, texts) -> list[list[int]]:
        return self.load_tokenizers(run_dir).source.encode(texts)

    def attention(self, model, spec, run_dir, text):
        """(source tokens, output tokens, weights (T, S)) of the greedy decoding of one text."""
        tokenizers = self.load_tokenizers(run_dir)
        source = tokenizers.source.encode([text])[0][: spec.data.max_source_length] or [1]
        result = self.decode_ids(model, spec, [source], "greedy")[0]
        output = self.best_ids(result)
        weights = np.asarray(result["attention"])[: len(output) + 1, : len(source)]
        source_tokens = [tokenizers.source.id_to_token(i) for i in source]
        output_tokens = [tokenizers.target.id_to_token(i) for i in output] + ["</s>"]
        return source_tokens, output_tokens[: len(weights)], weights

    # ---- export --------------------------------------------------------------------------------
    static_lengths = ("sequence_length", "target_length")
    int8_io_needs_static = (
        "with int8 outputs, LiteRT's CompiledModel fails once a call has fewer rows than an "
        "earlier one (measured: 'Custom allocation is too small' on encode's int8 source_mask); "
        "a static file never changes shape"
    )

    def endpoints(self, model, spec, data, part, static=None):
        if static is not None:  # a `StaticShape`: fixed-size signatures for accelerators
            return static_seq2seq_endpoints(self, model, spec, data, static)

        return seq2seq_endpoints(self, model, spec, data)

    def app_loop_check(self, model, spec, data, static=None):
        if static is None and ensemble.members(model):
            return None  # its .tflite holds no app-loop signatures (see `seq2seq_endpoints`)

        return app_loop_check(self, model, spec, data, static)

    def trackables(self, model, data) -> list:
        tokenizers = data.info.tokenizers
        return [model, tokenizers.source, tokenizers.target]  # lookup tables of `translate`

    def quality(self, spec, data, part):
        targets = [t for _, t in data.info.validation_ids[: len(data.samples["source_ids"])]]

        def task_metric(reference, candidate):
            """Task metric of `generate`: exact match and token accuracy against the true
            targets for both artifacts, and how far the export's ids follow Keras's (the task
            cost of quantizing)."""
            ref, got = reference.get("target_ids"), candidate.get("target_ids")
            if ref is None:
                return {}
            rows = [strip_ids(r) for r in ref], [strip_ids(r) for r in got]
            return decoding_task_cost(targets[: len(ref)], *rows)

        return task_metric
