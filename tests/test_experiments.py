"""Experiments: the paper's transcribed numbers, the result tables, and every ``--quick`` mode.

The quick modes train tiny models for one epoch on a slice of the data, so their numbers
are meaningless; the tests assert that each entry point writes its tables and JSON with
finite numbers in the expected cells, so the entry points cannot rot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from experiments import paper_numbers as paper, stopping

PAPER_TEXT = Path("/work/shared/paper/imvae.txt")


# ----------------------------------------------------------------------------- paper numbers


def test_hand_checked_cells():
    """Cells read off the paper by hand (not by the transcription script)."""
    assert paper.TABLE2["Game"]["cold_start"]["hr@10"]["IM-VAE"] == (22.55, 2.17)
    assert paper.TABLE2["Cloth"]["all"]["ndcg@10"]["SA-VAE"] == (2.52, 0.10)
    assert paper.TABLE2["Elec"]["tailed"]["hr@10"]["C2DSR"] == (13.05, 0.28)
    assert paper.TABLE2["Sport"]["cold_start"]["ndcg@10"]["SASRec"] == (3.92, 0.40)
    assert paper.TABLE3["Cloth"]["cold_start"]["hr@10"]["w/o PSG"] == (6.21, 0.23)
    assert paper.TABLE3["Sport"]["all"]["ndcg@10"]["w/o IF-R&DS-R"] == (4.31, 0.16)
    assert paper.TABLE4["Sport"]["cold_start"]["hr@10"][(25, "IM-VAE")] == 1.48
    assert paper.TABLE5["Cloth"]["all"]["hr@10"][(50, "SA-VAE")] == 3.43
    assert paper.TABLE5["Sport"]["tailed"]["ndcg@10"][(100, "IM-VAE")] == 3.36


def test_phone_all_correction():
    """The printed Phone 'All' IM-VAE cells repeat Game's; the gains imply 4.67 / 8.88."""
    assert paper.TABLE2["Phone"]["all"]["ndcg@10"]["IM-VAE"][0] == paper.TABLE2["Game"]["all"]["ndcg@10"]["IM-VAE"][0]
    assert paper.TABLE2["Phone"]["all"]["hr@10"]["IM-VAE"][0] == paper.TABLE2["Game"]["all"]["hr@10"]["IM-VAE"][0]
    for metric, second in (("ndcg@10", "EMCDR"), ("hr@10", "EMCDR")):
        base = paper.TABLE2["Phone"]["all"][metric][second][0]
        gain = paper.TABLE2_GAIN_PERCENT[("Phone", "all", metric)]
        implied = paper.table2_cell("Phone", "all", metric, "IM-VAE")[0]
        assert implied == pytest.approx(base * (1 + gain / 100), abs=0.006)
    assert paper.table2_cell("Phone", "all", "hr@10", "IM-VAE") == (8.88, None)
    assert paper.table2_cell("Phone", "all", "hr@10", "IM-VAE", printed=True) == (10.61, 0.22)


def test_gain_column_is_over_the_underlined_cell():
    """Every printed gain is IM-VAE over an underlined baseline (to rounding); two rows underline none."""
    unmarked = []
    for (domain, group, metric), gain in paper.TABLE2_GAIN_PERCENT.items():
        row = paper.TABLE2[domain][group][metric]
        ours = paper.table2_cell(domain, group, metric, "IM-VAE")[0]
        seconds = paper.paper_second_best(domain, group, metric) or list(paper.TABLE2_BASELINES)
        if seconds == list(paper.TABLE2_BASELINES):
            unmarked.append((domain, group, metric))
        implied = [100 * (ours - row[m][0]) / row[m][0] for m in seconds]
        assert min(abs(g - gain) for g in implied) < 0.2, (domain, group, metric, implied, gain)
    assert unmarked == [("Phone", "all", "hr@10"), ("Elec", "cold_start", "hr@10")]


def test_best_baseline():
    assert paper.best_baseline("Game", "cold_start", "hr@10") == ("Multi-VAE", (20.0, 3.95))
    assert paper.best_baseline("Cloth", "all", "hr@10") == ("DASL", (4.82, 0.11))


def _paper_row(lines: list[str], start: str, domain: str, group: str, metric: str) -> list[str]:
    """The tab-separated cells of one row of a paper table, found by walking its merged cells."""
    begin = next(i for i, line in enumerate(lines) if line.startswith(start))
    current = {"domain": None, "group": None}
    for line in lines[begin + 1:]:
        cells = line.split("\t")
        if len(cells) < 4 or cells[2] not in ("NDCG", "HR"):
            continue
        current["domain"] = cells[0] or current["domain"]
        current["group"] = cells[1] or current["group"]
        if (current["domain"], current["group"].lower(), cells[2]) == (domain, group, metric):
            return [re.sub(r"<u>|</u>|\*|\s", "", c) for c in cells[3:]]
    raise AssertionError(f"row {domain}/{group}/{metric} not found after {start!r}")


@pytest.mark.skipif(not PAPER_TEXT.exists(), reason="paper text not available")
def test_spot_check_against_paper_text():
    lines = PAPER_TEXT.read_text().split("\n")
    row = _paper_row(lines, "Table 2:", "Video", "cold-start", "HR")
    expected = [paper.TABLE2["Video"]["cold_start"]["hr@10"][m] for m in paper.TABLE2_METHODS]
    assert [tuple(float(x) for x in c.split("±")) for c in row[:10]] == expected
    row = _paper_row(lines, "Table 2:", "Phone", "all", "NDCG")
    assert row[9] == "5.79±0.29" and float(row[10]) == 3.23
    row = _paper_row(lines, "Table 3:", "Sport", "tailed", "HR")
    assert [tuple(float(x) for x in c.split("±")) for c in row[:4]] == [
        paper.TABLE3["Sport"]["tailed"]["hr@10"][v] for v in paper.TABLE3_VARIANTS
    ]
    for table, number in ((paper.TABLE4, "Table 4:"), (paper.TABLE5, "Table 5:")):
        row = _paper_row(lines, number, "Cloth", "cold-start", "NDCG")
        values = [float(c) for c in row[:8]]
        assert values == [table["Cloth"]["cold_start"]["ndcg@10"][(lv, m)] for lv in paper.LEVELS for m in paper.LEVEL_METHODS]


# ----------------------------------------------------------------------------- derived files

from experiments import derive  # noqa: E402


def _rows():
    train = [
        (1, [10, 11, 12, 13], [20, 21], 0),
        (1, [10, 11, 12, 13], [20, 21], 1),
        (2, [30, 31, 32], [], 0),
        (3, [], [40, 41, 42, 43, 44], 1),
        (4, [50, 51], [60, 61, 62], 0),
    ]
    test = [(1, [10, 11, 12, 13, 14], [20, 21], 0), (5, [70], [80, 81], 0)]
    return train, test


def test_thin_density_keeps_targets_and_is_consistent():
    train, test = _rows()
    big = [(u, list(range(100 * u, 100 * u + 60)), list(range(5000, 5040)), 0) for u in range(1, 40)]
    new, _ = derive.thin_density(big, [], 0.5, seed=3)
    kept = sum(len(r[1]) - 1 for r in new) / sum(len(r[1]) - 1 for r in big)
    assert 0.4 < kept < 0.6  # about half of the non-target items
    assert all(r[1][-1] == b[1][-1] for r, b in zip(new, big))  # targets kept
    new_train, new_test = derive.thin_density(train, test, 0.5, seed=3)
    # the same (user, domain, item) is kept or dropped alike in both rows and both files
    x_train = set(new_train[0][1]) - {13}
    assert x_train == set(new_test[0][1]) & {10, 11, 12}
    assert [v for v in new_train[0][2] if v != 21] == new_train[1][2][:-1]  # user 1's Y thins alike in both rows
    assert [r[0] for r in new_test] == [1, 5] and new_test[1][1] == [70]
    assert derive.thin_density(train, test, 1.0, 0) == (train, test)
    with pytest.raises(derive.DeriveError):
        derive.thin_density(train, test, 0.0, 0)


