"""Prepared dataset in, the same dataset with ``pseudo_x``/``pseudo_y`` out (paper section 3.1).

Graph (leak-free by construction). Nodes: the dataset's users (``user_id``) and the items of both
domains in one index space (X item ``v`` -> ``v-1``, Y item ``v`` -> ``n_items_x + v-1``). Edges:
the histories ``seq_x``/``seq_y`` of every row of every split (``psg.graph="histories"``, the
default). ``"histories+train_targets"`` also adds the train rows' targets; measured on Cloth-Sport,
a train row's target then sits in its own pseudo list 98-99% of the time against 7-15% for
valid/test rows, a train/test mismatch the model could learn to exploit, hence the default. Valid
and test *targets* are never edges: they are what the model is evaluated on. Valid/test *histories*
are edges because they are model inputs anyway, and without them those users would have no
personalised recall (the authors' shipped pseudo-lists show the same, see the spec section 6).

Training: LightGCN on 80% of the distinct edges, early-stopped on Recall@20 of the other 20%
(``psg.valid_fraction``); the best embeddings are then propagated over the full graph.

Recall, per row and domain ``d``: the ``psg.top_k`` items of domain ``d`` with the highest score
``E_u · E_v``, excluding only the row's own history in ``d``. The row's target is NOT excluded:
the authors' recall masked the whole CSV list including the target, which uses the label of
valid/test rows to build their input (a model can learn "a pseudo item is never the target").
``psg.exclude_target=True`` reproduces the authors' behaviour for like-with-like comparisons.

``psg.mode="random"``: uniform items of the domain excluding the history (the "w/o PSG" ablation).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imvae_jax.psg.config import PSGConfig

DOMAINS = ("x", "y")


@dataclasses.dataclass(frozen=True)
class Interactions:
    """Graph edges of a dataset: ``users``, ``items`` int64 ``[E]`` (joint item index) and sizes."""

    users: np.ndarray
    items: np.ndarray
    n_users: int
    n_items_x: int
    n_items_y: int

    @property
    def n_items(self) -> int:
        return self.n_items_x + self.n_items_y


def item_offset(domain: int, n_items_x: int) -> int:
    """Joint index of domain-``domain`` item id ``v`` is ``v - 1 + item_offset``."""
    return 0 if domain == 0 else n_items_x


def dataset_interactions(splits: dict, graph: str = "histories") -> Interactions:
    """The edges described in the module docstring, from ``{"train", "valid", "test"} -> Split``."""
    if graph not in ("histories+train_targets", "histories"):
        raise ValueError(f"psg.graph {graph!r}: expected 'histories+train_targets' or 'histories'")
    meta = splits["train"].meta
    nx, ny = int(meta["n_items_x"]), int(meta["n_items_y"])
    users, items = [], []
    for name, split in splits.items():
        user = split.column("user_id").astype(np.int64)
        for d, dom in enumerate(DOMAINS):
            offsets, values = split.column_lists(f"seq_{dom}")
            users.append(np.repeat(user, np.diff(offsets)))
            items.append(values.astype(np.int64) - 1 + item_offset(d, nx))
        if name == "train" and graph == "histories+train_targets":
            domain = split.column("target_domain").astype(np.int64)
            users.append(user)
            items.append(split.column("target_item").astype(np.int64) - 1 + np.where(domain == 0, 0, nx))
    return Interactions(np.concatenate(users), np.concatenate(items), len(meta["user_ids"]), nx, ny)


def _exclusions(split, d: int, exclude_target: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-row CSR of excluded item ids (0-based within domain ``d``): the history, optionally the target."""
    offsets, values = split.column_lists(f"seq_{DOMAINS[d]}")
    values = values.astype(np.int64) - 1
    if not exclude_target:
        return offsets, values
    on_d = split.column("target_domain").astype(np.int64) == d
    extra = on_d.astype(np.int64)
    new_offsets = offsets + np.concatenate([[0], np.cumsum(extra)])
    out = np.empty(int(new_offsets[-1]), np.int64)
    lengths = np.diff(offsets)
    keep = np.ones(out.size, bool)
    keep[new_offsets[1:][on_d] - 1] = False
    out[keep] = values
    out[~keep] = split.column("target_item").astype(np.int64)[on_d] - 1
    assert (np.diff(new_offsets) == lengths + extra).all()
    return new_offsets, out


def recall_split(
    split, user_emb: np.ndarray, item_emb: np.ndarray, n_items_x: int, cfg: PSGConfig, progress=None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"pseudo_x": (offsets, ids 1..n), "pseudo_y": ...}`` for every row of ``split``."""
    from imvae_jax.psg.recall import random_items, top_k_items

    n_domain = (n_items_x, item_emb.shape[0] - n_items_x)
    user = split.column("user_id").astype(np.int64)
    out = {}
    for d, dom in enumerate(DOMAINS):
        exclude = _exclusions(split, d, cfg.exclude_target)
        if cfg.mode == "random":
            rng = np.random.default_rng([cfg.seed, ("train", "valid", "test").index(split.name), d])
            offsets, items = random_items(n_domain[d], *exclude, cfg.top_k, rng)
        else:
            lo = item_offset(d, n_items_x)
            block = item_emb[lo : lo + n_domain[d]]
            offsets, items, _ = top_k_items(user_emb[user], block, *exclude, cfg.top_k, cfg.user_chunk, progress)
        out[f"pseudo_{dom}"] = (offsets, items.astype(np.int32) + 1)
    return out


def target_hit_rates(split, pseudo: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Share of rows whose target is in the pseudo list of the target domain (a leak diagnostic)."""
    domain = split.column("target_domain").astype(np.int64)
    target = split.column("target_item").astype(np.int64)
    rows = np.arange(len(split))
    out = {}
    for d, dom in enumerate(DOMAINS):
        offsets, values = pseudo[f"pseudo_{dom}"]
        value_rows = np.repeat(rows, np.diff(offsets))
        hit = np.zeros(len(split), bool)
        hit[value_rows[values == target[value_rows]]] = True
        on_d = domain == d
        out[dom] = float(hit[on_d].mean()) if on_d.any() else float("nan")
    return out


