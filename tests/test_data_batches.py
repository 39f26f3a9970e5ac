"""The batcher on worked examples: left padding, truncation, pseudo items, masks, negatives."""

from __future__ import annotations

import numpy as np
import pytest

from imvae_jax.data import ragged
from imvae_jax.data.batches import Batcher
from imvae_jax.data.build import Rows, base_meta, to_split
from imvae_jax.data.candidates import add_negatives
from imvae_jax.data.config import DataConfig
from imvae_jax.data.synthetic import build_synthetic

KEYS = {
    "seq_x", "seq_y", "len_x", "len_y", "pseudo_x", "pseudo_y", "target_domain", "candidates", "cold_start",
    "cold_start_kind", "tailed", "overlap", "user_id", "row", "mask",
}


def worked_split(pseudo: bool = True):
    """X items 1..5, Y items 1..6.

    row 0: X target 4, X history [1, 2, 3], no Y          (pseudo X [5])
    row 1: Y target 6, Y history [1, 2, 3, 4, 5], X [5]   (pseudo Y [])
    row 2: Y target 3, no Y history (cold start), X [2]   (pseudo Y [1, 2, 4])
    """
    rows = Rows(
        user=np.array([7, 8, 9]),
        seq_x=ragged.from_lists([[1, 2, 3], [5], [2]]),
        seq_y=ragged.from_lists([[], [1, 2, 3, 4, 5], []]),
        target_domain=np.array([0, 1, 1], np.int8),
        target_item=np.array([4, 6, 3], np.int32),
        overlap=np.array([False, True, True]),
        pseudo_x=ragged.from_lists([[5], [], [1]]) if pseudo else None,
        pseudo_y=ragged.from_lists([[], [], [1, 2, 4]]) if pseudo else None,
    )
    meta = base_meta(list(range(10)), [None, *range(5)], [None, *range(6)], DataConfig(), {"kind": "hand"})
    return to_split(rows, "train", meta)


def test_padding_truncation_and_partial_last_batch():
    batcher = Batcher(worked_split(), batch_size=2, max_len=3, pseudo_len=2, num_negatives=0)
    assert len(batcher) == 2
    first, second = list(batcher.epoch(0))
    assert set(first) == KEYS
    np.testing.assert_array_equal(first["seq_x"], [[1, 2, 3], [0, 0, 5]])
    np.testing.assert_array_equal(first["seq_y"], [[0, 0, 0], [3, 4, 5]])  # last 3 of 5, most recent last
    np.testing.assert_array_equal(first["len_x"], [3, 1])
    np.testing.assert_array_equal(first["len_y"], [0, 3])  # clipped to T
    np.testing.assert_array_equal(first["pseudo_x"], [[5, 0], [0, 0]])
    np.testing.assert_array_equal(first["candidates"], [[4], [6]])
    np.testing.assert_array_equal(first["user_id"], [7, 8])
    # the partial batch: one real row, one padding row with mask 0, row -1 and zeros
    np.testing.assert_array_equal(second["seq_x"], [[0, 0, 2], [0, 0, 0]])
    np.testing.assert_array_equal(second["pseudo_y"], [[1, 2], [0, 0]])  # first T' recalled items
    np.testing.assert_array_equal(second["mask"], [1.0, 0.0])
    np.testing.assert_array_equal(second["row"], [2, -1])
    np.testing.assert_array_equal(second["cold_start"], [True, False])
    np.testing.assert_array_equal(second["cold_start_kind"], [1, 0])
    np.testing.assert_array_equal(second["candidates"], [[3], [0]])
    for name, dtype in (("seq_x", np.int32), ("len_x", np.int32), ("target_domain", np.int32),
                        ("candidates", np.int32), ("mask", np.float32), ("cold_start", bool), ("row", np.int32)):
        assert first[name].dtype == dtype and second[name].dtype == dtype, name
    assert {k: v.shape for k, v in first.items()} == {k: v.shape for k, v in second.items()}


