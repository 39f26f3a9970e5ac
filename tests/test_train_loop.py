"""The training loop end to end on a tiny synthetic dataset: run folder, {latest, best}, determinism,
SIGKILL + resume, refusal of another config/dataset, NaN stop, 2 processes == 1 process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from imvae_jax.config import resolve

REPO = Path(__file__).resolve().parents[1]
TINY = (
    "model.dim=16",
    "model.num_blocks=1",
    "model.max_len=6",
    "model.pseudo_len=3",
    "data.max_len=6",
    "data.pseudo_len=3",
    "train.batch_size=32",  # a multiple of 1, 2 and 8 devices: the same global random draws
    "train.micro_batch=16",  # 2 micro-batches: resume, 2 processes and determinism cover them too
    "eval.batch_size=64",
    "train.epochs=4",
    "train.progress=false",
    "train.learning_rate=0.003",
)
TIMING_KEYS = (
    "train_seconds", "train_samples_per_s", "timed_rows", "valid_seconds", "test_seconds", "epoch_seconds", "checkpoint_seconds",
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from imvae_jax.data.schema import write_dataset
    from imvae_jax.data.synthetic import build_synthetic

    root = tmp_path_factory.mktemp("data")
    splits = build_synthetic(
        synthetic_users=300, synthetic_items_x=150, synthetic_items_y=120, num_eval_negatives=29, max_len=6, pseudo_len=3
    )
    write_dataset(splits, root / "plain")
    return random_pseudo(root / "plain", root / "tiny", seed=0)


def random_pseudo(dataset: Path, out: Path, seed: int) -> Path:
    from imvae_jax.psg.config import PSGConfig
    from imvae_jax.psg.pipeline import add_pseudo

    add_pseudo(dataset, out, PSGConfig(mode="random", top_k=3, seed=seed))
    return out


def config(dataset: Path, run_dir: Path, *extra: str):
    return resolve(None, [*TINY, f"data.dataset={dataset}", f"train.run_dir={run_dir}", *extra])


def history(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def comparable(results: dict) -> dict:
    skip = ("wall_s", "train_samples_per_s", "seconds_per_epoch", "dataset", "protocols", "resumed_from_epoch")
    return {k: v for k, v in results.items() if k not in skip} | {
        "protocols": {p: r for p, r in results["protocols"].items() if p == "valid-selected"}
    }


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """An uninterrupted 4-epoch run in this process (8 simulated devices)."""
    from imvae_jax.train.loop import run

    run_dir = tmp_path_factory.mktemp("runs") / "reference"
    results = run(config(dataset, run_dir), log=lambda _: None)
    return run_dir, results


def test_run_folder(reference):
    run_dir, results = reference
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.jsonl", "results.json", "results.md", "checkpoints"}
    records = history(run_dir)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    selects = [r["select"] for r in records]
    best = 1 + int(np.argmax(selects))
    assert results["selected_epoch"] == best
    # exactly {latest, best} checkpoints after 4 epochs
    kept = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == sorted({best, 4})
    # the selection score is the mean over domains of valid all-users NDCG@10
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["select"] == pytest.approx((last["valid/x/all/ndcg@10"] + last["valid/y/all/ndcg@10"]) / 2)
    record = results["protocols"]["valid-selected"]
    assert record["split"] == "test" and record["selected_epoch"] == best
    assert record["results"]["x"]["all"]["n"] + record["results"]["y"]["all"]["n"] == 51
    assert record["full_catalogue"]["x"]["all"]["hr@10"] is not None
    assert "authors-max" not in results["protocols"]
    text = (run_dir / "results.md").read_text()
    assert "valid-selected" in text and "| X | all |" in text and "full-catalogue" in text
    assert json.loads((run_dir / "results.json").read_text())["selected_epoch"] == best
    assert "batch_size: 32" in (run_dir / "config.yaml").read_text()
    losses = [r["train"]["loss"] for r in records]
    assert losses[-1] < losses[0]  # it learns
    # where each epoch's wall time went: training + validation fit inside it, the checkpoint after
    for r in (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()):
        assert r["valid_seconds"] > 0 and r["checkpoint_seconds"] >= 0 and "test_seconds" not in r  # no authors-max here
        assert r["train_seconds"] + r["valid_seconds"] <= r["epoch_seconds"]
    split = results["seconds_per_epoch"]
    assert set(split) == {"epoch", "train", "valid", "checkpoint"}
    raw = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert split["valid"] == pytest.approx(np.mean([r["valid_seconds"] for r in raw[1:]]))  # epoch 1 compiles


def test_same_seed_same_metrics_and_authors_max_is_labelled(reference, dataset, tmp_path):
    """A second run with the same config (plus the opt-in authors-max report, which only adds test
    evaluations) repeats the reference exactly."""
    from imvae_jax.train.loop import run

    run_dir, results = reference
    again = run(config(dataset, tmp_path / "again", "eval.report=authors-max"), log=lambda _: None)
    first, second = history(run_dir), history(tmp_path / "again")
    for a, b in zip(first, second):
        b = {k: v for k, v in b.items() if not k.startswith("authors-max-test/")}
        assert a == b
    assert comparable(results)["protocols"] == comparable(again)["protocols"]
    authors = again["protocols"]["authors-max"]
    assert authors["protocol"] == "authors-max" and "TEST" in authors["protocol_note"]
    per_epoch = [r["authors-max-test/x/all/hr@10"] for r in second]
    assert authors["results"]["x"]["all"]["hr@10"] == max(per_epoch)
    assert "AUTHORS-MAX" in (tmp_path / "again" / "results.md").read_text()
    for r in (json.loads(line) for line in (tmp_path / "again" / "metrics.jsonl").read_text().splitlines()):
        assert r["test_seconds"] > 0 and r["train_seconds"] + r["valid_seconds"] + r["test_seconds"] <= r["epoch_seconds"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "imvae_jax", "train", *args]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(reference, dataset, tmp_path):
    from imvae_jax.train.loop import run

    ref_dir, ref_results = reference
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [*TINY, "train.eval_every=1"]
    proc = subprocess.Popen(
        _cli("--dataset", str(dataset), "--run-dir", str(run_dir), *argv),
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    done = len(metrics.read_text().splitlines())
    assert 2 <= done < 4, "the run must be killed before its last epoch"
    resumed = run(config(dataset, run_dir), resume=True, log=lambda _: None)
    assert history(run_dir) == history(ref_dir)
    assert comparable(resumed) == comparable(ref_results)
    assert ref_results["resumed_from_epoch"] is None and 1 <= resumed["resumed_from_epoch"] <= done
    kept = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == sorted({ref_results["selected_epoch"], 4})


def test_resume_refuses_other_config_and_dataset(reference, dataset, tmp_path):
    from imvae_jax.train.checkpoint import CheckpointMismatch
    from imvae_jax.train.loop import RunFolderError, run

    run_dir, _ = reference
    with pytest.raises(RunFolderError, match="--resume"):
        run(config(dataset, run_dir), log=lambda _: None)
    with pytest.raises(CheckpointMismatch, match=r"different config \(train\.learning_rate"):
        run(config(dataset, run_dir, "train.learning_rate=0.1"), resume=True, log=lambda _: None)
    other = random_pseudo(dataset, tmp_path / "other", seed=1)  # other pseudo columns
    with pytest.raises(CheckpointMismatch, match="another dataset"):
        run(config(other, run_dir), resume=True, log=lambda _: None)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    """The step's loss turns NaN from step 30 (epoch 3 of 13-step epochs): the run stops naming the
    step, and the checkpoints of epochs 1-2 stay untouched."""
    import jax.numpy as jnp

    from imvae_jax.train import loop

    real = loop.make_train_step

    def poisoned(*args, **kwargs):
        step = real(*args, **kwargs)

        def wrapped(state, batch):
            state, metrics = step(state, batch)
            bad = state.step >= 30
            return state, {**metrics, "loss": jnp.where(bad, jnp.nan, metrics["loss"])}

        return wrapped

    monkeypatch.setattr(loop, "make_train_step", poisoned)
    run_dir = tmp_path / "nan"
    with pytest.raises(loop.NonFiniteLoss, match=r"at step 30 \(epoch 3\).*last good checkpoint is epoch 2"):
        loop.run(config(dataset, run_dir, "train.epochs=5"), log=lambda _: None)
    assert [r["epoch"] for r in history(run_dir)] == [1, 2]
    kept = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert max(kept) == 2
    assert not (run_dir / "results.json").exists()


def test_train_epoch_names_the_nan_step():
    import jax.numpy as jnp

    from imvae_jax.train.loop import NonFiniteLoss, train_epoch
    from imvae_jax.train.state import TrainState

    class Fake:
        def put_batch(self, batch):
            return batch

    losses = iter([1.0, 2.0, float("inf"), 3.0])
    state = TrainState(step=jnp.asarray(7), params={}, rest={}, opt_state=(), key=jnp.zeros(2, jnp.uint32))

    def step(state, batch):
        return state._replace(step=state.step + 1), {"loss": jnp.asarray(next(losses)), "rows": jnp.asarray(4.0)}

    with pytest.raises(NonFiniteLoss, match=r"at step 10 \(epoch 2\)"):
        train_epoch(state, step, [{}] * 4, Fake(), epoch=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_give_the_losses_of_one(reference, dataset, tmp_path):
    """jax.distributed over gloo: 2 processes x 1 CPU device, each feeding half of every batch."""
    ref_dir, _ = reference
    run_dir = tmp_path / "two"
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        "JAX_PLATFORMS": "cpu",
    }
    procs = [
        subprocess.Popen(
            _cli("--dataset", str(dataset), "--run-dir", str(run_dir), "--coordinator", f"localhost:{port}",
                 "--num-processes", "2", "--process-id", str(i), *TINY, "train.epochs=2", "eval.full_ranking=false"),
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=400)[0].decode() for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert "2 device(s) on 2 process(es)" in outputs[0]
    one, two = history(ref_dir)[:2], history(run_dir)  # the first 2 of the reference's 4 epochs
    assert len(two) == 2
    for a, b in zip(one, two):
        for name, value in a["train"].items():
            assert b["train"][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
        assert a["step"] == b["step"]


def test_evaluate_cli_reproduces_the_final_test(reference, capsys):
    from imvae_jax.cli import main

    run_dir, results = reference
    assert main(["evaluate", str(run_dir), "--split", "test", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["epoch"] == results["selected_epoch"]
    assert record["results"] == results["protocols"]["valid-selected"]["results"]
    assert record["full_catalogue"] == results["protocols"]["valid-selected"]["full_catalogue"]


def test_probe_cli_reproduces_the_test_and_reports_latents(reference, capsys):
    """``imvae probe``: its "model" column is the evaluated test (another code path); the
    shared-latents column is a different, user-independent evaluation; every latent reported."""
    from imvae_jax.cli import main

    run_dir, results = reference
    assert main(["probe", str(run_dir), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = results["protocols"]["valid-selected"]["results"]
    for domain, groups in expected.items():
        for group, values in groups.items():
            for metric, value in values.items():
                assert record["model"][domain][group][metric] == pytest.approx(value, abs=1e-9), (domain, group, metric)
    assert record["model"] != record["shared_latents"]
    assert set(record["latents"]) == {"z_x", "z_y", "z_a_x", "z_a_y", "z_t_x", "z_t_y", "r_x", "r_y"}
    assert all(v["kl_to_prior"] >= 0 for k, v in record["latents"].items() if not k.startswith("r_"))


def test_probe_ranks_ties_as_the_run_evaluates(reference, monkeypatch):
    """Under ``eval.tie_mode='authors'`` the probe's "model" column is the authors'-tie evaluation
    (not pessimistic ranks), and it asks for the evaluator's tie mode."""
    import dataclasses

    from imvae_jax.eval import metrics
    from imvae_jax.train import loop
    from imvae_jax.train.probe import probe
    from imvae_jax.train.restore import restore

    run_dir, _ = reference
    r = restore(run_dir)
    cfg = dataclasses.replace(r.cfg, eval=dataclasses.replace(r.cfg.eval, tie_mode="authors"))
    evaluator = loop.make_evaluator(cfg, r.splits["test"], r.graphdef, r.parallel, full_ranking=False)
    expected = evaluator(r.state.params, r.state.rest)["sampled"]
    asked, original = [], metrics.protocol_ranks
    monkeypatch.setattr(metrics, "protocol_ranks", lambda scores, tie_mode: asked.append(tie_mode) or original(scores, tie_mode))
    record = probe(r.graphdef, r.state.params, r.state.rest, evaluator, ks=tuple(cfg.eval.ks))
    assert asked and set(asked) == {"authors"}
    for domain, groups in expected.items():
        for group, values in groups.items():
            for metric, value in values.items():
                assert record["model"][domain][group][metric] == pytest.approx(value, abs=1e-9), (domain, group, metric)


