"""Train an experiment's pending runs in worker processes (``imvae reproduce TABLE --parallel N``).

One IM-VAE run uses a fraction of a GPU (about 5 % of an H200's matmul peak, README
"Benchmarks") or one CPU core well, so a table trains fastest as several runs at once. The
parent prepares every dataset and PSG output first (one process writes the shared cache), then
keeps ``N`` workers busy, each ``python -m experiments.TABLE --methods M --only-seeds S`` for one
run, with its log in ``<out>/workers/<run id>.log``. Workers share the run store
(``<cache>/train``), so the parent's usual pass afterwards reuses every run and renders the table.

Each worker gets an equal share of this process's CPU cores (it pins itself at start,
``$IMVAE_WORKER_CORES``, where the OS allows it) and,
on a GPU, memory on demand (``XLA_PYTHON_CLIENT_PREALLOCATE=false``: without it the first worker
would take 75 % of the GPU). A worker that fails leaves its run resumable; the others go on, and
the parent then raises naming every failed run and its log. Interrupting the parent (Ctrl-C,
SIGINT, or SIGTERM: ``kill PID``) stops the workers (their runs resume from their last checkpoint
on the next call). Note that a command started with ``&`` from a non-interactive shell ignores
SIGINT (the shell's rule for background jobs; ``timeout --signal=INT`` restores it): stop such a
command with SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from experiments import engine
from experiments.runner import is_finished
from experiments.spec import Experiment, Run


def pending(experiment: Experiment, runs: Sequence[Run], out_dir: Path, cache_dir: Path, data_root: Path) -> list[Run]:
    """The trained runs of ``runs`` not finished yet (model-free scorers take seconds: not here)."""
    return [run for run in runs if not run.method.scorer and not is_finished(experiment, run, out_dir, cache_dir, data_root)]


def prepare_inputs(
    experiment: Experiment, runs: Sequence[Run], cache_dir: Path, data_root: Path, log: Callable[[str], None] = print
) -> None:
    """Build every dataset and PSG output ``runs`` need, one at a time, before any worker starts."""
    for run in runs:
        dataset = engine.prepare(run.dataset, run.data_overrides(), data_root, cache_dir, rows=experiment.rows)
        engine.pseudo(dataset, run.psg_overrides(), cache_dir, log)


CORES_VARIABLE = "IMVAE_WORKER_CORES"  # "0,1": the CPU cores a worker pins itself to


def pin_from_env(environ: dict[str, str] | None = None) -> set[int] | None:
    """Pin this process to the cores in ``$IMVAE_WORKER_CORES`` (set by :func:`train_in_workers`
    for its workers); the cores pinned, or None when unset or the OS cannot pin."""
    text = (os.environ if environ is None else environ).get(CORES_VARIABLE, "").strip()
    if not text or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        cores = {int(c) for c in text.split(",") if c.strip()}
    except ValueError:
        raise ValueError(f"${CORES_VARIABLE}: expected comma-separated core numbers, got {text!r}") from None
    os.sched_setaffinity(0, cores)
    return cores


def core_shares(workers: int, cores: Sequence[int] | None = None) -> list[set[int] | None]:
    """The CPU cores of each worker: ``cores`` (default: this process's) cut into ``workers``
    equal, disjoint shares; None each (no pinning) when there are fewer cores than workers or the
    OS cannot pin."""
    if cores is None:
        if not hasattr(os, "sched_getaffinity"):
            return [None] * workers
        cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // workers
    if share == 0:
        return [None] * workers
    return [set(cores[i * share:(i + 1) * share]) for i in range(workers)]


def last_epoch_line(path: Path, tail_bytes: int = 4096) -> str | None:
    """The last ``epoch N: ...`` report in a worker's log (progress bars and all), or None."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - tail_bytes))
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    found = re.findall(r"epoch \d+: [^\r\n]*?(?:samples/s|$)", text, flags=re.MULTILINE)
    return found[-1].strip() if found else None


def worker_command(
    name: str,
    experiment: Experiment,
    run: Run,
    out: Path,
    sets: Sequence[str] = (),
    data_root: Path | None = None,
    cache_dir: Path | None = None,
) -> list[str]:
    """The command line that trains exactly ``run`` of experiment ``name`` into the shared store."""
    command = [sys.executable, "-m", f"experiments.{name}", "--seeds", str(experiment.seeds),
               "--datasets", run.dataset.name, "--methods", run.method.name, "--only-seeds", str(run.seed),
               "--out", str(out)]
    if experiment.quick:
        command.append("--quick")
    for item in sets:
        command += ["--set", item]
    if data_root is not None:
        command += ["--data-root", str(data_root)]
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    return command


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def train_in_workers(
    name: str,
    experiment: Experiment,
    runs: Sequence[Run],
    workers: int,
    out_dir: Path,
    cache_dir: Path,
    data_root: Path,
    sets: Sequence[str] = (),
    log: Callable[[str], None] = print,
    poll_s: float = 1.0,
    report_s: float = 300.0,
) -> list[dict]:
    """Train the pending runs of ``runs`` in at most ``workers`` processes at a time.

    Returns one entry per worker: ``{'run_id', 'returncode', 'seconds', 'log'}``. Raises
    RuntimeError naming each failed run and its log once every worker has ended.
    Every ``report_s`` seconds each running worker's last epoch line is logged.
    """
    if workers < 1:
        raise ValueError(f"--parallel: expected a number of workers >= 1, got {workers}")
    todo = pending(experiment, runs, out_dir, cache_dir, data_root)
    if not todo:
        log(f"{name}: --parallel {workers}: every trained run is finished; nothing to start")
        return []
    prepare_inputs(experiment, todo, cache_dir, data_root, log)
    shares = core_shares(workers)
    root = str(Path(__file__).resolve().parents[1])  # the folder holding ``experiments``, from any cwd
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    logs = out_dir / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    log(f"{name}: {len(todo)} runs to train in {min(workers, len(todo))} worker processes; logs in {logs}")
    queue, live, done = list(todo), {}, []
    started = reported = time.perf_counter()
    # SIGTERM (``kill PID``) stops the workers as Ctrl-C does, instead of leaving them running
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    try:
        while queue or live:
            for slot in range(workers):
                if slot in live or not queue:
                    continue
                run = queue.pop(0)
                path = logs / f"{run.run_id}.log"
                command = worker_command(name, experiment, run, logs / run.run_id, sets, data_root, cache_dir)
                cores = shares[slot]
                handle = path.open("w")
                handle.write(" ".join(command) + "\n")
                handle.flush()
                # the worker pins itself (pin_from_env): no Python code between fork and exec in
                # this multithreaded (JAX) process
                worker_env = {**env, CORES_VARIABLE: ",".join(map(str, sorted(cores)))} if cores else env
                process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=worker_env)
                live[slot] = (run, process, time.perf_counter(), path, handle)
                log(f"{name}: started {run.run_id} (worker {slot}, cores {sorted(cores) if cores else 'any'})")
            time.sleep(poll_s)
            if time.perf_counter() - reported >= report_s:
                reported = time.perf_counter()
                for run, _, t0, path, _ in live.values():
                    log(f"{name}: {run.run_id} ({time.perf_counter() - t0:.0f} s): {last_epoch_line(path) or 'starting'}")
            for slot, (run, process, t0, path, handle) in list(live.items()):
                if process.poll() is None:
                    continue
                handle.close()
                del live[slot]
                entry = {"run_id": run.run_id, "returncode": process.returncode,
                         "seconds": round(time.perf_counter() - t0, 1), "log": str(path)}
                done.append(entry)
                left = len(todo) - len(done)
                state = "finished" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
                log(f"{name}: {run.run_id} {state} in {entry['seconds']:.0f} s; {left} to go "
                    f"({time.perf_counter() - started:.0f} s so far)")
    except KeyboardInterrupt:
        log(f"{name}: interrupted: stopping {len(live)} worker(s); their runs resume from their last checkpoints")
        raise
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
        for run, process, _, _, handle in live.values():  # interrupted: stop the workers (runs resume later)
            process.terminate()
            process.wait()
            handle.close()
    (logs / "workers.json").write_text(json.dumps(done, indent=1))
    failed = [e for e in done if e["returncode"] != 0]
    if failed:
        lines = "; ".join(f"{e['run_id']} (exit {e['returncode']}, log {e['log']})" for e in failed)
        raise RuntimeError(f"{name}: {len(failed)} of {len(done)} worker(s) failed: {lines}")
    return done
