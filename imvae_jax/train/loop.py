"""The experiment loop: epochs of jitted steps, validation, checkpoints, the final test, the run folder.

``run(cfg)`` trains ``cfg.model`` on the prepared dataset ``cfg.data.dataset`` and writes
``cfg.train.run_dir``::

    config.yaml       the resolved config
    metrics.jsonl     one record per validated epoch (train means, valid metrics, throughput)
    results.json      {"protocols": {"valid-selected": record, ["authors-max": record]}, ...}
    results.md        the same as Markdown tables (domains x groups x metrics)
    checkpoints/      Orbax: latest and best (by valid NDCG@10), config + dataset fingerprints beside

Protocol: the checkpoint is selected (and early stopping decided) on the validation split only,
by the mean over domains of the ``all`` group's NDCG@10; the test split is evaluated once, with
the selected checkpoint. ``eval.report='authors-max'`` additionally evaluates test after every
epoch and reports each metric's maximum (the authors' reporting), labelled as such everywhere.

Determinism: data order and negatives are a function of (seed, epoch) (the batcher), model
randomness of (seed, step); so a resumed run (from an epoch boundary) repeats an uninterrupted
one exactly, and one config + seed gives the same metrics on the same hardware. A non-finite
loss stops the run with :class:`NonFiniteLoss` naming the step; nothing is saved after it, so
the last checkpoint on disk is the last good one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from imvae_jax.train.checkpoint import Checkpoints, check_compatible
from imvae_jax.train.evaluate import SplitEvaluator, epoch_metric
from imvae_jax.train.state import TrainState, create, make_optimizer, num_params
from imvae_jax.train.step import Parallel, make_train_step, micro_batch_count

SELECT_METRIC = "ndcg@10"


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or inf; the message names the step and the last good checkpoint."""


class RunFolderError(RuntimeError):
    """The run folder holds a run that this call would overwrite, or lacks one to resume."""


# --------------------------------------------------------------------------------- building
def load_dataset(cfg: Any) -> dict[str, Any]:
    """The prepared ``{train, valid, test}`` splits of ``cfg.data.dataset``."""
    from imvae_jax.data.schema import read_dataset

    if not cfg.data.dataset:
        raise ValueError("no dataset: set data.dataset (or --dataset) to a prepared dataset folder (`imvae prepare`)")
    splits = read_dataset(cfg.data.dataset)
    missing = {"train", "valid", "test"} - set(splits)
    if missing:
        raise ValueError(f"{cfg.data.dataset}: missing split(s) {sorted(missing)}")
    return splits


def check_shapes(cfg: Any) -> None:
    if cfg.data.max_len != cfg.model.max_len or cfg.data.pseudo_len != cfg.model.pseudo_len:
        raise ValueError(
            f"data.max_len/pseudo_len ({cfg.data.max_len}/{cfg.data.pseudo_len}) must equal model.max_len/"
            f"pseudo_len ({cfg.model.max_len}/{cfg.model.pseudo_len}): set both (batches are cut to data's, "
            "the model's position tables sized by model's)"
        )


def model_factory(cfg: Any, split: Any) -> Callable[[], Any]:
    """A thunk building ``cfg.model`` for the dataset of ``split`` (seeded by ``train.seed``)."""
    from imvae_jax.model.imvae import build_model

    n_x, n_y = split.n_items
    return lambda: build_model(
        cfg.model,
        n_items_x=n_x,
        n_items_y=n_y,
        seed=cfg.train.seed,
        source_ids_x=split.meta.get("item_ids_x"),
        source_ids_y=split.meta.get("item_ids_y"),
    )


def make_evaluator(cfg: Any, split: Any, graphdef: Any, parallel: Parallel, full_ranking: bool) -> SplitEvaluator:
    return SplitEvaluator(
        split,
        graphdef,
        parallel,
        batch_size=parallel.padded_size(cfg.eval.batch_size),
        max_len=cfg.data.max_len,
        pseudo_len=cfg.data.pseudo_len,
        ks=tuple(cfg.eval.ks),
        tie_mode=cfg.eval.tie_mode,
        full_ranking=full_ranking,
        chunk_size=cfg.eval.full_ranking_chunk,
        seed=cfg.train.seed,
    )


def abstract_state(state: TrainState, parallel: Parallel) -> TrainState:
    """Restore target: the state's shapes and dtypes with the replicated sharding."""
    return parallel.abstract(state)


# --------------------------------------------------------------------------------- training
@dataclasses.dataclass
class EpochStats:
    steps: int
    rows: int
    seconds: float  # wall time of the timed steps
    means: dict[str, float]
    timed_rows: int  # rows of the timed steps (all but the first with warmup)


