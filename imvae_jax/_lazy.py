"""Lazy package exports (PEP 562), so ``imvae --help`` and config loading never import JAX."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """``(__getattr__, __all__)`` for ``package``; ``exports`` maps a name to its submodule
    (relative, e.g. ``"schema"``, or absolute, e.g. ``"imvae_jax.losses.objective"``)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            module = exports[name]
            if not module.startswith("imvae_jax."):
                module = f"{package}.{module}"
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)
