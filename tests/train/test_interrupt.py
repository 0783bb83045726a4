"""A signal whose exception Python swallows (inside a finalizer) still stops training."""

import gc
import signal
import sys

import pytest

from kseq import interrupt


def test_a_signal_swallowed_by_a_finalizer_is_raised_at_the_next_check(monkeypatch):
    reports = []
    monkeypatch.setattr(sys, "unraisablehook", interrupt._quiet_about_interrupts(reports.append))

    class Finalized:
        def __del__(self):
            interrupt._handle(signal.SIGTERM, None)  # the handler, run by the collector

    Finalized()
    gc.collect()
    assert reports == []  # not printed: it is raised again below
    with pytest.raises(interrupt.Interrupted) as raised:
        interrupt.raise_if_swallowed()
    assert raised.value.exit_code == 143
    interrupt.raise_if_swallowed()  # raised once only


def test_other_unraisable_reports_still_reach_the_hook():
    reports = []
    hook = interrupt._quiet_about_interrupts(reports.append)

    class Report:
        exc_value = ValueError("boom")

    hook(Report())
    assert len(reports) == 1


def test_no_check_raises_inside_a_deferred_block():
    interrupt._raised.append(signal.SIGINT)
    try:
        with interrupt.deferred():
            interrupt.raise_if_swallowed()  # a checkpoint is being written: wait
        with pytest.raises(interrupt.Interrupted):
            interrupt.raise_if_swallowed()
    finally:
        interrupt._raised.clear()
