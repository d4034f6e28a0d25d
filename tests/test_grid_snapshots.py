"""Every committed results snapshot made by a grid (``ever report --grid G --snapshot results/S``) is what
that grid would train today: the ``config.yaml`` saved in each ``results/S/<run>/`` equals the config
``ever.report.run_config`` builds for the run from G (``ever.report.configs_match``: every field but the
neutral ones). A change of a default config (issue 32: configs/crw-patch-cpu.yaml trains through layer3) must
pin the old value in the grids whose snapshots were trained with it, or this fails naming the run and keys."""

import json
import re
from pathlib import Path

import pytest
import yaml

from ever.grid import load_grid
from ever.report import config_differences, run_config

REPO = Path(__file__).resolve().parents[1]
GRID_COMMAND = re.compile(r"ever report --grid (\S+)( --device \S+)?")


def grid_snapshots() -> list[tuple[str, str]]:
    """(snapshot folder, grid file) of every committed snapshot of kind ``runs`` made by ``ever report``."""
    out = []
    for info_path in sorted((REPO / "results").glob("*/SNAPSHOT.json")):
        info = json.loads(info_path.read_text())
        m = GRID_COMMAND.fullmatch(info.get("command", "").strip())
        if info.get("kind") == "runs" and m:
            out.append((info_path.parent.name, m.group(1)))
    return out


SNAPSHOTS = grid_snapshots()


def mismatches(snapshot: Path, grid) -> dict[str, dict[str, tuple]]:
    """run -> {key: (saved, wanted)} for each run of ``snapshot`` whose saved config differs from ``grid``'s."""
    info = json.loads((snapshot / "SNAPSHOT.json").read_text())
    specs = {s.name: s for s in grid.runs}
    bad = {}
    for run in info["runs"]:
        if run.startswith("baseline"):  # baselines keep no config.yaml in a snapshot
            continue
        assert run in specs, f"{snapshot.name}: run {run} is not in {grid.path}"
        saved = yaml.safe_load((snapshot / run / "config.yaml").read_text())
        diff = config_differences(saved, run_config(grid, specs[run]).to_dict())
        if diff:
            bad[run] = diff
    return bad


def test_the_grid_snapshots_are_found():
    """The loop below covers the studies the README and the book read (a renamed command would skip one)."""
    names = {name for name, _ in SNAPSHOTS}
    assert {"report", "green", "green-long", "recipe", "ship", "train-stage"} <= names, names


@pytest.mark.parametrize(("name", "grid_file"), SNAPSHOTS, ids=[n for n, _ in SNAPSHOTS])
def test_grid_still_produces_the_config_of_every_run_of_its_snapshot(name, grid_file, monkeypatch):
    monkeypatch.chdir(REPO)  # grids name their configs relative to the repository root
    bad = mismatches(REPO / "results" / name, load_grid(grid_file))
    assert not bad, f"results/{name}: {grid_file} no longer reproduces {bad}"


def test_an_unpinned_default_change_is_caught(monkeypatch):
    """Without its ``model.train_stage=layer4`` pin, report-ship.yaml would train results/ship's runs through
    the CPU default's layer3: the check fails on every run, naming the key."""
    monkeypatch.chdir(REPO)
    g = load_grid("configs/report-ship.yaml")
    assert "model.train_stage=layer4" in g.common_set
    g.common_set = [s for s in g.common_set if s != "model.train_stage=layer4"]
    bad = mismatches(REPO / "results" / "ship", g)
    assert set(bad) == {f"ship-lr3e-4-s{s}" for s in range(3)}
    assert all(d == {"model.train_stage": ("layer4", "layer3")} for d in bad.values())
