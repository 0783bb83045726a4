"""The synthetic date-normalisation task, checked against an independent parser."""

import random
import re
from datetime import date, datetime

import pytest

from kseq.data.dates import (
    FORMATS,
    date_splits,
    expand_two_digit_year,
    generate_dates,
)
from kseq.errors import KseqError

# ---- an independent parser: every source string must have exactly one reading -------------------

_UNITS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_WORD_VALUE = {w: i + 1 for i, w in enumerate(_UNITS)}
_WORD_VALUE.update(
    {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}
    | {"seventy": 70, "eighty": 80, "ninety": 90}
)
_ORDINALS = (
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
    "eighteenth", "nineteenth",
)  # fmt: skip
_ORDINAL_VALUE = {w: i + 1 for i, w in enumerate(_ORDINALS)} | {"twentieth": 20, "thirtieth": 30}

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_CN_DIGIT = {c: i for i, c in enumerate("〇一二三四五六七八九")} | {"零": 0}
_CN_WEEKDAY = {c: i for i, c in enumerate("一二三四五六日")} | {"天": 6}

_EN_FORMATS = [
    "%d %B %Y", "%B %d %Y", "%b %d %y", "%b %d %Y", "%d %b %y", "%d %b %Y", "%d-%b-%Y",
    "%d-%b-%y", "%m/%d/%Y", "%m/%d/%y", "%d.%m.%Y", "%Y.%m.%d", "%Y/%m/%d", "%Y%m%d",
]  # fmt: skip


def _words_value(text: str) -> int:
    """'ninety-nine' -> 99, 'five' -> 5."""
    return sum(_WORD_VALUE[w] for w in text.split("-"))


def _ordinal_value(text: str) -> int:
    """'twenty-first' -> 21."""
    *tens, last = text.split("-")
    return sum(_WORD_VALUE[t] for t in tens) + _ORDINAL_VALUE[last]


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if "十" not in text:
        return _CN_DIGIT[text]
    tens, _, ones = text.partition("十")
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[ones] if ones else 0)


def _window(year: int) -> int:
    """Our two-digit year rule, written independently: 00..49 -> 20xx, 50..99 -> 19xx."""
    return year + 2000 if year < 50 else year + 1900


def parse_all(source: str) -> set[date]:
    """Every date `source` can be read as (a set, so ambiguity shows)."""
    m = re.fullmatch(r"(.+?)年(.+?)月(.+?)[日号]\s*(?:(?:星期|周)(.))?", source)
    if m:
        y, mo, d, wd = m.groups()
        year = int(y) if y.isdigit() else int("".join(str(_CN_DIGIT[c]) for c in y))
        if len(y) == 2:
            year = _window(year)
        out = date(year, _cn_number(mo), _cn_number(d))
        if wd is not None and _CN_WEEKDAY[wd] != out.weekday():
            return set()
        return {out}

    s = source.lower()
    weekday = None
    m = re.match(r"([a-z]+)(,| the| )\s*", s)
    if m and any(w.startswith(m.group(1)) and len(m.group(1)) >= 3 for w in _WEEKDAYS):
        weekday = next(i for i, w in enumerate(_WEEKDAYS) if w.startswith(m.group(1)))
        s = s[m.end() :]
        if m.group(2) == " the":
            s = "the " + s
    # spelled-out year at the end
    m = re.search(r"(nineteen|two thousand)(?: ([a-z-]+))?$", s)
    if m:
        base = 1900 if m.group(1) == "nineteen" else 2000
        s = s[: m.start()] + str(base + (_words_value(m.group(2)) if m.group(2) else 0))
    s = re.sub(r"\b((?:[a-z]+-)?[a-z]+(?:st|nd|rd|th))\b", lambda m: _ord(m.group(1)), s)
    s = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", s)
    s = re.sub(r"\bthe\b|\bof\b|,", " ", s)
    s = re.sub(r"([a-z])\.", r"\1", s)
    s = " ".join(s.split())
    out = set()
    for fmt in _EN_FORMATS:
        try:
            d = datetime.strptime(s, fmt).date()
        except ValueError:
            continue
        if "%y" in fmt:
            d = d.replace(year=_window(d.year % 100))
        out.add(d)
    if weekday is not None:
        out = {d for d in out if d.weekday() == weekday}
    return out


