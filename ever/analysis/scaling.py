"""How accuracy grows with the amount of distinct real training video (issue 33's data-scaling study).

A data-scaling grid (``configs/report-data-scaling.yaml``) trains one recipe on nested amounts of video, one
row (a *cell*) per amount, several seeds each, and scores the weights it keeps along training on the deciding
sequences. Its results snapshot (``results/data-scaling``) holds, besides the runs, ``data.csv``: what each
cell trained on (:func:`describe_data`, written once from the grid with the data present), so the book reads
the amounts without the videos.

* :func:`points`: J&F (and PCK when scored) of every run at every scored step, with the cell's amount of video;
* :func:`table`: the same over seeds (mean, sd, n) per cell and step;
* :func:`effects`: each amount against the one before it at the end of training (:func:`ever.analysis.stats.effect`
  with its verdict, :func:`ever.analysis.claims.verdict`, Holm-corrected over the grid's comparisons);
* :func:`cell_bar`: a cell against issue 33's bar (:func:`ever.analysis.bar.clear_bar`);
* :func:`growth`: what the curve says more video would give: J&F per doubling of distinct video, with its
  interval, and how many doublings the bar would take at that rate (:func:`growth_text` says it in words);
* :func:`figure`: J&F against distinct videos, one line per scored step, every seed drawn, baselines as lines.

The grid scores no baselines of its own: it shares the protocol of ``results/baselines`` (bare evaluations, the
untrained encoders over five initialisations), and the sequences that decide are the shipped recipe's held-out
ones (:func:`ever.analysis.tables.held_out`: those that did not choose its learning rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_FILE = "data.csv"  # beside SNAPSHOT.json: cell, roots, videos, distinct, frames (describe_data)


def describe_data(grid_path: str | Path):
    """What every cell of a grid trains on, counted as training reads it (:class:`ever.data.clips.ClipDataset`
    with the run's roots and ``data.groups``): ``roots``, ``videos`` (usable videos), ``distinct`` (a group of
    near-duplicates counts once: :func:`ever.data.clips.distinct_videos`) and ``frames``, one row per cell in the
    grid's order. Needs the training data (run it where the grid ran); imports torch."""
    import pandas as pd

    from ever.analysis.stats import cell_of
    from ever.data.clips import ClipDataset, distinct_videos
    from ever.grid import load_grid
    from ever.report import run_config

    g = load_grid(grid_path)
    rows, seen = [], set()
    for spec in g.runs:
        cell = cell_of(spec.name)
        if cell in seen:
            continue
        seen.add(cell)
        d = run_config(g, spec).data
        ds = ClipDataset(d.roots, d.clip_len, d.frame_stride, d.fps, d.size, groups=d.groups)
        names = [p.name for p, _, _ in ds.videos]
        rows.append(
            {
                "cell": cell,
                "roots": len(d.roots),
                "videos": len(ds.videos),
                "distinct": distinct_videos(ds.root_of, names, d.groups),
                "frames": int(sum(n for _, n, _ in ds.videos)),
            }
        )
    return pd.DataFrame(rows)


def read_data(path: str | Path):
    """``data.csv`` of a data-scaling snapshot (:func:`describe_data`), indexed by cell; None when absent."""
    import pandas as pd

    f = Path(path) / DATA_FILE
    return pd.read_csv(f).set_index("cell") if f.is_file() else None


def points(path: str | Path, split: str = "train", names: list[str] | None = None, amounts=None):
    """One row per run and scored step: ``run``, ``cell``, ``step``, ``J&F-Mean`` (and the other scores the
    curves hold), with the cell's ``distinct`` videos and ``frames`` from ``amounts`` (default: ``path``'s
    ``data.csv``, :func:`read_data`; NaN without it). Empty when nothing was scored."""
    from ever.analysis.sources import curves

    C = curves(path, split, names)
    if C.empty:
        return C
    amounts = read_data(path) if amounts is None else amounts
    for col in ("distinct", "frames"):
        C[col] = C["cell"].map(amounts[col]) if amounts is not None else float("nan")
    return C


