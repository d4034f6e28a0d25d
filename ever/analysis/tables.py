"""The tables the book and the README show, one function each, from run folders or snapshots (numbers, not
sentences: :mod:`ever.analysis.wording` words them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ever.analysis.display import RANDOM_BASELINE, mean_sd, unbroken
from ever.analysis.sources import sequence_scores, summaries, training_curves
from ever.analysis.stats import (
    along_training,
    best_baseline_score,
    cell_effect,
    cell_of,
    cell_sequence_scores,
    over_seeds,
    paired,
    reach_table,
)
from ever.config import SAME_WEIGHTS_KEYS
from ever.runs import RunDir, baseline_dir, load_metrics, model_runs, read_json, result_dirs, run_config_flat, scalars


def reach_tables(C, S, claim: dict[str, Any] | None) -> list[tuple[Any, str]]:
    """Claim 1's tables: :func:`reach_table` of the runs of :func:`curves` ``C`` scored along training, for
    the best baseline's J&F (``S``: :func:`summaries`) and for patch-level accuracy (``claim``:
    :func:`crop_claim`), each with a column ``x less than <reference>`` when the reference cell reaches it.
    Returns ``(table, caption)`` pairs, GFLOPs rounded to whole numbers (ratios from the unrounded figures);
    none when no run was scored along its training."""
    D = along_training(C)
    if D.empty:
        return []
    targets = {}
    bb = best_baseline_score(S)
    if bb is not None:
        targets[f"the best baseline ({bb[0]})"] = bb[1]
    if claim is not None:
        targets[
            (f"patch-level accuracy: the final J&F of {claim.reference} (mean over seeds) less {claim.tolerance:g}")
        ] = claim.target
    out = []
    col = "train_gflops to reach"
    for name, target in targets.items():
        T = reach_table(D, target)
        ref = claim.reference if claim is not None else None
        if ref in T.index and T.loc[ref, col] == T.loc[ref, col]:
            T[f"x less than {ref}"] = T.loc[ref, col] / T[col]
        out.append(
            (
                T.round({col: 0, "sd": 0}),
                f"training GFLOPs to reach J&F {target:.3f}, {name}; mean and sd over the seeds that reach it "
                "(a seed already there at its first evaluation counts that point's compute: an upper bound)",
            )
        )
    return out


def seed_table(
    runs_dir: str | Path,
    split: str,
    names: list[str] | None = None,
    scores: tuple[str, ...] = ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2"),
):
    """One row per cell (seeds grouped, :func:`over_seeds`) and per baseline: ``seeds`` and, per score,
    ``mean ± sd`` as text (the mean alone for a cell of one seed), in the grid's order. A baseline has no
    seed ("–"), except ``baseline: random``: one initialisation of the untrained encoder ("1 init"), not
    the untrained encoder's distribution (:func:`untrained_inits`)."""
    import pandas as pd

    S = summaries(runs_dir, split, names)
    if S.empty:
        return pd.DataFrame()
    cols = [c for c in scores if c in S and S[c].notna().any()]
    if not cols:
        return pd.DataFrame()
    O = over_seeds(S, cols)
    runs_per_cell = S.groupby([cell_of(r) for r in S["run"]], sort=False).size()
    rows = []
    for cell, r in O.iterrows():
        n = int(runs_per_cell[cell])  # seeds run; a score's mean and sd are over those that have it
        seeds = ("1 init" if cell == RANDOM_BASELINE else "–") if cell.startswith("baseline: ") else n
        row = {"run": cell, "seeds": seeds}
        for c in cols:
            mean, sd = r[f"{c} mean"], r[f"{c} sd"]
            row[c] = mean_sd(mean, sd)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def cell_gaps(
    runs_dir: str | Path,
    split: str,
    names: list[str] | None,
    pairs: list[tuple[str, str]],
    min_effect: float | None = None,
):
    """Cell ``a`` against cell ``b`` for each pair -> DataFrame, one row each (columns ``a``, ``b``, ``seeds a``,
    ``seeds b``, ``J&F a``, ``J&F b``, ``a - b``, ``low``, ``high``, ``verdict``, ``a ahead``, ``sequences``,
    ``p``): both final J&F (means over seeds), the difference a - b, its 95 % interval over sequences and seeds
    (:func:`~ever.analysis.stats.cell_effect`; NaN when the two share no scored sequence) and the one rule's
    word for it (:func:`ever.analysis.claims.verdict` against ``min_effect``, default the snapshot's grid
    file's; None without an interval), and sequence by sequence (:func:`paired`) on how many of the
    ``sequences`` both were scored on a is ahead (both counts 0 when there are none) and the paired t-test's p.
    A pair naming a cell the runs do not have is skipped."""
    import pandas as pd

    from ever.analysis.claims import verdict
    from ever.analysis.sources import declared_min_effect

    S = summaries(runs_dir, split, names)
    if S.empty or "J&F-Mean" not in S:
        return pd.DataFrame()
    m = declared_min_effect(runs_dir) if min_effect is None else min_effect
    O = over_seeds(S, ("J&F-Mean",))
    Q = sequence_scores(runs_dir, split, names)
    CQ = cell_sequence_scores(Q)
    rows = []
    for a, b in pairs:
        if a not in O.index or b not in O.index:
            continue
        ma, mb = (float(O.loc[c, "J&F-Mean mean"]) for c in (a, b))
        c = paired(CQ, a, b)
        e = cell_effect(Q, a, b) if not Q.empty else None
        rows.append(
            {
                "a": a,
                "b": b,
                "seeds a": int(O.loc[a, "J&F-Mean n"]),
                "seeds b": int(O.loc[b, "J&F-Mean n"]),
                "J&F a": ma,
                "J&F b": mb,
                "a - b": ma - mb,
                "low": float("nan") if e is None else e.low,
                "high": float("nan") if e is None else e.high,
                "verdict": None if e is None else verdict(e, m),
                "a ahead": c["ahead"] if c else 0,
                "sequences": c["n"] if c else 0,
                "p": float("nan") if c is None or c["p"] is None else c["p"],
            }
        )
    return pd.DataFrame(rows)


def gap_view(G):
    """:func:`cell_gaps` ``G`` as chapter 5 shows it, narrow enough for the page: one row per pair (index ``a``,
    ``b``), ``seeds`` ("a / b"), ``J&F a``, ``J&F b``, ``a - b``, ``95 % interval`` ("[low, high]", never
    wrapped; "–" without one), ``verdict``, ``a ahead`` ("k of n" sequences) and ``p`` (2 digits)."""
    import pandas as pd

    nb = "\u00a0"
    interval = ["–" if lo != lo else f"[{lo:+.3f},{nb}{hi:+.3f}]" for lo, hi in zip(G["low"], G["high"], strict=True)]
    return pd.DataFrame(
        {
            "seeds": [f"{a}{nb}/{nb}{b}" for a, b in zip(G["seeds a"], G["seeds b"], strict=True)],
            "J&F a": G["J&F a"].round(3).tolist(),
            "J&F b": G["J&F b"].round(3).tolist(),
            "a - b": G["a - b"].round(3).tolist(),
            "95 % interval": interval,
            "verdict": G["verdict"].fillna("–").tolist(),
            "a ahead": [f"{k} of {n}" if n else "–" for k, n in zip(G["a ahead"], G["sequences"], strict=True)],
            "p": ["–" if p != p else f"{p:.2g}" for p in G["p"]],
        },
        index=pd.MultiIndex.from_arrays([G["a"], G["b"]], names=["a", "b"]),
    )


