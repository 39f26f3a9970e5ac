"""Our LightGCN on the authors' own LightGCN files, and a comparison with their shipped pseudo-lists.

Train on ``lightgcn_train`` (with ``valid_fraction`` of it held out for early stopping, as in our
pipeline), then report Recall@20/NDCG@20 on ``lightgcn_test`` with the best embeddings propagated
over the whole ``lightgcn_train`` graph (training items masked), as LightGCN's ``Procedure.Test``.

Id mapping for the comparison with ``corr_d1``/``corr_d2`` of the authors' test CSV: the CSV's
``user_id`` is the LightGCN user id; an X item ``v`` is LightGCN item ``v``, a Y item ``v`` is
``v + y_offset`` (+24,506 for Cloth-Sport). Like the authors' ``callback.py``, X candidates are
LightGCN items ``0..y_offset`` and Y candidates ``y_offset..``, and the row's whole list
(history *and* target) is excluded, so the two recalls are computed the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from imvae_jax.psg.config import PSGConfig


def train_on_lightgcn_files(
    folder: str | Path,
    cfg: PSGConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train on ``folder/lightgcn_train.txt.gz``; test on ``lightgcn_test``. Returns a summary with
    ``user_emb``/``item_emb`` (numpy, indexed by LightGCN user/item id) under ``"embeddings"``."""
    from imvae_jax.psg.graph import build_graph, user_item_csr
    from imvae_jax.psg.io import find_lightgcn, read_lightgcn
    from imvae_jax.psg.lightgcn import final_embeddings, split_holdout, train_lightgcn
    from imvae_jax.psg.recall import ranking_metrics

    train_u, train_i = read_lightgcn(find_lightgcn(folder, "train"))
    test_u, test_i = read_lightgcn(find_lightgcn(folder, "test"))
    # compact user ids (the files' ids are sparse); items keep their ids as LightGCN does (m_items = max+1)
    user_ids = np.unique(np.concatenate([train_u, test_u]))
    n_users, n_items = user_ids.size, int(max(train_i.max(), test_i.max())) + 1
    tu, su = np.searchsorted(user_ids, train_u), np.searchsorted(user_ids, test_u)
    fit, held = split_holdout(tu, train_i, n_items, cfg.valid_fraction, cfg.seed)
    checkpoint_dir = None if run_dir is None else Path(run_dir) / "checkpoints"
    result = train_lightgcn(fit, held, n_users, n_items, cfg, checkpoint_dir, resume, progress)
    graph = build_graph(tu, train_i, n_users, n_items)
    user_emb, item_emb = final_embeddings(result.embeddings, graph, cfg.layers)
    test = ranking_metrics(
        user_emb, item_emb, *user_item_csr(tu, train_i, n_users, n_items), *user_item_csr(su, test_i, n_users, n_items),
        20, cfg.user_chunk,
    )
    return {
        "users": int(n_users),
        "items": int(n_items),
        "train_interactions": int(train_i.size),
        "test_interactions": int(test_i.size),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "valid": {k: result.best_metrics.get(k) for k in ("recall@20", "ndcg@20")},
        "test": test,
        "seconds": result.seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "history": result.history,
        "embeddings": {"user_ids": user_ids, "user_emb": user_emb, "item_emb": item_emb},
    }


def compare_with_authors(
    embeddings: dict[str, np.ndarray], authors_csv: str | Path, y_offset: int, k: int = 20, chunk: int = 1024
) -> dict[str, Any]:
    """Share of our top-``k`` X/Y items that are also in the authors' ``corr_d1``/``corr_d2`` (same users)."""
    from imvae_jax.psg.io import read_authors_pseudo
    from imvae_jax.psg.recall import top_k_items

    rows = read_authors_pseudo(authors_csv)
    user_ids = embeddings["user_ids"]
    users = np.array(sorted(rows), np.int64)
    position = np.searchsorted(user_ids, users)
    known = (position < user_ids.size) & (user_ids[np.minimum(position, user_ids.size - 1)] == users)
    users, position = users[known], position[known]
    item_emb = embeddings["item_emb"]
    out: dict[str, Any] = {"csv_users": len(rows), "users_in_graph": int(users.size)}
    for d, (lo, hi) in enumerate(((0, y_offset + 1), (y_offset, item_emb.shape[0]))):
        shift = 0 if d == 0 else y_offset
        lists = [rows[int(u)][d] for u in users]  # the whole CSV list (history + target), as the authors masked
        offsets = np.zeros(users.size + 1, np.int64)
        np.cumsum([len(x) for x in lists], out=offsets[1:])
        values = np.array([v for x in lists for v in x], np.int64) + shift - lo
        got_off, got, _ = top_k_items(embeddings["user_emb"][position], item_emb[lo:hi], offsets, values, k, chunk)
        ours = got.astype(np.int64) + lo - shift
        theirs = [set(rows[int(u)][2 + d]) for u in users]
        shared = [len(theirs[r] & set(ours[got_off[r] : got_off[r + 1]].tolist())) for r in range(users.size)]
        out[f"overlap_d{d + 1}"] = float(np.mean(shared) / k)
        out[f"users_with_any_overlap_d{d + 1}"] = float(np.mean(np.array(shared) > 0))
    return out
