"""`kseq` command line: parse arguments, call the API, turn KseqError into one line + exit 2."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import warnings
from pathlib import Path

import kseq
from kseq import __version__, interrupt, quiet
from kseq.data.preflight import check_data
from kseq.errors import DiskFullError, KseqError, WorkerLost
from kseq.export.request import ExportRequest
from kseq.export.static_shapes import StaticShape
from kseq.export.summary import format_report, format_reports
from kseq.init import init_spec
from kseq.spec import catalog  # noqa: F401  (registers every model type, for --part's help)
from kseq.spec.common import ModelSpec
from kseq.spec.load import load_spec, spec_schema

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _quiet_tensorflow() -> None:
    """Import TensorFlow now, with its C++ start-up chatter hidden (`kseq.quiet`)."""

    quiet.install()
    import tensorflow  # noqa: F401


def _keep_native_logs_off_stderr() -> None:
    """TensorFlow and oneDNN log from C++ straight to descriptor 2, at start-up and while training
    (`E0000 … util.cc] oneDNN supports DT_BOOL only …`). Point descriptor 2 at /dev/null and give
    Python's `sys.stderr` a descriptor of its own on the real stderr, so kseq's messages (and
    Python tracebacks under KSEQ_DEBUG) still reach the user."""
    sys.stderr.flush()
    real = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = os.fdopen(real, "w", buffering=1, errors="backslashreplace")


def _default_spec() -> str:
    """`kseq run` without SPEC: specs/default.yaml from the working directory or the checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base / "specs" / "default.yaml"
        if candidate.is_file():
            return str(candidate)

    raise KseqError("no SPEC given and no specs/default.yaml found; pass a spec file")


def _print_json(value) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_validate(args) -> int:
    spec = load_spec(args.spec, args.set)
    data = check_data(spec)  # without TensorFlow, bounded reads
    print(f"{args.spec}: ok ({spec.model.type} '{spec.name}'; {data})")
    return 0


def cmd_init(args) -> int:
    text = init_spec(
        args.data,
        args.validation,
        args.task,
        args.minutes,
        args.output,
        args.overwrite,
        pretrained=args.pretrained,
    )
    if args.output:
        print(f"kseq: spec written to {args.output}; train it with: kseq train {args.output}")
    else:
        print(text, end="")
    return 0


def cmd_schema(args) -> int:
    _print_json(spec_schema())
    return 0


def cmd_train(args) -> int:
    kseq.train(args.spec, args.output, args.set, overwrite=args.overwrite)
    return 0


def cmd_evaluate(args) -> int:
    print(json.dumps(kseq.evaluate(args.run_dir, args.data, args.set)))
    return 0


def cmd_export(args) -> int:
    static = None
    if args.static:
        batch = 1 if args.batch_size is None else args.batch_size
        static = StaticShape(batch, args.sequence_length, args.target_length)
    elif args.batch_size is not None or args.target_length is not None:
        raise KseqError("--batch-size and --target-length fix shapes of a --static export only")
    request = ExportRequest(
        format=args.format,
        quantize=args.quantize,
        part=args.part,
        output=args.output,
        sequence_length=None if args.static else args.sequence_length,
        static=static,
        io=args.io,
    )
    report = kseq.export(args.run_dir, request, overrides=args.set)
    print(format_report(report))
    return 0


def cmd_import(args) -> int:
    path = kseq.import_checkpoint(args.kind, args.directory, args.output, overwrite=args.overwrite)
    print(f"kseq: imported {args.directory} into {path}")
    return 0


def cmd_ensemble(args) -> int:
    path = kseq.ensemble(args.members, args.output, overwrite=args.overwrite, overrides=args.set)
    print(f"kseq: ensemble of {len(args.members)} runs written to {path}")
    return 0


def cmd_run(args) -> int:
    spec = args.spec or _default_spec()
    reports = kseq.run(spec, args.output, args.set, overwrite=args.overwrite)
    print("\nexport report")
    print(format_reports(reports))
    return 0


def _texts(args) -> list[str]:
    """TEXT arguments, or one text per line of standard input."""
    if args.text:
        return list(args.text)
    return [line.rstrip("\r\n") for line in sys.stdin if line.strip()]


def cmd_predict(args) -> int:
    options = {}
    if args.beam_width is not None:
        options["beam_width"] = args.beam_width
    if args.n_best is not None:
        options["n_best"] = args.n_best
    results = kseq.predict(args.run_dir, _texts(args), args.strategy, args.set, **options)
    for result in results:
        if args.format == "json":
            print(json.dumps(result, ensure_ascii=False))
        elif args.format == "tsv":  # a training file: sequence-level distillation from a model
            print(f"{result['input']}\t{result['output']}")
        elif len(result.get("n_best", ())) > 1:  # every hypothesis, best first, with its score
            print("\t".join(f"{h['output']} ({h['score']:.3f})" for h in result["n_best"]))
        else:
            print(result["output"])
    return 0


def cmd_tokenize(args) -> int:
    for ids in kseq.tokenize(args.run_dir, _texts(args), args.set):
        print(" ".join(str(i) for i in ids))
    return 0


