"""Model-free scorers, the authors' candidate pool and the CSV reader on tiny hand-made data."""

from __future__ import annotations

import gzip

import jax.numpy as jnp
import numpy as np
import pytest

from imvae_jax.eval.baselines import ItemOrder, Popularity, authors_candidates, evaluate_scorers, learned_order
from imvae_jax.eval.metrics import target_ranks
from imvae_jax.eval.rows import authors_tail_threshold, read_authors_csv, with_target_in_train

CSV = """user_id,seq_d1,seq_d2,domain_id
7,"[0, 4, 2, 4, 9]","[5, 6]",0
7,"[0, 4, 2, 4, 9]","[5, 6]",1
8,[3],"[1, 2, 3]",0
9,[3],[],0
10,"[1, 2, 3]",[],0
"""


def _write(tmp_path, text: str, name: str = "t.csv.gz"):
    path = tmp_path / name
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def test_read_authors_csv(tmp_path):
    rows = read_authors_csv(_write(tmp_path, CSV))
    assert len(rows) == 5
    # ids shifted by +1; target = last item; earlier copies of the target dropped
    np.testing.assert_array_equal(rows.target_item, [10, 7, 4, 4, 4])
    np.testing.assert_array_equal(rows.history(0, 0), [1, 5, 3, 5])
    np.testing.assert_array_equal(rows.history(1, 0), [6, 7])  # other list kept whole
    np.testing.assert_array_equal(rows.history(0, 1), [1, 5, 3, 5, 10])
    np.testing.assert_array_equal(rows.history(1, 1), [6])
    np.testing.assert_array_equal(rows.cold_start_kind, [0, 0, 1, 2, 0])
    # X column lengths > 2: [5, 5, 3] -> drop int(0.6)=0 longest -> floor(13/3) = 4; Y: [3] -> 3
    np.testing.assert_array_equal(rows.tailed, [False, True, True, True, True])
    np.testing.assert_array_equal(rows.column_items(0), [1, 2, 3, 4, 5, 10])
    batch = rows.as_batch(np.zeros((5, 3), np.int32), max_len=3)
    np.testing.assert_array_equal(batch["seq_x"][0], [5, 3, 5])
    np.testing.assert_array_equal(batch["seq_x"][2], [0, 0, 0])
    np.testing.assert_array_equal(batch["len_x"], [3, 3, 0, 0, 2])


def test_tail_threshold():
    assert authors_tail_threshold([1, 2, 3, 4, 5, 6, 7, 8, 20]) == 5  # drop 20 (int(0.2*7)=1), mean(3..8)=5.5
    assert authors_tail_threshold([1, 2]) == 0


def test_read_errors_name_file_line_column(tmp_path):
    bad = CSV.replace('"[5, 6]",1', '"[5, x]",1')
    with pytest.raises(ValueError, match=r"t\.csv\.gz: line 3, column 'seq_d2'"):
        read_authors_csv(_write(tmp_path, bad))
    with pytest.raises(ValueError, match=r"line 2: target list seq_d1 is empty"):
        read_authors_csv(_write(tmp_path, 'user_id,seq_d1,seq_d2,domain_id\n1,[],[3],0\n'))
    with pytest.raises(ValueError, match="domain_id"):
        read_authors_csv(_write(tmp_path, 'user_id,seq_d1,seq_d2,domain_id\n1,[2],[3],2\n'))


def test_target_in_train(tmp_path):
    test = read_authors_csv(_write(tmp_path, CSV))
    train = read_authors_csv(_write(tmp_path, 'user_id,seq_d1,seq_d2,domain_id\n7,"[8, 9]","[1, 6]",1\n8,[0],"[3]",1\n', "train.csv.gz"))
    flagged = with_target_in_train(test, train)
    # user 7: X target 10 (file id 9) is in train X list; Y target 7 (file 6) in train Y list
    np.testing.assert_array_equal(flagged.target_in_train, [True, True, False, False, False])


def test_popularity_scores(tmp_path):
    train = read_authors_csv(_write(tmp_path, CSV))
    pop = Popularity.fit(train)
    # X column: lists [1,5,3,5,10] x2 rows, [4], [4], [2,3,4]
    batch = {"target_domain": np.array([0, 1]), "candidates": np.array([[5, 4, 99], [7, 6, 1]])}
    np.testing.assert_array_equal(pop.score(batch), [[4, 3, 0], [2, 2, 0]])


def test_target_popularity_counts_only_targets(tmp_path):
    train = read_authors_csv(_write(tmp_path, CSV))
    pop = Popularity.fit(train, targets_only=True)
    # X targets (ids +1): 10, 4, 4, 4; Y target: 7. History items (5, 3, 1, ...) count 0
    batch = {"target_domain": np.array([0, 1]), "candidates": np.array([[4, 10, 5, 99], [7, 6, 1, 4]])}
    np.testing.assert_array_equal(pop.score(batch), [[3, 1, 0, 0], [1, 0, 0, 0]])


def test_learned_order_respects_lists_and_reports_cycles():
    rng = np.random.default_rng(0)
    hidden = rng.permutation(np.arange(1, 41))  # the true global order of ids 1..40
    lists = [np.sort(rng.choice(40, size=rng.integers(2, 8), replace=False)) for _ in range(60)]
    lists = [hidden[x] for x in lists]
    position, breaks = learned_order(lists)
    assert breaks == 0
    for items in lists:
        assert (np.diff(position[items]) > 0).all()
    assert np.isnan(position[0])
    _, breaks = learned_order([np.array([1, 2]), np.array([2, 3]), np.array([3, 1])])
    assert breaks == 1