def kinetics_table(runs_dir: str | Path, names: list[str] | None = None, epochs: int = 1):
    """Each run's measured per-clip training cost scaled to Kinetics-400 (:func:`ever.ledger.kinetics_estimate`):
    ``(table, assumptions)``; runs without a ledger that counted clips are left out. Columns: ``PFLOPs``
    (the method's cost), ``CPU hours`` and ``wall hours`` (the run's CPU and wall seconds per clip, scaled:
    both follow the machine's load), ``cores busy`` (their ratio), ``kWh (estimate)`` and
    ``kg CO2eq (estimate)``, ``clips`` (Kinetics clips) and ``scaled from clips`` (clips the run trained on)."""
    import pandas as pd

    from ever.ledger import kinetics_estimate, load_ledger

    rows, assumptions = [], []
    for d in model_runs(runs_dir, names):
        try:
            e = kinetics_estimate(d, epochs=epochs)
        except (FileNotFoundError, ValueError):  # no ledger, or no clips counted
            continue
        tot = ((load_ledger(d).get("phases") or {}).get("train") or {}).get("totals") or {}
        cpu = tot.get("cpu_seconds")
        cpu_h = None if cpu is None else cpu / tot["clips"] * e["clips"] / 3600
        assumptions = [
            a.replace(f"{epochs} epoch(s)", f"{epochs} epoch{'' if epochs == 1 else 's'}") for a in e["assumptions"]
        ]
        rows.append(
            {
                "run": d.name,
                "PFLOPs": None if e["flops"] is None else e["flops"] / 1e15,
                "CPU hours": cpu_h,
                "wall hours": e["hours"],
                "cores busy": cpu_h / e["hours"] if cpu_h is not None and e["hours"] else None,
                "kWh (estimate)": e["kwh"],
                "kg CO2eq (estimate)": e["co2_kg"],
                "clips": e["clips"],
                "scaled from clips": e["measured_on"]["clips"],
            }
        )
    return (pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()), assumptions