def cmd_plot_attention(args) -> int:
    path = kseq.plot_attention(args.run_dir, args.text, args.output, args.set)
    print(f"kseq: attention plot written to {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kseq", description="Declarative Keras models: YAML spec -> train -> edge export."
    )
    parser.add_argument("--version", action="version", version=f"kseq {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, handler, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="PATH=VALUE",
            help="override a spec field (value parsed as a YAML scalar); repeatable",
        )
        return sub

    def add_overwrite(sub):
        sub.add_argument(
            "--overwrite",
            action="store_true",
            help="replace RUN_DIR if it already holds a finished run (its exports included)",
        )

    def add_training_outputs(sub):
        """`--output RUN_DIR`, `--restart` and `--overwrite` of the commands that train."""
        sub.add_argument(
            "--output",
            "-o",
            metavar="RUN_DIR",
            help="where the run goes (default: the newest unfinished run of this spec under "
            "runs/, else runs/NAME-TIME)",
        )
        add_restart(sub)
        add_overwrite(sub)

    def add_restart(sub):
        sub.add_argument(
            "--restart",
            action="append_const",
            dest="set",
            const="train.restart=true",
            help="discard an unfinished run of RUN_DIR (its checkpoint) and start afresh",
        )

    sub = command("init", cmd_init, "write a commented spec from a data file")
    sub.add_argument(
        "data", metavar="DATA", help="the training data: TSV/JSONL pairs, .npy/.npz/.csv arrays"
    )
    sub.add_argument(
        "--validation", metavar="FILE", help="held-out data (default: split off the training data)"
    )
    sub.add_argument(
        "--task",
        choices=["seq2seq", "autoencoder", "classification", "tagging", "qa", "masked_lm"],
        help="what to learn: seq2seq, autoencoder, or a BERT head: classification, tagging, qa, "
        "masked_lm (default: from the file: pairs seq2seq, arrays autoencoder)",
    )
    sub.add_argument(
        "--minutes",
        type=float,
        metavar="N",
        help="a training time budget: epochs and schedule fit into N minutes (default: none; "
        "a number of epochs with early stopping)",
    )
    sub.add_argument(
        "--from",
        dest="pretrained",
        metavar="RUN_DIR",
        help="fine-tune this BERT (a `kseq import hf-bert` or trained RUN_DIR): its architecture "
        "and tokenizer, the data's window up to its positions, the fine-tuning recipe "
        "(default: none, a model trained from scratch)",
    )
    sub.add_argument(
        "--output", "-o", metavar="SPEC", help="write the spec here (default: standard output)"
    )
    sub.add_argument("--overwrite", action="store_true", help="replace SPEC if it already exists")
    sub = command("validate", cmd_validate, "check a spec; exit 0 if valid, 2 if not")
    sub.add_argument("spec", metavar="SPEC", help="the spec file (YAML)")
    command("schema", cmd_schema, "print the JSON Schema of specs")
    sub = command("train", cmd_train, "train a spec's model into RUN_DIR")
    sub.add_argument("spec", metavar="SPEC", help="the spec file (YAML)")
    add_training_outputs(sub)
    sub = command("evaluate", cmd_evaluate, "print a trained model's metrics as JSON")
    sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run")
    sub.add_argument(
        "--data", metavar="FILE", help="evaluate on this file (default: the validation data)"
    )
    sub = command("export", cmd_export, "export RUN_DIR to SavedModel or builtin-only TFLite")
    sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run")
    sub.add_argument(
        "--format",
        choices=["saved_model", "tflite"],
        default="tflite",
        help="artifact format: saved_model or tflite (default: tflite)",
    )
    sub.add_argument(
        "--quantize",
        choices=["none", "dynamic", "float16", "int8"],
        help="TFLite weights and arithmetic: none, dynamic, float16 or int8 (full integer, "
        "calibrated on training samples) (default: the spec's export.quantize)",
    )
    sub.add_argument(
        "--io",
        choices=["float", "int8"],
        default="float",
        help="float or int8: with --quantize int8, float inputs and outputs int8 too (scales in "
        "the report) (default: float)",
    )
    sub.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        help="where the artifact goes (default: RUN_DIR/export/ with a name from the options, "
        "e.g. model_int8.tflite)",
    )
    sub.add_argument(
        "--part",
        default="full",
        help="the part of the model to export: "
        + "; ".join(f"{name}: {'|'.join(cls.parts)}" for name, cls in ModelSpec.variants.items())
        + " (default: full)",
    )
    sub.add_argument(
        "--sequence-length",
        type=int,
        metavar="N",
        help="fixed sequence length (for delegates that need static shapes); default dynamic, "
        "with --static the spec's maximum",
    )
    sub.add_argument(
        "--static",
        action="store_true",
        help="a TFLite file for GPU delegates and NPU compilers: every shape fixed, no loops "
        "(seq2seq: encode and decode_step; the app runs the decoding loop)",
    )
    sub.add_argument(
        "--batch-size", type=int, metavar="N", help="with --static: rows per call (default: 1)"
    )
    sub.add_argument(
        "--target-length",
        type=int,
        metavar="N",
        help="with --static, seq2seq: most target tokens the app decodes; sizes a Transformer's "
        "caches, an RNN's state has no such axis (default: the spec's data.max_target_length)",
    )
    sub = command("predict", cmd_predict, "decode texts (arguments, or lines on stdin)")
    sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run")
    sub.add_argument("text", metavar="TEXT", nargs="*", help="inputs (default: lines on stdin)")
    sub.add_argument(
        "--format",
        choices=["text", "json", "tsv"],
        default="text",
        help="text (one line per answer), json (ids, scores, every hypothesis) or tsv "
        "(input<TAB>answer: a training file, e.g. a teacher's outputs) (default: text)",
    )
    sub.add_argument(
        "--strategy",
        choices=["greedy", "beam", "sampling"],
        help="decoding: greedy, beam or sampling (default: the spec's decode.strategy)",
    )
    sub.add_argument(
        "--beam-width",
        type=int,
        metavar="K",
        help="hypotheses kept per step with beam search (default: the spec's decode.beam_width)",
    )
    sub.add_argument(
        "--n-best",
        type=int,
        metavar="N",
        help="answers per input with beam search, best first (default: the spec's decode.n_best)",
    )
    sub = command("tokenize", cmd_tokenize, "print the source-side ids of each text")
    sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained run")
    sub.add_argument("text", metavar="TEXT", nargs="*", help="inputs (default: lines on stdin)")
    sub = command("plot-attention", cmd_plot_attention, "draw one decoding's attention weights")
    sub.add_argument("run_dir", metavar="RUN_DIR", help="a trained rnn_seq2seq run")
    sub.add_argument("text", metavar="TEXT", help="the input to decode")
    sub.add_argument(
        "--output", "-o", metavar="FILE.png", required=True, help="the PNG file to write"
    )
    sub = command("import", cmd_import, "import a pretrained checkpoint into a RUN_DIR")
    sub.add_argument("kind", metavar="KIND", help="checkpoint kind: hf-bert")
    sub.add_argument("directory", metavar="DIR", help="the checkpoint's folder")
    sub.add_argument(
        "--output", "-o", metavar="RUN_DIR", required=True, help="the RUN_DIR to write"
    )
    add_overwrite(sub)
    sub = command(
        "ensemble", cmd_ensemble, "one model averaging several runs' next-token probabilities"
    )
    sub.add_argument(
        "members", metavar="RUN_DIR", nargs="+", help="runs of one seq2seq spec on the same data"
    )
    sub.add_argument(
        "--output", "-o", metavar="RUN_DIR", required=True, help="the RUN_DIR to write"
    )
    add_overwrite(sub)
    sub = command("run", cmd_run, "train, export SavedModel + TFLite, print the export report")
    sub.add_argument(
        "spec", metavar="SPEC", nargs="?", help="the spec file (default: specs/default.yaml)"
    )
    add_training_outputs(sub)
    return parser