def test_thin_overlap_drops_only_overlapping_users():
    train, _ = _rows()
    assert derive.thin_overlap(train, 1.0, 0) == train
    none = derive.thin_overlap(train, 0.0, 0)
    assert sorted({r[0] for r in none}) == [2, 3]  # users 1 and 4 have two-domain rows
    half = derive.thin_overlap(train, 0.5, 0)
    assert len({r[0] for r in half} & {1, 4}) == 1 and {2, 3} <= {r[0] for r in half}


def test_slice_users_keeps_whole_users(tmp_path):
    train, test = _rows()
    sliced_train, sliced_test = derive.slice_users(train, test, 2, seed=0)
    users = {r[0] for r in sliced_train}
    assert len(sliced_train) >= 2
    assert all((r in sliced_train) == (r[0] in users) for r in train)
    assert [r for r in test if r[0] in users] == [r for r in sliced_test if r[0] in users]
    path = derive.write_rows(sliced_train, tmp_path / "t.csv.gz")
    assert derive.read_rows(path) == sliced_train


# ----------------------------------------------------------------------------- specs and tables

from experiments import engine, figure3, runner, spec, tables  # noqa: E402


@pytest.fixture(autouse=True)
def _empty_archive(tmp_path_factory, monkeypatch):
    """Every test starts with an empty run archive: the records committed in
    ``experiments/records`` (which grow as tables are measured) must not decide a test."""
    monkeypatch.setattr(engine, "ARCHIVE", tmp_path_factory.mktemp("archive"))


EXPERIMENTS = ("table2", "table3", "table4", "table5", "figure3")


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_specs_load(name):
    full, quick = spec.load(name), spec.load(name, quick=True)
    assert full.seeds == 5 and quick.seeds == 1 and quick.rows > 0
    assert len(quick.runs()) < len(full.runs()) or name == "figure3"
    for run in quick.runs():
        assert ("train.epochs", 1) in run.overrides


def test_narrowing_and_sets():
    """--datasets/--methods keep the spec's order; --set lands after the method's overrides."""
    from experiments import common

    sets = spec.parse_sets(["train.epochs=3", "model.mlp_hidden=[8, 16]", "psg.epochs=5"])
    assert sets == (("train.epochs", 3), ("model.mlp_hidden", [8, 16]), ("psg.epochs", 5))
    e = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["popularity", "sasrec"], sets=sets)
    assert [r.run_id for r in e.runs()] == [
        "cloth_sport__sasrec__seed0", "cloth_sport__sasrec__seed1", "cloth_sport__popularity__seed0",
    ]
    run = e.runs()[1]
    assert run.overrides[-1] == ("train.seed", 1) and run.engine_overrides()["train.epochs"] == 3
    assert run.psg_overrides() == {"psg.epochs": 5} and run.engine_overrides()["model.variant"] == "sasrec"
    with pytest.raises(spec.SpecError, match="--methods"):
        spec.load("table2", quick=True, only_methods=["sd_vae"])  # not in the quick subset
    with pytest.raises(spec.SpecError, match="section.key=value"):
        spec.parse_sets(["epochs=3"])
    line = common.command_line("table2", seeds=1, datasets=["cloth_sport"], sets=["train.epochs=3"])
    assert line == "imvae reproduce table2 --seeds 1 --datasets cloth_sport --set train.epochs=3"


def test_figure3_points_are_shared():
    points = figure3.sweep_points(dict(spec.load("figure3").extra)["sweeps"])
    assert len(points) == 25
    names = {p[2] for p in points}
    assert len(names) == 23  # T=20 == lambda_a=0.005 == lambda_t=0.001 (one config)
    shared = [p[2] for p in points if (p[0], p[1]) in {("T", 20), ("lambda_a", 0.005), ("lambda_t", 0.001)}]
    assert len(set(shared)) == 1


def test_figure3_point_selection():
    """``--methods`` narrows the sweeps by point name; a shared point answers to every alias."""
    chosen = figure3.experiment(seeds=1, points=["T=10", "lambda_a=0.005", "lambda_t=0.01"])
    sweeps = dict(chosen.extra)["sweeps"]
    # lambda_a=0.005 is the shared default point (also T=20 and lambda_t=0.001): it is kept in
    # every sweep it belongs to, trained once
    assert sweeps["T"]["values"] == [10, 20]
    assert sweeps["lambda_a"]["values"] == [0.005]
    assert sweeps["lambda_t"]["values"] == [0.001, 0.01]
    assert sorted(m.name for m in chosen.methods) == ["T=10", "T=20", "lambda_t=0.01"]
    with pytest.raises(spec.SpecError, match="unknown sweep points \\['T=11'\\]"):
        figure3.experiment(points=["T=11"])


def test_stale_run_record_is_refused(tmp_path):
    """A record made with other ``--set`` values or ``--quick`` is not silently reused."""
    run = spec.load("table2", seeds=1, only_methods=["sasrec"], sets=(("train.epochs", 8),)).runs()[0]
    path = tmp_path / f"{run.run_id}.json"
    record = {"overrides": dict(run.overrides), "quick": False}
    runner.check_reusable(json.loads(json.dumps(record)), run, False, path)  # same settings: reused
    record["overrides"]["train.epochs"] = 100
    with pytest.raises(ValueError, match=r"train.epochs: stored 100, now 8\): rerun with --force"):
        runner.check_reusable(record, run, False, path)
    record["overrides"]["train.epochs"] = 8
    with pytest.raises(ValueError, match="--quick: stored False, now True"):
        runner.check_reusable(record, run, True, path)


def test_same_latents_tables_only_when_measured():
    """The same-latents protocol is rendered when some run has it, and only then."""
    old = {"cells": {"d": {"m": {"valid-selected": {}, "authors-max": {}}, "pop": {"model-free": {}}}}}
    assert runner.present_protocols(old) == runner.PROTOCOLS
    new = {"cells": {"d": {"m": {"valid-selected": {}, "authors-max": {}, "same-latents": {}}}}}
    assert runner.present_protocols(new) == (*runner.PROTOCOLS, engine.SAME_LATENTS)


def test_comparison_table_cells():
    result = {"x": {"all": {"hr@10": {"mean": 0.15, "std": 0.05, "values": [0.1, 0.2]}, "n": 10}}, "y": {}}
    summary = {"cells": {"cloth_sport": {"m": {"valid-selected": result}}}}
    text = tables.comparison_table(
        summary, "cloth_sport", "valid-selected", [("m", "M")], paper_columns=[tables.table2_paper_column("IM-VAE")]
    )
    line = next(line for line in text.splitlines() if "| HR@10 |" in line)
    assert line == "| Cloth | all | 10 | HR@10 | 15.00 ± 5.00 | 5.00 ± 0.17 |"
    assert "| NDCG@10 | - |" in text
    phone = {"cells": {"phone_elec": {"m": {"authors-max": result}}}}
    text = tables.comparison_table(phone, "phone_elec", "authors-max", [("m", "M")], paper_columns=[tables.table2_paper_column("IM-VAE")])
    assert "AUTHORS-MAX" in text and "| Phone | all | 10 | HR@10 | 15.00 ± 5.00 | 8.88 |" in text