def runs_table(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """One row per trained run: flat config, last logged metrics, eval summary, ledger totals."""
    import pandas as pd

    rows = []
    for d in model_runs(runs_dir, names):
        row: dict[str, Any] = {"run": d.name}
        row.update(run_config_flat(d))
        m = load_metrics(d)
        if len(m):
            last = m.iloc[-1]
            for k in ("loss", "acc", "clips_per_s"):
                if k in m:
                    row[f"final_{k}"] = last[k]
        s = RunDir(d).summary(split) or {}
        row.update({k: v for k, v in scalars(s).items() if k not in ("method", "data", "split", "device")})
        tot = RunDir(d).train_totals()
        for k in (
            "seconds",
            "cpu_seconds",
            "steps",
            "kwh",
            "co2_kg",
            "flops",
            "flops_per_clip",
            "peak_mem_bytes",
            "estimate",
        ):
            if k in tot:
                row[f"train_{k}"] = tot[k]
        if tot.get("seconds") is not None and tot.get("steps"):
            row["train_s_per_step"] = tot["seconds"] / tot["steps"]
        if tot.get("cpu_seconds") is not None and tot.get("steps"):
            row["train_cpu_s_per_step"] = tot["cpu_seconds"] / tot["steps"]
        for k in ("walk_flop_share", "gcn_flop_share"):
            if k in (tot.get("metrics") or {}):
                row[k] = tot["metrics"][k]
        if row.get("gcn_flop_share") is not None:
            row["gcn_flop_share"] *= gcn_passes_uncounted(d, row)
        rows.append(row)
    return pd.DataFrame(rows)


# From this commit on the ledger counts the GCN's FLOPs as often as its module runs in a step (ever.train's
# _count_step_flops, FlopCounterMode per module). Before it, gcn_flops_per_step was one forward and backward pass
# (ever.gcn.gcn_cost), though with walk.home_shift the GCN runs twice a step (on the clip and on the home view);
# the step's total FLOPs (one FlopCounterMode over the whole step) always counted both passes.
GCN_COUNTED_AS_RUN = ("dd53541", "2026-12-06T10:31:21+00:00")  # the commit and its date


def gcn_passes_uncounted(run_dir: str | Path, config: dict[str, Any]) -> int:
    """How many times the GCN ran per training step for each pass the ledger of ``run_dir`` counted: 2 for a
    run with ``walk.home_shift`` (flat ``config``) trained before :data:`GCN_COUNTED_AS_RUN` (its ``env.json``
    commit not descended from it, by git; where git cannot tell, its training began before that commit's date),
    else 1. The one place the snapshots' GCN share is corrected: ``runs_table`` multiplies by it."""
    import subprocess

    if not config.get("walk.home_shift"):
        return 1
    commit = (read_json(Path(run_dir) / "env.json") or {}).get("git_commit")
    root = Path(__file__).resolve().parents[2]
    if commit:
        r = subprocess.run(
            ["git", "-C", str(root), "merge-base", "--is-ancestor", GCN_COUNTED_AS_RUN[0], commit],
            capture_output=True,
        )
        if r.returncode in (0, 1):  # 0: descended (counted as run), 1: not descended; else git cannot tell
            return 1 if r.returncode == 0 else 2
    segs = ((read_json(Path(run_dir) / "ledger.json") or {}).get("phases", {}).get("train") or {}).get("segments") or []
    start = segs[0].get("start") if segs else None
    return 2 if start is not None and start < GCN_COUNTED_AS_RUN[1] else 1


def varying_columns(df, prefix: tuple[str, ...] = ("data.", "model.", "nodes.", "walk.", "gcn.", "optim.", "train.")):
    """Config columns whose value differs between the rows (what an ablation changed)."""
    cols = []
    for c in df.columns:
        if c.startswith(prefix) and df[c].astype(str).nunique() > 1 and c not in SAME_WEIGHTS_KEYS:
            cols.append(c)
    return cols


def cost_table(runs_dir: str | Path, names: list[str] | None = None):
    """The cost of every run and baseline of ``runs_dir`` from its ``ledger.json``, one row each, indexed by
    run; baselines are named ``baseline: <kind>``. Empty when no ledger exists.

    Columns in the book's units (FLOPs first: the method's cost, the same on any machine; energy in Wh,
    CO2eq in grams, memory in MiB), summed over the ledger's phases (training and evaluation): ``J&F``, ``GFLOPs``
    (training; evaluation counts none), ``GFLOPs/clip`` (training), ``wall s`` and ``CPU s`` (the process's
    CPU time), ``cores busy`` (CPU s / wall s: how much of the machine the run got), ``Wh``, ``g CO2eq``,
    ``peak MiB`` (largest peak of any phase); then ``estimate`` (which energy components are modelled, per
    phase), ``PCK`` and ``kWh``. No accuracy-per-energy ratio: on a machine without an energy counter the
    energy follows the load, and such a ratio would rank the cheapest baseline first."""
    import pandas as pd

    from ever.ledger import LEDGER_FILE, ledger_row

    rows = []
    for label, d in result_dirs(runs_dir, names):
        if not (d / LEDGER_FILE).is_file():
            continue
        r = ledger_row(d)  # the ledger's phases summed once, as `ever ledger` prints them
        wall, cpu = r["seconds"], r["cpu_seconds"]
        rows.append(
            {
                "run": label,
                "J&F": r["jf"],
                "GFLOPs": r["gflops"],
                "GFLOPs/clip": r["gflops_per_clip"],
                "wall s": wall,
                "CPU s": cpu,
                "cores busy": cpu / wall if cpu is not None and wall else None,
                "Wh": r["wh"],
                "g CO2eq": r["co2_g"],
                "peak MiB": r["peak_mem_mib"],
                "estimate": r["estimate"],
                "PCK": r["pck"],
                "kWh": r["kwh"],
            }
        )
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def training_cost(runs_dir: str | Path, names: list[str] | None = None):
    """The training phase's cost per cell, its seeds grouped (:func:`over_seeds` of the ledger totals of
    each finished run: a run still training, its ledger short of ``train.steps``, is left out): ``seeds``,
    ``PFLOPs`` and ``GFLOPs/clip`` (the same for every seed of a cell: counted, not timed), then the mean and
    sample sd over the seeds of ``wall s``, ``CPU s`` and ``Wh`` (the energy estimate made from those
    seconds; NaN where a ledger lacks it), and ``cores busy`` (mean CPU s / mean wall s). The seeds repeat
    the same FLOPs, so the sd of their seconds is how much the machine's load moved the timing. Empty
    without a finished run's ledger."""
    import pandas as pd

    T = runs_table(runs_dir, "", names)
    if T.empty or "train_flops" not in T:
        return pd.DataFrame()
    T = T[T["train_steps"] >= T["train.steps"]] if "train_steps" in T else T.iloc[0:0]
    if T.empty:
        return pd.DataFrame()
    get = lambda c: T[c] if c in T else float("nan")  # noqa: E731 - a ledger without CPU time or energy
    T = T.assign(
        PFLOPs=T["train_flops"] / 1e15,
        **{
            "GFLOPs/clip": T["train_flops_per_clip"] / 1e9,
            "wall s": T["train_seconds"],
            "CPU s": get("train_cpu_seconds"),
            "Wh": get("train_kwh") * 1000,
        },
    )
    O = over_seeds(T, ("PFLOPs", "GFLOPs/clip", "wall s", "CPU s", "Wh"))
    out = pd.DataFrame(
        {"seeds": O["wall s n"].astype(int), "PFLOPs": O["PFLOPs mean"], "GFLOPs/clip": O["GFLOPs/clip mean"]},
        index=O.index,
    )
    for c in ("wall s", "CPU s", "Wh"):
        out[c], out[f"{c} sd"] = O[f"{c} mean"], O[f"{c} sd"]
    out["cores busy"] = out["CPU s"] / out["wall s"]
    return out.rename_axis("cell")


def training_cost_table(T):
    """:func:`training_cost` for the page, as :func:`unbroken` text: PFLOPs, GFLOPs/clip, then :func:`mean_sd`
    of the seconds and the energy estimate, and cores busy."""
    import pandas as pd

    show = pd.DataFrame(
        {
            "seeds": T["seeds"],
            "PFLOPs": T["PFLOPs"].map(lambda v: f"{v:.3f}"),
            "GFLOPs/clip": T["GFLOPs/clip"].map(lambda v: f"{v:.2f}"),
        },
        index=T.index,
    )
    for c, fmt in (("wall s", "{:,.0f}"), ("CPU s", "{:,.0f}"), ("Wh", "{:.2f}")):
        show[c + (" (estimate)" if c == "Wh" else "")] = [mean_sd(m, sd, fmt) for m, sd in zip(T[c], T[f"{c} sd"])]
    show["cores busy"] = T["cores busy"].map(lambda v: "–" if v != v else f"{v:.2f}")
    return unbroken(show)


def training_tail(runs_dir: str | Path, names: list[str] | None = None, last: int = 3):
    """Each run's training metrics at the end, relative to chance (:func:`training_curves`): the mean of
    ``loss / ln N`` (1 = a uniform walk) and ``acc × N`` (1 = chance) over its last ``last`` logged points,
    not a single batch, with ``N``, ``first step`` and ``last step`` of those points and ``points`` (how many).
    Indexed by run; empty when no run logged a loss."""
    import pandas as pd

    M = training_curves(runs_dir, names)
    if M.empty or "loss" not in M:
        return pd.DataFrame()
    rows = []
    for run, g in M.dropna(subset=["loss"]).groupby("run", sort=False):
        t = g.sort_values("step").tail(last)
        row = {
            "run": run,
            "N": int(t["N"].iloc[0]),
            "first step": int(t["step"].iloc[0]),
            "last step": int(t["step"].iloc[-1]),
            "points": len(t),
            "loss / ln N": float(t["loss / ln N"].mean()),
        }
        if "acc × N" in t:
            row["acc × N"] = float(t["acc × N"].mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def walk_growth(bench_json: str | Path) -> dict[str, Any]:
    """What the walk-cost figure (:func:`walk_cost`) was measured with and how fast it grows: ``{"measured"``,
    ``"B"`` clips, ``"T"`` frames, ``"D"`` embedding size, ``"backward"`` (forward and backward counted),
    ``"exponent_flops"`` (FLOPs ~ N^k over all node counts), ``"exponent_time"`` (time ~ N^k over N >= 32,
    the rule of ``bench/walk.py``; None without timings), ``"time_from"`` (32)}. Exponents are the bench
    file's own when it stores them, so the book prints the numbers the bench printed."""
    import numpy as np

    B, measured = walk_cost(bench_json)
    bench = (read_json(bench_json) or {}) if measured else {}

    def fit(x, y) -> float | None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
        return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else None

    exp_f = bench.get("exponent_flops")
    exp_t = bench.get("exponent_time")
    if exp_f is None:
        exp_f = fit(B["nodes"], B["gflops"])
    if exp_t is None and "ms" in B:
        big = B[B["nodes"] >= 32] if (B["nodes"] >= 32).sum() >= 2 else B
        exp_t = fit(big["nodes"], big["ms"])
    if measured:
        shape = {"B": bench.get("B"), "T": bench.get("T"), "D": bench.get("D"), "backward": True}
    else:
        shape = {"B": 1, "T": int(B["T"].iloc[0]), "D": int(B["dim"].iloc[0]), "backward": False}
    return {"measured": measured, **shape, "exponent_flops": exp_f, "exponent_time": exp_t, "time_from": 32}


def energy_method(runs_dir: str | Path, names: list[str] | None = None) -> list[str]:
    """How the energy in the ledgers of ``runs_dir`` was obtained, one line per distinct method of each
    component (``cpu``, ``gpu``, ``ram``, ``co2``) that is an estimate, e.g. ``"cpu (estimate): codecarbon
    cpu_load mode: ... Assumption: power = TDP x (CPU time / wall time / logical cores) ..."``, read from
    every segment's ``method``; empty when every figure was measured or no ledger records its method."""
    from ever.ledger import LEDGER_FILE

    seen: dict[str, None] = {}
    for _, d in result_dirs(runs_dir, names):
        led = read_json(d / LEDGER_FILE) or {}
        for phase in (led.get("phases") or {}).values():
            for seg in phase.get("segments") or []:
                for comp, m in (seg.get("method") or {}).items():
                    if isinstance(m, dict) and m.get("estimate"):
                        line = f"{comp} (estimate): {m.get('how', '')}".rstrip(": ")
                        if m.get("assumption"):
                            line += f". Assumption: {m['assumption']}"
                        seen.setdefault(line)
    return list(seen)


def walk_cost(bench_json: str | Path):
    """The walk's cost against nodes per frame: ``(table, measured)``. ``table`` has columns nodes, ms,
    gflops, peak_mb (MiB) from ``bench/walk.py --json`` when that file exists (``measured`` True: a batch of
    B clips of T frames, D-dim embeddings, forward and backward; :func:`walk_growth` says which); otherwise
    nodes and gflops counted by PyTorch for one forward walk of one clip, T = 4, D = 64, as in chapter 1
    (``measured`` False, no timing)."""
    import pandas as pd

    bench = read_json(bench_json)
    if bench is not None and bench.get("walk"):
        return pd.DataFrame(bench["walk"]), True
    return pd.DataFrame(walk_flops_table([8, 16, 32, 49, 64, 128, 256], T=4, dim=64)).assign(
        gflops=lambda d: d["flops"] / 1e9
    ).drop(columns=["flops"]), False


def walk_flops_table(nodes: list[int], T: int = 4, dim: int = 64) -> list[dict[str, Any]]:
    """FLOPs of one palindrome walk loss (forward, one clip) for each node count (:func:`ever.walk.walk_flops`)."""
    from ever.walk import walk_flops as count

    return [{"nodes": n, "flops": count(1, T, n, dim, backward=False), "T": T, "dim": dim} for n in nodes]


def ablation_table(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """The object/GCN ablation, one row per trained run: node type, nodes per frame, GCN, J&F, the training
    loss and accuracy relative to chance (``loss / ln N``, ``acc × N``: means over the last logged points,
    :func:`training_tail`; runs with different N have different chance levels) and what a run cost: training
    GFLOPs per clip, the walk's and the GCN's share of those FLOPs (in %), peak memory (``peak MiB``), and
    the time of a step on this machine: ``s/step`` (wall), ``CPU s/step`` and ``cores busy`` (their ratio),
    which follow the machine's load as much as the method (:func:`load_confound`). Nodes per frame is the
    training graph's size (:func:`ever.gcn.graph_size`). No energy column: on a CPU it is an estimate made
    from these times (chapter 6)."""
    import pandas as pd

    from ever.config import load_config
    from ever.gcn import graph_size

    T = runs_table(runs_dir, split, names)
    tail = training_tail(runs_dir, names)
    rows = []
    for _, r in T.iterrows():
        cfg = load_config(RunDir(Path(runs_dir) / r["run"]).config_path)  # an unreadable config fails the book
        t = tail.loc[r["run"]] if r["run"] in tail.index else {}
        wall, cpu = r.get("train_s_per_step"), r.get("train_cpu_s_per_step")
        rows.append(
            {
                "run": r["run"],
                "nodes": cfg.nodes.kind if cfg.nodes.kind != "object" else f"object ({cfg.nodes.segmenter})",
                "N/frame": graph_size(cfg)[1],
                "GCN": bool(cfg.gcn.enabled),
                "J&F": r.get("J&F-Mean"),
                "loss / ln N": t.get("loss / ln N"),
                "acc × N": t.get("acc × N"),
                "GFLOPs/clip": _div(r.get("train_flops_per_clip"), 1e9),
                "walk % of FLOPs": _div(r.get("walk_flop_share"), 0.01),
                "GCN % of FLOPs": _div(r.get("gcn_flop_share"), 0.01),
                "peak MiB": _div(r.get("train_peak_mem_bytes"), 2**20),
                "s/step": wall,
                "CPU s/step": cpu,
                "cores busy": cpu / wall if cpu is not None and cpu == cpu and wall else None,
            }
        )
    return pd.DataFrame(rows)


def _div(v: Any, d: float) -> float | None:
    return None if v is None or v != v else float(v) / d


def last_logged(mm):
    """Chapter 3: each run's last logged training point relative to chance (``mm``:
    :func:`ever.analysis.sources.training_curves`): ``(table, caption)``; the step is in the caption when every
    run's last step is the same."""
    last = mm.groupby("run").tail(1).set_index("run").rename_axis(None)
    shown = {
        "step": "last step",
        "N": "nodes N",
        "loss / ln N": "loss / ln N",
        "acc × N": "accuracy × N",
        "elapsed_s": "training time (s)",
    }
    at = "at the last logged step"
    if "step" in last and last["step"].nunique() == 1:  # one last step for all: said in the caption
        at, shown = (
            f"at step {int(last['step'].iloc[0])}, the last logged",
            {k: v for k, v in shown.items() if k != "step"},
        )
    return (
        last[[c for c in shown if c in last]].rename(columns=shown),
        f"{at}; loss and accuracy relative to chance (1 = a uniform walk)",
    )


def gcn_cells(A):
    """Chapter 5: the pooled patch walk's cells with and without the GCN of an :func:`ablation_table` ``A``:
    ``(rows of A, table of mean ± sd over seeds of J&F, loss / ln N and acc × N, the cell without the GCN)``;
    None when ``A`` has no such pair."""
    import pandas as pd

    pooled = A[(A["nodes"] == "patch_pool")] if not A.empty else A
    if not (len(pooled) and pooled["GCN"].any() and (~pooled["GCN"]).any()):
        return None
    cols = ("J&F", "loss / ln N", "acc × N")
    O = over_seeds(pooled, cols)
    show = pd.DataFrame({c: [mean_sd(m, s) for m, s in zip(O[f"{c} mean"], O[f"{c} sd"])] for c in cols}, index=O.index)
    return pooled, show.rename_axis("cell"), str(pooled.loc[~pooled["GCN"], "run"].map(cell_of).iloc[0])


def generated_data(data_root: str | Path):
    """Chapter 2: the training and evaluation parts of a generated (ever-synth) dataset under ``data_root``:
    ``(table, generator record or None, path of that record)``; the record is ``synth_config.yaml``."""
    import pandas as pd
    import yaml

    root = Path(data_root)
    rec_path = root / "synth_config.yaml"
    rec = yaml.safe_load(rec_path.read_text()) if rec_path.is_file() else None
    videos = sorted((root / "videos" / "train").glob("*.mp4")) if root.is_dir() else []
    jpeg_dir, ann_dir = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
    eval_seqs = sorted(p.name for p in jpeg_dir.iterdir()) if jpeg_dir.is_dir() else []
    counts = [len(list((jpeg_dir / s).glob("*.jpg"))) for s in eval_seqs]
    eval_bytes = sum(f.stat().st_size for d in (jpeg_dir, ann_dir) if d.is_dir() for f in d.rglob("*") if f.is_file())
    each = "–" if not counts else str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}–{max(counts)}"
    size = f"{rec['height']} × {rec['width']}" if rec else "–"
    parts = pd.DataFrame(
        [
            {
                "videos": len(videos),
                "frames each": str(rec["frames_train"]) if rec else "–",
                "frame size (px)": size,
                "stored as": (f"H.264 mp4, {rec['fps']} fps, crf {rec['crf']}" if rec else "mp4"),
                "MB": sum(v.stat().st_size for v in videos) / 1e6,
            },
            {
                "videos": len(eval_seqs),
                "frames each": each,
                "frame size (px)": size,
                "stored as": (f"JPEG (quality {rec['jpeg_quality']}) + PNG masks" if rec else "JPEG + PNG masks"),
                "MB": eval_bytes / 1e6,
            },
        ],
        index=["training (unlabelled)", "evaluation (labelled)"],
    )
    return parts, rec, rec_path


def datasets():
    """Chapter 2: the datasets of ``data_manifest/`` (:func:`ever.data.manifest.datasets_table`), one row each
    (purpose, videos, frames, size, licence; a generated one's training and evaluation parts from its recorded
    generator defaults), and their manifest rows."""
    import pandas as pd

    from ever.data import manifest as M

    rows = M.datasets_table()
    for r in rows:
        gen = M.load_manifest(r["name"]).get("generator_config") or {}
        if gen.get("num_train") and gen.get("num_eval"):
            r["purpose"] = "pretraining + evaluation"
            r["videos"] = (
                f"{gen['num_train'] + gen['num_eval']} ({gen['num_train']} training + {gen['num_eval']} evaluation)"
            )
    T = pd.DataFrame(rows).set_index("name").rename_axis(None)[["purpose", "videos", "frames", "size", "licence"]]
    return T.astype(object).where(T.notna(), "not recorded"), rows


def ablation_accuracy(A, tail):
    """Chapter 5: the accuracy columns of an :func:`ablation_table` ``A`` (node type, N, GCN, J&F and, where
    logged, the training cycle relative to chance) and a caption naming J&F's unit (objects, as DAVIS averages)
    and the steps those means cover (``tail``: :func:`training_tail`)."""
    cols = ["nodes", "N/frame", "GCN", "J&F"] + [c for c in ("loss / ln N", "acc × N") if A[c].notna().any()]
    cap = "J&F: over all the split's objects (DAVIS's J&F-Mean)"
    if len(tail):
        steps = sorted(set(zip(tail["first step"], tail["last step"], tail["points"])))
        cap += "; loss / ln N and acc × N: mean of the last logged points, " + "; ".join(
            f"steps {a}–{b} ({p} points)" for a, b, p in steps
        )
    return A.set_index("run")[cols], cap


def cost_tables(LT) -> list[tuple[Any, str]]:
    """Chapter 6: a :func:`cost_table` as two tables that each fit the page, ``(table, caption)``: accuracy,
    compute and time; then energy (fixed decimals, marked as estimates where a ledger says so) and memory."""
    from ever.analysis.display import fixed

    est = " (estimate)" if any(v not in ("no", None) for v in LT["estimate"]) else ""
    out = []
    for cols, caption in (
        (("J&F", "GFLOPs", "wall s", "CPU s", "cores busy"), "accuracy, compute and time"),
        (("Wh", "g CO2eq", "peak MiB"), "energy and peak memory"),
    ):
        show = LT[[c for c in cols if LT[c].notna().any()]]
        show = show.assign(**{c: show[c].map(fixed) for c in ("Wh", "g CO2eq") if c in show})
        out.append((show.rename(columns={"Wh": f"Wh{est}", "g CO2eq": f"g CO2eq{est}"}), caption))
    return out


SHIP, CLAIMS, BASELINES, TUNING = "ship", "green-long", "baselines", "recipe"  # the snapshots Table 1 reads
CLAIM_CELLS = ("patchcrop49-3k", "objcrop8-3k", "objcrop16-3k", "objcentre8-3k", "patchpool49-3k", "patchpool49-gcn-3k")
COLOUR_BASELINES = ("lab-dist", "lab", "copy")


def table1_data(root: str | Path = "results"):
    """Table 1 as numbers, from the committed snapshots under ``root``: the shipped default's recipe first
    (:func:`default_recipe`), the recipe shipped before it (``ship``, when another), the claim
    cells of ``green-long`` (:data:`CLAIM_CELLS`), the colour and copy baselines and the untrained encoders (five
    initialisations a stage, as a distribution) of ``baselines``. One row per method (index ``method``), columns
    ``J&F`` and ``PCK@0.1`` (mean over seeds, or over initialisations) with their sample sd (``… sd``; NaN for
    one), ``GFLOPs`` (training, per run; 0 without training), ``train min`` (wall minutes of training, mean and
    ``train min sd`` over seeds), ``seeds`` (seeds or initialisations; 0 for a deterministic baseline),
    ``kind`` (``trained``, ``baseline`` or ``untrained``) and ``snapshot``. Empty without those snapshots."""
    import pandas as pd

    from ever.analysis.bar import families, summary_scores
    from ever.analysis.sources import evaluation_sequences, snapshot_info, snapshot_runs

    root = Path(root)
    rows = []
    shipped = default_recipe()
    for snap, cells in ([shipped] if shipped else []) + [(SHIP, None), (CLAIMS, CLAIM_CELLS)]:
        info = snapshot_info(root / snap)
        if info is None:
            return pd.DataFrame()
        S = summaries(root / snap, info["split"], snapshot_runs(info), baselines=False)
        O = over_seeds(S, ("J&F-Mean", "PCK@0.1"))
        C = training_cost(root / snap, snapshot_runs(info))
        for cell in [c for c in (cells or O.index[:1]) if c not in {r["method"] for r in rows}]:
            rows.append(
                {
                    "method": cell,
                    "J&F": O.loc[cell, "J&F-Mean mean"],
                    "J&F sd": O.loc[cell, "J&F-Mean sd"],
                    "PCK@0.1": O.loc[cell, "PCK@0.1 mean"],
                    "PCK@0.1 sd": O.loc[cell, "PCK@0.1 sd"],
                    "GFLOPs": C.loc[cell, "PFLOPs"] * 1e6,
                    "train min": C.loc[cell, "wall s"] / 60,
                    "train min sd": C.loc[cell, "wall s sd"] / 60,
                    "seeds": int(C.loc[cell, "seeds"]),
                    "kind": "trained",
                    "snapshot": f"{root.name}/{snap}",
                }
            )
    if snapshot_info(root / BASELINES) is None:
        return pd.DataFrame()
    F = families(evaluation_sequences(root / BASELINES), summary_scores(root / BASELINES))
    for fam, r in F.iterrows():
        untrained = fam.startswith("random")
        rows.append(
            {
                "method": f"untrained encoder, {fam.split()[1]}" if untrained else fam,
                "J&F": r["J&F"],
                "J&F sd": r["sd"],
                "PCK@0.1": r["PCK@0.1"],
                "PCK@0.1 sd": r["PCK@0.1 sd"],
                "GFLOPs": 0.0,
                "train min": 0.0,
                "train min sd": float("nan"),
                "seeds": int(r["members"]) if untrained else 0,
                "kind": "untrained" if untrained else "baseline",
                "snapshot": f"{root.name}/{BASELINES}",
            }
        )
    T = pd.DataFrame(rows).set_index("method")
    order = [i for i in T.index if T.loc[i, "kind"] == "trained"] + list(COLOUR_BASELINES)
    return T.loc[order + [i for i in T.index if i not in order]]


def untrained_inits(snapshot: str | Path, runs_dir: str | Path, split: str) -> tuple[str, float, float, int] | None:
    """The untrained encoder as a distribution over its initialisations, ``(label, mean J&F, sd, inits)``:
    the family (:func:`ever.analysis.bar.families`) of the ``random-s<seed>-<stage>`` evaluations of the
    committed ``snapshot`` (``results/baselines``) that were scored like the ``baseline: random`` of the
    study in ``runs_dir`` on ``split`` (same protocol and data, same encoder stage, same number of
    sequences); None when fewer than two were, so a figure never mixes protocols."""
    from ever.analysis.bar import RANDOM, families
    from ever.analysis.sources import evaluation_sequences, snapshot_info

    like = baseline_dir(runs_dir, "random") / "eval" / split / "summary.json"
    ref = read_json(like) if like.is_file() else None
    info = snapshot_info(snapshot) if ref is not None else None
    if info is None:
        return None

    def alike(label: str) -> bool:
        s = read_json(Path(snapshot) / label / "summary.json") or {}
        keys = ("cfg", "eval_stage", "num_sequences")
        return bool(RANDOM.match(label)) and all(s.get(k) == ref.get(k) for k in keys)

    Q = evaluation_sequences(snapshot)
    same = [label for label in Q.columns if alike(label)]
    if len(same) < 2:
        return None
    row = families(Q[same]).iloc[0]  # one stage: one family
    return ("untrained encoder", float(row["J&F"]), float(row["sd"]), int(row["members"]))


def table1(T):
    """:func:`table1_data` for the page and the README, as :func:`unbroken` text: ``J&F`` and ``PCK@0.1`` as
    mean ± sd, training ``GFLOPs`` and ``train min`` ("–" without training), ``seeds`` ("–" for a deterministic
    baseline; initialisations for the untrained encoders)."""
    import pandas as pd

    show = pd.DataFrame(
        {
            "J&F": [mean_sd(m, s) for m, s in zip(T["J&F"], T["J&F sd"])],
            "PCK@0.1": [mean_sd(m, s) for m, s in zip(T["PCK@0.1"], T["PCK@0.1 sd"])],
            "training GFLOPs": ["–" if g == 0 else f"{g:,.0f}" for g in T["GFLOPs"]],
            "training min": [
                "–" if m == 0 else mean_sd(m, s, "{:.1f}") for m, s in zip(T["train min"], T["train min sd"])
            ],
            "seeds": [
                "–" if k == "baseline" else f"{n} inits" if k == "untrained" else str(n)
                for k, n in zip(T["kind"], T["seeds"])
            ],
        },
        index=T.index,
    )
    return unbroken(show)


def held_out(root: str | Path = "results") -> list[str]:
    """The shipped recipe's held-out sequences: those of ``ship`` that did not choose its recipe (the sequences
    of the ``recipe`` screen), in ``ship``'s order."""
    from ever.analysis.sources import eval_sequences, snapshot_info, snapshot_runs

    root = Path(root)
    ship, tuning = snapshot_info(root / SHIP), snapshot_info(root / TUNING)
    if ship is None or tuning is None:
        return []
    used = set(eval_sequences(root / TUNING, tuning["split"], snapshot_runs(tuning)[0]))
    scored = sequence_scores(root / SHIP, ship["split"], snapshot_runs(ship)).index
    return [q for q in scored if q not in used] if used else []


def default_recipe() -> tuple[str, tuple[str]] | None:
    """``(snapshot, (cell,))`` of the shipped default's recipe, as its card records it (``recipe``: the committed
    runs snapshot, by folder name, and the cell whose seed ships); None when the card records none."""
    from ever.models import pretrained

    rec = pretrained.card(pretrained.DEFAULT).get("recipe")
    return (Path(rec["snapshot"]).name, (rec["cell"],)) if rec else None


def ship_bar(root: str | Path = "results"):
    """Issue 33's bar (:func:`ever.analysis.bar.clear_bar`, through :func:`ever.analysis.scaling.cell_bar`) for the
    seeds of the shipped default's recipe (:func:`default_recipe`; without one, ``ship``'s first cell) against
    every baseline of ``baselines``, on the :func:`held_out` sequences; None without those snapshots."""
    from ever.analysis.scaling import cell_bar
    from ever.analysis.sources import snapshot_info, snapshot_runs

    root = Path(root)
    snap, cells = default_recipe() or (SHIP, None)
    info = snapshot_info(root / snap)
    if info is None or not held_out(root):
        return None
    cell = cells[0] if cells else cell_of(snapshot_runs(info)[0])
    return cell_bar(root / snap, cell, info["split"], root)


def table1_caption(T, root: str | Path = "results") -> str:
    """Table 1's caption (``T``: :func:`table1_data` of ``root``): the data and resolution the baselines were
    scored at (every row shares them: one protocol), what each column is and which snapshots it comes from."""
    from ever.analysis.sources import evaluation_sequences, snapshot_info

    info = snapshot_info(Path(root) / BASELINES) or {}
    rec = read_json(Path(root) / BASELINES / info["evaluations"][0] / "summary.json") or {}
    cfg = rec.get("cfg", {})
    n = len(evaluation_sequences(Path(root) / BASELINES))
    cores = (info.get("machine") or {}).get("cpu_count")
    snaps = ", ".join(f"`{s}`" for s in dict.fromkeys(T["snapshot"]))
    return (
        f"**Table 1.** J&F and PCK@0.1 on the {n} DAVIS-2016 development sequences "
        f"(`{Path(cfg.get('data', '?')).name}`, DAVIS-2016's {rec.get('split', '?')} split) at "
        f"{cfg.get('long_side')} px, mean ± sd over seeds or initialisations; training GFLOPs and minutes per run "
        f"(ledgers, {cores} shared CPU cores). From {snaps}."
    )


# ----------------------------------------------------------------------------- reproducing the studies (chapter 7)


def measured_time(snapshot: str | Path) -> dict[str, Any] | None:
    """What the ledgers of a results snapshot measured (every ``ledger.json`` under it: runs and baselines):
    ``train hours`` and ``eval hours`` (sums of the phases' wall seconds; a grid runs its steps one after
    another, so their sum is the grid's time less data generation and the book), ``hours`` (both), ``cores
    busy`` (training CPU seconds / wall seconds: near the core count on an idle machine, lower under load),
    ``runs`` (ledgers with a training phase), ``first`` and ``last`` (dates of the first segment's start and
    the last one's end). None when the snapshot holds no ledger."""
    secs = {"train": 0.0, "eval": 0.0}
    cpu, runs, stamps = 0.0, 0, []
    for f in sorted(Path(snapshot).rglob("ledger.json")):
        for phase, p in ((read_json(f) or {}).get("phases") or {}).items():
            tot = p.get("totals") or {}
            secs["train" if phase == "train" else "eval"] += tot.get("seconds") or 0.0
            if phase == "train":
                cpu, runs = cpu + (tot.get("cpu_seconds") or 0.0), runs + 1
            stamps += [s[k] for s in p.get("segments") or [] for k in ("start", "end") if s.get(k)]
    if not stamps:
        return None
    return {
        "train hours": secs["train"] / 3600,
        "eval hours": secs["eval"] / 3600,
        "hours": (secs["train"] + secs["eval"]) / 3600,
        "cores busy": cpu / secs["train"] if secs["train"] else None,
        "runs": runs,
        "first": min(stamps)[:10],
        "last": max(stamps)[:10],
    }


def grid_snapshots(root: str | Path = ".") -> dict[str, Path]:
    """Which committed results snapshot each grid file made: ``{grid path as written: snapshot folder}``, from
    the ``--grid`` of each ``results/*/SNAPSHOT.json`` command under ``root`` (snapshots made by hand name none)."""
    from ever.analysis.sources import SCRATCH, snapshot_grids

    out = {}
    for f in sorted((Path(root) / "results").glob("*/SNAPSHOT.json")):
        if not f.parent.name.endswith(SCRATCH):
            for grid in snapshot_grids(f.parent):
                out[grid] = f.parent
    return out


def make_targets(makefile: str | Path = "Makefile") -> dict[str, str]:
    """``{grid file: make target}`` for the Makefile's targets whose recipe runs ``ever report`` (without
    ``--grid`` it runs ``configs/report.yaml``, :class:`ever.grid.Grid`'s default)."""
    import re

    from ever.grid import Grid

    out, target = {}, None
    for line in Path(makefile).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z][\w-]*):", line)
        if m:
            target = m.group(1)
        elif line.startswith("\t") and target and re.search(r"\bever report\b", line):
            grid = re.search(r"--grid (\S+)", line)
            out.setdefault(grid.group(1) if grid else str(Grid().path), target)
    return out


