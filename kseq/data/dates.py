"""Built-in synthetic seq2seq task: date normalisation (human-written date -> ISO 8601).

    >>> generate_dates(2, seed=0)   # doctest: +SKIP
    [('Wednesday, March 3, 1999', '1999-03-03'), ('99年3月3日', '1999-03-03')]

Dates are drawn uniformly from 1950-01-01 .. 2049-12-31 and written in one of the `FORMATS`
(English and Chinese), from 6 characters ("3/3/99") to about 70 ("Wednesday, the twenty-seventh of
September, nineteen seventy-seven"). English forms are written as-is, lower-cased or upper-cased
(75 / 15 / 10 %).

Conventions (so that every source string has exactly one reading):
    * two-digit years: 50..99 -> 1950..1999, 00..49 -> 2000..2049 (a 100-year window equal to the
      range of the task; Python's `%y` pivots at 69 instead);
    * slashes with the year last are month/day/year (US: "03/04/1999" is 1999-03-04);
      slashes or dots with the year first are year/month/day ("1999/03/04", "1999.3.4");
      dots with the year last are day.month.year ("04.03.1999" is 1999-03-04);
    * spelled-out years: 19xx "nineteen seventy-seven", 20xx "two thousand", "two thousand nine",
      "two thousand forty-nine";
    * Chinese: Arabic or Chinese digits ("一九九九年", zero written 〇 or 零), months and days in
      Chinese numerals ("十二月二十一日"), day suffix 日 or 号, optional weekday 星期X / 周X.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from kseq.errors import KseqError

FIRST_DATE = date(1950, 1, 1)
LAST_DATE = date(2049, 12, 31)
_NUM_DAYS = (LAST_DATE - FIRST_DATE).days + 1

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
MONTH_ABBR = tuple(m[:3] for m in MONTHS)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAY_ABBR = tuple(w[:3] for w in WEEKDAYS)

ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
ORDINAL_ONES = (
    "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
)  # fmt: skip
ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}

CN_DIGITS = "〇一二三四五六七八九"
CN_WEEKDAYS = "一二三四五六日"


def expand_two_digit_year(yy: int) -> int:
    """The documented two-digit year rule: 50..99 -> 19yy, 00..49 -> 20yy."""
    if not 0 <= yy <= 99:
        raise ValueError(f"two-digit year must be in 0..99; Received: {yy}")
    return 1900 + yy if yy >= 50 else 2000 + yy


def number_words(n: int) -> str:
    """0..99 in English words ("forty-nine")."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("-" + ONES[ones] if ones else "")


def ordinal_words(n: int) -> str:
    """1..31 as an English ordinal word ("twenty-first")."""
    if n < 20:
        return ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    return ORDINAL_TENS[n] if not ones else TENS[tens] + "-" + ORDINAL_ONES[ones]