def run_fingerprint(cfg: PSGConfig, splits: dict, pseudo: dict) -> str:
    """sha256 of the PSG config, the input splits' fingerprints and every recalled list."""
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    for name in sorted(splits):
        digest.update(splits[name].fingerprint.encode())
        for column in sorted(pseudo[name]):
            for array in pseudo[name][column]:
                digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def train_embeddings(
    interactions: Interactions,
    cfg: PSGConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
):
    """``(user_emb [U, d], item_emb [I, d], TrainResult)``: train with the held-out split, then
    propagate the best layer-0 embeddings over the full graph."""
    from imvae_jax.psg.graph import build_graph
    from imvae_jax.psg.lightgcn import final_embeddings, split_holdout, train_lightgcn

    train, held = split_holdout(interactions.users, interactions.items, interactions.n_items, cfg.valid_fraction, cfg.seed)
    checkpoint_dir = None if run_dir is None else Path(run_dir) / "checkpoints"
    result = train_lightgcn(train, held, interactions.n_users, interactions.n_items, cfg, checkpoint_dir, resume, progress)
    full = build_graph(interactions.users, interactions.items, interactions.n_users, interactions.n_items)
    user_emb, item_emb = final_embeddings(result.embeddings, full, cfg.layers)
    return user_emb, item_emb, result


def make_pseudo(
    splits: dict,
    cfg: PSGConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict, dict[str, Any]]:
    """``(splits with pseudo_x/pseudo_y, summary)``; ``meta["pseudo"]`` = ``{mode, fingerprint, config, ...}``."""
    from imvae_jax.data.schema import lists_to_arrow

    started = time.perf_counter()
    interactions = dataset_interactions(splits, cfg.graph)
    graph_info = {
        "edges": cfg.graph,
        "interactions": int(np.unique(interactions.users * interactions.n_items + interactions.items).size),
        "users": interactions.n_users,
        "items_x": interactions.n_items_x,
        "items_y": interactions.n_items_y,
    }
    training: dict[str, Any] | None = None
    if cfg.mode == "lightgcn":
        user_emb, item_emb, result = train_embeddings(interactions, cfg, run_dir, resume, progress)
        training = {
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "recall@20": result.best_metrics.get("recall@20"),
            "ndcg@20": result.best_metrics.get("ndcg@20"),
            "seconds": result.seconds,
            "seconds_per_epoch": result.seconds_per_epoch,
            "history": result.history,
        }
    elif cfg.mode == "random":
        user_emb, item_emb = None, np.zeros((interactions.n_items, 1), np.float32)  # only sizes are used
    else:
        raise ValueError(f"psg.mode {cfg.mode!r}: expected 'lightgcn' or 'random'")
    pseudo = {name: recall_split(split, user_emb, item_emb, interactions.n_items_x, cfg) for name, split in splits.items()}
    fingerprint = run_fingerprint(cfg, splits, pseudo)
    meta_pseudo = {
        "mode": cfg.mode,
        "fingerprint": fingerprint,
        "config": dataclasses.asdict(cfg),
        "graph": graph_info,
        "training": None if training is None else {k: v for k, v in training.items() if k != "history"},
        "source_fingerprints": {name: split.fingerprint for name, split in splits.items()},
    }
    new_splits = {
        name: split.with_columns({c: lists_to_arrow(*pseudo[name][c]) for c in pseudo[name]}, {"pseudo": meta_pseudo})
        for name, split in splits.items()
    }
    summary = {
        "mode": cfg.mode,
        "fingerprint": fingerprint,
        "graph": graph_info,
        "training": training,
        "target_in_pseudo": {name: target_hit_rates(splits[name], pseudo[name]) for name in splits},
        "pseudo_lengths": {
            name: {c: float(np.diff(pseudo[name][c][0]).mean()) for c in pseudo[name]} for name in splits
        },
        "seconds": time.perf_counter() - started,
    }
    return new_splits, summary


def add_pseudo(
    dataset: str | Path,
    out: str | Path,
    cfg: PSGConfig | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Read ``dataset``, recall the pseudo-sequences, write the result to ``out`` (atomically, with
    the input's ``audit.json``); return the summary of :func:`make_pseudo`."""
    from imvae_jax.data.schema import read_dataset, write_dataset

    dataset = Path(dataset)
    new_splits, summary = make_pseudo(read_dataset(dataset), cfg or PSGConfig(), run_dir, resume, progress)
    audit_path = dataset / "audit.json"
    audit = json.loads(audit_path.read_text()) if audit_path.is_file() else None
    write_dataset(new_splits, out, audit=audit)
    return {"out": str(out), **summary}
