"""Every option of every command says what it does, its choices and its default."""

from __future__ import annotations

import argparse

from helpers import run_cli

import kseq
from kseq.cli import _parser

# Actions that take no value: a flag's default is "off", said by its presence.
FLAGS = (
    argparse._StoreTrueAction,
    argparse._AppendConstAction,
    argparse._HelpAction,
    argparse._VersionAction,
)


def _commands():
    parser = _parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return subparsers.choices


def test_every_option_has_help_with_its_choices_and_default():
    missing = []
    for name, command in _commands().items():
        for action in command._actions:
            where = f"kseq {name} {'/'.join(action.option_strings) or action.dest}"
            text = action.help or ""
            if isinstance(action, argparse._HelpAction):
                continue
            if not text.strip():
                missing.append(f"{where}: no help")
                continue
            for choice in action.choices or ():
                if str(choice) not in text:
                    missing.append(f"{where}: help does not name the choice {choice!r}")
            takes_value = action.option_strings and not isinstance(action, FLAGS)
            repeatable = isinstance(action, argparse._AppendAction)
            if takes_value and not action.required and not repeatable and "default" not in text:
                missing.append(f"{where}: help does not give the default")
    assert not missing, "\n".join(missing)


def test_part_help_lists_each_family_s_parts():
    (part,) = [a for a in _commands()["export"]._actions if "--part" in a.option_strings]
    assert "autoencoder: full|encoder|decoder" in part.help
    assert "rnn_seq2seq: full;" in part.help
    assert "bert: full|encoder|text|with_tokenizer" in part.help


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kseq {kseq.__version__}"
