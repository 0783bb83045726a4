"""Run kseq's code around the first import of a library, whoever makes it, without importing it.

kseq uses this to keep TensorFlow's start-up lines off stderr (`kseq.quiet`) and to tell Keras
where kseq's saved classes live (`kseq.keras_names`), while `import kseq` itself stays free of
TensorFlow so `kseq validate` starts fast.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager


class _LoaderAround(importlib.abc.Loader):
    def __init__(self, loader, around):
        self.loader = loader
        self.around = around

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with self.around(module):
            self.loader.exec_module(module)


class _FindOnce(importlib.abc.MetaPathFinder):
    """Finds `name` once, through the other finders, with its loader run inside `around`."""

    def __init__(self, name: str, around):
        self.name = name
        self.around = around

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderAround(spec.loader, self.around)
        return spec


def around_first_import(name: str, around: Callable[[object], AbstractContextManager]) -> bool:
    """Run the module `name`'s first import inside `around(module)`; False if it is imported
    already (the caller acts now) and True if the hook is (or was already) installed."""
    if name in sys.modules:
        return False
    if not any(isinstance(f, _FindOnce) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _FindOnce(name, around))
    return True
