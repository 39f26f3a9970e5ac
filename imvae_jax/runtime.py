"""Process-level settings that make XLA's CPU backend fast: transparent huge pages for malloc,
and a compilation cache on disk (:func:`use_compilation_cache`).

XLA on the CPU allocates its temporaries afresh on every call of a jitted function. Large
blocks come from ``mmap``, so each call first-touches its working set page by page: a batch-512
IM-VAE training step takes about 330,000 minor page faults (1.3 GB in 4 KiB pages), and the
LightGCN propagation's ``[E, d]`` messages one fault per 4 KiB too. With the kernel's transparent
huge pages in ``madvise`` mode (the common default) glibc >= 2.35 can ask for 2 MiB pages with
the tunable ``glibc.malloc.hugetlb=1``, which removes almost all of those faults: measured here
(2-core AMD EPYC) 1.45x more training samples/s and 5x faster propagation
(``benchmarks/bench_train.py``, ``benchmarks/bench_psg.py``; both print the setting they ran with).

glibc reads its tunables once, when the process starts, so :func:`use_huge_pages` re-executes
the current command (same PID, same arguments) with the tunable added to ``GLIBC_TUNABLES``.
The ``imvae`` command and the benchmarks call it first thing; set ``IMVAE_HUGE_PAGES=0`` to
opt out. In a notebook, start Jupyter with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb=1"
OPT_OUT = "IMVAE_HUGE_PAGES"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def transparent_huge_pages() -> str:
    """The kernel's THP mode (``always``, ``madvise``, ``never``) or ``unknown``."""
    try:
        with open(THP_SETTING) as f:
            text = f.read()
    except OSError:
        return "unknown"
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else "unknown"


def glibc_supports_hugetlb() -> bool:
    name, version = platform.libc_ver()
    if name != "glibc":
        return False
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (2, 35)


def huge_pages_active() -> bool:
    """True when this process runs with the tunable set (or the kernel uses THP always)."""
    mode = transparent_huge_pages()
    return mode == "always" or (mode == "madvise" and TUNABLE in os.environ.get("GLIBC_TUNABLES", ""))


def use_huge_pages() -> None:
    """Re-execute this process with ``glibc.malloc.hugetlb=1`` when that would help.

    Does nothing when already set, when ``IMVAE_HUGE_PAGES=0``, off Linux/glibc >= 2.35, or
    when the kernel's THP mode is not ``madvise`` (``always`` needs no tunable; ``never``
    cannot be helped). Call it before JAX allocates anything.
    """
    if os.environ.get(OPT_OUT, "1") == "0" or TUNABLE in os.environ.get("GLIBC_TUNABLES", ""):
        return
    if sys.platform != "linux" or not glibc_supports_hugetlb() or transparent_huge_pages() != "madvise":
        return
    argv = list(getattr(sys, "orig_argv", []))
    if not argv or not sys.executable:
        return
    env = dict(os.environ)
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES", ""), TUNABLE]))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError:  # cannot re-execute (unusual interpreter set-up): run as we are
        return


# vector extensions that XLA's CPU code generation uses: two machines sold under one model name
# ("AMD EPYC") can differ by 2x in training speed with and without AVX-512
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")


def _cpu_fields(cpuinfo: str | None) -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (or of the text given); {} elsewhere."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_description(cpuinfo: str | None = None) -> dict[str, object]:
    """The CPU behind a timing: ``{"model", "mhz", "vector_extensions"}`` from ``/proc/cpuinfo``
    (or the text given), the model from :mod:`platform` elsewhere."""
    fields = _cpu_fields(cpuinfo)
    flags = set(fields.get("flags", "").split())
    mhz = fields.get("cpu MHz")
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "mhz": round(float(mhz)) if mhz else None,
        "vector_extensions": [f for f in VECTOR_FLAGS if f in flags],
    }


CACHE_ENV = "IMVAE_XLA_CACHE"


def compilation_cache_dir(cpuinfo: str | None = None) -> Path | None:
    """Where compiled XLA programs are kept: ``$IMVAE_XLA_CACHE`` (``0``: nowhere), else
    ``${XDG_CACHE_HOME:-~/.cache}/imvae-jax/xla/<arch>-<cpu>``: one folder per kind of CPU,
    since XLA's CPU programs use the host's instruction set and another CPU rejects them."""
    value = os.environ.get(CACHE_ENV, "")
    if value == "0":
        return None
    if value:
        return Path(value).expanduser()
    fields = _cpu_fields(cpuinfo)
    kind = {"model": fields.get("model name", platform.processor()), "flags": sorted(fields.get("flags", "").split())}
    tag = hashlib.sha256(json.dumps(kind, sort_keys=True).encode()).hexdigest()[:10]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imvae-jax" / "xla" / f"{platform.machine() or 'unknown'}-{tag}"


def use_compilation_cache() -> Path | None:
    """Keep compiled programs on disk (JAX's persistent compilation cache), so that a process
    compiling a program compiled before (the next seed of a table, a ``--parallel`` worker, a
    rerun) loads it: a quick table's compilation, most of its minutes on a CPU, is then skipped.
    At most 2 GiB, least recently used out first, where the ``filelock`` package is installed;
    else unbounded (the folder can be deleted at any time). Call it before the first
    compilation. Returns the folder (:func:`compilation_cache_dir`), or None when
    ``IMVAE_XLA_CACHE=0`` or the folder cannot be made (one line on stderr says so). A
    ``JAX_COMPILATION_CACHE_DIR`` of the user's own is kept as it is. Benchmarks do not call it:
    their compile times are measured cold."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    directory = compilation_cache_dir()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # JAX would warn at every compilation instead
        print(f"imvae: compiled programs not kept on disk ({CACHE_ENV}={directory}: {error})", file=sys.stderr)
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    if importlib.util.find_spec("filelock") is not None:  # JAX needs it to bound the folder
        jax.config.update("jax_compilation_cache_max_size", 2 << 30)
    return directory