def test_ordering_differences_hand_worked():
    """IM-VAE minus a method: Welch standard error and verdict, worked by hand."""
    ref = {"mean": 0.11, "values": [0.10, 0.12]}  # s^2 = 2e-4, s^2 / n = 1e-4
    ahead = tables.difference(ref, {"mean": 0.06, "values": [0.05, 0.07]})  # SE = sqrt(2e-4)
    assert ahead["delta"] == pytest.approx(0.05) and ahead["se"] == pytest.approx(0.0141421356)
    assert ahead["verdict"] == "ahead" and tables.fmt_difference(ahead) == "+5.00 ± 1.41 ahead"
    behind = tables.difference(ref, {"mean": 0.21, "values": [0.20, 0.22]})
    assert behind["verdict"] == "behind" and tables.fmt_difference(behind) == "-10.00 ± 1.41 behind"
    # a model-free scorer has no seed variance: SE = sqrt(1e-4) = 0.01, delta 0.01 <= 2 SE
    fixed = tables.difference(ref, {"mean": 0.10, "values": [0.10]}, other_fixed=True)
    assert fixed["se"] == pytest.approx(0.01) and fixed["verdict"] == "tie"
    # the same single value from a trained model: its variance is unknown
    assert tables.difference(ref, {"mean": 0.10, "values": [0.10]})["verdict"] == "one seed"
    assert tables.fmt_difference(tables.difference(ref, {"mean": 0.2, "values": [0.2]})) == "-9.00 one seed"
    assert tables.difference(ref, None) is None and tables.fmt_difference(None) == "-"


def test_ordering_tables_rows():
    def result(values):
        entry = {"mean": sum(values) / len(values), "values": values}
        return {"x": {"all": {"hr@10": entry, "n": 10}}, "y": {}}

    summary = {"cells": {"cloth_sport": {
        "ref": {"valid-selected": result([0.10, 0.12])},
        "m": {"valid-selected": result([0.05, 0.07])},
        "pop": {"model-free": result([0.10])},
    }}}
    text = tables.ordering_tables(summary, "cloth_sport", ("ref", "IM-VAE"), [("m", "M"), ("pop", "Pop")],
                                  fixed=["pop"], protocols=["valid-selected"])[0]
    assert "| Cloth | all | 10 | HR@10 | +5.00 ± 1.41 ahead | +1.00 ± 1.00 tie |" in text
    assert "| Cloth | all | 10 | NDCG@10 | - | - |" in text
    # a table rendered before IM-VAE has a finished run (--finished-only): one line, no empty tables
    experiment = spec.load("table3", seeds=2, only_datasets=["cloth_sport"], only_methods=["no_psg", "imvae"])
    alone = {"cells": {"cloth_sport": {"no_psg": {"valid-selected": result([0.05])}}}}
    assert tables.ordering_section(experiment, alone, "cloth_sport") == [
        "### cloth_sport: IM-VAE against each method\n\nNo ordering: IM-VAE has no finished run here.\n"]
    both = {"cells": {"cloth_sport": {"no_psg": {"valid-selected": result([0.05])}, "imvae": {"valid-selected": result([0.1])}}}}
    assert len(tables.ordering_section(experiment, both, "cloth_sport")) > 1


def test_results_csv_rows_agree_with_the_seed_summary(tmp_path):
    """results.csv holds each run's numbers; averaging its rows over seeds gives the summary's means."""
    import csv

    from experiments import export

    experiment = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["sasrec", "popularity"])
    records = [
        {"dataset": "cloth_sport", "method": "sasrec", "seed": s, "device": "cpu", "run_id": f"s{s}",
         "protocols": {"valid-selected": {"x": {"all": {"hr@10": v, "ndcg@10": v / 2, "n": 4}}, "y": {}}}}
        for s, v in ((0, 0.25), (1, 0.5))
    ] + [{"dataset": "cloth_sport", "method": "popularity", "run_id": "p", "protocols": {"model-free": {"x": {"all": {"hr@10": 0.75, "n": 4}}}}}]
    path = export.write_csv(tmp_path / "results.csv", records)
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 5 and set(rows[0]) == set(export.COLUMNS)
    assert {(r["method"], r["seed"], r["metric"], r["value"]) for r in rows} >= {("sasrec", "1", "hr@10", "0.5"), ("popularity", "0", "hr@10", "0.75")}
    summary = runner.summarize(experiment, records)
    hr = [float(r["value"]) for r in rows if r["method"] == "sasrec" and r["metric"] == "hr@10"]
    assert runner.cell(summary, "cloth_sport", "sasrec", "valid-selected", "x", "all", "hr@10")["mean"] == pytest.approx(sum(hr) / len(hr))


def test_store_merge_copies_finished_runs_only(tmp_path, capsys):
    """Finished runs from elsewhere come in (without checkpoints unless asked), a local partial is
    replaced, a local finished run is kept, an unfinished remote run is left out."""
    from experiments import store

    source, into = tmp_path / "remote", tmp_path / "local"

    def make(root: Path, name: str, finished: bool, tag: str) -> None:
        (root / name / "checkpoints" / "3").mkdir(parents=True)
        (root / name / "metrics.jsonl").write_text(tag)
        if finished:
            (root / name / "record.json").write_text(json.dumps({"tag": tag}))

    make(source, "new", True, "remote")
    make(source, "half_here", True, "remote")
    make(source, "both", True, "remote")
    make(source, "unfinished", False, "remote")
    make(into, "half_here", False, "local")
    make(into, "both", True, "local")
    assert store.main(["merge", str(source), "--into", str(into)]) == 0
    assert "copied: 1\n  new" in capsys.readouterr().out
    assert json.loads((into / "new" / "record.json").read_text()) == {"tag": "remote"}
    assert not (into / "new" / "checkpoints").exists()
    assert (into / "half_here" / "metrics.jsonl").read_text() == "remote" and not (into / "half_here" / "checkpoints").exists()
    assert json.loads((into / "both" / "record.json").read_text()) == {"tag": "local"}
    assert not (into / "unfinished").exists()
    again = store.merge(source, into, checkpoints=True)
    assert again == {"copied": [], "replaced_partial": [], "kept_local": ["both", "half_here", "new"], "unfinished": ["unfinished"]}
    with pytest.raises(FileNotFoundError, match="no such run store"):
        store.merge(tmp_path / "nowhere", into)
    fresh = store.merge(source, tmp_path / "other", checkpoints=True)
    assert fresh["copied"] == ["both", "half_here", "new"] and (tmp_path / "other" / "new" / "checkpoints" / "3").is_dir()


