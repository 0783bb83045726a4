"""Sequence lengths of training data: `auto` limits, and the share a length policy may change.

A limit written for one data set silently discarded 99% of another (an example spec's
`max_target_length: 12` over targets of up to 42 characters). So limits default to `auto` (the
longest training example), and a policy that would drop or truncate more than
`data.max_dropped_share` of the training pairs stops training before it starts, naming the field,
the lengths seen and the `--set` that fixes it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from kseq.errors import KseqError

AUTO = "auto"
# The spec fields' own bound (TextPairDataSpec): an `auto` length never exceeds it.
MAX_LENGTH = 1_000_000


@dataclass
class LengthProfile:
    """How many sequences of one side have each length (`counts[n]`: sequences of n tokens)."""

    counts: np.ndarray

    @classmethod
    def of(cls, lengths: Iterable[int]) -> LengthProfile:
        values = np.fromiter(lengths, np.int64)
        return cls(np.bincount(values) if values.size else np.zeros(1, np.int64))

    def merged(self, other: LengthProfile) -> LengthProfile:
        size = max(len(self.counts), len(other.counts))
        counts = np.zeros(size, np.int64)
        counts[: len(self.counts)] += self.counts
        counts[: len(other.counts)] += other.counts
        return LengthProfile(counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def longest(self) -> int:
        nonzero = np.flatnonzero(self.counts)
        return int(nonzero[-1]) if nonzero.size else 0

    def percentile(self, share: float) -> int:
        """The smallest length that at least `share` of the sequences do not exceed."""
        if not self.total:
            return 0
        cumulative = np.cumsum(self.counts)
        return int(np.searchsorted(cumulative, share * self.total - 1e-9))

    def over(self, limit: int) -> int:
        return int(self.counts[limit + 1 :].sum())


@dataclass
class SideLengths:
    """One side's limit as given (`auto` or a number) and its training lengths."""

    field: str  # "data.max_source_length"
    noun: str  # "sources"
    given: int | str
    profile: LengthProfile
    capacity: int | None = None  # the most the model holds (a Transformer's positions)

    @property
    def limit(self) -> int:
        """The limit in force: a given number, or the longest example within the bounds."""
        if self.given != AUTO:
            return int(self.given)
        bound = min(MAX_LENGTH, self.capacity or MAX_LENGTH)
        return max(1, min(self.profile.longest, bound))

    def facts(self) -> str:
        p = self.profile
        return f"{self.noun}: longest {p.longest}, 99th percentile {p.percentile(0.99)} tokens"


def check_length_share(
    sides: list[SideLengths], changed: int, total: int, policy: str, max_share: float
) -> None:
    """Stop (KseqError) when the policy changes more than `max_share` of the training pairs;
    say in one line on stderr what it changed below that share."""
    if not changed:
        return
    over = [side for side in sides if side.profile.over(side.limit)]
    limits = " and ".join(f"{side.field}={side.limit}" for side in over)
    facts = "; ".join(side.facts() for side in over)
    fixes = " ".join(f"--set {side.field}={side.profile.longest}" for side in over)
    share = changed / total
    verb = "drop" if policy == "drop" else "truncate"
    if share > max_share:
        raise KseqError(
            f"{limits}: length policy '{policy}' would {verb} {changed:,} of {total:,} training "
            f"pairs ({share:.1%}, more than data.max_dropped_share={max_share:g}); {facts}; "
            f"{fixes} keeps them"
        )
    print(
        f"kseq: {limits}: length policy '{policy}' {verb}s {changed:,} of {total:,} training "
        f"pairs ({share:.1%}); {facts}; {fixes} keeps them",
        file=sys.stderr,
    )