def data_needed(grid) -> list[str]:
    """The datasets of ``data_manifest/`` a grid (:class:`ever.grid.Grid`) reads: its evaluation data and the
    ``data.roots`` every run trains on (:func:`ever.report.run_config`: the run's config with the grid's
    overrides, parsed as ``--set`` is), each matched to the manifest whose name is the longest prefix of one
    of the path's folders (``davis2016-dev-extra`` -> ``davis2016``); names no manifest matches stay as
    written."""
    from ever.data import manifest as M
    from ever.report import run_config

    known = sorted((r["name"] for r in M.datasets_table()), key=len, reverse=True)
    paths = [grid.data.name] + [p for r in grid.runs for p in run_config(grid, r).data.roots]
    out = []
    for p in paths:
        name = next((k for part in Path(p).parts for k in known if part.startswith(k)), p)
        if name not in out:
            out.append(name)
    return out


def remake_command(grid: str, snapshot: Path | None, targets: dict[str, str]) -> str:
    """The command that remakes the study of ``grid`` (a path as ``configs/report-x.yaml``): its make target
    (``targets``: :func:`make_targets`), else ``ever report --grid`` with it, ``--snapshot`` where it made one."""
    if grid in targets:
        return f"make {targets[grid]}"
    return f"ever report --grid {grid}" + (f" --snapshot results/{snapshot.name}" if snapshot is not None else "")


