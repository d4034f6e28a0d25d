"""`ever report --jobs N`: runs side by side, each run's steps in order, failures kept to their run."""

import os
import threading
import time
from types import SimpleNamespace

import pytest
import yaml

from ever import report as rep


def _grid(tmp_path, runs=("a", "b", "c"), baselines=("copy", "lab")):
    path = tmp_path / "g.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "paths": {"runs": str(tmp_path / "r")},
                "split": "val",
                "runs": [{"name": n, "config": "c.yaml"} for n in runs],
                "baselines": {"kinds": list(baselines), "random_config": "c.yaml"},
                "notebooks": {"execute": False},
            }
        )
    )
    return path


@pytest.fixture
def steps(monkeypatch):
    """Every step replaced by one that sleeps a little and records (kind, name, start, end, OMP_NUM_THREADS)
    in ``.log``; the steps named in ``.fail`` raise instead."""
    rec, lock = SimpleNamespace(log=[], fail=set()), threading.Lock()

    def fake(kind):
        def step(g, what, *rest):
            name = getattr(what, "name", what)
            t0 = time.perf_counter()
            time.sleep(0.2)
            if (kind, name) in rec.fail:
                raise RuntimeError("disk full")
            with lock:
                rec.log.append((kind, name, t0, time.perf_counter(), os.environ.get("OMP_NUM_THREADS")))
            return "done"

        return step

    monkeypatch.setattr(rep, "_step_data", lambda g: "given")
    for kind in ("train", "eval", "baseline"):
        monkeypatch.setattr(rep, f"_step_{kind}", fake(kind))
    monkeypatch.setattr(rep, "_save_baseline_config", lambda g: None)
    monkeypatch.setattr(rep, "results_text", lambda *a: "")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return rec


def test_jobs_run_side_by_side_each_run_in_order(tmp_path, steps, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    rep.report(_grid(tmp_path), device="cpu", jobs=2)
    done = {(k, n): (t0, t1, omp) for k, n, t0, t1, omp in steps.log}
    assert set(done) == {(k, n) for k in ("train", "eval") for n in "abc"} | {("baseline", "copy"), ("baseline", "lab")}
    for n in "abc":  # a run is scored after its own training
        assert done[("eval", n)][0] >= done[("train", n)][1]
    # two jobs: a's and b's trainings overlap in time, and each job's subprocesses get 4 // 2 threads
    assert done[("train", "b")][0] < done[("train", "a")][1]
    assert {omp for *_, omp in done.values()} == {"2"}
    assert "OMP_NUM_THREADS" not in os.environ  # restored
    rows = yaml.safe_load((tmp_path / "r" / "report.json").read_text())["steps"]
    assert len(rows) == 1 + 6 + 2 and all(r["status"] in ("given", "done") for r in rows)


def test_one_job_keeps_the_order_and_the_callers_threads(tmp_path, steps, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rep.report(_grid(tmp_path), device="cpu")
    order = [(k, n) for k, n, *_ in steps.log]
    assert order[:6] == [("train", "a"), ("train", "b"), ("train", "c"), ("eval", "a"), ("eval", "b"), ("eval", "c")]
    assert all(t0 >= prev for (_, _, t0, *_), (_, _, _, prev, _) in zip(steps.log[1:], steps.log))  # never two at once
    rep.report(_grid(tmp_path), device="cpu", jobs=3)
    assert {omp for *_, omp in steps.log[8:]} == {"1"}  # a caller's OMP_NUM_THREADS is kept


def test_a_failing_run_stops_neither_the_others_nor_their_scores(tmp_path, steps):
    steps.fail = {("train", "b")}
    with pytest.raises(rep.ReportError, match=r"train b: RuntimeError: disk full"):
        rep.report(_grid(tmp_path), device="cpu", jobs=2)
    done = {(k, n) for k, n, *_ in steps.log}
    assert {("train", "a"), ("eval", "a"), ("train", "c"), ("eval", "c")} <= done and ("eval", "b") not in done
    rows = yaml.safe_load((tmp_path / "r" / "report.json").read_text())["steps"]
    assert [r["step"] for r in rows if r["status"] == "FAILED"] == ["train b"]
    with pytest.raises(rep.ReportError, match="--jobs must be >= 1, got 0"):
        rep.report(_grid(tmp_path), jobs=0)


def _seeded_grid(tmp_path, common=()):
    """A grid of two cells, a (seeds 0, 1) and b (seed 0), on a config file of its own (c.yaml)."""
    (tmp_path / "c.yaml").write_text("name: c\n")
    path = tmp_path / "g.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "paths": {"runs": str(tmp_path / "r")},
                "split": "val",
                "common_set": list(common),
                "runs": [
                    {"name": "a", "config": "c.yaml", "seeds": [0, 1]},
                    {"name": "b", "config": "c.yaml", "seeds": [0]},
                ],
                "baselines": {"kinds": ["copy"], "random_config": "c.yaml"},
                "notebooks": {"execute": False},
            }
        )
    )
    return path


