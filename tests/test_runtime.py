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


CACHE_SCRIPT = """
import collections, jax, jax.numpy as jnp
from imvae_jax.runtime import use_compilation_cache
folder = use_compilation_cache()
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # cache this tiny program too
events = collections.Counter()
jax.monitoring.register_event_listener(lambda name, **_: events.update([name]))
value = jax.jit(lambda x: jnp.tanh(x) @ x.T + 3.0)(jnp.arange(12.0).reshape(3, 4) / 7)
print(folder, events["/jax/compilation_cache/cache_hits"], events["/jax/compilation_cache/cache_misses"], float(value.sum()))
"""


def run_cached(env_extra: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", runtime.CACHE_ENV)}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", CACHE_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr  # no JAX warning at each compilation
    return out.stdout.split()


def test_a_second_process_loads_the_compiled_program_and_gets_the_same_value(tmp_path):
    """``use_compilation_cache``: the first process compiles and writes the program to the
    folder; the next one loads it (a cache hit, no miss) and computes the same value."""
    folder = tmp_path / "xla"
    first = run_cached({runtime.CACHE_ENV: str(folder)})
    assert first[0] == str(folder) and first[1] == "0" and int(first[2]) >= 1
    written = sorted(p.name for p in folder.iterdir())
    assert any(name.startswith("jit__lambda") for name in written)
    second = run_cached({runtime.CACHE_ENV: str(folder)})
    assert int(second[1]) >= 1 and second[2] == "0" and second[3] == first[3]
    assert sorted(p.name for p in folder.iterdir()) == written
    off = run_cached({runtime.CACHE_ENV: "0"})  # opted out: nothing cached, nothing read
    assert off[:3] == ["None", "0", "0"] and off[3] == first[3]
    (tmp_path / "a_file").write_text("")
    unwritable = run_cached({runtime.CACHE_ENV: str(tmp_path / "a_file" / "xla")})  # cannot be made
    assert unwritable[:3] == ["None", "0", "0"] and unwritable[3] == first[3]


def test_the_cache_folder_is_per_kind_of_cpu(tmp_path, monkeypatch):
    """One folder per CPU model and instruction set (XLA's CPU programs are built for the host);
    ``$IMVAE_XLA_CACHE`` names another, ``0`` none."""
    monkeypatch.delenv(runtime.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    avx2 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n"
    avx512 = "model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma avx512f\n"
    here = runtime.compilation_cache_dir(avx2)
    assert here.parent == tmp_path / "imvae-jax" / "xla"
    assert runtime.compilation_cache_dir(avx2) == here  # stable
    assert runtime.compilation_cache_dir(avx512) != here
    assert runtime.compilation_cache_dir(avx2.replace("EPYC", "Xeon")) != here
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "mine"))
    assert runtime.compilation_cache_dir(avx2) == tmp_path / "mine"
    monkeypatch.setenv(runtime.CACHE_ENV, "0")
    assert runtime.compilation_cache_dir(avx2) is None
