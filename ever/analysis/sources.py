"""Where the analysis reads: run folders (live runs of this machine) or committed results snapshots, turned
into DataFrames (summaries, per-sequence scores, curves of accuracy against compute, training logs).

The folder layout is :mod:`ever.runs`'s; a snapshot (``results/<study>/``, written by
:func:`ever.report.snapshot`) keeps it and adds ``SNAPSHOT.json``. Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ever.analysis.stats import cell_of
from ever.runs import RunDir, load_metrics, model_runs, read_json, result_dirs, run_config_flat, scalars


def training_curve(run_dir: str | Path, split: str):
    """Accuracy against training compute for one run: a DataFrame with one row per evaluated snapshot and
    the final checkpoint: step, train_gflops (the ledger's FLOPs per step x step: exact for a fixed
    graph), train_kwh (the run's training energy x step / steps: an estimate that assumes a steady
    rate), J&F-Mean, J-Mean, F-Mean (and PCK@0.1, PCK@0.2 when scored)."""
    import pandas as pd

    from ever.config import snapshot_step
    from ever.ledger import load_ledger

    run_dir = Path(run_dir)
    try:
        train = (load_ledger(run_dir).get("phases") or {}).get("train") or {}
    except FileNotFoundError:  # a run with ledger.enabled=false
        train = {}
    segs = train.get("segments") or []
    per_step = next((s["flops_per_step"] for s in segs if s.get("flops_per_step")), None)
    steps = int(run_config_flat(run_dir)["train.steps"])
    kwh = (train.get("totals") or {}).get("kwh")
    rd = RunDir(run_dir)
    points = {
        snapshot_step(p.parent.parent.name): p  # eval-curve/step-NNNNNN/<split>/summary.json
        for p in rd.curve_summaries(split)
    }
    final = rd.summary_path(split)
    if final.is_file():  # the final weights: one point, even where a snapshot of the last step was scored too
        points[steps] = final
    rows = []
    for step, path in sorted(points.items()):
        s = read_json(path) or {}
        rows.append(
            {
                "step": step,
                "train_gflops": per_step * step / 1e9 if per_step else None,
                "train_kwh": kwh * step / steps if kwh is not None and steps else None,
                **{k: s[k] for k in ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2") if k in s},
            }
        )
    return pd.DataFrame(rows)


def curves(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """Accuracy against training compute of every run, stacked with ``run`` and ``cell`` (:func:`cell_of`)
    columns: each run's ``curve.csv`` (written by ``ever report`` for runs with snapshots; the form a results
    snapshot keeps) or else :func:`training_curve` of its folder. Empty when no run was evaluated."""
    import pandas as pd

    out = []
    for d in model_runs(runs_dir, names):
        c = RunDir(d).curve()
        c = training_curve(d, split) if c is None else c
        if not c.empty:
            out.append(c.assign(run=d.name, cell=cell_of(d.name)))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def snapshot_info(path: str | Path) -> dict[str, Any] | None:
    """``SNAPSHOT.json`` of a committed results snapshot (written by :func:`ever.report.snapshot`): command,
    commit, date, machine, split, title; None when ``path`` is not a snapshot."""
    return read_json(Path(path) / "SNAPSHOT.json")


def snapshot_runs(info: dict[str, Any]) -> list[str]:
    """The model runs of a snapshot, in its grid's order (baselines are found by :func:`result_dirs`)."""
    return [r for r in info.get("runs", []) if not r.startswith("baseline: ")]


def evaluation_table(path: str | Path, score: str = "J&F-Mean"):
    """A snapshot of bare evaluations (kind ``evaluations``, :func:`ever.report.snapshot_evaluations`) as a
    table: one row per method (the label before ``--``), one column per protocol (the context and the label
    resizing each evaluation's summary records), cells ``score``; rows and columns in the snapshot's order."""
    import pandas as pd

    info = snapshot_info(path) or {}
    rows = []
    for label in info.get("evaluations", []):
        s = read_json(Path(path) / label / "summary.json") or {}
        c = s.get("cfg") or {}
        rows.append(
            {
                "method": label.split("--")[0],
                score: s.get(score),
                "protocol": f"{c.get('context')} context, {c.get('label_resize')} labels",
            }
        )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)  # pivot, not pivot_table: two evaluations of one cell are an error, not a mean
    return df.pivot(index="method", columns="protocol", values=score).reindex(
        index=list(dict.fromkeys(df["method"])), columns=list(dict.fromkeys(df["protocol"]))
    )


def evaluation_sequences(path: str | Path):
    """J&F of every sequence (rows) for every evaluation (columns, by label) of a snapshot of bare
    evaluations, from their ``per_sequence.csv`` (mean over a sequence's objects of (J + F) / 2)."""
    import pandas as pd

    cols = {}
    for label in (snapshot_info(path) or {}).get("evaluations", []):
        f = Path(path) / label / "per_sequence.csv"
        if f.is_file():
            P = pd.read_csv(f)
            cols[label] = ((P["J-Mean"] + P["F-Mean"]) / 2).groupby(P["sequence"]).mean()
    return pd.DataFrame(cols)


def live_or_snapshot(runs_dir: str | Path, snapshot: str | Path, split: str, names: list[str] | None = None):
    """Where a chapter reads a study's results: ``(runs_dir, names, None)`` when ``runs_dir`` holds an
    evaluated model run for ``split`` (this machine ran the study; baselines alone do not count), else ``(snapshot,
    None, info)`` when the committed
    snapshot exists (``names``: :func:`snapshot_runs`), else ``(runs_dir, names, None)`` with nothing in it."""
    if not summaries(runs_dir, split, names, baselines=False).empty:
        return Path(runs_dir), names, None
    info = snapshot_info(snapshot)
    if info is not None and info.get("kind", "runs") == "runs" and info.get("split") == split:
        return Path(snapshot), snapshot_runs(info), info
    return Path(runs_dir), names, None


