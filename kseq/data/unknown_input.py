"""A warning for inputs a model reads partly as `<unk>`: its answer to them is a guess."""

from __future__ import annotations

import sys


def warn_unknown_input(tokenizer, texts, vocabulary: str = "vocabulary") -> None:
    """One stderr line per input that holds tokens `tokenizer` lacks (its `unknown_tokens`)."""
    for number, text in enumerate(texts, 1):
        unknown = tokenizer.unknown_tokens(text)
        if unknown:
            shown = ", ".join(repr(token) for token in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            print(
                f"kseq: warning: input {number} ({_clip(text)}): {shown}{more} not in the "
                f"{vocabulary} (read as unknown)",
                file=sys.stderr,
            )


def _clip(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")