def test_an_archived_run_under_other_input_files_is_named_not_retrained_quietly(tmp_path, monkeypatch):
    """A clone whose data files differ in their bytes (here: the same rows gzipped again) gets
    another archive key, so the archived run is not reused; ``--status`` (and the log of the
    run it trains) names the archived twin and the SHA-256 of the files that differ, and says
    when the files agree but the resolved config changed."""
    _needs_data()
    import gzip
    import hashlib
    import shutil

    from experiments import store

    experiment = spec.load("table2", seeds=1, only_datasets=["cloth_sport"], only_methods=["sasrec"])
    (run,) = experiment.runs()
    cache, archive = tmp_path / "cache", tmp_path / "archive"
    monkeypatch.setattr(engine, "ARCHIVE", archive)
    # the run as trained on the shared files: its record names a prepared folder of the time
    # before prepare recorded its input digests (recomputed from the files it names)
    cfg = engine.data_config(run.dataset, run.data_overrides(), engine.DATA_ROOT, cache, 0)
    folder = tmp_path / "prepared"
    folder.mkdir()
    (folder / "inputs.json").write_text(json.dumps({"key": engine.dataset_key(cfg), "data": dataclasses.asdict(cfg)}))
    run_dir = runner.run_folder(experiment, run, cache)
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps({"run_dir": str(run_dir), "epochs_run": 100}))
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / f"{run.run_id}.json").write_text(json.dumps({
        "run_dir": str(run_dir), "run_id": run.run_id, "dataset": "cloth_sport", "overrides": dict(run.overrides),
        "archive_key": runner.run_key(experiment, run, cache), "dataset_folder": str(folder),
    }))
    store.archive([out], archive)
    key = runner.run_key(experiment, run, cache)
    shared = {name: hashlib.sha256(Path(getattr(cfg, name)).read_bytes()).hexdigest() for name in ("train_path", "test_path")}
    assert json.loads((archive / f"{key}.json").read_text())["archived_from"]["inputs"] == shared
    assert engine.archived_elsewhere(run.dataset, dict(run.overrides), engine.DATA_ROOT, cache) is None  # its own key

    # another copy of the data: the same rows, gzipped again at another level (other bytes)
    root = tmp_path / "data"
    shutil.copytree(engine.DATA_ROOT / "imvae_cloth_sport", root / "imvae_cloth_sport")
    train = root / run.dataset.train
    train.chmod(0o644)
    train.write_bytes(gzip.compress(gzip.decompress(train.read_bytes()), compresslevel=1, mtime=0))
    regzipped = hashlib.sha256(train.read_bytes()).hexdigest()
    assert runner.run_key(experiment, run, cache, root) != key
    note = engine.archived_elsewhere(run.dataset, dict(run.overrides), root, cache)
    assert note == (f"the archive holds it as {key}, trained on other input files "
                    f"(SHA-256 train_path {shared['train_path'][:12]} there, {regzipped[:12]} here)")
    text = runner.status(experiment, tmp_path / "out2", tmp_path / "cache2", data_root=root)
    assert f"* {run.run_id}: not in the archive under this machine's key: {note}" in text

    # the same files under changed code defaults: said as such
    monkeypatch.setattr(engine, "TRAIN_DEFAULTS", {**engine.TRAIN_DEFAULTS, "train.learning_rate": 0.123})
    assert engine.archived_elsewhere(run.dataset, dict(run.overrides), engine.DATA_ROOT, cache) == (
        f"the archive holds it as {key}, from the same input files but another resolved config (the code's defaults changed since)"
    )
    # another method has no twin at all
    other = spec.load("table2", seeds=1, only_datasets=["cloth_sport"], only_methods=["imvae_paper"]).runs()[0]
    assert engine.archived_elsewhere(other.dataset, dict(other.overrides), root, cache) is None


def test_archived_runs_render_on_a_fresh_store_without_data_psg_or_training(tmp_path, monkeypatch, capsys):
    """``store archive`` keeps the records of a table's trained runs (not quick ones); with an
    empty store (a fresh clone), the runner renders from the archive: the run counts as finished,
    its record is restored into the store, and no data, PSG or training is touched."""
    _needs_data()
    from experiments import store

    experiment = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["sasrec"])
    first, cache = tmp_path / "first", tmp_path / "cache"
    results = {"valid-selected": {"x": {"all": {"hr@10": 0.25, "ndcg@10": 0.125, "n": 4}}, "y": {}}}
    for run, value in zip(experiment.runs(), (0.25, 0.5)):
        folder = runner.run_folder(experiment, run, cache)
        folder.mkdir(parents=True)
        stored = {"protocols": {"valid-selected": {"x": {"all": {"hr@10": value, "ndcg@10": value / 2, "n": 4}}, "y": {}}},
                  "run_dir": str(folder), "epochs_run": 100, "device": "cpu", "wall_s": 10.0}
        (folder / "record.json").write_text(json.dumps(stored))
        (first / "runs").mkdir(parents=True, exist_ok=True)
        key = runner.run_key(experiment, run, cache)
        (first / "runs" / f"{run.run_id}.json").write_text(json.dumps({**stored, "run_id": run.run_id, "quick": False, "archive_key": key}))
    (first / "runs" / "quick__x.json").write_text(json.dumps({"run_id": "quick__x", "run_dir": "nowhere", "quick": True}))
    archive = tmp_path / "archive"
    assert store.main(["archive", str(first), "--into", str(archive)]) == 0
    assert "archived: 2" in capsys.readouterr().out
    again = store.archive([first], archive)
    assert again == {**again, "archived": [], "quick": ["quick__x"], "unfinished": []}
    assert sorted(again["unchanged"]) == sorted(p.stem for p in archive.iterdir()) and len(again["unchanged"]) == 2
    with pytest.raises(FileNotFoundError, match="no run records"):
        store.archive([tmp_path / "empty"], archive)
    assert json.loads((archive / f"{key}.json").read_text())["archived_from"]["run_id"] == "cloth_sport__sasrec__seed1"
    # the key has no path in it: another cache folder finds the same key, another setting does not
    assert runner.run_key(experiment, run, tmp_path / "elsewhere") == key
    other = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["sasrec"], sets=(("train.epochs", 5),))
    assert runner.run_key(other, other.runs()[1], cache) != key

    monkeypatch.setattr(engine, "ARCHIVE", archive)
    fresh = tmp_path / "fresh_cache"
    for name in ("prepare", "pseudo", "train"):
        monkeypatch.setattr(engine, name, lambda *a, _n=name, **k: pytest.fail(f"engine.{_n} called for an archived run"))
    seed1 = experiment.runs()[1]
    assert runner.is_finished(experiment, seed1, tmp_path / "out", fresh)  # restores the record into the store
    restored = json.loads((runner.run_folder(experiment, seed1, fresh) / "record.json").read_text())
    assert restored["archived"] and restored["protocols"]["valid-selected"]["x"]["all"]["hr@10"] == 0.5
    summary = runner.execute(experiment, tmp_path / "out", cache_dir=fresh, log=lambda _: None)
    assert runner.cell(summary, "cloth_sport", "sasrec", "valid-selected", "x", "all", "hr@10")["mean"] == pytest.approx(0.375)
    assert "every trained run is finished" in runner.status(experiment, tmp_path / "out2", fresh)


