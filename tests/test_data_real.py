"""The real files in ../shared/data load, and their statistics agree with stats.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imvae_jax.data.cli import compare_with_stats, summary
from imvae_jax.data.config import DataConfig
from imvae_jax.data.readers import build_authors, file_stats, read_authors_csv

CSV_FILES = [
    "imvae_cloth_sport/cloth_sport_train.csv.gz",
    "imvae_cloth_sport/cloth_sport_test_csu.csv.gz",
    "imvae_authors_test/cloth_sport_test.csv.gz",
    "imvae_authors_test/game_video_test.csv.gz",
    "imvae_authors_test/phone_elec_test.csv.gz",
    "imvae_authors_test/phone_elec_test_corr.csv.gz",
    "amid_cloth_sport/cloth_sport_test.csv.gz",
    "amid_cloth_sport/cloth_sport_train25.csv.gz",
    "amid_cloth_sport/cloth_sport_train75.csv.gz",
    "amid_cloth_sport/cloth_sport_train75_DR.csv.gz",
]


@pytest.fixture(scope="module")
def stats(shared_data):
    return json.loads((shared_data / "stats.json").read_text())


@pytest.mark.parametrize("name", CSV_FILES)
def test_file_statistics_match_stats_json(shared_data, stats, name):
    expected = stats["files"][name]["stats"]
    got = file_stats(read_authors_csv(shared_data / name))
    for key, value in expected.items():
        if key == "columns":
            continue
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=0.006), key
        else:
            assert got[key] == value, key


def _cloth_sport(shared_data, test="imvae_cloth_sport/cloth_sport_test_csu.csv.gz", **kw):
    cfg = DataConfig(
        source="authors",
        train_path=str(shared_data / "imvae_cloth_sport/cloth_sport_train.csv.gz"),
        test_path=str(shared_data / test),
        **kw,
    )
    return build_authors(cfg)


def test_cloth_sport_dataset_agrees_with_stats(shared_data, stats):
    splits = _cloth_sport(shared_data, valid_fraction=0.0, num_eval_negatives=0)
    test = stats["files"]["imvae_cloth_sport/cloth_sport_test_csu.csv.gz"]["stats"]
    train = stats["files"]["imvae_cloth_sport/cloth_sport_train.csv.gz"]["stats"]
    rows = {r["split"]: r for r in summary(splits)}
    for split, st in (("test", test), ("train", train)):
        r = rows[split]
        assert (r["rows"], r["users"], r["items_x"], r["items_y"]) == (
            st["rows"], st["users"], st["items_d1"], st["items_d2"])
        assert (r["interactions_x"], r["interactions_y"]) == (st["interactions_d1_rows"], st["interactions_d2_rows"])
        assert (r["cold_start_rows"], r["no_history_rows"]) == (st["cold_start_rows"], st["no_history_rows"])
        assert (r["tail_threshold_x"], r["tail_threshold_y"]) == (st["tail_len_d1"], st["tail_len_d2"])
        assert r["overlapping_users"] == st["overlapping_users"]
    t = splits["test"]
    assert t.n_items == (13826, 10859)  # train + test catalogues (README: 13,826 X and 10,859 Y)
    pair = stats["train_test_pairs"]["imvae_cloth_sport"]
    assert int(t.column("target_in_train").sum()) == pair["test_rows_whose_target_is_in_the_same_users_train_row"]
    # the authors' loader's tailed counts on this file (authors_code_spec 1.6): 1,595 X + 1,090 Y
    domain, tailed = t.column("target_domain"), t.column("tailed")
    assert (int((tailed & (domain == 0)).sum()), int((tailed & (domain == 1)).sum())) == (1595, 1090)
    source = t.meta["source"]
    for which, name in (("train", "cloth_sport_train.csv.gz"), ("test", "cloth_sport_test_csu.csv.gz")):
        line = compare_with_stats(str(shared_data / "imvae_cloth_sport" / name), source["file_stats"][which])
        assert line is not None and "agrees" in line


def test_cloth_sport_with_authors_pseudo_and_carved_valid(shared_data):
    splits = _cloth_sport(shared_data, test="imvae_authors_test/cloth_sport_test.csv.gz")
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    assert len(train) + len(valid) == 18537 and len(test) == 4635
    n_users = len(np.unique(np.concatenate([train.column("user_id"), valid.column("user_id")])))
    assert len(np.unique(valid.column("user_id"))) == round(0.125 * n_users)
    assert not set(train.column("user_id").tolist()) & set(valid.column("user_id").tolist())
    # the test file's protocol measured and applied: 308/1542 overlapping rows, 308/3093 single rows
    cs = test.meta["source"]["valid_cold_start"]
    assert cs["share_overlap_rows_cold_start"] == pytest.approx(308 / 1542)
    assert cs["share_single_rows_no_history"] == pytest.approx(308 / 3093)
    kind = valid.column("cold_start_kind")
    assert int((kind == 1).sum()) == cs["valid_rows_cut"]["other_domain"] > 0
    assert int((kind == 2).sum()) == cs["valid_rows_cut"]["no_history"] > 0
    # the authors' pseudo-sequences: 20 per row and domain, none dropped (they exclude list and target)
    for d in ("x", "y"):
        offsets, _ = test.column_lists(f"pseudo_{d}")
        assert (np.diff(offsets) == 20).all()
    assert test.meta["source"]["pseudo_items_dropped"] == {"train": 0, "test": 0}
    negatives = test.column_lists("negatives")[1]
    assert negatives.size == 999 * len(test)


def test_amid_cloth_sport_loads(shared_data, stats):
    cfg = DataConfig(
        source="authors",
        train_path=str(shared_data / "amid_cloth_sport/cloth_sport_train75_DR.csv.gz"),  # ob_label ignored
        test_path=str(shared_data / "amid_cloth_sport/cloth_sport_test.csv.gz"),
        valid_fraction=0.0,
        num_eval_negatives=0,
    )
    splits = build_authors(cfg)
    assert len(splits["train"]) == 19045 and len(splits["test"]) == 4762
    pair = stats["train_test_pairs"]["amid_cloth_sport (train100=DR)"]
    in_train = int(splits["test"].column("target_in_train").sum())
    assert in_train == pair["test_rows_whose_target_is_in_the_same_users_train_row"]
    assert (splits["test"].meta["tail_threshold_x"], splits["test"].meta["tail_threshold_y"]) == (5, 6)