def test_latent_statistics_by_hand():
    from imvae_jax.train.probe import latent_statistics

    mu = np.array([[0.0, 0.0], [2.0, 0.0]])  # std over rows: [1, 0] -> spread 0.5
    sigma = np.ones((2, 2))
    stats = latent_statistics(mu, sigma, (np.zeros((1, 2)), np.ones((1, 2))))
    # KL(N(mu, 1) || N(0, 1)) = |mu|^2 / 2: rows 0 and 2 -> mean 1
    assert stats == {"spread": 0.5, "sigma": 1.0, "spread_over_sigma": 0.5, "kl_to_prior": 1.0}
    wide = latent_statistics(mu, 2 * sigma, (np.zeros((1, 2)), np.ones((1, 2))))
    # per dim: log(1/2) + (4 + mu^2)/2 - 1/2; summed over 2 dims, mean over rows
    assert wide["kl_to_prior"] == pytest.approx(2 * (np.log(0.5) + 1.5) + 1.0)
    assert latent_statistics(mu, sigma, None)["kl_to_prior"] is None


def test_distributed_spec_from_flags_and_env(monkeypatch):
    from imvae_jax.train.distributed import resolve_spec

    for name in ("IMVAE_COORDINATOR", "JAX_COORDINATOR_ADDRESS", "IMVAE_NUM_PROCESSES", "JAX_NUM_PROCESSES",
                 "IMVAE_PROCESS_ID", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert not resolve_spec().enabled
    monkeypatch.setenv("IMVAE_COORDINATOR", "host:1234")
    monkeypatch.setenv("IMVAE_NUM_PROCESSES", "4")
    monkeypatch.setenv("IMVAE_PROCESS_ID", "2")
    spec = resolve_spec()
    assert (spec.coordinator, spec.num_processes, spec.process_id) == ("host:1234", 4, 2)
    assert resolve_spec(process_id=3).process_id == 3  # a flag wins over the environment
    with pytest.raises(ValueError, match="outside"):
        resolve_spec(process_id=4)
    monkeypatch.setenv("IMVAE_NUM_PROCESSES", "x")
    with pytest.raises(ValueError, match="IMVAE_NUM_PROCESSES"):
        resolve_spec()