def test_plot_of_results_csv_shows_seed_means_and_stds(tmp_path):
    """The bar chart's numbers: mean and std (ddof 0) over seeds, by hand; scorers under any protocol."""
    pytest.importorskip("matplotlib")
    from experiments import export, plot

    def record(method, seed, protocol, value):
        return {"dataset": "d", "method": method, "seed": seed, "protocols": {protocol: {
            "x": {"all": {"hr@10": value, "n": 4}, "tailed": {"hr@10": value / 2, "n": 2}}}}}

    records = [record("m", 0, "valid-selected", 0.2), record("m", 1, "valid-selected", 0.4),
               record("m", 0, "authors-max", 0.9), record("pop", 0, "model-free", 0.1)]
    path = export.write_csv(tmp_path / "results.csv", records)
    stats = plot.seed_stats(path, "hr@10", "valid-selected")
    assert stats[("d", "x", "all", "m")] == pytest.approx((0.3, 0.1, 2))
    assert stats[("d", "x", "tailed", "m")] == pytest.approx((0.15, 0.05, 2))
    assert stats[("d", "x", "all", "pop")] == pytest.approx((0.1, 0.0, 1))
    assert plot.seed_stats(path, "hr@10", "authors-max")[("d", "x", "all", "m")] == pytest.approx((0.9, 0.0, 1))
    with pytest.raises(ValueError, match="no rows with metric 'ndcg@10'"):
        plot.seed_stats(path, "ndcg@10", "valid-selected")
    assert plot.main([str(path), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


def test_finished_only_renders_the_trained_runs_and_names_the_rest(tmp_path, monkeypatch):
    """``--finished-only`` hands the runner only runs with a record here or in the shared store
    (and the scorers), and the header and summary name every run left out."""
    _needs_data()
    from experiments import common

    handed = []

    def fake_execute(experiment, out_dir, runs=None, **_):
        handed.extend(runs)
        return {"wall_s": 0.0}

    monkeypatch.setattr(runner, "execute", fake_execute)
    options = dict(seeds=3, datasets=["cloth_sport"], methods=["sasrec", "popularity"], out=tmp_path, cache_dir=tmp_path / "cache")
    experiment = spec.load("table2", seeds=3, only_datasets=["cloth_sport"], only_methods=["sasrec", "popularity"])
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "cloth_sport__sasrec__seed1.json").write_text("{}")  # recorded by this table
    seed2 = next(r for r in experiment.runs() if r.method.name == "sasrec" and r.seed == 2)
    folder = runner.run_folder(experiment, seed2, tmp_path / "cache")  # finished in the shared store
    folder.mkdir(parents=True)
    (folder / "record.json").write_text("{}")
    path = common.reproduce("table2", lambda *a: "", finished_only=True, **options)
    assert sorted((r.method.name, r.seed) for r in handed) == [("popularity", 0), ("sasrec", 1), ("sasrec", 2)]
    text = path.read_text()
    assert "**1 runs not trained yet, left out (`--finished-only`)**: cloth_sport__sasrec__seed0" in text
    assert "--finished-only --out" in text
    assert json.loads((tmp_path / "summary.json").read_text())["not_trained"] == ["cloth_sport__sasrec__seed0"]
    with pytest.raises(spec.SpecError, match="trains nothing"):
        common.reproduce("table2", lambda *a: "", finished_only=True, parallel=2, **options)


def test_seeds_per_method_counts_trained_runs():
    result = {"x": {"all": {"hr@10": 0.5, "n": 2}}}
    records = [{"dataset": "d", "method": m, "protocols": {p: result}} for m, p in
               (("a", "valid-selected"), ("a", "valid-selected"), ("b", "valid-selected"), ("pop", "model-free"))]
    assert runner.seeds_per_method(records) == {"a": 2, "b": 1}
    summary = {"seeds_per_method": {"a": 2, "b": 1}}
    assert "- seeds per method (trained so far): a: 2, b: 1" in tables.header(summary, "cmd")
    assert "seeds per method" not in tables.header({"seeds_per_method": {"a": 2, "b": 2}}, "cmd")


def _needs_data():
    if not (engine.DATA_ROOT / "imvae_cloth_sport").is_dir():
        pytest.skip(f"shared data not found under {engine.DATA_ROOT}")


def test_model_free_scores_match_numpy(tmp_path):
    """Popularity via the runner == an independent NumPy count-and-rank on the same split."""
    import numpy as np

    from imvae_jax.data.schema import read_dataset

    _needs_data()
    experiment = spec.load("table2", quick=True)
    experiment = __import__("dataclasses").replace(
        experiment, datasets=experiment.datasets[:1], methods=tuple(m for m in experiment.methods if m.scorer)
    )
    summary = runner.execute(experiment, tmp_path / "out", cache_dir=tmp_path / "cache", log=lambda _: None)
    folder = Path(json.loads((tmp_path / "out" / "runs" / "cloth_sport__popularity__seed0.json").read_text())["dataset_folder"])
    splits = read_dataset(folder)
    train, test = splits["train"].table.to_pydict(), splits["test"].table.to_pydict()
    counts = [{}, {}]
    for seq_x, seq_y, domain, target in zip(train["seq_x"], train["seq_y"], train["target_domain"], train["target_item"]):
        for d, items in enumerate((seq_x, seq_y)):
            for item in items + ([target] if d == domain else []):
                counts[d][item] = counts[d].get(item, 0) + 1
    hits = []
    for domain, target, negatives in zip(test["target_domain"], test["target_item"], test["negatives"]):
        if domain == 0:
            score = counts[0].get(target, 0)
            rank = sum(counts[0].get(n, 0) >= score for n in negatives)
            hits.append(rank < 10)
    expected = float(np.mean(hits))
    got = runner.cell(summary, "cloth_sport", "popularity", "valid-selected", "x", "all", "hr@10")
    assert got["mean"] == pytest.approx(expected)
    order = runner.cell(summary, "cloth_sport", "item_order", "authors-max", "y", "all", "ndcg@10")
    assert order is not None and 0.0 <= order["mean"] <= 1.0


# ----------------------------------------------------------------------------- quick modes


@pytest.fixture(scope="module")
def quick_cache(tmp_path_factory) -> Path:
    """One dataset/PSG cache for every quick mode of this module (they share the Cloth-Sport slice)."""
    return tmp_path_factory.mktemp("experiments-cache")


def test_dataset_key_follows_file_contents_not_paths_or_times(tmp_path):
    """A fresh copy of the data (another path, another mtime) keys the same prepared folder; one
    changed byte keys another (the cache never serves data built from other files)."""
    import os

    from imvae_jax.data.config import DataConfig

    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "train.csv").write_text("user,item\n1,2\n")
        (folder / "test.csv").write_text("user,item\n1,3\n")
    os.utime(second / "train.csv", (1, 1))
    config = DataConfig(source="authors", train_path=str(first / "train.csv"), test_path=str(first / "test.csv"))
    moved = dataclasses.replace(config, train_path=str(second / "train.csv"), test_path=str(second / "test.csv"))
    assert engine.dataset_key(config) == engine.dataset_key(moved)
    (second / "test.csv").write_text("user,item\n1,4\n")
    assert engine.dataset_key(config) != engine.dataset_key(moved)
    assert engine.dataset_key(config) != engine.dataset_key(dataclasses.replace(config, seed=1))


def test_identical_configs_share_one_run(tmp_path):
    """Table 2's IM-VAE, Table 3's, Table 4's 100 % level, Table 5's K_o = 100 % and Figure 3's
    default point resolve to one dataset folder and one config, so one trained run; another seed
    or lambda_a does not."""
    from experiments import figure3

    _needs_data()
    cache = tmp_path / "cache"

    def name(experiment, dataset: str, method: str, seed: int = 0) -> str:
        run = next(r for r in experiment.runs() if (r.dataset.name, r.method.name, r.seed) == (dataset, method, seed))
        folder = engine.dataset_folder(run.dataset, run.data_overrides(), engine.DATA_ROOT, cache)
        pseudo = engine.pseudo_folder(folder, run.psg_overrides(), cache)
        return engine.run_name(pseudo, run.train_overrides())

    table2 = name(spec.load("table2"), "cloth_sport", "imvae_paper")
    assert table2 != name(spec.load("table4"), "ds100", "imvae")  # nothing built yet: named by the spec
    dataset = engine.dataset_folder(spec.load("table2").datasets[0], {}, engine.DATA_ROOT, cache)
    dataset.mkdir(parents=True)
    key = engine.dataset_key(engine.data_config(spec.load("table2").datasets[0], {}, engine.DATA_ROOT, cache, 0))
    (dataset / "inputs.json").write_text(json.dumps({"key": key}))  # stands for the prepared folder
    assert table2 == name(spec.load("table3"), "cloth_sport", "imvae")
    assert table2 == name(spec.load("table4"), "ds100", "imvae")
    assert table2 == name(spec.load("table5"), "ko100", "imvae")
    assert table2 == name(figure3.experiment(), "cloth_sport", "T=20")
    assert table2 != name(spec.load("table2"), "cloth_sport", "imvae_paper", seed=1)
    assert table2 != name(figure3.experiment(), "cloth_sport", "lambda_a=0.004")
    assert table2 != name(spec.load("table4"), "ds75", "imvae")


def test_stop_rule_hand_worked():
    select = [1, 3, 2, 2, 4, 1, 1, 1]
    assert stopping.stop(select, 2) == (4, 2)  # epochs 3, 4 no better: stop before epoch 5
    assert stopping.stop(select, 3) == (8, 5)
    assert stopping.stop(select, 0) == (8, 5)
    assert stopping.stop([1, 1, 1], 1) == (2, 1)  # a tie is not better; the first best is kept
    with pytest.raises(ValueError):
        stopping.replay([{"epoch": 2, "select": 0.1}], 1)


