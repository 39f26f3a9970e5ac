"""The audit on worked examples, and the ``imvae prepare`` / ``imvae audit`` commands end to end."""

from __future__ import annotations

import json

import numpy as np

from imvae_jax.cli import main
from imvae_jax.data import ragged
from imvae_jax.data.audit import ascending_share, audit, ordered_pairs, pair_order_consistency
from imvae_jax.data.build import Rows, base_meta, to_split
from imvae_jax.data.config import DataConfig
from imvae_jax.data.schema import read_dataset


def test_ordered_pairs_and_consistency_worked_example():
    lists = ragged.from_lists([[1, 2, 3], [1, 3], [3, 2]])
    rows, a, b = ordered_pairs(lists)
    assert list(zip(rows.tolist(), a.tolist(), b.tolist())) == [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 1, 3), (2, 3, 2)]
    # (1,2) is in one user's list only; (1,3) keeps its order in users 0 and 1; (2,3) flips in user 2
    result = pair_order_consistency(lists, np.array([0, 1, 2]))
    assert (result["pairs"], result["consistent_pairs"], result["consistent_share"]) == (2, 1, 0.5)
    # the same user's two identical lists count once: (1,3) then has one user only
    assert pair_order_consistency(lists, np.array([0, 0, 2]))["pairs"] == 1
    assert ascending_share(lists) == 2 / 3


def _split(name, user, seq_x, seq_y, domain, target):
    rows = Rows(
        user=np.array(user), seq_x=ragged.from_lists(seq_x), seq_y=ragged.from_lists(seq_y),
        target_domain=np.array(domain, np.int8), target_item=np.array(target, np.int32),
        overlap=np.array([bool(x) and bool(y) for x, y in zip(seq_x, seq_y)]),
    )
    meta = base_meta(list(range(5)), [None, *range(9)], [None, *range(9)], DataConfig(), {"kind": "hand"})
    return to_split(rows, name, meta)


def test_audit_finds_leaks_global_order_and_no_history_rows():
    from imvae_jax.data.build import target_in_train

    train = _split("train", [0, 1, 2], [[1, 2], [1, 2], [2, 3]], [[1, 4], [], [5]], [0, 0, 1], [3, 3, 6])
    test_rows = Rows(
        user=np.array([0, 3, 4]), seq_x=ragged.from_lists([[1, 2, 3], [], []]), seq_y=ragged.from_lists([[5], [2], []]),
        target_domain=np.array([1, 0, 1], np.int8), target_item=np.array([4, 1, 7], np.int32),
        overlap=np.array([True, True, False]),
    )
    train_rows = Rows(
        user=np.array([0, 1, 2]), seq_x=ragged.from_lists([[1, 2], [1, 2], [2, 3]]),
        seq_y=ragged.from_lists([[1, 4], [], [5]]), target_domain=np.array([0, 0, 1], np.int8),
        target_item=np.array([3, 3, 6], np.int32), overlap=np.array([True, False, True]),
    )
    flags = target_in_train(test_rows, train_rows, (9, 9))
    assert flags.tolist() == [True, False, False]  # user 0's training Y list [1, 4] holds Y target 4
    test = to_split(test_rows, "test", dict(train.meta), flags)
    report = audit({"train": train, "valid": test.select_rows(np.array([], np.int64)), "test": test})
    assert report["leakage"]["test"]["target_in_same_users_train_row"] == 1
    assert report["leakage"]["test"]["users_also_in_train"] == 1
    assert report["splits"]["test"]["no_history_rows"] == 1  # user 4: nothing but the target
    assert report["splits"]["test"]["cold_start_other_domain"] == 1  # user 3
    # X lists [1,2,3] [1,2,3] [2,3] [1,2,3]: every shared pair keeps its order -> a global order
    assert report["chronology"]["x"]["consistent_share"] == 1.0
    assert any("target" in w and "training row" in w for w in report["warnings"])
    assert any("no history" in w for w in report["warnings"])


def test_prepare_and_audit_commands(tmp_path, capsys):
    out = tmp_path / "syn"
    code = main(["prepare", "--source", "synthetic", "--set", "data.synthetic_users=300", "--seed", "2",
                 "--out", str(out), "--json"])
    assert code == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed.strip().splitlines()[-1])
    splits = read_dataset(out)
    assert [r["rows"] for r in summary["summary"]] == [len(splits[n]) for n in ("train", "valid", "test")]
    assert splits["train"].meta["build"]["seed"] == 2
    assert "tail thr X/Y" in printed and (out / "audit.json").is_file()
    assert main(["audit", str(out), "--out", str(tmp_path / "a.json")]) == 0
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["splits"]["test"]["rows"] == len(splits["test"])
    # a failing prepare leaves nothing behind
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,seq_d1,seq_d2,domain_id\n1,[1],[],1\n")
    code = main(["prepare", "--source", "authors", "--train", str(bad), "--test", str(bad), "--out", str(tmp_path / "x")])
    assert code == 1
    assert "column 'seq_d2'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "bad.csv", "syn"]