# How often one `kseq train` rejoins its cluster after losing a worker before it gives up.
MOST_REJOINS = 10


def _rejoin(error) -> int:
    """A multi-worker run lost a worker: start this process again with the same command (a
    new process rejoins the cluster, which TensorFlow's collectives cannot do in place); it
    waits for the lost worker to be started again, then every worker resumes from the newest
    checkpoint they all hold."""
    rejoins = int(os.environ.get("KSEQ_REJOINS", "0") or 0)
    if rejoins >= MOST_REJOINS:
        print(f"kseq: {error}; gave up after {rejoins} rejoins", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"kseq: {error}; rejoining the cluster to resume", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ["KSEQ_REJOINS"] = str(rejoins + 1)
    os.execv(sys.executable, [sys.executable, "-m", "kseq.cli", *sys.argv[1:]])
    return EXIT_INTERNAL_ERROR  # not reached


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not os.environ.get("KSEQ_DEBUG"):
        warnings.simplefilter("ignore")  # library warnings are not for CLI users
        if args.command not in ("validate", "schema", "init"):
            _keep_native_logs_off_stderr()
    if args.command not in ("validate", "schema", "init"):  # these need no TensorFlow
        _quiet_tensorflow()

    interrupt.install()
    try:
        return args.handler(args)
    except WorkerLost as error:
        return _rejoin(error)
    except interrupt.Interrupted as stop:
        print(f"kseq: {stop.message}", file=sys.stderr)
        return stop.exit_code
    except KseqError as error:
        print(f"kseq: {error.label}{error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as error:  # unwritable output, full disk, ...: the user's environment
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            print(f"kseq: {DiskFullError(error.filename or 'a file')}", file=sys.stderr)
            return EXIT_USER_ERROR
        where = f"{error.filename}: " if error.filename else ""
        print(f"kseq: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:  # what the budget could not foresee (data, decoding, export)
        print("kseq: error: out of memory; use smaller sizes or less data", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("kseq: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    except Exception as error:  # last resort: one line, the traceback only on request
        if os.environ.get("KSEQ_DEBUG"):
            raise
        print(
            f"kseq: internal error: {type(error).__name__}: {error} (set KSEQ_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
