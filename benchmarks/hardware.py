"""What a benchmark ran on: one record shared by every ``bench_*.py`` script."""

from __future__ import annotations

import os
import platform
import shlex
import sys


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, where ``platform.processor()`` is empty)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """Hardware, software and the exact command, for the JSON record of a benchmark."""
    import jax

    from imvae_jax.runtime import huge_pages_active, transparent_huge_pages

    return {
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "jax_version": jax.__version__,
        "load_average_1min": os.getloadavg()[0],
        "transparent_huge_pages": transparent_huge_pages(),
        "malloc_huge_pages": huge_pages_active(),
        "command": shlex.join([os.path.basename(sys.executable), *sys.argv]),
    }