def test_long_max_len_left_pads_and_missing_pseudo_is_zero():
    batch = next(Batcher(worked_split(pseudo=False), batch_size=3, max_len=6, pseudo_len=4, num_negatives=0).epoch(0))
    np.testing.assert_array_equal(batch["seq_y"][1], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(batch["seq_x"][0], [0, 0, 0, 1, 2, 3])
    assert batch["pseudo_x"].shape == (3, 4) and not batch["pseudo_x"].any()


def test_stored_negatives_become_candidates():
    split = add_negatives(worked_split().select_rows(np.array([0, 2])), seed=3, k=1)
    batch = next(Batcher(split, batch_size=4, max_len=3, num_negatives=50).epoch(0))
    assert batch["candidates"].shape == (4, 2)  # K = the stored count, whatever num_negatives says
    # row 0: X catalogue 1..5 minus history {1,2,3} and target 4 leaves only 5
    assert batch["candidates"][0].tolist() == [4, 5]
    # row 2 (now 1): Y target 3, no Y history: any of 1, 2, 4, 5, 6
    assert batch["candidates"][1, 0] == 3 and batch["candidates"][1, 1] in (1, 2, 4, 5, 6)
    np.testing.assert_array_equal(batch["candidates"][2:], 0)


def test_training_negatives_exclude_history_and_target_and_are_uniform():
    split = worked_split().select_rows(np.array([0, 2]))
    batcher = Batcher(split, batch_size=2, num_negatives=64, shuffle=True, seed=5)
    counts = np.zeros(7)
    for epoch in range(40):
        (batch,) = list(batcher.epoch(epoch))
        for row, candidates in zip(batch["row"], batch["candidates"]):
            negatives = candidates[1:]
            if row == 0:
                assert set(negatives.tolist()) == {5}
            else:
                assert set(negatives.tolist()) <= {1, 2, 4, 5, 6}
                counts += np.bincount(negatives, minlength=7)
    share = counts[[1, 2, 4, 5, 6]] / counts.sum()
    np.testing.assert_allclose(share, 0.2, atol=0.03)  # 2,560 draws over 5 allowed items


def test_epochs_are_deterministic_and_cover_every_row_once():
    split = build_synthetic(synthetic_users=300, num_eval_negatives=0)["train"]
    batcher = Batcher(split, batch_size=64, num_negatives=3, shuffle=True, seed=11)
    first = list(batcher.epoch(2))
    again = list(Batcher(split, batch_size=64, num_negatives=3, shuffle=True, seed=11).epoch(2))
    other = list(batcher.epoch(3))
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    rows = np.concatenate([b["row"] for b in first])
    assert sorted(rows[rows >= 0].tolist()) == list(range(len(split)))
    assert (rows == -1).sum() == len(batcher) * 64 - len(split)
    assert not np.array_equal(first[0]["row"], other[0]["row"])
    # every batch row agrees with the split (reference: a Python loop over the rows)
    offsets, values = split.column_lists("seq_y")
    domain, target = split.column("target_domain"), split.column("target_item")
    for batch in first[:2]:
        for i, r in enumerate(batch["row"]):
            history = values[offsets[r] : offsets[r + 1]][-20:]
            expected = np.concatenate([np.zeros(20 - len(history), np.int32), history])
            np.testing.assert_array_equal(batch["seq_y"][i], expected)
            assert batch["candidates"][i, 0] == target[r] and batch["target_domain"][i] == domain[r]
            own = split.column_lists("seq_x" if domain[r] == 0 else "seq_y")
            excluded = set(own[1][own[0][r] : own[0][r + 1]].tolist()) | {int(target[r])}
            assert not excluded & set(batch["candidates"][i, 1:].tolist())


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        Batcher(worked_split(), batch_size=0)


def test_cold_start_augmentation_cuts_only_rows_with_other_domain_history():
    """rate 1: row 1 (Y target, X history [5]) becomes cold-start of kind 1; row 0 (no Y history)
    and row 2 (already cold-start) are untouched; rate 0 changes nothing."""
    split = worked_split()
    plain = Batcher(split, batch_size=4, max_len=3, pseudo_len=2, num_negatives=0).batch(np.arange(3))
    cut = Batcher(split, batch_size=4, max_len=3, pseudo_len=2, num_negatives=0, cold_start_rate=1.0).batch(
        np.arange(3), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(cut["seq_y"], [[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(cut["len_y"], [0, 0, 0, 0])
    np.testing.assert_array_equal(cut["seq_x"], plain["seq_x"])  # the other domain is kept
    np.testing.assert_array_equal(cut["cold_start"], [False, True, True, False])
    np.testing.assert_array_equal(cut["cold_start_kind"], [0, 1, 1, 0])
    np.testing.assert_array_equal(cut["candidates"], plain["candidates"])
    none = Batcher(split, batch_size=4, max_len=3, pseudo_len=2, num_negatives=0, cold_start_rate=0.0).batch(
        np.arange(3), np.random.default_rng(0)
    )
    for name in plain:
        np.testing.assert_array_equal(none[name], plain[name], err_msg=name)
    with pytest.raises(ValueError, match="cold_start_rate"):
        Batcher(split, batch_size=4, cold_start_rate=1.5)