def test_only_trains_and_scores_the_named_cells_or_runs_alone(tmp_path, steps, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rep.report(_seeded_grid(tmp_path), device="cpu", only=["a"])
    assert [(k, n) for k, n, *_ in steps.log] == [
        ("train", "a-s0"),
        ("train", "a-s1"),
        ("eval", "a-s0"),
        ("eval", "a-s1"),
    ]
    steps.log.clear()
    rep.report(_seeded_grid(tmp_path), device="cpu", jobs=2, only=["a-s1", "b"])  # no baseline, whatever the jobs
    assert {(k, n) for k, n, *_ in steps.log} == {
        ("train", "a-s1"),
        ("eval", "a-s1"),
        ("train", "b-s0"),
        ("eval", "b-s0"),
    }
    with pytest.raises(rep.ReportError, match=r"g.yaml: --only c is no cell or run of the grid \(its cells: a, b\)"):
        rep.report(_seeded_grid(tmp_path), only=["c"])


def test_a_snapshot_carries_the_runs_it_did_not_rerun_only_while_their_configs_hold(tmp_path, monkeypatch):
    import json

    from ever.grid import load_grid
    from ever.runs import RunDir

    monkeypatch.chdir(tmp_path)
    g = load_grid(_seeded_grid(tmp_path))
    specs = {r.name: r for r in g.runs}

    def run(root, name, jf):
        rd = RunDir(root / name)
        rd.write_config(rep.run_config(g, specs[name]))
        rd.write_summary("val", {"J&F-Mean": jf})

    old, new, out = tmp_path / "old", tmp_path / "new", tmp_path / "results" / "study"
    run(old, "a-s0", 0.4)
    run(old, "a-s1", 0.5)
    (old / "baselines" / "copy" / "eval" / "val").mkdir(parents=True)
    (old / "baselines" / "copy" / "eval" / "val" / "summary.json").write_text(json.dumps({"J&F-Mean": 0.2}))
    names = [r.name for r in g.runs]
    rep.snapshot(old, out, "val", "ever report --grid g.yaml", names)
    run(new, "a-s1", 0.55)  # a seed scored again, and the new cell b
    run(new, "b-s0", 0.6)
    rep.snapshot(new, out, "val", "ever report --grid g.yaml", names, carry=g)
    info = json.loads((out / "SNAPSHOT.json").read_text())
    assert info["runs"] == ["a-s0", "a-s1", "b-s0", "baseline: copy"]  # the grid's order
    assert info["carried"] == ["a-s0", "baseline: copy"]
    jf = {n: json.loads((out / n / "eval" / "val" / "summary.json").read_text())["J&F-Mean"] for n in names}
    assert jf == {"a-s0": 0.4, "a-s1": 0.55, "b-s0": 0.6}  # what was rerun replaces what was committed
    # a grid that trains a-s0 otherwise now cannot carry it: refused, naming the run and the key, the snapshot kept
    changed = load_grid(_seeded_grid(tmp_path, common=["optim.lr=0.5"]))
    with pytest.raises(
        rep.ReportError, match=r"a-s0 was trained with another config than .*g.yaml gives it now \(optim.lr\)"
    ):
        rep.snapshot(new, out, "val", "ever report --grid g.yaml", names, carry=changed)
    assert json.loads((out / "SNAPSHOT.json").read_text())["runs"] == info["runs"]
    # without carry (a whole grid's report) nothing is carried
    rep.snapshot(new, out, "val", "ever report --grid g.yaml", names)
    assert json.loads((out / "SNAPSHOT.json").read_text())["runs"] == ["a-s1", "b-s0"]