def _progress(total: int | None, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="row", dynamic_ncols=True, leave=False, mininterval=1.0)


def train_epoch(
    state: TrainState,
    step_fn: Callable,
    batches: Any,
    parallel: Parallel,
    *,
    epoch: int,
    max_steps: int = 0,
    bar: Any = None,
    warmup: bool = False,
) -> tuple[TrainState, EpochStats]:
    """One pass over ``batches``. Step t's metrics are read after step t+1 is dispatched, so the
    host prepares data while the devices compute. ``warmup``: time from the end of the first step
    (compilation excluded from ``seconds``/``timed_rows``). Raises :class:`NonFiniteLoss` (step named)."""
    sums: dict[str, float] = {}
    steps = rows = 0
    pending: tuple[int, Any] | None = None
    started = time.perf_counter()

    def read(step_index: int, metrics: Any) -> None:
        nonlocal rows
        values = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not math.isfinite(values["loss"]):
            raise NonFiniteLoss(f"non-finite loss ({values['loss']}) at step {step_index} (epoch {epoch})")
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        rows += int(values["rows"])
        if bar is not None:
            bar.update(int(values["rows"]))
            elapsed = time.perf_counter() - started
            bar.set_postfix(loss=f"{values['loss']:.4f}", rows_s=f"{rows / max(elapsed, 1e-9):.0f}", refresh=False)

    first_step = int(jax.device_get(state.step))
    untimed_rows = 0
    for i, batch in enumerate(batches):
        if max_steps and i >= max_steps:
            break
        state, metrics = step_fn(state, parallel.put_batch(batch))
        if pending is not None:
            read(*pending)
        pending = (first_step + i + 1, metrics)  # 1-based number of the step just taken
        steps += 1
        if warmup and i == 0:  # leave compilation out of the throughput
            read(*pending)
            pending = None
            untimed_rows = rows
            started = time.perf_counter()
    if pending is not None:
        read(*pending)
    seconds = time.perf_counter() - started
    means = {k: v / max(steps, 1) for k, v in sums.items() if k != "rows"}
    return state, EpochStats(steps=steps, rows=rows, seconds=seconds, means=means, timed_rows=rows - untimed_rows)


