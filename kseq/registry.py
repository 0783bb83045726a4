"""A small named registry: one per kind of component (families, optimizers, losses, ...)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a `type:` name to a component. Refuses duplicates; lists names for error messages.

    Example:
        optimizers = Registry("optimizer")

        @optimizers.register("adam")
        def make_adam(spec): ...
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        hint = difflib.get_close_matches(str(name), self.names(), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return (
            f"unknown {self.kind} {name!r}{suggestion}; expected one of {', '.join(self.names())}"
        )

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._items[name]) for name in self.names()]