def test_stopping_command(tmp_path, capsys):
    """The command on a hand-made history: the table's numbers, the JSON line, the PNG."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    test = "authors-max-test/x/all/hr@10"
    history = [{"epoch": e, "select": v, test: h} for e, (v, h) in enumerate([(0.1, 0.02), (0.3, 0.05), (0.2, 0.09), (0.4, 0.04)], 1)]
    (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in history) + "\n")
    assert stopping.main([str(run_dir), "--patience", "0", "1", "--plot", str(tmp_path / "c.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])[str(run_dir)]
    assert [(r["epochs_run"], r["selected_epoch"]) for r in out] == [(4, 4), (3, 2)]
    assert out[0]["test"] == {"x/all/hr@10": 0.04} and out[0]["authors_max"] == {"x/all/hr@10": 0.09}
    assert out[1]["test"] == {"x/all/hr@10": 0.05} and out[1]["authors_max"] == {"x/all/hr@10": 0.09}
    assert (tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        stopping.main([str(run_dir), "--label", "a", "b"])


@pytest.mark.slow
def test_replayed_early_stopping_equals_an_early_stopped_run(tmp_path, quick_cache):
    """A run with train.patience=P stops, selects and scores as replayed from the full run."""
    _needs_data()
    experiment = spec.load("table2", quick=True)
    run = next(r for r in experiment.runs() if r.method.name == "imvae_paper")
    dataset = engine.prepare(run.dataset, run.data_overrides(), engine.DATA_ROOT, quick_cache, rows=experiment.rows)
    folder = engine.pseudo(dataset, run.psg_overrides(), quick_cache)
    overrides = {**run.engine_overrides(), "train.epochs": 5, "train.learning_rate": 0.01}
    full = engine.train(folder, overrides, tmp_path)
    replayed = stopping.replay(stopping.read_history(Path(full["run_dir"])), 1)
    stopped = engine.train(folder, {**overrides, "train.patience": 1}, tmp_path)
    assert full["epochs_run"] == 5 and stopped["epochs_run"] == replayed["epochs_run"] < 5
    assert stopped["selected_epoch"] == replayed["selected_epoch"]
    for protocol, flat in (("valid-selected", replayed["test"]), ("authors-max", replayed["authors_max"])):
        for key, value in flat.items():
            domain, group, metric = key.split("/")
            assert stopped["protocols"][protocol][domain][group][metric] == pytest.approx(value, abs=1e-7), (protocol, key)


def test_bad_experiment_input_is_one_error_line_and_exit_2(tmp_path, capsys):
    """A name the spec lacks, or a stored record made with other settings: the message (file and
    key), no traceback, exit status 2, from both entry points."""
    from experiments import common
    from imvae_jax.cli import main as imvae

    assert imvae(["reproduce", "table3", "--quick", "--methods", "bogus", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "imvae reproduce table3: error: " in err and "table3.yaml: --methods: unknown or excluded name(s) ['bogus']" in err
    assert "Traceback" not in err
    assert common.main("table3", lambda **k: (_ for _ in ()).throw(spec.SpecError("runs/x.json was made with other settings")), ["--quick"]) == 2
    assert "python -m experiments.table3: error: runs/x.json was made with other settings" in capsys.readouterr().err
    experiment = spec.load("table2", seeds=1, only_datasets=["cloth_sport"], only_methods=["sasrec"])
    with pytest.raises(spec.SpecError, match="made with other settings"):
        runner.check_reusable({"overrides": {"train.epochs": 3}}, experiment.runs()[0], False, tmp_path / "r.json")


def test_psg_reporter_logs_lightgcn_epochs_with_the_last_recall():
    """The PSG's progress lines: the epoch's loss and the last validated Recall@20 (epochs between
    validations carry it over); the recall step's calls (user counts) log nothing."""
    messages: list[str] = []
    report = engine.psg_reporter("cloth", 300, messages.append, every_s=0.0)
    report({"epoch": 1, "loss": 0.69, "bpr": 0.69, "seconds": 1.0})
    report({"epoch": 2, "loss": 0.5, "bpr": 0.5, "seconds": 1.0, "recall@20": 0.1234, "ndcg@20": 0.05})
    report({"epoch": 3, "loss": 0.25, "bpr": 0.25, "seconds": 1.0})
    report(512)
    assert messages == [
        "PSG cloth: LightGCN epoch 1 of at most 300: loss 0.6900",
        "PSG cloth: LightGCN epoch 2 of at most 300: loss 0.5000, valid recall@20 0.1234",
        "PSG cloth: LightGCN epoch 3 of at most 300: loss 0.2500, valid recall@20 0.1234",
    ]
    quiet: list[str] = []
    report = engine.psg_reporter("cloth", 300, quiet.append, every_s=3600.0)
    report({"epoch": 1, "loss": 0.69})
    assert quiet == []  # throttled: at most once per every_s


def test_status_reads_the_shared_store(tmp_path):
    """--status: to train / partial (epochs in metrics.jsonl) / finished (record in the store),
    and a time estimate from the finished runs' seconds per epoch; nothing is trained."""
    _needs_data()
    experiment = spec.load("table2", quick=True, only_methods=["imvae_paper", "sasrec", "popularity"], sets=(("train.epochs", 3),))
    cache, out = tmp_path / "cache", tmp_path / "out"
    text = runner.status(experiment, out, cache)
    assert text.count("| to train |") == 2 and "to score" in text and "no finished run" in text
    folders = {run.method.name: runner.run_folder(experiment, run, cache) for run in experiment.runs() if not run.method.scorer}
    folders["imvae_paper"].mkdir(parents=True)
    (folders["imvae_paper"] / "metrics.jsonl").write_text("{}\n{}\n")
    folders["sasrec"].mkdir(parents=True)
    (folders["sasrec"] / "record.json").write_text(json.dumps({"epochs_run": 4, "wall_s": 30.0}))
    text = runner.status(experiment, out, cache)
    assert "| cloth_sport__imvae_paper__seed0 | partial | 2 |" in text
    assert "| cloth_sport__sasrec__seed0 | finished | 4 |" in text
    assert "at most 1 epochs left" in text and "8 s/epoch" in text  # 3 - 2 epochs; 30 s / 4 epochs
    assert "in 2 workers" in runner.status(experiment, out, cache, workers=2) and "workers" not in text
    # a record restored from the archive was timed on another machine: it never sets the estimate
    (folders["sasrec"] / "record.json").write_text(json.dumps({"epochs_run": 4, "wall_s": 30.0, "archived": True}))
    assert "no finished run on this machine" in runner.status(experiment, out, cache)
    # no finished run of this table: other finished runs on the same prepared data do (Table 3's case)
    other = cache / "train" / f"{folders['sasrec'].name}-other"  # stands for another table's run
    other.mkdir(parents=True)
    (other / "record.json").write_text(json.dumps({"epochs_run": 10, "resumed_from_epoch": 6, "wall_s": 48.0}))
    assert "12 s/epoch of 1 other finished run(s) on this machine on the same data" in runner.status(experiment, out, cache)