def ordinal_suffix(n: int) -> str:
    """3 -> "3rd", 11 -> "11th", 22 -> "22nd"."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def year_words(y: int) -> str:
    """1999 -> "nineteen ninety-nine", 2000 -> "two thousand", 2009 -> "two thousand nine"."""
    century, rest = divmod(y, 100)
    if century == 19:
        return "nineteen " + (number_words(rest) if rest >= 10 else "oh " + ONES[rest])
    if century == 20:
        return "two thousand" + (" " + number_words(rest) if rest else "")
    raise ValueError(f"year outside 1900..2099: {y}")


def cn_number(n: int) -> str:
    """1..31 in Chinese numerals (十二, 二十一, 三十)."""
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else CN_DIGITS[tens] + "十")
    return head + (CN_DIGITS[ones] if ones else "")


def cn_year(y: int, zero: str = "〇") -> str:
    return "".join(zero if c == "0" else CN_DIGITS[int(c)] for c in str(y))


def _cn_weekday(d: date, rng: random.Random) -> str:
    wd = d.weekday()
    if rng.random() < 0.25:
        return "周" + CN_WEEKDAYS[wd]
    name = "天" if wd == 6 and rng.random() < 0.5 else CN_WEEKDAYS[wd]
    return "星期" + name


def _yy(d: date) -> str:
    return f"{d.year % 100:02d}"


_Fmt = Callable[[date, random.Random], str]


def _abbr(d: date) -> str:
    return MONTH_ABBR[d.month - 1]


def _month(d: date) -> str:
    return MONTHS[d.month - 1]


def _wd(d: date) -> str:
    return WEEKDAYS[d.weekday()]


# name -> (language, formatter). Names are documentation; the generator samples them uniformly.
FORMATS: dict[str, tuple[str, _Fmt]] = {
    "D Month YYYY": ("en", lambda d, r: f"{d.day} {_month(d)} {d.year}"),
    "Month D, YYYY": ("en", lambda d, r: f"{_month(d)} {d.day}, {d.year}"),
    "Mon D, YY": ("en", lambda d, r: f"{_abbr(d)} {d.day}, {_yy(d)}"),
    "Mon D, YYYY": ("en", lambda d, r: f"{_abbr(d)} {d.day}, {d.year}"),
    "Mon. D, YYYY": (
        "en",
        lambda d, r: f"{_abbr(d)}{'' if d.month == 5 else '.'} {d.day}, {d.year}",
    ),
    "D Mon YY": ("en", lambda d, r: f"{d.day} {_abbr(d)} {_yy(d)}"),
    "Dth of Month YYYY": ("en", lambda d, r: f"{ordinal_suffix(d.day)} of {_month(d)} {d.year}"),
    "the Dth of Month, YYYY": (
        "en",
        lambda d, r: f"the {ordinal_suffix(d.day)} of {_month(d)}, {d.year}",
    ),
    "Month Dth, YYYY": ("en", lambda d, r: f"{_month(d)} {ordinal_suffix(d.day)}, {d.year}"),
    "Month the Dth, YYYY": (
        "en",
        lambda d, r: f"{_month(d)} the {ordinal_suffix(d.day)}, {d.year}",
    ),
    "Weekday, Month D, YYYY": ("en", lambda d, r: f"{_wd(d)}, {_month(d)} {d.day}, {d.year}"),
    "Wkd, D Mon YYYY": (
        "en",
        lambda d, r: f"{WEEKDAY_ABBR[d.weekday()]}, {d.day} {_abbr(d)} {d.year}",
    ),
    "Weekday the Dth of Month, YYYY": (
        "en",
        lambda d, r: f"{_wd(d)} the {ordinal_suffix(d.day)} of {_month(d)}, {d.year}",
    ),
    "D-Mon-YYYY": ("en", lambda d, r: f"{d.day}-{_abbr(d)}-{d.year}"),
    "DD-Mon-YY": ("en", lambda d, r: f"{d.day:02d}-{_abbr(d)}-{_yy(d)}"),
    "MM/DD/YYYY": ("en", lambda d, r: f"{d.month:02d}/{d.day:02d}/{d.year}"),
    "M/D/YY": ("en", lambda d, r: f"{d.month}/{d.day}/{_yy(d)}"),
    "M/D/YYYY": ("en", lambda d, r: f"{d.month}/{d.day}/{d.year}"),
    "DD.MM.YYYY": ("en", lambda d, r: f"{d.day:02d}.{d.month:02d}.{d.year}"),
    "YYYY.M.D": ("en", lambda d, r: f"{d.year}.{d.month}.{d.day}"),
    "YYYY/MM/DD": ("en", lambda d, r: f"{d.year}/{d.month:02d}/{d.day:02d}"),
    "YYYYMMDD": ("en", lambda d, r: f"{d.year}{d.month:02d}{d.day:02d}"),
    "the ordinal of Month, year words": (
        "en",
        lambda d, r: f"the {ordinal_words(d.day)} of {_month(d)}, {year_words(d.year)}",
    ),
    "Weekday, the ordinal of Month, year words": (
        "en",
        lambda d, r: f"{_wd(d)}, the {ordinal_words(d.day)} of {_month(d)}, {year_words(d.year)}",
    ),
    "Month ordinal, YYYY": ("en", lambda d, r: f"{_month(d)} {ordinal_words(d.day)}, {d.year}"),
    "YYYY年M月D日": ("zh", lambda d, r: f"{d.year}年{d.month}月{d.day}日"),
    "YYYY年MM月DD日": ("zh", lambda d, r: f"{d.year}年{d.month:02d}月{d.day:02d}日"),
    "YY年M月D日": ("zh", lambda d, r: f"{_yy(d)}年{d.month}月{d.day}日"),
    "YYYY年M月D号": ("zh", lambda d, r: f"{d.year}年{d.month}月{d.day}号"),
    "YYYY年M月D日星期X": (
        "zh",
        lambda d, r: (
            f"{d.year}年{d.month}月{d.day}日{' ' if r.random() < 0.3 else ''}{_cn_weekday(d, r)}"
        ),
    ),
    "汉字年月日": (
        "zh",
        lambda d, r: (
            f"{cn_year(d.year, '零' if r.random() < 0.2 else '〇')}年"
            f"{cn_number(d.month)}月{cn_number(d.day)}日"
        ),
    ),
    "汉字年月日星期X": (
        "zh",
        lambda d, r: (
            f"{cn_year(d.year)}年{cn_number(d.month)}月{cn_number(d.day)}日{_cn_weekday(d, r)}"
        ),
    ),
    "YYYY年汉字月D日": ("zh", lambda d, r: f"{d.year}年{cn_number(d.month)}月{d.day}日"),
}


def _write(d: date, rng: random.Random) -> str:
    name = rng.choice(_FORMAT_NAMES)
    lang, fmt = FORMATS[name]
    text = fmt(d, rng)
    if lang == "en":
        u = rng.random()
        if u >= 0.9:
            text = text.upper()
        elif u >= 0.75:
            text = text.lower()
    return text


_FORMAT_NAMES = tuple(FORMATS)


def _pairs(rng: random.Random):
    while True:
        d = FIRST_DATE + timedelta(days=rng.randrange(_NUM_DAYS))
        yield _write(d, rng), d.isoformat()


def generate_dates(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (human-written date, "YYYY-MM-DD") pairs, a deterministic function of `seed`.

    Source strings may repeat (use `date_splits` for de-duplicated, disjoint splits).
    """
    if not isinstance(n, int) or n < 0:
        raise KseqError(f"n must be a non-negative integer; Received: n={n!r}")
    it = _pairs(random.Random(seed))
    return [next(it) for _ in range(n)]


def date_splits(
    train_size: int, validation_size: int, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, validation) with unique source strings and no source string in both.

    The validation split is drawn first, so it depends only on (`validation_size`, `seed`): changing
    the training size keeps the same held-out set.
    """
    for name, v in (("train_size", train_size), ("validation_size", validation_size)):
        if not isinstance(v, int) or v < 0:
            raise KseqError(f"{name} must be a non-negative integer; Received: {name}={v!r}")
    it = _pairs(random.Random(seed))
    seen: set[str] = set()
    splits: list[list[tuple[str, str]]] = [[], []]
    tries = 0
    limit = 20 * (train_size + validation_size) + 1000
    for split, size in ((splits[1], validation_size), (splits[0], train_size)):
        while len(split) < size:
            tries += 1
            if tries > limit:
                raise KseqError(
                    f"could not draw {train_size} + {validation_size} distinct dates; "
                    "ask for fewer examples"
                )
            src, iso = next(it)
            if src not in seen:
                seen.add(src)
                split.append((src, iso))
    return splits[0], splits[1]
