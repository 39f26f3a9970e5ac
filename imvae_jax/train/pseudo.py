"""Random pseudo-sequences: the fallback of ``imvae run`` when the PSG package offers no API.

Each row gets, per domain, ``length`` distinct items drawn uniformly from that domain's
catalogue, never an item of the row's history there nor its target (the dataset contract). A
"no-information" recall, so IM-VAE's pseudo input carries no signal: an honest floor for the PSG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def random_recall(split, length: int, seed: int, chunk: int = 1024) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{'pseudo_x': (offsets, values), 'pseudo_y': ...}`` for ``split`` (ragged, rows in order)."""
    rng = np.random.default_rng([seed, 0x9E3779B9 & 0xFFFFFFFF])
    domain = split.column("target_domain").astype(np.int64)
    target = split.column("target_item").astype(np.int64)
    out = {}
    for d, name in enumerate(("x", "y")):
        n = split.n_items[d]
        offsets, values = split.column_lists(f"seq_{name}")
        rows_out, counts = [], []
        for start in range(0, len(domain), chunk):
            stop = min(start + chunk, len(domain))
            keys = rng.random((stop - start, n + 1))
            keys[:, 0] = -1.0  # padding id
            lo, hi = offsets[start], offsets[stop]
            value_rows = np.repeat(np.arange(stop - start), np.diff(offsets[start : stop + 1]))
            keys[value_rows, values[lo:hi]] = -1.0
            own = np.flatnonzero(domain[start:stop] == d)
            keys[own, target[start:stop][own]] = -1.0
            k = min(length, n)
            top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
            top = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
            ok = np.take_along_axis(keys, top, axis=1) >= 0
            rows_out.append(top[ok].astype(np.int32))
            counts.append(ok.sum(axis=1))
        lengths = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        new_offsets = np.zeros(len(domain) + 1, np.int64)
        np.cumsum(lengths, out=new_offsets[1:])
        out[f"pseudo_{name}"] = (new_offsets, np.concatenate(rows_out) if rows_out else np.zeros(0, np.int32))
    return out


def random_pseudo_dataset(dataset: Path, out: Path, length: int, seed: int = 0) -> Path:
    """Copy of the prepared ``dataset`` with random ``pseudo_x/pseudo_y`` columns, written to ``out``."""
    from imvae_jax.data.schema import lists_to_arrow, read_dataset, write_dataset

    splits = read_dataset(dataset)
    new = {}
    for name, split in splits.items():
        columns = {k: lists_to_arrow(*v) for k, v in random_recall(split, length, seed).items()}
        new[name] = split.with_columns(columns, {"pseudo": {"mode": "random", "seed": seed, "length": length}})
    return write_dataset(new, out)
