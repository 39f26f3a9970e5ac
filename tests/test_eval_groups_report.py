"""Groups on a hand-built example; flatten/unflatten; seed and authors-max reducers; Markdown."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from imvae_jax.eval.groups import aggregate, group_masks
from imvae_jax.eval.report import (
    AUTHORS_MAX_BANNER,
    authors_max,
    flatten,
    markdown_table,
    seed_summary,
    to_json,
    unflatten,
)

# six rows: x x x y y y
COLUMNS = {
    "cold_start_kind": np.array([0, 1, 2, 0, 0, 1]),
    "cold_start": np.array([False, True, True, False, False, True]),
    "tailed": np.array([False, True, True, True, False, True]),
    "target_in_train": np.array([True, False, False, False, True, False]),
}
DOMAINS = np.array([0, 0, 0, 1, 1, 1])
RANKS = np.array([0, 3, 15, 1, 0, 30])


def test_group_masks_hand_built():
    masks = group_masks(COLUMNS)
    assert list(masks)[:7] == ["all", "tailed", "cold_start", "cold_start_other", "no_history", "target_in_train", "target_not_in_train"]
    # every tailed / cold-start group again without the leaky rows
    np.testing.assert_array_equal(masks["cold_start_other_not_in_train"], [0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(masks["no_history_not_in_train"], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks["tailed_not_in_train"], masks["tailed"] & masks["target_not_in_train"])
    np.testing.assert_array_equal(masks["cold_start_other"], [0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(masks["no_history"], [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks["target_not_in_train"], [0, 1, 1, 1, 0, 1])
    without = {k: v for k, v in COLUMNS.items() if k != "target_in_train"}
    assert "target_in_train" not in group_masks(without)


def test_group_masks_errors():
    bad = dict(COLUMNS, cold_start=np.array([True, True, True, False, False, True]))
    with pytest.raises(ValueError, match="row 0: cold_start=True disagrees"):
        group_masks(bad)
    with pytest.raises(ValueError, match="row 2 has 3"):
        group_masks(dict(COLUMNS, cold_start_kind=np.array([0, 1, 3, 0, 0, 1])))
    with pytest.raises(KeyError, match="tailed"):
        group_masks({"cold_start_kind": COLUMNS["cold_start_kind"]})


def test_aggregate_hand_built():
    out = aggregate(RANKS, DOMAINS, group_masks(COLUMNS), ks=(10,))
    x, y = out["x"], out["y"]
    assert x["all"]["n"] == 3 and x["all"]["hr@10"] == pytest.approx(2 / 3)
    assert x["all"]["ndcg@10"] == pytest.approx((1 + 1 / math.log2(5)) / 3)
    assert x["cold_start"] == {"ndcg@10": pytest.approx(1 / math.log2(5) / 2), "hr@10": 0.5, "mrr": pytest.approx((1 / 4 + 1 / 16) / 2), "n": 2}
    assert x["no_history"]["n"] == 1 and x["no_history"]["hr@10"] == 0.0
    # empty group: n = 0 and None, never NaN
    assert y["no_history"] == {"ndcg@10": None, "hr@10": None, "mrr": None, "n": 0}
    assert y["target_in_train"]["ndcg@10"] == 1.0
    json.dumps(out, allow_nan=False)  # NaN-free
    # padding rows (valid = 0) are left out
    masked = aggregate(RANKS, DOMAINS, group_masks(COLUMNS), ks=(10,), valid=np.array([1, 1, 1, 1, 1, 0]))
    assert masked["y"]["all"]["n"] == 2 and masked["y"]["cold_start"]["n"] == 0


def test_flatten_roundtrip():
    out = aggregate(RANKS, DOMAINS, group_masks(COLUMNS), ks=(10,))
    flat = flatten(out, "test")
    assert flat["test/x/all/ndcg@10"] == out["x"]["all"]["ndcg@10"]
    assert flat["test/y/no_history/n"] == 0
    flat["valid/x/all/ndcg@10"] = 0.5  # other prefixes are ignored
    assert unflatten(flat, "test") == out
    assert unflatten(flat, "valid") == {"x": {"all": {"ndcg@10": 0.5}}}


def _result(value: float, n: int = 10) -> dict:
    return {"x": {"all": {"ndcg@10": value, "hr@10": 2 * value, "n": n}, "cold_start": {"ndcg@10": None, "hr@10": None, "n": 0}}}


def test_authors_max_and_seed_summary():
    epochs = [_result(0.1), _result(0.3), _result(0.2)]
    epochs[2]["x"]["all"]["hr@10"] = 0.9  # metrics may peak at different epochs
    best = authors_max(epochs)
    assert best["x"]["all"] == {"ndcg@10": 0.3, "hr@10": 0.9, "n": 10}
    assert best["x"]["cold_start"]["ndcg@10"] is None
    summary = seed_summary([_result(0.1), _result(0.3)])
    cell = summary["x"]["all"]["ndcg@10"]
    assert cell["mean"] == pytest.approx(0.2) and cell["std"] == pytest.approx(0.1)  # ddof 0
    assert seed_summary([_result(0.1), _result(0.3)], ddof=1)["x"]["all"]["ndcg@10"]["std"] == pytest.approx(0.1 * math.sqrt(2))
    assert summary["x"]["cold_start"]["ndcg@10"]["mean"] is None
    with pytest.raises(ValueError, match="other keys"):
        authors_max([_result(0.1), {"x": {"all": {"ndcg@10": 0.1, "n": 1}}}])


def test_markdown_cells():
    text = markdown_table(_result(0.0579, n=123), "valid-selected", title="Cloth-Sport")
    assert "| X | all | 123 | 5.79 | 11.58 |" in text
    assert "| X | cold-start (any) | 0 | - | - |" in text
    assert "AUTHORS-MAX" not in text
    summary = seed_summary([_result(0.0550), _result(0.0608)])
    assert "| X | all | 10 | 5.79 ± 0.29 | 11.58 ± 0.58 |" in markdown_table(summary, "valid-selected")
    loud = markdown_table(_result(0.1), "authors-max")
    assert AUTHORS_MAX_BANNER in loud and "ON THE TEST SPLIT" in loud
    record = to_json(_result(0.1), "authors-max", seeds=[0])
    assert record["protocol"] == "authors-max" and "TEST SPLIT" in record["protocol_note"] and record["seeds"] == [0]
    with pytest.raises(ValueError, match="protocol"):
        markdown_table(_result(0.1), "best")
