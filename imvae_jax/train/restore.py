"""Restore a trained run's checkpoint with its config and data: one function for every tool
that re-uses a trained model (``imvae evaluate``, ``imvae probe``, the experiment engine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple


class Restored(NamedTuple):
    cfg: Any  # the run's resolved Config (with the overrides below applied)
    splits: dict[str, Any]  # name -> Split of the run's dataset
    graphdef: Any
    state: Any  # TrainState, replicated over ``parallel``'s devices
    parallel: Any
    epoch: int


def checkpoint_location(target: Path) -> tuple[Path, int | None]:
    """(checkpoints folder, epoch or None) of a run folder / checkpoints folder / one checkpoint."""
    if (target / "checkpoints").is_dir():
        return target / "checkpoints", None
    if target.name.isdigit() and (target / "state").is_dir():
        return target.parent, int(target.name)
    if target.is_dir():
        return target, None
    raise FileNotFoundError(f"{target}: not a run folder, checkpoints folder or checkpoint")


def restore(
    target: Path | str,
    *,
    which: str = "best",
    epoch: int | None = None,
    dataset: str | None = None,
    full_ranking: bool | None = None,
) -> Restored:
    """The checkpoint ``target`` names (a run folder: its ``which`` = best/latest, or ``epoch``).

    ``dataset`` replaces the run's dataset folder (its fingerprints must still match).
    Raises ``FileNotFoundError`` (no checkpoint) or :class:`CheckpointMismatch`, with the reason.
    """
    from imvae_jax.config import Config, apply_overrides, from_dict
    from imvae_jax.train import loop
    from imvae_jax.train.checkpoint import Checkpoints, check_compatible
    from imvae_jax.train.state import create, make_optimizer
    from imvae_jax.train.step import Parallel

    folder, at = checkpoint_location(Path(target))
    checkpoints = Checkpoints(folder, async_save=False)
    try:
        epoch = epoch or at or (checkpoints.best_epoch() if which == "best" else checkpoints.latest_epoch())
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {folder}")
        meta = checkpoints.read_meta(epoch)
        cfg = from_dict(Config, meta["config"])
        if dataset:
            cfg = apply_overrides(cfg, [f"data.dataset={dataset}"])
        if full_ranking is not None:
            cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, full_ranking=full_ranking))
        splits = loop.load_dataset(cfg)
        fingerprints = {name: split.fingerprint for name, split in sorted(splits.items())}
        check_compatible(meta, meta["config"], fingerprints, f"{folder} (epoch {epoch})")
        parallel = Parallel()
        graphdef, host_state = create(loop.model_factory(cfg, splits["train"]), make_optimizer(cfg.train), cfg.train.seed)
        state, _ = checkpoints.restore(epoch, loop.abstract_state(parallel.put_replicated(host_state), parallel))
    finally:
        checkpoints.close()
    return Restored(cfg, splits, graphdef, state, parallel, epoch)