def snapshot_commands(root: str | Path = ".") -> dict[str, str]:
    """``{snapshot folder name: the command that remakes it}`` for every grid file of the repository at ``root``
    that made a committed snapshot (:func:`grid_snapshots`, :func:`remake_command`)."""
    root = Path(root)
    targets = make_targets(root / "Makefile") if (root / "Makefile").is_file() else {}
    return {snap.name: remake_command(grid, snap, targets) for grid, snap in grid_snapshots(root).items()}


def reproduce_table(root: str | Path = "."):
    """Chapter 7's table of every study, one row per grid file ``configs/report*.yaml`` under ``root`` (index
    ``grid``): ``study`` (its title, or its snapshot's), ``command`` (its make target, else ``ever report``
    with it), ``data`` (:func:`data_needed`), ``snapshot`` (the results folder it made, :func:`grid_snapshots`;
    "–" for none), then the grid file's ``time`` as measured: ``hours`` (NaN when never run), ``ran`` (date),
    ``on`` (machine), ``load``, ``from`` (where the figure comes from, in words), and ``cores busy`` of its
    snapshot's training (:func:`measured_time`: how loaded the machine was). The default grid first, then
    those that made a snapshot, then the others."""
    import pandas as pd

    from ever.analysis.sources import snapshot_info
    from ever.grid import Grid, load_grid

    root = Path(root)
    snaps, targets = grid_snapshots(root), make_targets(root / "Makefile")
    rows = []
    for f in sorted((root / "configs").glob("report*.yaml")):
        rel = f"configs/{f.name}"
        g, snap = load_grid(f), snaps.get(rel)
        title = g.title or ((snapshot_info(snap) or {}).get("title") if snap else "") or ""
        cmd = remake_command(rel, snap, targets)
        t, m = g.time, (measured_time(snap) if snap is not None else None) or {}
        rows.append(
            {
                "grid": rel,
                "study": title or "–",
                "command": cmd,
                "data": ", ".join(data_needed(g)),
                "snapshot": f"results/{snap.name}" if snap is not None else "–",
                "hours": float("nan") if t.hours is None else t.hours,
                "ran": t.date or "–",
                "on": t.machine or "–",
                "load": t.load or "–",
                "from": "its snapshot's ledgers: training + evaluation" if t.source == "ledgers" else t.source or "–",
                "cores busy": m.get("cores busy", float("nan")),
            }
        )
    R = pd.DataFrame(rows).set_index("grid")
    first = [str(Grid().path)] + [g for g in R.index if R.loc[g, "snapshot"] != "–"]
    return R.loc[list(dict.fromkeys(first + list(R.index)))]


