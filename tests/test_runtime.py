"""``imvae_jax.runtime``: the re-execution that turns on huge pages for malloc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from imvae_jax import runtime

SCRIPT = (
    "import os; from imvae_jax.runtime import use_huge_pages, huge_pages_active; use_huge_pages(); "
    "print(os.getpid(), os.environ.get('GLIBC_TUNABLES', ''), huge_pages_active())"
)


def run(env_extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", runtime.OPT_OUT)}
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    pid, tunables, active = out.split(" ")
    assert int(pid) == proc.pid  # exec keeps the process: a SIGKILL still reaches the run
    return [tunables, active.strip()]


@pytest.mark.skipif(
    not (sys.platform == "linux" and runtime.glibc_supports_hugetlb() and runtime.transparent_huge_pages() == "madvise"),
    reason="needs Linux, glibc >= 2.35 and THP in madvise mode",
)
def test_reexecutes_once_with_the_tunable_and_keeps_existing_ones():
    tunables, active = run({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"})
    assert tunables == "glibc.malloc.arena_max=4:" + runtime.TUNABLE
    assert active == "True"


def test_opt_out_leaves_the_process_alone():
    tunables, active = run({runtime.OPT_OUT: "0"})
    assert tunables == ""
    assert active == str(runtime.transparent_huge_pages() == "always")


def test_thp_mode_is_read_from_the_bracketed_word(tmp_path, monkeypatch):
    setting = tmp_path / "enabled"
    setting.write_text("always [madvise] never\n")
    monkeypatch.setattr(runtime, "THP_SETTING", str(setting))
    assert runtime.transparent_huge_pages() == "madvise"
    monkeypatch.setattr(runtime, "THP_SETTING", str(tmp_path / "missing"))
    assert runtime.transparent_huge_pages() == "unknown"


def test_cpu_description_reads_model_clock_and_vector_extensions():
    """From a /proc/cpuinfo text: the first processor's model and clock, and which of the vector
    extensions XLA uses it has (in a fixed order), not every flag."""
    from imvae_jax.runtime import cpu_description

    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\ncpu MHz\t\t: 3699.998\n"
        "flags\t\t: fpu sse2 avx512f avx2 fma avx512_bf16 sha_ni\n\n"
        "processor\t: 1\nmodel name\t: other\ncpu MHz\t\t: 1000.0\nflags\t\t: fpu\n"
    )
    assert cpu_description(text) == {"model": "AMD EPYC 9R14", "mhz": 3700, "vector_extensions": ["avx2", "fma", "avx512f", "avx512_bf16"]}
    bare = cpu_description("")
    assert bare["mhz"] is None and bare["vector_extensions"] == [] and bare["model"]