def _ord(word: str) -> str:
    try:
        return str(_ordinal_value(word))
    except KeyError:
        return word  # not an ordinal ("month", "north", ...)


# ---- tests ---------------------------------------------------------------------------------------


def test_generate_is_deterministic_and_seed_dependent():
    a = generate_dates(300, seed=7)
    assert a == generate_dates(300, seed=7)
    assert a != generate_dates(300, seed=8)
    assert len(a) == 300
    assert generate_dates(0, seed=1) == []


def test_every_output_parses_back_to_exactly_its_iso_date():
    pairs = generate_dates(3000, seed=0)
    for source, iso in pairs:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", iso)
        expected = date.fromisoformat(iso)  # raises for invalid dates
        assert date(1950, 1, 1) <= expected <= date(2049, 12, 31)
        assert parse_all(source) == {expected}, source


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_is_unambiguous_on_edge_dates(name):
    _, fmt = FORMATS[name]
    rng = random.Random(0)
    for d in [date(1950, 1, 1), date(1999, 3, 3), date(2000, 2, 29), date(2011, 12, 21),
              date(2049, 12, 31), date(1988, 10, 30), date(2005, 5, 5)]:  # fmt: skip
        for _ in range(3):
            source = fmt(d, rng)
            assert parse_all(source) == {d}, (name, source)
            assert parse_all(source.lower()) == {d}, (name, source)


def test_examples_from_the_task_description_are_produced():
    d = date(1999, 3, 3)
    rendered = {fmt(d, random.Random(0)) for _, fmt in FORMATS.values()}
    for example in [
        "3rd of March 1999", "Mar 3, 99", "March 3, 1999", "3 March 1999", "03/03/1999",
        "1999.3.3", "Wednesday, March 3, 1999", "1999年3月3日", "一九九九年三月三日", "99年3月3日",
        "the third of March, nineteen ninety-nine", "the 3rd of March, 1999",
    ]:  # fmt: skip
        assert example in rendered
    assert FORMATS["YY年M月D日"][1](date(2049, 1, 2), random.Random(0)) == "49年1月2日"
    assert FORMATS["M/D/YY"][1](date(1950, 1, 2), random.Random(0)) == "1/2/50"


def test_two_digit_year_rule():
    assert [expand_two_digit_year(y) for y in (0, 49, 50, 99)] == [2000, 2049, 1950, 1999]
    with pytest.raises(ValueError):
        expand_two_digit_year(100)


def test_mix_of_languages_forms_and_lengths():
    sources = [s for s, _ in generate_dates(3000, seed=1)]
    chinese = [s for s in sources if "年" in s]
    assert 0.15 < len(chinese) / len(sources) < 0.4
    assert any(re.search("[〇零一二三四五六七八九]年", s) for s in chinese)  # Chinese numerals
    assert any(re.fullmatch(r"\d\d年.*", s) for s in chinese)  # two-digit years
    assert any("星期" in s or "周" in s for s in chinese)
    assert any(s.islower() for s in sources) and any(s.isupper() for s in sources)
    lengths = sorted(len(s) for s in sources)
    assert lengths[0] <= 8 and lengths[-1] >= 55
    assert len({len(s) for s in sources}) > 40


def test_date_splits_are_disjoint_unique_and_stable():
    train, validation = date_splits(2000, 300, seed=3)
    assert (len(train), len(validation)) == (2000, 300)
    train_sources = {s for s, _ in train}
    validation_sources = {s for s, _ in validation}
    assert len(train_sources) == 2000 and len(validation_sources) == 300
    assert not train_sources & validation_sources
    assert date_splits(2000, 300, seed=3) == (train, validation)
    # the held-out set does not depend on the training size
    assert date_splits(500, 300, seed=3)[1] == validation
    assert date_splits(500, 300, seed=4)[1] != validation


def test_bad_sizes_are_user_errors():
    with pytest.raises(KseqError, match="train_size"):
        date_splits(-1, 3, seed=0)
    with pytest.raises(KseqError, match="n must be"):
        generate_dates(2.5, seed=0)