def table(P):
    """:func:`points` over seeds: one row per cell and step (from the least video to the most, then by step),
    the mean, sample sd and number of seeds of every score, with the cell's amount of video."""
    scores = [c for c in ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1") if c in P and P[c].notna().any()]
    g = P.groupby(["cell", "step"], sort=False)
    out = g[scores].agg(["mean", "std", "count"])
    out.columns = [f"{s} {'sd' if k == 'std' else 'n' if k == 'count' else k}" for s, k in out.columns]
    first = g[["distinct", "frames", "train_gflops"]].first()
    return first.join(out).reset_index().sort_values(["distinct", "step"], kind="stable", ignore_index=True)


def effects(
    path: str | Path,
    cells: list[str],
    split: str = "train",
    min_effect: float | None = None,
    sequences: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Each amount of video against the one before it (``cells`` in increasing order), and the largest against
    the smallest, at the end of training over ``sequences`` (default: all both scored): one dict per comparison
    with the :class:`ever.analysis.stats.Effect`, its verdict under ``min_effect`` and its p-value after Holm's
    correction over these comparisons."""
    from ever.analysis.claims import verdict
    from ever.analysis.sources import sequence_scores
    from ever.analysis.stats import cell_effect, holm

    Q = sequence_scores(path, split)
    if sequences is not None:
        Q = Q.loc[list(sequences)]
    pairs = list(zip(cells[1:], cells[:-1])) + ([(cells[-1], cells[0])] if len(cells) > 2 else [])
    found = [e for e in (cell_effect(Q, a, b) for a, b in pairs) if e is not None]
    corrected = holm({e.key: e.p for e in found})
    return [{"effect": e, "verdict": verdict(e, min_effect), "p_holm": corrected[e.key]} for e in found]


def model_scores(path: str | Path, cell: str, split: str = "train"):
    """Sequences x seeds (J&F at the end of training) of one cell of the grid."""
    from ever.analysis.sources import sequence_scores
    from ever.analysis.stats import cell_columns

    Q = sequence_scores(path, split)
    return Q[cell_columns(Q, cell)]


def cell_bar(path: str | Path, cell: str, split: str = "train", root: str | Path = "results"):
    """One cell's seeds against issue 33's bar (:func:`ever.analysis.bar.clear_bar`): every baseline of
    ``root``'s baselines snapshot, on the shipped recipe's held-out sequences, PCK@0.1 where scored. None
    without the baselines snapshot or the cell."""
    from ever.analysis.bar import clear_bar, summary_scores
    from ever.analysis.sources import evaluation_sequences, snapshot_info, summaries
    from ever.analysis.tables import BASELINES, held_out

    base = Path(root) / BASELINES
    M = model_scores(path, cell, split)
    if snapshot_info(base) is None or M.empty:
        return None
    S = summaries(path, split, list(M.columns), baselines=False)
    pck = [float(v) for v in S["PCK@0.1"].dropna()] if "PCK@0.1" in S else []
    return clear_bar(
        M,
        evaluation_sequences(base),
        sequences=held_out(root) or None,
        model_pck=pck or None,
        baseline_pck=summary_scores(base),
    )


@dataclass(frozen=True)
class Growth:
    """J&F at the end of training against log2 of the distinct videos trained on (:func:`growth`)."""

    slope: float  # J&F per doubling of distinct video (least squares over the runs' seed means)
    low: float  # its 95 % interval: two-level bootstrap over sequences and seeds
    high: float
    runs: int
    cells: int
    sequences: int
    span: float  # doublings between the least and the most video trained on (what the line rests on)
    most: float  # the most distinct videos any cell trained on
    fitted: float  # the line's J&F there
    target: float | None  # the J&F the bar asks for, when given
    doublings: float | None  # more doublings of ``most`` to reach ``target`` at ``slope`` (None if it never does)
    fewest: float | None  # the same at the interval's steepest slope ``high`` (None if that never does)

    def videos(self, doublings: float | None) -> float | None:
        """Distinct videos after ``doublings`` more doublings of the most trained on."""
        return None if doublings is None else self.most * 2.0**doublings


def growth(
    path: str | Path,
    cells: list[str],
    split: str = "train",
    sequences=None,
    target=None,
    amounts=None,
    draws: int = 2000,
    seed: int = 0,
):
    """What more video would give, read off the grid: J&F at the end of training (the mean over ``sequences``,
    default all that every run scored) against log2 of each cell's distinct videos (``amounts``, default
    ``data.csv``), one straight line by least squares through the cells' seed means, weighted by their seeds.
    Its 95 % interval is the 2.5th and 97.5th percentile of ``draws`` two-level bootstrap replicates (as
    :func:`ever.analysis.stats.effect`): each replicate draws the sequences with replacement, and each cell's
    seeds with replacement, so it carries the spread of sequences in how they respond to video as well as the
    seeds'. ``target`` (e.g. :attr:`ever.analysis.bar.Bar.target`) gives the doublings of the most video the line
    needs to reach it. None with fewer than two amounts of video or without the counts."""
    import numpy as np
    import pandas as pd

    amounts = read_data(path) if amounts is None else amounts
    if amounts is None:
        return None
    used = [c for c in cells if c in amounts.index]
    tables = {c: model_scores(path, c, split) for c in used}
    tables = {c: M for c, M in tables.items() if not M.empty}
    if len(tables) < 2:
        return None
    Q = pd.concat(tables.values(), axis=1)
    rows = [q for q in (list(sequences) if sequences is not None else Q.index) if q in Q.index]
    Q = Q.loc[rows].dropna()
    if len(Q) == 0:
        return None
    x = {c: float(np.log2(amounts.loc[c, "distinct"])) for c in tables}
    X = {c: Q[list(M.columns)].to_numpy() for c, M in tables.items()}  # sequences x seeds
    xs = np.concatenate([np.full(v.shape[1], x[c]) for c, v in X.items()])  # log2 videos of every seed
    xc = xs - xs.mean()

    def fit(means: dict[str, np.ndarray]) -> np.ndarray:
        """Slope(s) of the least-squares line through every seed; ``means[c]``: (..., seeds) per-seed J&F."""
        return (np.concatenate(list(means.values()), axis=-1) * xc).sum(axis=-1) / (xc @ xc)

    means = {c: v.mean(axis=0) for c, v in X.items()}  # (seeds,): each seed's mean over the sequences
    slope = float(fit(means))
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(Q), size=(draws, len(Q)))  # (draws, S): the drawn sequences
    boot = {}
    for c, v in X.items():
        seeds = rng.integers(0, v.shape[1], size=(draws, v.shape[1]))  # one draw of seeds for all sequences
        drawn = np.take_along_axis(v[pick], seeds[:, None, :], axis=2)  # (draws, S, seeds)
        boot[c] = drawn.mean(axis=1)  # (draws, seeds): each drawn seed's mean over the drawn sequences
    low, high = np.percentile(fit(boot), [2.5, 97.5])
    fitted = float(np.concatenate(list(means.values())).mean() + slope * (max(x.values()) - xs.mean()))

    def more(k: float) -> float | None:
        if target is None:
            return None
        if fitted >= target:
            return 0.0
        return (target - fitted) / k if k > 0 else None

    return Growth(
        slope=slope,
        low=float(low),
        high=float(high),
        runs=len(xs),
        cells=len(X),
        sequences=len(Q),
        span=max(x.values()) - min(x.values()),
        most=float(2.0 ** max(x.values())),
        fitted=fitted,
        target=target,
        doublings=more(slope),
        fewest=more(float(high)),
    )


def _about(n: float) -> str:
    """A count to two significant figures: 44,694 -> 45,000."""
    from math import floor, log10

    return f"{round(n, 1 - int(floor(log10(n)))):,.0f}" if n >= 100 else f"{n:.0f}"


def growth_text(g: Growth, which: str = "deciding sequences") -> str:
    """One sentence: the slope with its interval and what it says of the bar (``which``: what the sequences are).
    The doublings the bar would take are an extrapolation: given as a number of videos only when the interval
    excludes zero, and always beside the doublings the data spans."""
    text = (
        f"J&F on the {g.sequences} {which} grows by {g.slope:+.3f} [{g.low:+.3f}, {g.high:+.3f}] per doubling of "
        f"distinct training video (a line through {g.runs} runs, {g.cells} amounts of video up to {g.most:.0f} "
        f"distinct videos, {g.span:.1f} doublings; interval: bootstrap over sequences and seeds)"
    )
    if g.target is None:
        return text + "."
    if g.doublings == 0:
        return text + f"; the line already reaches the bar ({g.target:.3f})."
    steep = (
        f"{g.fewest:.1f} more doublings at the interval's steepest slope"
        if g.fewest is not None
        else "not even at the interval's steepest slope"
    )
    if g.doublings is None:
        return text + f"; at that slope no amount of video reaches the bar ({g.target:.3f}); {steep}."
    text += f"; extrapolated, the bar ({g.target:.3f}) would take {g.doublings:.1f} more doublings ({steep})"
    if g.low > 0:
        return text + f", about {_about(g.videos(g.doublings))} distinct videos."
    return text + (
        ", and the interval includes zero: these amounts cannot rule out that more of the same video gives nothing."
    )


def figure(P, baselines=None, score: str = "J&F-Mean"):
    """J&F against distinct training videos (log axis): every seed a dot, one line per scored step through the
    seed means; ``baselines`` (:func:`ever.analysis.bar.families` on the same sequences) drawn as horizontal lines,
    a family of several members (untrained encoders) as its mean with a band of one sd. Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    steps = sorted(P["step"].unique())
    colours = plt.cm.viridis(np.linspace(0.15, 0.85, len(steps)))
    for step, colour in zip(steps, colours):
        at = P[P["step"] == step]
        ax.scatter(at["distinct"], at[score], color=colour, alpha=0.5, s=18)
        m = at.groupby("distinct")[score].mean()
        ax.plot(m.index, m.values, "-o", color=colour, label=f"step {step} (mean of seeds)")
    styles = iter(("--", ":", "-.", (0, (1, 3)), (0, (5, 1)), (0, (3, 1, 1, 1))))
    for fam, row in (baselines if baselines is not None else []).iterrows():
        style = next(styles, "--")
        ax.axhline(row["J&F"], color="0.35", linestyle=style, linewidth=1, label=fam)
        if row["members"] > 1 and row["sd"] == row["sd"]:
            ax.axhspan(row["J&F"] - row["sd"], row["J&F"] + row["sd"], color="0.5", alpha=0.12, label=f"{fam} ± sd")
    ax.set_xscale("log")
    xs = sorted(P["distinct"].dropna().unique())
    ax.set_xticks(xs, [str(int(x)) for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("distinct training videos")
    ax.set_ylabel(score.replace("-Mean", ""))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes, hiding no line
    fig.tight_layout()
    return fig


def loss_figure(path: str | Path, names: list[str] | None = None, amounts=None):
    """Training loss against step, one line per cell (the mean over its seeds of each logged step, seeds as a
    band from their minimum to maximum), labelled with the cell's distinct videos (``amounts``:
    :func:`read_data`). The walk's chance level is ln N for every cell alike (one recipe). Returns the figure."""
    import matplotlib.pyplot as plt

    from ever.analysis.sources import training_curves

    M = training_curves(path, names)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    M = M.assign(cell=[r.rsplit("-s", 1)[0] for r in M["run"]])
    for cell, d in M.groupby("cell", sort=False):
        g = d.groupby("step")["loss"]
        n = f" ({int(amounts.loc[cell, 'distinct'])} videos)" if amounts is not None and cell in amounts.index else ""
        line = ax.plot(g.mean().index, g.mean().values, label=f"{cell}{n}")[0]
        ax.fill_between(g.min().index, g.min().values, g.max().values, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("cycle-consistency loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    """``python -m ever.analysis.scaling GRID OUT``: write :func:`describe_data` of ``GRID`` to ``OUT/data.csv``."""
    import sys

    from ever.utils import atomic_write_text

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m ever.analysis.scaling GRID SNAPSHOT_DIR")
    out = Path(args[1]) / DATA_FILE
    atomic_write_text(out, describe_data(args[0]).to_csv(index=False))
    print(f"{out}: written")


if __name__ == "__main__":
    main()