def study_source(
    grid_path: str | Path, snapshot: str | Path
) -> tuple[Path, list[str] | None, str, dict[str, Any] | None]:
    """Where a chapter reads a study that has its own grid (the real-video or the green study):
    ``(folder, run names, split, snapshot info or None)``. With the grid file present, :func:`live_or_snapshot`
    of its runs; without it (the grid only locates local runs), the committed snapshot with its own split.
    The folder holds nothing when neither exists."""
    from ever.grid import load_grid

    if Path(grid_path).is_file():
        g = load_grid(grid_path)
        src, names, info = live_or_snapshot(g.runs_dir, snapshot, g.split, [r.name for r in g.runs])
        return src, names, g.split, info
    info = snapshot_info(snapshot)
    if info is not None and info.get("kind", "runs") == "runs":
        return Path(snapshot), snapshot_runs(info), info["split"], info
    return Path(snapshot), None, "", None


def snapshot_grids(path: str | Path) -> list[str]:
    """The grid files (as the command wrote them, relative to the folder above ``results/``) named by ``--grid``
    in the command of the results snapshot ``path``; empty for a snapshot made by hand or no snapshot."""
    import re

    return re.findall(r"--grid (\S+)", (snapshot_info(path) or {}).get("command") or "")


def declared_min_effect(path: str | Path) -> float | None:
    """The minimal effect of interest (``claims.min_effect``, :class:`ever.grid.GridClaims`) declared by the grid
    file that made the results snapshot ``path`` (named by ``--grid`` in its ``SNAPSHOT.json`` command, relative
    to the folder above ``results/``); None when ``path`` is not a snapshot of a grid or the grid declares none.
    A grid file that is there but wrong raises its one-line :class:`ever.grid.GridError`."""
    from ever.grid import load_grid

    grids = snapshot_grids(path)
    if not grids:
        return None
    grid = Path(path).resolve().parent.parent / grids[0]
    return load_grid(grid).claims.min_effect if grid.is_file() else None


SCRATCH = (".tmp", ".old")  # suffixes of a snapshot folder being written or replaced (ever.report._write_snapshot)


def training_curves(runs_dir: str | Path, names: list[str] | None = None):
    """Every run's ``metrics.jsonl`` stacked, with a ``run`` column and, since runs with different numbers of
    nodes per frame N have different chance levels, ``N`` (:func:`ever.gcn.graph_size`; an upper bound for
    object nodes), ``loss / ln N`` (1 = the loss of a uniform walk) and ``acc × N`` (1 = chance accuracy).
    Empty when no run logged a step."""
    import math

    import pandas as pd

    from ever.config import load_config
    from ever.gcn import graph_size

    curves = []
    for d in model_runs(runs_dir, names):
        m = load_metrics(d)
        if "step" not in m:
            continue
        n = graph_size(load_config(RunDir(d).config_path))[1]
        m = m.assign(run=d.name, N=n)
        if "loss" in m:
            m["loss / ln N"] = m["loss"] / math.log(n)
        if "acc" in m:
            m["acc × N"] = m["acc"] * n
        curves.append(m)
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def summaries(runs_dir: str | Path, split: str, names: list[str] | None = None, baselines: bool = True):
    """One row per evaluated run and baseline: its summary.json plus ``run`` and ``kind`` columns."""
    import pandas as pd

    rows = []
    for label, d in result_dirs(runs_dir, names):
        s = RunDir(d).summary(split)
        kind = "baseline" if label.startswith("baseline: ") else "model"
        if s is not None and (baselines or kind == "model"):
            rows.append({"run": label, "kind": kind, **scalars(s)})
    return pd.DataFrame(rows)


def eval_sequences(src: str | Path, split: str, run: str) -> list[str]:
    """The sequences a run's evaluation was restricted to (its ``eval.sequences``, as recorded in
    ``<src>/<run>/eval/<split>/summary.json``): e.g. a recipe screen's tuning sequences. Empty when it
    scored the whole split or was not evaluated."""
    summary = RunDir(Path(src) / run).summary(split) or {}
    return list(summary.get("cfg", {}).get("sequences") or [])


def per_sequence(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """All ``per_sequence.csv`` files of runs and baselines stacked, with a ``run`` column."""
    import pandas as pd

    frames = []
    for name, d in result_dirs(runs_dir, names):
        df = RunDir(d).per_sequence(split)
        if df is not None:
            df.insert(0, "run", name)
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sequence_scores(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """J&F of every sequence (rows) for every run and baseline (columns): the mean over a sequence's objects
    of (J-Mean + F-Mean) / 2, from the ``per_sequence.csv`` files (schema ``ever.evaluate.run.CSV_FIELDS``).
    Columns in the grid's order, baselines last; empty when nothing was evaluated."""
    import pandas as pd

    P = per_sequence(runs_dir, split, names)
    if P.empty:
        return pd.DataFrame()
    P = P.assign(**{"J&F": (P["J-Mean"] + P["F-Mean"]) / 2})
    table = P.pivot_table(index="sequence", columns="run", values="J&F", aggfunc="mean")
    return table[list(dict.fromkeys(P["run"]))]