def test_status_of_only_some_seeds(tmp_path, capsys):
    """``--status --only-seeds 1`` lists seed 1's runs only, and counts only their epochs."""
    _needs_data()
    from experiments import common

    common.reproduce(
        "table2", lambda *a: "", quick=True, seeds=2, methods=["sasrec"], sets=["train.epochs=3"], status=True,
        only_seeds=[1], out=tmp_path / "out", cache_dir=tmp_path / "cache",
    )
    text = (tmp_path / "out" / "status.md").read_text()
    assert "cloth_sport__sasrec__seed1 | to train" in text and "seed0" not in text
    assert "at most 3 epochs left" in text


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_training_runs_are_shared_and_resume(tmp_path, quick_cache):
    """A run killed after epoch 1 continues from its checkpoint to the numbers of an uninterrupted
    run; a finished run is returned again without training; ``restart`` trains it again."""
    _needs_data()
    experiment = spec.load("table2", quick=True)
    run = next(r for r in experiment.runs() if r.method.name == "imvae_paper")
    dataset = engine.prepare(run.dataset, run.data_overrides(), engine.DATA_ROOT, quick_cache, rows=experiment.rows)
    folder = engine.pseudo(dataset, run.psg_overrides(), quick_cache)
    overrides = {**run.engine_overrides(), "train.epochs": 2, "train.async_checkpointing": False}

    def kill_after_epoch_1(message: str) -> None:
        if message.startswith("epoch 1:"):
            raise _Killed(message)

    with pytest.raises(_Killed):
        engine.train(folder, overrides, tmp_path / "a", log=kill_after_epoch_1)
    messages: list[str] = []
    resumed = engine.train(folder, overrides, tmp_path / "a", log=messages.append)
    assert any("resumed from" in m and "(epoch 1)" in m for m in messages), messages
    assert resumed["epochs_run"] == 2 and not resumed["reused"] and resumed["resumed_from_epoch"] == 1
    whole = engine.train(folder, overrides, tmp_path / "b")
    assert resumed["protocols"] == whole["protocols"]  # a resumed run = an uninterrupted one
    again = engine.train(folder, overrides, tmp_path / "a", log=messages.append)
    assert again["reused"] and again["protocols"] == whole["protocols"] and again["run_dir"] == resumed["run_dir"]
    # the same-latents probe is in every record, and a record made before it gets it, untrained
    assert engine.SAME_LATENTS in whole["protocols"] and set(whole["latents"]) >= {"z_x", "z_t_y"}
    import jax

    assert whole["device"] == jax.devices()[0].device_kind  # the hardware that trained it
    saved = Path(again["run_dir"]) / "record.json"
    old = json.loads(saved.read_text())
    del old["protocols"][engine.SAME_LATENTS]
    saved.write_text(json.dumps(old))
    backfilled = engine.train(folder, overrides, tmp_path / "a", log=messages.append)
    assert backfilled["reused"] and backfilled["protocols"] == whole["protocols"]
    assert engine.SAME_LATENTS in json.loads(saved.read_text())["protocols"]
    messages.clear()
    fresh = engine.train(folder, overrides, tmp_path / "a", log=messages.append, restart=True)
    assert not fresh["reused"] and not any("resumed" in m for m in messages) and fresh["resumed_from_epoch"] is None


def test_header_counts_the_devices_that_trained_the_runs():
    """Runs reused from another machine keep their device: the header says how many each trained."""
    experiment = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["sasrec", "popularity"])
    result = {"x": {"all": {"hr@10": 0.5, "n": 2}}}
    records = [
        {"dataset": "cloth_sport", "method": "sasrec", "run_id": "a", "protocols": {"valid-selected": result}, "device": "cpu"},
        {"dataset": "cloth_sport", "method": "sasrec", "run_id": "b", "protocols": {"valid-selected": result}, "device": "NVIDIA H200"},
        {"dataset": "cloth_sport", "method": "sasrec", "run_id": "c", "protocols": {"valid-selected": result}},
        {"dataset": "cloth_sport", "method": "popularity", "run_id": "d", "protocols": {"model-free": result}},
        {"dataset": "cloth_sport", "method": "sasrec", "run_id": "e", "protocols": {"valid-selected": result}, "device": "cpu",
         "cpu": {"model": "AMD EPYC", "mhz": 2445, "vector_extensions": ["avx2", "fma"]}},
    ]
    summary = runner.summarize(experiment, records)
    assert summary["trained_on"] == {"NVIDIA H200": 1, "cpu": 1, "cpu (AMD EPYC, avx2/fma)": 1, "not recorded": 1}
    summary["hardware"] = {"processor": "AMD EPYC", "cpu_count": 2, "cpu_vector_extensions": ["avx2", "fma"]}
    text = tables.header(summary, "imvae reproduce table2")
    assert ("trained runs by the device that trained them (a reused run keeps its own): NVIDIA H200: 1, cpu: 1, "
            "cpu (AMD EPYC, avx2/fma): 1, not recorded: 1") in text
    assert "- hardware (of this command): AMD EPYC, 2 CPUs, avx2/fma, jax" in text


def test_only_seeds_runs_those_seeds_and_names_them_in_the_command(tmp_path, monkeypatch):
    """``--only-seeds 1,3`` hands the runner exactly seeds 1 and 3 of every method (scorers have
    seed 0 only), the written command repeats it, and a seed outside ``--seeds`` is an error."""
    from experiments import common

    handed = []

    def fake_execute(experiment, out_dir, runs=None, **_):
        handed.extend(runs)
        return {"wall_s": 0.0}

    monkeypatch.setattr(runner, "execute", fake_execute)
    monkeypatch.setattr(common, "header", lambda summary, command, experiment: command)
    args = ["--seeds", "4", "--methods", "sasrec,popularity", "--datasets", "cloth_sport", "--only-seeds", "3,1", "--out", str(tmp_path)]
    parser = argparse.ArgumentParser()
    common.add_arguments(parser)
    path = common.reproduce("table2", lambda experiment, summary, out_dir: "", **common.options(parser.parse_args(args)))
    assert sorted((r.method.name, r.seed) for r in handed) == [("sasrec", 1), ("sasrec", 3)]
    assert "--only-seeds 1,3" in path.read_text()
    with pytest.raises(spec.SpecError, match="seeds 0..3"):
        common.reproduce("table2", lambda *a: "", seeds=4, methods=["sasrec"], only_seeds=[4], out=tmp_path)
    with pytest.raises(SystemExit):
        parser.parse_args(["--only-seeds", "one"])


