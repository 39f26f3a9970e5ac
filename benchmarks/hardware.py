"""What a benchmark ran on: one record shared by every ``bench_*.py`` script."""

from __future__ import annotations

import os
import shlex
import sys


def describe() -> dict:
    """Hardware, software and the exact command, for the JSON record of a benchmark."""
    import jax

    from imvae_jax.runtime import cpu_description, huge_pages_active, transparent_huge_pages

    cpu = cpu_description()
    return {
        "processor": cpu["model"],
        "cpu_mhz": cpu["mhz"],
        "cpu_vector_extensions": cpu["vector_extensions"],
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "jax_version": jax.__version__,
        "load_average_1min": os.getloadavg()[0],
        "transparent_huge_pages": transparent_huge_pages(),
        "malloc_huge_pages": huge_pages_active(),
        # compile times are cold unless this names a folder (JAX_COMPILATION_CACHE_DIR set by hand)
        "jax_compilation_cache": jax.config.jax_compilation_cache_dir,
        "command": shlex.join([os.path.basename(sys.executable), *sys.argv]),
    }
