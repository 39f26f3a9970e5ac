"""PSG on a prepared dataset: graph edges, recalled columns, metadata, writing, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from imvae_jax.psg.config import PSGConfig

FAST = dict(dim=8, epochs=6, eval_every=3, batch_size=256, lr=1e-2)


@pytest.fixture(scope="module")
def splits():
    from imvae_jax.data.synthetic import build_synthetic

    return build_synthetic(synthetic_users=300, synthetic_items_x=120, synthetic_items_y=100, num_eval_negatives=20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, splits):
    from imvae_jax.data.schema import write_dataset

    return write_dataset(splits, tmp_path_factory.mktemp("psg") / "data")


def rows_lists(split, column):
    offsets, values = split.column_lists(column)
    return [values[offsets[r] : offsets[r + 1]].tolist() for r in range(len(split))]


def test_graph_edges_are_histories_and_train_targets_only(splits):
    from imvae_jax.psg.pipeline import dataset_interactions

    nx = splits["train"].n_items[0]
    for mode in ("histories+train_targets", "histories"):
        edges = dataset_interactions(splits, mode)
        got = set(zip(edges.users.tolist(), edges.items.tolist()))
        expected = set()
        for name, split in splits.items():
            users = split.column("user_id").tolist()
            for r, (sx, sy) in enumerate(zip(rows_lists(split, "seq_x"), rows_lists(split, "seq_y"))):
                expected |= {(users[r], v - 1) for v in sx} | {(users[r], nx + v - 1) for v in sy}
            if name == "train" and mode == "histories+train_targets":
                domain, target = split.column("target_domain"), split.column("target_item")
                expected |= {(u, int(t) - 1 + (nx if d else 0)) for u, d, t in zip(users, domain, target)}
        assert got == expected, mode


def test_recalled_items_respect_history_domain_and_target_rule(splits):
    from imvae_jax.psg.pipeline import make_pseudo

    out, summary = make_pseudo(splits, PSGConfig(**FAST))
    n_items = splits["train"].n_items
    for name, split in out.items():
        meta = split.meta["pseudo"]
        assert meta["mode"] == "lightgcn" and meta["fingerprint"] == summary["fingerprint"]
        assert meta["config"]["top_k"] == 20 and meta["source_fingerprints"][name] == splits[name].fingerprint
        for d, dom in enumerate("xy"):
            history = rows_lists(split, f"seq_{dom}")
            for r, pseudo in enumerate(rows_lists(split, f"pseudo_{dom}")):
                assert len(pseudo) == 20 and len(set(pseudo)) == 20
                assert all(1 <= v <= n_items[d] for v in pseudo)
                assert not set(pseudo) & set(history[r])
    # the target is not excluded: on this easy data LightGCN recalls it for many rows
    assert summary["target_in_pseudo"]["test"]["x"] > 0.1
    _, again = make_pseudo(splits, PSGConfig(**FAST, exclude_target=True))
    assert all(v == 0.0 for rates in again["target_in_pseudo"].values() for v in rates.values())
    assert again["fingerprint"] != summary["fingerprint"]


def test_recall_order_is_descending_score(splits):
    from imvae_jax.psg.graph import build_graph
    from imvae_jax.psg.lightgcn import final_embeddings
    from imvae_jax.psg.pipeline import dataset_interactions, recall_split

    edges = dataset_interactions(splits)
    rng = np.random.default_rng(0)
    table = rng.standard_normal((edges.n_users + edges.n_items, 4)).astype(np.float32)
    user_emb, item_emb = final_embeddings(table, build_graph(edges.users, edges.items, edges.n_users, edges.n_items), 2)
    split = splits["valid"]
    pseudo = recall_split(split, user_emb, item_emb, edges.n_items_x, PSGConfig(top_k=7))
    users = split.column("user_id")
    for d, dom in enumerate("xy"):
        offsets, values = pseudo[f"pseudo_{dom}"]
        block = item_emb[: edges.n_items_x] if d == 0 else item_emb[edges.n_items_x :]
        for r in range(len(split)):
            got = values[offsets[r] : offsets[r + 1]] - 1
            scores = block @ user_emb[users[r]]
            assert (np.diff(scores[got]) <= 1e-6).all()
            allowed = np.setdiff1d(np.arange(block.shape[0]), np.array(rows_lists(split, f"seq_{dom}")[r], int) - 1)
            assert scores[got].min() >= np.sort(scores[allowed])[-7] - 1e-5


def test_add_pseudo_writes_a_readable_dataset_and_random_mode(dataset, tmp_path):
    from imvae_jax.data.schema import read_dataset
    from imvae_jax.psg.pipeline import add_pseudo

    cfg = PSGConfig(mode="random", top_k=15)
    summary = add_pseudo(dataset, tmp_path / "random", cfg)
    out = read_dataset(tmp_path / "random")
    assert out["test"].meta["pseudo"]["mode"] == "random"
    assert out["test"].meta["pseudo"]["fingerprint"] == summary["fingerprint"]
    assert (tmp_path / "random" / "audit.json").is_file() == (dataset / "audit.json").is_file()
    offsets, values = out["train"].column_lists("pseudo_y")
    assert (np.diff(offsets) == 15).all()
    base = read_dataset(dataset)
    for name in ("train", "valid", "test"):  # every original column kept
        for column in base[name].table.column_names:
            assert out[name].table.column(column).equals(base[name].table.column(column))


def test_cli_writes_pseudo_columns(dataset, tmp_path, capsys):
    from imvae_jax.cli import main
    from imvae_jax.data.schema import read_dataset

    out = tmp_path / "lgcn"
    code = main(["psg", str(dataset), "--out", str(out), "--set", "psg.epochs=3", "--set", "psg.eval_every=3",
                 "--set", "psg.dim=8", "--json"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Recall@20" in text and "wrote" in text
    assert (tmp_path / "lgcn.psg-run" / "checkpoints").is_dir()
    assert read_dataset(out)["valid"].meta["pseudo"]["training"]["epochs_run"] == 3