def test_parallel_core_shares_and_failed_workers(tmp_path, monkeypatch):
    """Workers get equal disjoint core shares; a failing worker is reported by run and log."""
    from experiments import parallel

    assert parallel.core_shares(2, [0, 1, 2, 3, 4]) == [{0, 1}, {2, 3}]
    assert parallel.core_shares(3, [0, 1]) == [None, None, None]  # fewer cores than workers: no pinning
    if hasattr(os, "sched_setaffinity"):  # a worker pins itself to the cores it is handed
        before = os.sched_getaffinity(0)
        one = min(before)
        try:
            assert parallel.pin_from_env({parallel.CORES_VARIABLE: str(one)}) == {one} and os.sched_getaffinity(0) == {one}
        finally:
            os.sched_setaffinity(0, before)
        assert parallel.pin_from_env({}) is None
        with pytest.raises(ValueError, match="IMVAE_WORKER_CORES"):
            parallel.pin_from_env({parallel.CORES_VARIABLE: "zero"})
    experiment = spec.load("table2", seeds=2, only_datasets=["cloth_sport"], only_methods=["sasrec", "popularity"])
    runs = experiment.runs()
    monkeypatch.setattr(parallel, "pending", lambda experiment, runs, *a: [r for r in runs if not r.method.scorer])
    monkeypatch.setattr(parallel, "prepare_inputs", lambda *a: None)
    monkeypatch.setattr(
        parallel, "worker_command",
        lambda name, experiment, run, *a: [
            sys.executable, "-c",
            f"import sys, time; print('run {run.seed}'); print('epoch 3: loss 1, 10 samples/s', flush=True); time.sleep(0.5); sys.exit({run.seed * 3})",
        ],
    )
    messages = []
    with pytest.raises(RuntimeError, match=r"1 of 2 worker\(s\) failed: cloth_sport__sasrec__seed1 \(exit 3, log .*seed1.log\)"):
        parallel.train_in_workers("table2", experiment, runs, 2, tmp_path, tmp_path / "cache", tmp_path,
                                  log=messages.append, poll_s=0.05, report_s=0.0)
    assert any(m.endswith("): epoch 3: loss 1, 10 samples/s") for m in messages)  # progress of running workers
    # interrupted (Ctrl-C, a deadline's SIGINT): the workers are stopped, not left running
    started = []
    real_popen = parallel.subprocess.Popen
    monkeypatch.setattr(parallel.subprocess, "Popen", lambda *a, **k: started.append(real_popen(*a, **k)) or started[-1])
    monkeypatch.setattr(parallel, "worker_command", lambda *a: [sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(parallel.time, "sleep", lambda s: (_ for _ in ()).throw(KeyboardInterrupt))
    messages.clear()
    with pytest.raises(KeyboardInterrupt):
        parallel.train_in_workers("table2", experiment, runs, 2, tmp_path / "stopped", tmp_path / "cache", tmp_path, log=messages.append)
    assert len(started) == 2 and all(p.poll() is not None for p in started)
    assert "interrupted: stopping 2 worker(s)" in messages[-1]
    # SIGTERM (``kill PID``) to the parent stops its workers too, and the handler is put back
    started.clear()
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(parallel.time, "sleep", lambda s: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt):
        parallel.train_in_workers("table2", experiment, runs, 2, tmp_path / "killed", tmp_path / "cache", tmp_path, log=messages.append)
    assert len(started) == 2 and all(p.poll() is not None for p in started)
    assert "interrupted: stopping 2 worker(s)" in messages[-1]
    assert signal.getsignal(signal.SIGTERM) == before
    assert "run 1" in (tmp_path / "workers" / "cloth_sport__sasrec__seed1.log").read_text()
    done = json.loads((tmp_path / "workers" / "workers.json").read_text())
    assert sorted((e["run_id"], e["returncode"]) for e in done) == [("cloth_sport__sasrec__seed0", 0), ("cloth_sport__sasrec__seed1", 3)]
    with pytest.raises(spec.SpecError, match="--force with --parallel"):
        from experiments import common

        common.reproduce("table2", lambda *a: "", seeds=1, methods=["sasrec"], parallel=2, force=True, out=tmp_path)


@pytest.mark.slow
def test_parallel_workers_train_the_runs_the_table_then_reuses(tmp_path, quick_cache):
    """``--parallel 2``: two worker processes train Table 3's two quick runs into the shared
    store; the table's own pass then reuses both (trained by the workers, not by it)."""
    _needs_data()
    from experiments import table3

    sets = ["train.epochs=2"]  # new run keys, the module's prepared data and PSG
    path = table3.reproduce(quick=True, sets=sets, out=tmp_path / "t3", cache_dir=quick_cache, parallel=2)
    assert "--parallel 2" in path.read_text()
    done = json.loads((tmp_path / "t3" / "workers" / "workers.json").read_text())
    experiment = spec.load("table3", quick=True, sets=spec.parse_sets(sets))
    assert sorted(e["run_id"] for e in done) == sorted(r.run_id for r in experiment.runs())
    assert all(e["returncode"] == 0 for e in done)
    for run in experiment.runs():
        record = json.loads((tmp_path / "t3" / "runs" / f"{run.run_id}.json").read_text())
        assert record["reused"] and record["epochs_run"] == 2, run.run_id
        assert (runner.run_folder(experiment, run, quick_cache) / "record.json").is_file()
    # a second call has nothing left for workers: no worker starts, the same table comes out
    again = table3.reproduce(quick=True, sets=sets, out=tmp_path / "t3b", cache_dir=quick_cache, parallel=2)
    assert not (tmp_path / "t3b" / "workers").exists()
    assert json.loads((tmp_path / "t3b" / "summary.json").read_text())["cells"] == json.loads((tmp_path / "t3" / "summary.json").read_text())["cells"]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_quick_mode(name, tmp_path, quick_cache):
    _needs_data()
    module = __import__(f"experiments.{name}", fromlist=["reproduce"])
    path = module.reproduce(quick=True, out=tmp_path / name, cache_dir=quick_cache)
    text = path.read_text()
    assert text.count("|") > 20 and f"command: `imvae reproduce {name} --quick" in text
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert (tmp_path / name / "results.csv").read_text().count("\n") > 10  # the long table beside it
    values = tables.finite_cells(summary)
    assert values and tables.all_finite(values) and all(0.0 <= v <= 1.0 for v in values)
    experiment = figure3.experiment(quick=True) if name == "figure3" else spec.load(name, quick=True)
    assert len(list((tmp_path / name / "runs").glob("*.json"))) == len(experiment.runs())
    for dataset in experiment.datasets:
        for method in experiment.methods:
            protocols = ("model-free",) if method.scorer else runner.PROTOCOLS
            for protocol in protocols:
                for domain in ("x", "y"):
                    for metric in ("ndcg@10", "hr@10"):
                        value = runner.cell(summary, dataset.name, method.name, protocol, domain, "all", metric)
                        assert value is not None and math.isfinite(value["mean"]), (dataset.name, method.name, protocol, domain)
                        if not method.scorer:
                            # one epoch: the authors' max over epochs on test is the selected epoch's test
                            other = runner.cell(summary, dataset.name, method.name, "valid-selected", domain, "all", metric)
                            assert value["mean"] == pytest.approx(other["mean"], abs=1e-6)
    if name in ("table2", "table3"):  # our numbers beside the paper's, every protocol labelled
        assert "AUTHORS-MAX" in text and "Protocol `valid-selected`" in text and "| paper " in text
        assert "minus each method" in text and " one seed |" in text  # the ordering tables (one quick seed)
        assert "Protocol `same-latents`" in text
    for method in experiment.methods:  # the probe: every trained model with latents, not SASRec
        if not method.scorer:
            record = json.loads(next((tmp_path / name / "runs").glob(f"*__{method.name}__seed0.json")).read_text())
            assert (engine.SAME_LATENTS in record["protocols"]) == (dict(method.overrides).get("model.variant") != "sasrec")
    if name == "figure3":
        assert (tmp_path / name / "figure3.png").stat().st_size > 1000


def test_store_list_prints_one_sorted_row_per_archived_record(tmp_path, capsys):
    """``store list`` reads each record's origin and timings; rows sort by dataset, method, seed;
    a record that is not JSON is named, not skipped."""
    from experiments import store

    archive = tmp_path / "archive"
    archive.mkdir()
    def write(key, method, seed, **extra):
        record = {"archived_from": {"experiment": "table3", "dataset": "cloth_sport", "method": method, "seed": seed},
                  "epochs_run": 100, "selected_epoch": 90 + seed, "device": "cpu", **extra}
        (archive / f"{key}.json").write_text(json.dumps(record))
    write("bbb", "no_dn", 1, seconds_per_epoch={"epoch": 30.04}, cpu={"model": "AMD EPYC"}, finished="2026-12-07 11:00:00 UTC")
    write("aaa", "no_dn", 0)
    write("ccc", "imvae", 2)
    write("ddd", "imvae", 10)
    rows = store.listing(archive)
    assert [(r["method"], r["seed"]) for r in rows] == [("imvae", 2), ("imvae", 10), ("no_dn", 0), ("no_dn", 1)]
    rows = [r for r in rows if r["key"] != "ddd"]
    assert rows[2] == {"key": "bbb", "experiment": "table3", "dataset": "cloth_sport", "method": "no_dn", "seed": 1,
                       "epochs": 100, "selected epoch": 91, "mean s/epoch": "30.0", "device": "cpu: AMD EPYC",
                       "finished": "2026-12-07 11:00:00 UTC"}
    assert rows[1]["mean s/epoch"] == "?" and rows[1]["device"] == "cpu"
    assert store.main(["list", "--archive", str(archive)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + 4 and lines[5].startswith("| bbb | table3 | cloth_sport | no_dn | 1 | 100 | 91 | 30.0 |")
    assert store.listing_markdown(store.listing(tmp_path / "none")) == "(the archive holds no records)"
    (archive / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: not a JSON run record"):
        store.listing(archive)