def test_item_order_scores_next_item_first(tmp_path):
    # hidden order 1 < 2 < ... < 6 seen in training lists; scores rank "soonest after last" first
    train_lists = [[1, 2, 3], [2, 4, 5], [3, 5, 6], [1, 4, 6], [1, 2, 5]]
    text = "user_id,seq_d1,seq_d2,domain_id\n" + "".join(f'{u},"{[i - 1 for i in x]}",[],0\n' for u, x in enumerate(train_lists))
    train = read_authors_csv(_write(tmp_path, text))
    for order in ("learned", "id"):
        scorer = ItemOrder.fit(train, order)
        batch = {
            "target_domain": np.array([0, 0]),
            "seq_x": np.array([[1, 3], [0, 0]]),  # row 1: no history -> popularity
            "seq_y": np.zeros((2, 2), np.int32),
            "candidates": np.array([[4, 6, 2, 5, 99], [1, 3, 2, 6, 99]]),
        }
        scores = scorer.score(batch)
        # row 0, last = 3: after it 4 then 5 then 6; before it: 2; unknown 99 between
        order_row0 = list(np.argsort(-scores[0], kind="stable"))
        if order == "learned":
            assert order_row0 == [0, 3, 1, 4, 2]
        assert scores[0, 0] == scores[0].max()
        # row 1: popularity: counts 1:3, 2:3, 3:2, 6:2, 99:0 -> ties kept
        assert scores[1, 0] == scores[1, 2] > scores[1, 1] == scores[1, 3] > scores[1, 4]
        assert int(target_ranks(jnp.asarray(scores))[1]) == 1  # tie counts against the target


def test_authors_candidates(tmp_path):
    rows = read_authors_csv(_write(tmp_path, CSV))
    cands = authors_candidates(rows, num_negatives=2, seed=3)
    np.testing.assert_array_equal(cands, authors_candidates(rows, num_negatives=2, seed=3))
    np.testing.assert_array_equal(cands[:, 0], rows.target_item)
    for r in range(len(rows)):
        d = rows.target_domain[r]
        excluded = set(rows.history(d, r).tolist()) | {int(rows.target_item[r])}
        negatives = cands[r, 1:]
        assert len(set(negatives.tolist())) == 2
        assert set(negatives.tolist()) <= set(rows.column_items(d).tolist()) - excluded
    with pytest.raises(ValueError, match=r"row 0 has 2 eligible negatives in domain x, 3 requested"):
        authors_candidates(rows, num_negatives=3)


def test_authors_candidates_uniform():
    # pool = the X targets 1..6; row 0 (target 6): negatives uniform over 1..5
    from imvae_jax.eval.rows import EvalRows

    rows = EvalRows(
        name="u",
        user_id=np.arange(6),
        history_offsets=(np.zeros(7, np.int64), np.zeros(7, np.int64)),
        history_values=(np.zeros(0, np.int32), np.zeros(0, np.int32)),
        target_domain=np.zeros(6, np.int8),
        target_item=np.array([6, 1, 2, 3, 4, 5], np.int32),
        tailed=np.zeros(6, bool),
        cold_start_kind=np.full(6, 2, np.int8),
    )
    counts = np.zeros(7)
    for seed in range(400):
        np.add.at(counts, authors_candidates(rows, num_negatives=2, seed=seed)[0, 1:], 1)
    assert counts[6] == 0 and counts[0] == 0
    assert np.abs(counts[1:6] / 800 - 0.2).max() < 0.05


def test_game_video_item_order_reproduces_readme(shared_data):
    folder = shared_data / "imvae_game_video"
    train = read_authors_csv(folder / "game_video_train.csv.gz")
    test = read_authors_csv(folder / "game_video_test_csu.csv.gz")
    keep = np.flatnonzero(np.arange(len(test)) % 4 == 0)  # a quarter of the rows, for speed

    def take(rows, index):
        from dataclasses import replace

        def ragged(d):
            lists = [rows.history(d, r) for r in index]
            offsets = np.concatenate([[0], np.cumsum([x.size for x in lists])])
            return offsets, np.concatenate(lists).astype(np.int32)

        (ox, vx), (oy, vy) = ragged(0), ragged(1)
        return replace(rows, user_id=rows.user_id[index], history_offsets=(ox, oy), history_values=(vx, vy),
                       target_domain=rows.target_domain[index], target_item=rows.target_item[index],
                       tailed=rows.tailed[index], cold_start_kind=rows.cold_start_kind[index])

    results = evaluate_scorers(train, take(test, keep), num_negatives=999, seed=0, ks=(10,))
    for domain in ("x", "y"):
        # README caveat 1: ~18-20 % HR@10 with the id order; popularity far below
        assert 0.15 < results["item_order_id"][domain]["all"]["hr@10"] < 0.24
        assert results["popularity"][domain]["all"]["hr@10"] < 0.10
        assert results["item_order_learned"][domain]["all"]["hr@10"] > 0.12


def test_dense_ranks_match_scipy():
    from scipy.stats import rankdata

    from imvae_jax.eval.baselines import _dense_ranks

    key = np.random.default_rng(0).integers(0, 6, (40, 25)).astype(float)  # many ties
    np.testing.assert_array_equal(_dense_ranks(key), rankdata(key, method="dense", axis=1))