# --------------------------------------------------------------------------------- the run
class RunFiles:
    """The run folder's text files (written by process 0 only)."""

    def __init__(self, run_dir: Path, write: bool):
        self.run_dir, self.write = run_dir, write
        if write:
            run_dir.mkdir(parents=True, exist_ok=True)

    def config(self, cfg: Any) -> None:
        from imvae_jax.config import save

        if self.write:
            save(cfg, self.run_dir / "config.yaml")

    def metrics(self, history: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl from the history (after a resume it matches the checkpoint)."""
        if self.write:
            text = "".join(json.dumps(r) + "\n" for r in history)
            tmp = self.run_dir / "metrics.jsonl.tmp"
            tmp.write_text(text)
            tmp.replace(self.run_dir / "metrics.jsonl")

    def results(self, results: dict[str, Any], markdown: str) -> None:
        if self.write:
            (self.run_dir / "results.json").write_text(json.dumps(results, indent=1))
            (self.run_dir / "results.md").write_text(markdown)


def results_markdown(results: dict[str, Any]) -> str:
    from imvae_jax.eval.report import markdown_table

    parts = []
    for protocol, record in results["protocols"].items():
        parts.append(markdown_table(record["results"], protocol, title=f"Test, sampled (target + {record['negatives']} negatives)"))
        if record.get("full_catalogue"):
            parts.append(markdown_table(record["full_catalogue"], protocol, title="Test, full-catalogue ranking (history masked)"))
    if "reference" in results:
        for name, record in results["reference"].items():
            parts.append(markdown_table(record["results"], record["protocol"], title=f"Reference: {name}"))
    return "\n".join(parts)


SPLIT_KEYS = ("epoch", "train", "valid", "test", "checkpoint")


def epoch_split(history: list[dict[str, Any]]) -> dict[str, float]:
    """Mean seconds per epoch of each part (``{epoch, train, valid, test, checkpoint}``) over the
    epochs that recorded it, the first of them (compilation) left out when there are others;
    parts no epoch recorded are absent."""
    out = {}
    for key in SPLIT_KEYS:
        values = [r[f"{key}_seconds"] for r in history if f"{key}_seconds" in r]
        if len(values) > 1:
            values = values[1:]
        if values:
            out[key] = sum(values) / len(values)
    return out


def _flat(prefix: str, result: dict[str, Any], metrics: tuple[str, ...] | None = None) -> dict[str, Any]:
    from imvae_jax.eval.report import flatten

    flat = flatten(result, prefix)
    if metrics is None:
        return flat
    return {k: v for k, v in flat.items() if k.rsplit("/", 1)[-1] in metrics}


def run(
    cfg: Any,
    *,
    resume: bool = False,
    devices: list[jax.Device] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and evaluate ``cfg``; returns what results.json holds. See the module docstring."""
    from imvae_jax.config import to_dict
    from imvae_jax.eval.report import authors_max, to_json
    from imvae_jax.losses.objective import make_objective

    wall_start = time.perf_counter()
    check_shapes(cfg)
    main = jax.process_index() == 0
    log = log if main else (lambda _msg: None)
    splits = load_dataset(cfg)
    fingerprints = {name: split.fingerprint for name, split in sorted(splits.items())}
    config_dict = to_dict(cfg)
    run_dir = Path(cfg.train.run_dir)
    files = RunFiles(run_dir, write=main)
    platform = (devices or jax.devices())[0].platform
    parallel = Parallel(devices, micro_batch_count(cfg.train.batch_size, cfg.train.micro_batch, platform))
    train_split = splits["train"]
    if "pseudo_x" not in train_split.table.column_names and cfg.model.variant != "sasrec":
        log("note: the dataset has no pseudo_x/pseudo_y columns (run `imvae psg`); pseudo inputs are empty")

    tx = make_optimizer(cfg.train)
    objective = make_objective(cfg.loss)
    graphdef, host_state = create(model_factory(cfg, train_split), tx, cfg.train.seed)
    state = parallel.put_replicated(host_state)
    del host_state
    step_fn = make_train_step(graphdef, objective, tx, parallel)

    checkpoints = Checkpoints(run_dir / "checkpoints", async_save=cfg.train.async_checkpointing)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    latest = checkpoints.latest_epoch()
    if latest is not None and not resume:
        raise RunFolderError(f"{run_dir} already holds checkpoints (epoch {latest}): pass --resume, or a new --run-dir")
    if resume and latest is not None:
        where = f"{run_dir / 'checkpoints'} (epoch {latest})"
        check_compatible(checkpoints.read_meta(latest), config_dict, fingerprints, where)
        state, meta = checkpoints.restore(latest, abstract_state(state, parallel))
        history = list(meta["history"])
        start_epoch = latest + 1
        log(f"resumed from {where}, step {int(jax.device_get(state.step))}")
    elif resume:
        log(f"--resume: no checkpoint in {run_dir / 'checkpoints'}, starting from scratch")
    files.config(cfg)
    files.metrics(history)

    from imvae_jax.data.batches import Batcher

    batcher = Batcher(
        train_split,
        parallel.padded_size(cfg.train.batch_size),
        max_len=cfg.data.max_len,
        pseudo_len=cfg.data.pseudo_len,
        num_negatives=cfg.data.num_train_negatives,
        shuffle=True,
        seed=cfg.train.seed,
        cold_start_rate=cfg.data.train_cold_start_rate,
    )
    valid_eval = make_evaluator(cfg, splits["valid"], graphdef, parallel, full_ranking=False)
    authors = cfg.eval.report == "authors-max"
    test_sampled = make_evaluator(cfg, splits["test"], graphdef, parallel, full_ranking=False) if authors else None
    steps_per_epoch = min(len(batcher), cfg.train.max_steps_per_epoch or len(batcher))
    rows_per_epoch = len(train_split) if steps_per_epoch == len(batcher) else steps_per_epoch * cfg.train.batch_size
    log(
        f"{cfg.model.variant} model, {num_params(state.params):,} parameters; {len(train_split):,} training rows, "
        f"{steps_per_epoch} steps/epoch of {cfg.train.batch_size}"
        + (f" in {parallel.micro_batches} micro-batches" if parallel.micro_batches > 1 else "")
        + f"; {parallel.n_devices} device(s) on {jax.process_count()} process(es) ({platform})"
    )

    best, since_best = -math.inf, 0
    for r in history:  # replay the early-stopping counter of a resumed run
        since_best = 0 if r["select"] > best else since_best + 1
        best = max(best, r["select"])
    train_rows = sum(r["timed_rows"] for r in history)
    train_seconds = sum(r["train_seconds"] for r in history)
    try:
        for epoch in range(start_epoch, cfg.train.epochs + 1):
            if cfg.train.patience and since_best >= cfg.train.patience:
                log(f"early stop: no better validation {SELECT_METRIC} for {since_best} validations")
                break
            bar = _progress(rows_per_epoch, f"epoch {epoch}/{cfg.train.epochs}", cfg.train.progress and main)
            epoch_started = time.perf_counter()
            try:
                state, stats = train_epoch(
                    state, step_fn, batcher.epoch(epoch), parallel,
                    epoch=epoch, max_steps=cfg.train.max_steps_per_epoch, bar=bar, warmup=epoch == start_epoch,
                )
            finally:
                if bar is not None:
                    bar.close()
            train_rows += stats.timed_rows
            train_seconds += stats.seconds
            validate = epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs
            if not validate:
                continue
            clock = time.perf_counter()
            valid = valid_eval(state.params, state.rest)["sampled"]
            valid_seconds = time.perf_counter() - clock
            select = epoch_metric(valid, SELECT_METRIC)
            record: dict[str, Any] = {
                "epoch": epoch,
                "step": int(jax.device_get(state.step)),
                "train": stats.means,
                "train_rows": stats.rows,
                "timed_rows": stats.timed_rows,  # rows of the timed steps (compilation left out)
                "train_seconds": stats.seconds,
                "train_samples_per_s": stats.timed_rows / max(stats.seconds, 1e-9),
                "select": select,
                "valid_seconds": valid_seconds,  # the validation pass (metrics on the host included)
                **_flat("valid", valid),
            }
            if test_sampled is not None:  # authors-max: test after every epoch (labelled)
                clock = time.perf_counter()
                record.update(_flat("authors-max-test", test_sampled(state.params, state.rest)["sampled"]))
                record["test_seconds"] = time.perf_counter() - clock
            # the epoch's wall time up to the checkpoint, and the time to hand the checkpoint over
            # (async: the write goes on behind the next epoch; the previous one's wait is inside)
            clock = time.perf_counter()
            record["epoch_seconds"] = clock - epoch_started
            history.append(record)
            checkpoints.save(
                epoch,
                state,
                {"config": config_dict, "fingerprints": fingerprints, "history": list(history), "epoch": epoch},
                {"valid/ndcg@10": select},
            )
            history[-1] = {**record, "checkpoint_seconds": time.perf_counter() - clock}  # the saved record stays as it was
            files.metrics(history)
            since_best = 0 if select > best else since_best + 1
            best = max(best, select)
            log(
                f"epoch {epoch}: loss {stats.means.get('loss', float('nan')):.4f}, valid {SELECT_METRIC} "
                f"{select:.4f} (best {best:.4f}), {stats.timed_rows / max(stats.seconds, 1e-9):,.0f} samples/s"
            )
    except NonFiniteLoss as e:
        checkpoints.wait()
        last = checkpoints.latest_epoch()
        checkpoints.close()
        kept = f"the last good checkpoint is epoch {last} in {run_dir / 'checkpoints'}" if last else "no checkpoint was written"
        raise NonFiniteLoss(f"{e}; training stopped, {kept}") from None
    checkpoints.wait()

    best_epoch = checkpoints.best_epoch()
    if best_epoch is None:
        raise RunFolderError(f"{run_dir}: no checkpoint to evaluate (no epoch finished)")
    state, _ = checkpoints.restore(best_epoch, abstract_state(state, parallel))
    checkpoints.close()
    test_eval = make_evaluator(cfg, splits["test"], graphdef, parallel, full_ranking=cfg.eval.full_ranking)
    test = test_eval(state.params, state.rest)
    negatives = int(splits["test"].column_lists("negatives")[0][1]) if len(splits["test"]) else 0
    protocols = {
        "valid-selected": to_json(
            test["sampled"], "valid-selected", split="test", selected_epoch=best_epoch,
            full_catalogue=test["full"], negatives=negatives,
        )
    }
    if authors:
        from imvae_jax.eval.report import unflatten

        per_epoch = [unflatten(r, "authors-max-test") for r in history]
        protocols["authors-max"] = to_json(
            authors_max(per_epoch), "authors-max", split="test", epochs=len(per_epoch), negatives=negatives
        )
    wall = time.perf_counter() - wall_start
    samples_per_s = train_rows / max(train_seconds, 1e-9)
    results = {
        "protocols": protocols,
        "model": cfg.model.variant,
        "recipe": cfg.loss.recipe,
        "parameters": num_params(state.params),
        "dataset": str(cfg.data.dataset),
        "fingerprints": fingerprints,
        "epochs_run": len(history) and history[-1]["epoch"],
        "selected_epoch": best_epoch,
        "train_samples_per_s": samples_per_s,
        "seconds_per_epoch": epoch_split(history),
        "wall_s": wall,  # this process only: a resumed run's earlier epochs are not in it
        "resumed_from_epoch": start_epoch - 1 if start_epoch > 1 else None,
        "devices": parallel.n_devices,
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
    }
    files.results(results, results_markdown(results))
    log(f"done: {results['epochs_run']} epochs, selected epoch {best_epoch}; {samples_per_s:,.0f} train samples/s; wall {wall:.1f} s")
    return results
