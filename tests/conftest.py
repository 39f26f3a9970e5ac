"""Test set-up: 8 simulated CPU devices, strict rank promotion and a compilation cache, set before JAX starts."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

from imvae_jax.runtime import compilation_cache_dir  # noqa: E402  (standard library only: JAX not started)

REPO = Path(__file__).resolve().parents[1]

# compiled programs kept per checkout and kind of CPU, as `imvae` keeps them in ~/.cache
# (imvae_jax.runtime.use_compilation_cache): a rerun of the suite, and the worker processes it
# starts, load what an earlier run compiled; a clean clone (CI) starts empty;
# IMVAE_XLA_CACHE=0 turns it off, IMVAE_XLA_CACHE=DIR puts it there
_XLA_CACHE = compilation_cache_dir()
if _XLA_CACHE is not None:
    if not os.environ.get("IMVAE_XLA_CACHE"):
        _XLA_CACHE = REPO / ".pytest_cache" / "xla" / _XLA_CACHE.name
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_XLA_CACHE))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a ``slow`` test first, each file's own order kept: with one worker per core
    (``-n auto --dist loadfile`` in pyproject.toml) the long files start at once and the short
    ones fill in behind them, rather than a long file starting last and running alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def shared_data_dir() -> Path | None:
    """``$IMVAE_SHARED_DATA`` or ``../shared/data`` beside the repository; None if absent."""
    env = os.environ.get("IMVAE_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if path.is_dir():
            return path
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set IMVAE_SHARED_DATA or put ../shared/data beside the repo")
    return path
