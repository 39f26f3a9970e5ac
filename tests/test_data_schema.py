"""The prepared-dataset contract: round trip, fingerprint, and a clear error for every malformed input."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from imvae_jax.data import ragged
from imvae_jax.data.build import Rows, base_meta, tail_threshold, to_split
from imvae_jax.data.candidates import add_negatives
from imvae_jax.data.config import DataConfig
from imvae_jax.data.schema import (
    META_FIELD,
    DatasetError,
    Split,
    lists_to_arrow,
    read_dataset,
    read_split,
    write_dataset,
    write_split,
)

N_X, N_Y = 6, 5


def tiny_split(name: str = "test", negatives: int = 0) -> Split:
    """Four rows over X items 1..6 and Y items 1..5 (hand-made)."""
    rows = Rows(
        user=np.array([0, 1, 2, 0]),
        seq_x=ragged.from_lists([[1, 2], [], [3], [1, 2, 4]]),
        seq_y=ragged.from_lists([[1], [2, 3], [], []]),
        target_domain=np.array([0, 1, 1, 1], np.int8),
        target_item=np.array([3, 4, 5, 1], np.int32),
        overlap=np.array([True, False, True, True]),
    )
    meta = base_meta([10, 11, 12], [None, *"abcdef"], [None, *"pqrst"], DataConfig(), {"kind": "hand"})
    split = to_split(rows, name, meta)
    return add_negatives(split, seed=0, k=negatives) if negatives else split


def test_columns_flags_and_thresholds_of_a_hand_split():
    s = tiny_split()
    assert s.table.column_names[:9] == [
        "user_id", "seq_x", "seq_y", "target_domain", "target_item", "overlap", "cold_start", "cold_start_kind", "tailed"
    ]
    assert s.column("cold_start").tolist() == [False, False, True, True]
    # row 2: Y target, X history [3] -> kind 1; row 3: Y target, X history -> kind 1
    assert s.column("cold_start_kind").tolist() == [0, 0, 1, 1]
    # full X lengths (target included): [3, 0, 1, 3] -> >2: [3, 3] -> drop floor(0.4)=0 -> mean 3
    assert s.meta["tail_threshold_x"] == 3
    # full Y lengths [1, 3, 1, 1] -> [3] -> 3
    assert s.meta["tail_threshold_y"] == 3
    assert s.column("tailed").tolist() == [True, True, True, True]


def test_tail_threshold_authors_rule_worked_example():
    # lengths > 2: [10, 9, 5, 4, 3] -> drop the longest floor(0.2*5)=1 -> mean(9,5,4,3)=5.25 -> 5
    assert tail_threshold(np.array([1, 2, 10, 9, 5, 4, 3, 2])) == 5
    # 10 lists of length 3..12: drop 2 longest -> mean(3..10)=6.5 -> 6
    assert tail_threshold(np.arange(3, 13)) == 6
    assert tail_threshold(np.array([1, 2, 2])) == 2  # nothing longer than 2: every row tailed


def test_round_trip_and_fingerprint(tmp_path):
    splits = {n: tiny_split(n) for n in ("train", "valid", "test")}
    write_dataset(splits, tmp_path / "ds", audit={"warnings": []})
    back = read_dataset(tmp_path / "ds")
    for name in splits:
        assert back[name].table.equals(splits[name].table)
        assert back[name].fingerprint == splits[name].fingerprint
        assert back[name].meta["item_ids_x"] == [None, *"abcdef"]
    assert json.loads((tmp_path / "ds" / "audit.json").read_text()) == {"warnings": []}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_with_columns_recomputes_fingerprint_and_column_lists():
    s = tiny_split()
    offsets, values = s.column_lists("seq_x")
    assert offsets.tolist() == [0, 2, 2, 3, 6] and values.tolist() == [1, 2, 3, 1, 2, 4]
    assert offsets.dtype == np.int64 and values.dtype == np.int32
    pseudo = lists_to_arrow(*ragged.from_lists([[5, 6], [1], [], [3]]))
    t = s.with_columns({"pseudo_x": pseudo, "pseudo_y": lists_to_arrow(*ragged.empty(4))}, {"pseudo": {"mode": "x"}})
    assert t.fingerprint != s.fingerprint and t.meta["pseudo"] == {"mode": "x"}
    assert ragged.to_lists(t.column_lists("pseudo_x")) == [[5, 6], [1], [], [3]]
    with pytest.raises(DatasetError, match="unknown column"):
        s.with_columns({"bogus": pseudo})


def write_raw(table: pa.Table, meta: dict, path) -> None:
    pq.write_table(table.replace_schema_metadata({META_FIELD: json.dumps(meta).encode()}), path)


def replace(split: Split, name: str, array) -> pa.Table:
    t = split.table
    return t.set_column(t.column_names.index(name), name, array)


def lists(values):
    return lists_to_arrow(*ragged.from_lists(values))


@pytest.mark.parametrize(
    "column, array, pattern",
    [
        ("user_id", pa.array([0, 1, 2, 0], pa.int32()), r"row|column 'user_id'.*wrong type int32"),
        ("user_id", pa.array([0, 1, 7, 0], pa.int64()), r"row 2, column 'user_id': 7 outside 0..2"),
        ("seq_x", lists([[1, 2], [], [9], [1, 2, 4]]), r"row 2, column 'seq_x': 9 outside 1..6"),
        ("seq_y", lists([[1], [2, 0], [], []]), r"row 1, column 'seq_y': the padding id 0 is stored"),
        ("target_item", pa.array([3, 4, 0, 1], pa.int32()), r"row 2, column 'target_item': the target is the padding id 0"),
        ("target_item", pa.array([3, 6, 5, 1], pa.int32()), r"row 1, column 'target_item': 6 outside 1..5"),
        ("target_domain", pa.array([0, 2, 1, 1], pa.int8()), r"row 1, column 'target_domain'"),
        # row 1 targets Y; an empty Y history on a row not marked cold-start
        ("seq_y", lists([[1], [], [], []]), r"row 1, column 'seq_y': empty target-domain history"),
        ("seq_x", lists([[1, 3], [], [3], [1, 2, 4]]), r"row 0, column 'seq_x': the history holds the target 3"),
        ("cold_start_kind", pa.array([0, 0, 2, 1], pa.int8()), r"row 2, column 'cold_start_kind'"),
    ],
)
def test_malformed_split_gives_clear_error(tmp_path, column, array, pattern):
    s = tiny_split()
    path = tmp_path / "bad.parquet"
    write_raw(replace(s, column, array), s.meta, path)
    with pytest.raises(DatasetError, match=pattern) as info:
        read_split(path)
    assert str(path) in str(info.value)


def test_missing_column_metadata_and_tampering(tmp_path):
    s = tiny_split()
    path = tmp_path / "a.parquet"
    write_raw(s.table.drop(["tailed"]), s.meta, path)
    with pytest.raises(DatasetError, match=r"column 'tailed': required column is missing"):
        read_split(path)
    pq.write_table(s.table, path)  # no metadata
    with pytest.raises(DatasetError, match="not a prepared split"):
        read_split(path)
    changed = replace(s, "tailed", pa.array([False, True, True, True]))
    write_raw(changed, s.meta, path)  # valid content, stale fingerprint
    with pytest.raises(DatasetError, match="fingerprint"):
        read_split(path)
    with pytest.raises(DatasetError, match="no such file"):
        read_split(tmp_path / "missing.parquet")


def test_negatives_and_pseudo_validation(tmp_path):
    s = tiny_split(negatives=1)
    path = tmp_path / "n.parquet"
    write_split(s, path)
    assert read_split(path).fingerprint == s.fingerprint
    # row 0 targets X 3 with history [1, 2]: negatives 1 (history) and 3 (target) are refused
    for bad, what in ((1, "history"), (3, "target")):
        negatives = s.column_lists("negatives")[1].copy()
        negatives[0] = bad
        write_raw(replace(s, "negatives", lists_to_arrow(np.arange(5), negatives)), s.meta, path)
        with pytest.raises(DatasetError, match=r"row 0, column 'negatives': negative \d is in the history or the target"):
            read_split(path)
    t = s.with_columns({"pseudo_x": lists([[2], [], [], []]), "pseudo_y": lists([[], [], [], []])})
    write_raw(t.table, t.meta, path)
    with pytest.raises(DatasetError, match=r"row 0, column 'pseudo_x': recalled item 2 is in the history"):
        read_split(path)


def test_write_dataset_is_atomic(tmp_path):
    good = {n: tiny_split(n) for n in ("train", "valid", "test")}
    write_dataset(good, tmp_path / "ds")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()}
    bad = dict(good)
    bad["test"] = Split(replace(good["test"], "target_item", pa.array([3, 4, 0, 1], pa.int32())), good["test"].meta, "test")
    with pytest.raises(DatasetError, match="padding id 0"):
        write_dataset(bad, tmp_path / "ds")
    after = {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()}
    assert before == after  # the old dataset is untouched
    with pytest.raises(DatasetError):
        write_dataset(bad, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # nothing half-written
    with pytest.raises(DatasetError, match="missing split"):
        write_dataset({"train": good["train"]}, tmp_path / "x")