def reproduce_views(R) -> list[tuple[Any, str]]:
    """A :func:`reproduce_table` ``R`` as chapter 7 shows it, two ``(table, caption)`` pairs that each fit the
    page: what each study answers and how to run it; how long it took, as text (hours to 0.01, cores busy to
    0.1, "–" where not measured)."""
    num = lambda v, f: "–" if v != v else f.format(v)  # noqa: E731
    time = R[["hours", "ran", "on", "load", "from", "cores busy"]].assign(
        hours=[num(h, "{:.2f}") for h in R["hours"]], **{"cores busy": [num(c, "{:.1f}") for c in R["cores busy"]]}
    )
    return [
        (R[["study", "command", "data", "snapshot"]], "every study: what it answers, its command, data and results"),
        (time, "how long each study took when it ran, as measured"),
    ]


def notebook_parameters(book_dir: str | Path = "book"):
    """The papermill parameters of every chapter (``NN_*.ipynb`` under ``book_dir``), read from the cell
    tagged ``parameters``: one row each with ``notebook``, ``parameter``, ``default`` (the source text of the
    value) and ``meaning`` (the comment on its line). A parameters cell that is not plain assignments is a
    ValueError naming the notebook."""
    import ast
    import json

    import pandas as pd

    rows = []
    for nb in sorted(Path(book_dir).glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for c in cells:
            if "parameters" not in (c.get("metadata") or {}).get("tags", []):
                continue
            src = "".join(c["source"])
            lines = src.splitlines()
            for node in ast.parse(src).body:
                if not (
                    isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                ):
                    raise ValueError(f"{nb}: the parameters cell holds more than assignments (line {node.lineno})")
                line = lines[node.end_lineno - 1]
                rest = line[node.value.end_col_offset :] if node.end_lineno == node.lineno else ""
                rows.append(
                    {
                        "notebook": nb.stem,
                        "parameter": node.targets[0].id,
                        "default": ast.get_source_segment(src, node.value),
                        "meaning": rest.split("#", 1)[1].strip() if "#" in rest else "",
                    }
                )
    return pd.DataFrame(rows, columns=["notebook", "parameter", "default", "meaning"])


def _nodes_text(cfg) -> str:
    n, k = cfg.nodes_per_frame, cfg.nodes.kind
    if k == "patch_pool":
        return f"{n} patches of {cfg.nodes.patch_size} px pooled from one encoding"
    if k == "patch_crop":
        return f"{n} patch crops of {cfg.nodes.patch_size} px, each encoded"
    what = f"{cfg.nodes.k} {cfg.nodes.segmenter} segments"
    if k == "object":
        return f"{what}, mask-pooled from one encoding"
    window = "32-px centred windows" if cfg.nodes.crop_window == "centre" else "boxes"
    return f"{what}, their {window} each encoded" + (", others masked" if cfg.nodes.crop_background == "mask" else "")


def _data_text(roots: list[str]) -> str:
    names = []
    for r in roots:
        parts = Path(r).parts
        names.append(next((p for p in parts if p.startswith(("davis", "real-video", "ever-synth"))), r))
    return " + ".join(dict.fromkeys(names))


GLOSSARY_REFERENCE = "ship/ship-lr3e-4-s0"  # the run the glossary's ``also`` column compares every run with
# What the glossary's other columns show, or what says nothing of a run (names, logging, where it ran):
GLOSSARY_SHOWN = tuple(
    "name seed out_dir data.roots data.num_workers model.width model.train_stage model.eval_stage nodes. gcn.enabled "
    "optim.lr train.steps train.log_every train.ckpt_every train.snapshot_every train.device eval. ledger.".split()
)


def _also(flat: dict[str, Any], ref: dict[str, Any]) -> str:
    """The settings of a run (flat config) that differ from ``ref``'s, leaving out :data:`GLOSSARY_SHOWN`."""
    keep = lambda k: not any(k == s or (s.endswith(".") and k.startswith(s)) for s in GLOSSARY_SHOWN)  # noqa: E731
    return ", ".join(f"{k}={flat[k]}" for k in flat if keep(k) and flat[k] != ref.get(k)) or "–"


def run_glossary(root: str | Path = "results", models: str | Path | None = None):
    """Every run name of the committed snapshots under ``root`` (``kind: runs``), one row per grid cell (the
    seeds of a row grouped: index ``run``), read from each run's saved ``config.yaml``: ``snapshot``,
    ``seeds``, ``nodes`` per frame (how they are made), ``GCN``, ``steps`` (trained; "250 of 1000" where the
    scored weights are a snapshot of a longer run), ``lr``, ``width``, ``stages``
    (trained through -> features read at), ``data`` (training data), ``also`` (every other training setting
    that differs from the shipped recipe's run, :data:`GLOSSARY_REFERENCE`). Then the shipped models of ``models``
    (default: ``ever/models/pretrained``; their cards name the run they are the weights of). Two rows of one
    name in different snapshots are kept apart by their snapshot."""
    import json
    import re

    import pandas as pd

    from ever.analysis.sources import SCRATCH, snapshot_info, snapshot_runs
    from ever.analysis.stats import cell_of
    from ever.config import load_config

    ref = run_config_flat(Path(root) / GLOSSARY_REFERENCE)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for f in sorted(Path(root).glob("*/SNAPSHOT.json")):
        info = snapshot_info(f.parent) or {}
        if f.parent.name.endswith(SCRATCH) or info.get("kind", "runs") != "runs":
            continue
        for run in snapshot_runs(info):
            path = f.parent / run / "config.yaml"
            if not path.is_file():
                continue
            cfg, cell = load_config(path), cell_of(run)
            scored = re.search(
                r"step-0*(\d+)", str((RunDir(f.parent / run).summary(info["split"]) or {}).get("method"))
            )
            row = rows.setdefault(
                (cell, f.parent.name),
                {
                    "run": cell,
                    "snapshot": f"results/{f.parent.name}",
                    "seeds": [],
                    "nodes": _nodes_text(cfg),
                    "GCN": "yes" if cfg.gcn.enabled else "no",
                    "steps": f"{scored.group(1)} of {cfg.train.steps}" if scored else str(cfg.train.steps),
                    "lr": f"{cfg.optim.lr:g}",
                    "width": cfg.model.width,
                    "stages": f"{cfg.model.train_stage} -> {cfg.model.eval_stage}",
                    "data": _data_text(cfg.data.roots),
                    "also": _also(run_config_flat(f.parent / run), ref),
                },
            )
            row["seeds"].append(cfg.seed)
    out = [{**r, "seeds": ", ".join(str(s) for s in sorted(set(r["seeds"])))} for r in rows.values()]
    models = Path(models) if models is not None else Path(__file__).resolve().parents[1] / "models" / "pretrained"
    for card in sorted(models.glob("*.json")):
        c = json.loads(card.read_text(encoding="utf-8"))
        out.append(
            {
                "run": c["name"],
                "snapshot": f"shipped model (`ever models`): the weights of {c.get('source', '?')}",
                "seeds": "–",
                "nodes": "–",
                "GCN": "–",
                "steps": str(c.get("steps")),
                "lr": "–",
                "width": "–",
                "stages": "–",
                "data": _data_text(c.get("trained_on") or []),
                "also": "–",
            }
        )
    return pd.DataFrame(out).set_index("run")


# ----------------------------------------------------------------------------- published numbers (the first page)

# Published scores, typed once here with their citation (book/references.bib): the papers' numbers, never a
# run of ours. J&F on the 0-1 scale EVER uses (the papers print percent).
PUBLISHED = (
    {
        "method": "CRW (Jabri et al. 2020)",
        "cite": "jabri2020crw",
        "J&F": 0.676,  # the paper's DAVIS-2017 val result: J&F mean 67.6
        "evaluated on": "DAVIS-2017 val: 30 sequences, several objects each, 480p",
        "trained": "ResNet-18 on Kinetics-400, days on GPUs",
        "from": "the paper (typed in `ever.analysis.tables.PUBLISHED`), not a run of ours",
    },
)


def published_table(root: str | Path = "results"):
    """The published scores (:data:`PUBLISHED`) beside EVER's shipped recipe and its best trained method of
    Table 1 (:func:`table1_data` of ``root``): one row per method, columns ``J&F``, ``evaluated on``,
    ``trained`` and ``from``; EVER's rows are read from the snapshots (sequences, resolution, encoder width,
    steps, minutes). Empty without the snapshots."""
    import pandas as pd

    from ever.analysis.sources import evaluation_sequences, snapshot_info, snapshot_runs

    T = table1_data(root)
    if T.empty:
        return pd.DataFrame()
    root = Path(root)
    info = snapshot_info(root / BASELINES) or {}
    cfg = (read_json(root / BASELINES / info["evaluations"][0] / "summary.json") or {}).get("cfg", {})
    n = len(evaluation_sequences(root / BASELINES))
    first = root / Path(T.iloc[0]["snapshot"]).name  # the shipped default's recipe
    cores = ((snapshot_info(first) or {}).get("machine") or {}).get("cpu_count")
    trained = T[T["kind"] == "trained"]
    rows = [{k: p[k] for k in ("method", "J&F", "evaluated on", "trained", "from")} for p in PUBLISHED]
    for method in dict.fromkeys([trained.index[0], trained["J&F"].idxmax()]):
        snap = root / Path(T.loc[method, "snapshot"]).name
        run = next(r for r in snapshot_runs(snapshot_info(snap) or {}) if r.startswith(method))
        flat = run_config_flat(snap / run)
        rows.append(
            {
                "method": f"EVER `{method}`",
                "J&F": T.loc[method, "J&F"],
                "evaluated on": f"{n} DAVIS-2016 development sequences, one object each, {cfg.get('long_side')} px",
                "trained": f"width-{flat['model.width']} ResNet, {flat['train.steps']:,} steps, "
                f"{T.loc[method, 'train min']:.0f} min on {cores} CPU cores",
                "from": f"`{T.loc[method, 'snapshot']}`, mean of {T.loc[method, 'seeds']} seeds",
            }
        )
    return pd.DataFrame(rows).set_index("method")


def grid_summary(grid_path: str | Path):
    """Chapter 7's "grid that made this book": ``(sentence, table)``, the sentence naming the grid's data, split,
    baselines and the overrides of every run, the table one row per run (``config``, ``overrides``); None
    without the grid file."""
    import pandas as pd

    from ever.grid import load_grid

    if not Path(grid_path).is_file():
        return None
    g = load_grid(grid_path)
    text = (
        f"Grid `{grid_path}`: data `{g.data.name}` at `{g.data_root}`, split `{g.split}`, baselines "
        f"{', '.join(g.baselines.kinds) or 'none'}; overrides for every run: "
        + (", ".join(f"`{s}`" for s in g.common_set) or "none")
        + "."
    )
    rows = [{"run": r.name, "config": r.config, "overrides": " ".join(r.set) or "-"} for r in g.runs]
    return text, pd.DataFrame(rows, columns=["run", "config", "overrides"]).set_index("run")
