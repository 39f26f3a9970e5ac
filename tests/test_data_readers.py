"""Readers on small hand-made files, against hand-computed splits; every malformed input's error."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from imvae_jax.data import ragged
from imvae_jax.data.config import DataConfig
from imvae_jax.data.readers import build_authors, build_ratings, k_core, read_authors_csv, read_ratings
from imvae_jax.data.schema import DatasetError

AUTHORS_TRAIN = """user_id,seq_d1,seq_d2,domain_id
10,"[5, 7, 9]","[7, 2]",0
11,"[3, 5]",[],0
12,[],"[2, 8, 4]",1
10,"[5, 7, 9]","[7, 2]",1
13,"[9, 3]",[8],0
17,"[3, 5, 3]",[],0
"""
AUTHORS_TEST = """user_id,seq_d1,seq_d2,domain_id
14,"[3, 9]",[2],0
15,[5],"[4, 8]",0
16,[],[8],1
10,"[5, 7, 9, 3]","[7, 2]",0
13,"[9, 3]",[8],1
"""
# X ids {3,5,7,9} -> 1..4; Y ids {2,4,7,8} -> 1..4 (7 is an item of each catalogue);
# users {10,11,12,13,14,15,16,17} -> 0..7


def write(path, text, compress=False):
    if compress:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return str(path)


def rows_of(split):
    return list(
        zip(
            split.column("user_id").tolist(),
            ragged.to_lists(split.column_lists("seq_x")),
            ragged.to_lists(split.column_lists("seq_y")),
            split.column("target_domain").tolist(),
            split.column("target_item").tolist(),
            split.column("overlap").tolist(),
            split.column("cold_start_kind").tolist(),
        )
    )


def test_authors_hand_made(tmp_path):
    cfg = DataConfig(
        source="authors",
        train_path=write(tmp_path / "train.csv.gz", AUTHORS_TRAIN, compress=True),
        test_path=write(tmp_path / "test.csv", AUTHORS_TEST),
        valid_fraction=0.0,
        num_eval_negatives=0,
    )
    splits = build_authors(cfg)
    test = splits["test"]
    assert test.meta["item_ids_x"] == [None, 3, 5, 7, 9] and test.meta["item_ids_y"] == [None, 2, 4, 7, 8]
    assert test.meta["user_ids"] == [10, 11, 12, 13, 14, 15, 16, 17]
    assert rows_of(splits["train"]) == [
        (0, [2, 3], [3, 1], 0, 4, True, 0),  # X target 9; Y id 7 is Y item 3, X id 7 is X item 3
        (1, [1], [], 0, 2, False, 0),
        (2, [], [1, 4], 1, 2, False, 0),
        (0, [2, 3, 4], [3], 1, 1, True, 0),
        (3, [4], [4], 0, 1, True, 0),
        (7, [2], [], 0, 1, False, 0),  # [3, 5, 3]: target 3, its earlier copy leaves the history
    ]
    assert rows_of(test) == [
        (4, [1], [1], 0, 4, True, 0),
        (5, [], [2, 4], 0, 2, True, 1),  # cold-start: only the target in X, Y present
        (6, [], [], 1, 4, False, 2),  # no history at all
        (0, [2, 3, 4], [3, 1], 0, 1, True, 0),
        (3, [4, 1], [], 1, 4, True, 1),
    ]
    # user 13's training row holds Y id 8 = this test row's target
    assert test.column("target_in_train").tolist() == [False, False, False, False, True]
    # X lengths incl. target [2, 1, 0, 4, 2] -> over 2: [4] -> 4; Y [1, 2, 1, 2, 1] -> none -> 2
    assert (test.meta["tail_threshold_x"], test.meta["tail_threshold_y"]) == (4, 2)
    assert test.column("tailed").tolist() == [True, True, True, True, True]
    assert len(splits["valid"]) == 0
    stats = test.meta["source"]["file_stats"]["test"]
    assert (stats["cold_start_rows"], stats["no_history_rows"], stats["ids_in_both_columns"]) == (2, 1, 1)  # id 7 in both columns


def test_authors_offset_layout_shared_ids_and_pseudo(tmp_path):
    # offset layout: X ids < 100, Y ids >= 100; id 105 is in both columns (one product, two catalogues)
    train = 'user_id,seq_d1,seq_d2,domain_id\n1,"[1, 2, 105]","[100, 105]",0\n2,"[2, 1]",[],0\n'
    test = (
        ",user_id,seq_d1,seq_d2,domain_id,corr_d1,corr_d2\n"
        '0,3,"[2, 105]","[100]",0,"[1, 2]","[105, 100]"\n'
    )
    cfg = DataConfig(train_path=write(tmp_path / "a.csv", train), test_path=write(tmp_path / "b.csv", test),
                     valid_fraction=0.0, num_eval_negatives=0)
    splits = build_authors(cfg)
    t = splits["test"]
    assert t.meta["item_ids_x"] == [None, 1, 2, 105] and t.meta["item_ids_y"] == [None, 100, 105]
    assert rows_of(t) == [(2, [2], [1], 0, 3, True, 0)]
    # corr_d1 [1, 2]: X id 2 is in the X history and is dropped; corr_d2 [105, 100]: Y id 100 is the
    # Y history and is dropped, leaving Y item 2 (source 105)
    assert ragged.to_lists(t.column_lists("pseudo_x")) == [[1]]
    assert ragged.to_lists(t.column_lists("pseudo_y")) == [[2]]
    assert t.meta["source"]["pseudo_items_dropped"] == {"train": 0, "test": 2}
    assert "pseudo_x" not in splits["train"].table.column_names


def test_authors_valid_carve_and_leaky_rows(tmp_path):
    lines = ["user_id,seq_d1,seq_d2,domain_id"]
    for u in range(40):  # users 0..39, two rows each when overlapping
        lines.append(f'{u},"[1, 2, {3 + u % 5}]","[4, {5 + u % 3}]",0')
        if u % 2:
            lines.append(f'{u},"[1, 2, {3 + u % 5}]","[4, {5 + u % 3}]",1')
    test = 'user_id,seq_d1,seq_d2,domain_id\n100,"[1, 2]","[4]",0\n101,"[9]","[5, 4]",0\n102,[],"[6]",1\n'
    cfg = DataConfig(train_path=write(tmp_path / "a.csv", "\n".join(lines) + "\n"),
                     test_path=write(tmp_path / "b.csv", test), num_eval_negatives=0, valid_fraction=0.25)
    splits = build_authors(cfg)
    train, valid = splits["train"], splits["valid"]
    tu, vu = set(train.column("user_id").tolist()), set(valid.column("user_id").tolist())
    assert len(vu) == 10 and not tu & vu and len(train) + len(valid) == 60
    source = valid.meta["source"]["valid_cold_start"]
    # test: 2 overlapping rows, 1 cut (share 0.5); 1 single-domain row, cut (share 1.0)
    assert source["share_overlap_rows_cold_start"] == 0.5 and source["share_single_rows_no_history"] == 1.0
    assert int((valid.column("cold_start_kind") == 1).sum()) == round(0.5 * valid.column("overlap").sum())
    # leaky rows: a test target inside the same user's training list is dropped on request
    test2 = 'user_id,seq_d1,seq_d2,domain_id\n1,"[1, 2, 9]","[4]",1\n'  # user 1's Y target 4 is in train
    cfg2 = DataConfig(train_path=cfg.train_path, test_path=write(tmp_path / "c.csv", test2),
                      num_eval_negatives=0, valid_fraction=0.0, drop_leaky_train_rows=True)
    s2 = build_authors(cfg2)
    assert 1 not in s2["train"].column("user_id").tolist()
    assert s2["test"].meta["source"]["leaky_train_rows_dropped"] == 2
    assert not s2["test"].column("target_in_train").any()


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("user_id,seq_d1,domain_id\n1,[1],0\n", r"lacks column\(s\) \['seq_d2'\]"),
        ('user_id,seq_d1,seq_d2,domain_id\n1,"[1, a]",[],0\n', r"row 0 \(line 2\), column 'seq_d1': item 'a' is not an integer"),
        ("user_id,seq_d1,seq_d2,domain_id\n1,[1],[],0\n2,[1],[2],2\n", r"row 1 \(line 3\), column 'domain_id': 2 is neither"),
        ("user_id,seq_d1,seq_d2,domain_id\n1,[1],[],1\n", r"row 0 \(line 2\), column 'seq_d2': the target-domain list is empty"),
        ("user_id,seq_d1,seq_d2,domain_id\n1,[1],[]\n", r"row 0 \(line 2\): 3 fields, the header has 4"),
        ("user_id,seq_d1,seq_d2,domain_id\nx,[1],[],0\n", r"row 0 \(line 2\), column 'user_id': 'x' is not an integer"),
        ("user_id,seq_d1,seq_d2,domain_id\n1,1 2,[],0\n", r"column 'seq_d1': '1 2' is not a list"),
        ("user_id,seq_d1,seq_d2,domain_id\n1,[-3],[],0\n", r"column 'seq_d1': negative item id -3"),
        ("user_id,seq_d1,seq_d2,domain_id,extra\n1,[1],[],0,5\n", r"unknown column\(s\) \['extra'\]"),
        ("", r"empty file"),
        ("user_id,seq_d1,seq_d2,domain_id\n", r"no data rows"),
    ],
)
def test_authors_malformed(tmp_path, text, pattern):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DatasetError, match=pattern) as info:
        read_authors_csv(path)
    assert path in str(info.value)


RATINGS_X = """user,item,rating,timestamp
u1,a,5,100
u1,b,4,50
u1,c,2,200
u1,d,5,300
u2,a,5,10
u2,d,5,20
u3,b,5,5
"""
RATINGS_Y = "u1,p,5,10\nu1,q,5,20\nu2,q,5,5\nu4,p,5,1\nu4,r,5,2\nu4,q,5,3\n"
# min_rating 3 drops (u1, c). X: u1 b a d, u2 a d, u3 b; Y: u1 p q, u2 q, u4 p r q.
# X items a b d -> 1 2 3; Y items p q r -> 1 2 3; users u1..u4 -> 0..3.


def ratings_cfg(tmp_path, **kw):
    return DataConfig(
        source="ratings",
        ratings_x=write(tmp_path / "x.csv.gz", RATINGS_X, compress=True),
        ratings_y=write(tmp_path / "y.csv", RATINGS_Y),
        min_rating=3.0,
        num_eval_negatives=0,
        **kw,
    )


def test_ratings_protocol_hand_made(tmp_path):
    splits = build_ratings(ratings_cfg(tmp_path, split=(1.0, 0.0, 0.0)))
    train = splits["train"]
    assert train.meta["item_ids_x"] == [None, "a", "b", "d"] and train.meta["item_ids_y"] == [None, "p", "q", "r"]
    assert train.meta["user_ids"] == ["u1", "u2", "u3", "u4"]
    assert rows_of(train) == [
        (0, [2, 1], [1, 2], 0, 3, True, 0),  # u1 X: b(50) a(100) -> d(300); Y p q
        (0, [2, 1, 3], [1], 1, 2, True, 0),  # u1 Y: p -> q
        (1, [1], [2], 0, 3, True, 0),  # u2 X: a -> d; u2's single Y item makes no Y row
        (3, [], [1, 3], 1, 2, False, 0),  # u4 Y: p r -> q; u3 (one X item) has no row
    ]
    assert len(splits["valid"]) == 0 and len(splits["test"]) == 0


def test_ratings_cold_start_and_time_cut(tmp_path):
    test = build_ratings(ratings_cfg(tmp_path, split=(0.0, 0.0, 1.0), cold_start_ratio=1.0))["test"]
    # every overlapping test row loses its target-domain history; u4 (Y only) keeps it
    assert rows_of(test) == [
        (0, [], [1, 2], 0, 3, True, 1),
        (0, [2, 1, 3], [], 1, 2, True, 1),
        (1, [], [2], 0, 3, True, 1),
        (3, [], [1, 3], 1, 2, False, 0),
    ]
    cut = build_ratings(ratings_cfg(tmp_path, split=(1.0, 0.0, 0.0), other_domain_before_target=True))["train"]
    # u1's Y target q is at time 20: all of u1's X items come later, so no X input on that row
    assert rows_of(cut)[1] == (0, [], [1], 1, 2, True, 0)
    assert rows_of(cut)[0] == (0, [2, 1], [1, 2], 0, 3, True, 0)


def test_k_core():
    user = np.array(["a", "a", "b", "b", "c", "a"])
    item = np.array(["x", "y", "x", "y", "x", "z"])
    # k=2: z (1 rating) goes, then user c (1 rating) goes; a, b keep x and y
    assert k_core(user, item, 2).tolist() == [True, True, True, True, False, False]
    assert k_core(user, item, 3).tolist() == [False] * 6
    assert k_core(user, item, 0).all()


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("u1,a,5\n", r"row 0 \(line 1\): 3 fields, expected 4"),
        ("u1,a,5,1\nu1,b,x,2\n", r"row 1 \(line 2\), column 'rating': 'x' is not a number"),
        ("user,item,rating,timestamp\nu1,a,5,1\nu1,b,5,soon\n", r"row 1 \(line 3\), column 'timestamp': 'soon'"),
        ("u1,,5,1\n", r"row 0 \(line 1\), column 'item': empty"),
        ("user,item,rating,timestamp\n", r"no ratings"),
    ],
)
def test_ratings_malformed(tmp_path, text, pattern):
    path = write(tmp_path / "r.csv", text)
    with pytest.raises(DatasetError, match=pattern) as info:
        read_ratings(path)
    assert path in str(info.value)


def test_missing_inputs(tmp_path):
    with pytest.raises(DatasetError, match="needs data.train_path"):
        build_authors(DataConfig())
    with pytest.raises(DatasetError, match="not found"):
        read_ratings(tmp_path / "none.csv")
