"""What the book reads: run folders turned into tables, curves and verdicts (read-only).

``ever report`` (:mod:`ever.report`) writes run folders; the notebooks of ``book/`` read them through
this module, so every number the book shows comes from a file and the analysis is tested here, not in
a notebook. A run folder ``runs/<name>/`` holds ``config.yaml``, ``metrics.jsonl``, ``ledger.json``,
``eval/<split>/summary.json`` and ``per_sequence.csv``, and with snapshots ``eval-curve/`` and
``curve.csv``; baselines live in ``runs/baselines/<kind>/eval/<split>/``.

Nothing here imports torch at module load; the few functions that need a model import it when called.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from ever.config import SAME_WEIGHTS_KEYS, flatten
from ever.evaluate import BASELINES


def book_style() -> None:
    """The notebooks' common display settings (one call at the top of each chapter)."""
    import warnings

    import pandas as pd
    import seaborn as sns

    warnings.filterwarnings("ignore", category=FutureWarning)
    sns.set_theme(context="notebook", style="whitegrid")
    pd.set_option("display.precision", 4)


def label_points(ax, x, y, labels, fontsize: float = 8) -> None:
    """Write ``labels`` to the right of the points ``(x, y)`` of a scatter plot so that no two overlap: labels
    whose boxes would collide on the page are stacked one line (``fontsize`` + 3 points) apart, centred on
    their points and a little further right, each joined to its point by a thin line, so that points that
    coincide keep one readable label each. Positions are compared on the page (after the axes' limits and
    scales, so call it once those are set); label widths are estimated from their length."""
    import numpy as np

    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.get_xlim(), ax.get_ylim()  # settles autoscaled limits before positions are read
    pts = ax.transData.transform(np.column_stack([x, y])) * 72 / ax.figure.dpi
    h = fontsize + 3
    left = pts[:, 0] + 7
    right = left + 0.62 * fontsize * np.array([len(str(t)) for t in labels])
    groups = [[i] for i in np.argsort(pts[:, 1], kind="stable")]  # lowest first

    def place(g):  # label heights of a group: one line apart, centred on its points, in the order of their y
        return pts[g, 1].mean() + h * (np.arange(len(g)) - (len(g) - 1) / 2)

    def collide(ga, gb) -> bool:  # their label boxes share some x and some y
        ya, yb = place(ga), place(gb)
        return (left[ga].min() < right[gb].max() and left[gb].min() < right[ga].max()
                and ya.min() - h < yb.max() and yb.min() - h < ya.max())

    while True:  # merge colliding groups until none collide
        pair = next(((a, b) for a in range(len(groups)) for b in range(a + 1, len(groups))
                     if collide(groups[a], groups[b])), None)
        if pair is None:
            break
        a, b = pair
        groups[a] = sorted(groups[a] + groups.pop(b), key=lambda i: pts[i, 1])
    for g in groups:
        for i, ly in zip(g, place(g)):
            dy = float(ly - pts[i, 1])
            line = dict(arrowstyle="-", lw=0.8, color="0.3", shrinkA=1, shrinkB=5) if len(g) > 1 else None
            ax.annotate(str(labels[i]), (x[i], y[i]), textcoords="offset points", xytext=(7 if line is None else 18, dy),
                        fontsize=fontsize, va="center", arrowprops=line, annotation_clip=False,
                        bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8))  # over grid lines


def format_value(v: Any) -> str:
    """One table cell as the book prints it: integers without a decimal point (also when pandas made them
    floats), thousands separated, 3 decimals for scores, scientific only below 0.001, "–" for missing."""
    import math
    import numbers

    import numpy as np

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        v = float(v)
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        a = abs(v)
        return f"{v:,.0f}" if a >= 100 else f"{v:.2f}" if a >= 10 else f"{v:.3f}" if a >= 1e-3 else f"{v:.1e}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)[:80]
    return str(v)


def table(df, caption: str | None = None, gradient: bool = False) -> None:
    """Show a DataFrame in a notebook: cells by :func:`format_value`, a horizontal scroll bar when wider
    than the page (nothing cut off at the right edge), the index as the first column; ``gradient``
    colours numeric cells by value (one scale for the whole table)."""
    from IPython.display import HTML, display

    styler = (df.style.format(format_value, na_rep="–").format_index(format_value)
              .set_table_styles([{"selector": "th, td", "props": [("padding", "0.2em 0.8em")]}], overwrite=False))
    if gradient:
        styler = styler.background_gradient(cmap="viridis", axis=None)
    if caption:
        styler = styler.set_caption(caption)
    display(HTML(f'<div style="overflow-x:auto; max-width:100%">{styler.to_html()}</div>'))


def results_text(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str:
    """The scores of the evaluated runs (``names``, default all) and baselines of ``runs_dir``, as Markdown."""
    df = summaries(runs_dir, split, names)
    if df.empty:
        return f"(no evaluation under {runs_dir} for split {split!r})"
    cols = [c for c in ("run", "J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2", "frames_per_s") if c in df]
    return df[cols].to_markdown(index=False, floatfmt=".3f")



def training_curve(run_dir: str | Path, split: str):
    """Accuracy against training compute for one run: a DataFrame with one row per evaluated snapshot and
    the final checkpoint: step, train_gflops (the ledger's FLOPs per step x step: exact for a fixed
    graph), train_kwh (the run's training energy x step / steps: an estimate that assumes a steady
    rate), J&F-Mean, J-Mean, F-Mean (and PCK@0.1, PCK@0.2 when scored)."""
    import pandas as pd

    from ever.ledger import load_ledger
    from ever.config import snapshot_step

    run_dir = Path(run_dir)
    try:
        train = (load_ledger(run_dir).get("phases") or {}).get("train") or {}
    except FileNotFoundError:  # a run with ledger.enabled=false
        train = {}
    segs = train.get("segments") or []
    per_step = next((s["flops_per_step"] for s in segs if s.get("flops_per_step")), None)
    steps = int(run_config_flat(run_dir)["train.steps"])
    kwh = (train.get("totals") or {}).get("kwh")
    points = {snapshot_step(p.parent.parent.name): p  # eval-curve/step-NNNNNN/<split>/summary.json
              for p in sorted(run_dir.glob(f"eval-curve/step-*/{split}/summary.json"))}
    final = run_dir / "eval" / split / "summary.json"
    if final.is_file():  # the final weights: one point, even where a snapshot of the last step was scored too
        points[steps] = final
    rows = []
    for step, path in sorted(points.items()):
        s = read_json(path) or {}
        rows.append({"step": step,
                     "train_gflops": per_step * step / 1e9 if per_step else None,
                     "train_kwh": kwh * step / steps if kwh is not None and steps else None,
                     **{k: s[k] for k in ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2") if k in s}})
    return pd.DataFrame(rows)



def curves(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """Accuracy against training compute of every run, stacked with ``run`` and ``cell`` (:func:`cell_of`)
    columns: each run's ``curve.csv`` (written by ``ever report`` for runs with snapshots; the form a results
    snapshot keeps) or else :func:`training_curve` of its folder. Empty when no run was evaluated."""
    import pandas as pd

    out = []
    for d in model_runs(runs_dir, names):
        c = pd.read_csv(d / "curve.csv") if (d / "curve.csv").is_file() else training_curve(d, split)
        if not c.empty:
            out.append(c.assign(run=d.name, cell=cell_of(d.name)))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def plot_curves(C, baselines, x: str = "step", xlabel: str = "training step", ylabel: str = "J&F", title: str = ""):
    """The J&F of each cell of :func:`curves` along training (one line per cell, a point per evaluation,
    ``x`` a column of ``C``), with each baseline (``baselines``: name -> J&F) as a grey horizontal line and
    the legend outside the axes on the right. Returns the figure."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.lineplot(data=C, x=x, y="J&F-Mean", hue="cell", marker="o", ax=ax)
    for (name, v), ls in zip(baselines.items(), (":", "--", "-.")):
        ax.axhline(v, color="0.4", ls=ls, lw=1, label=name)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    fig.tight_layout()
    return fig


def along_training(C):
    """The rows of :func:`curves` ``C`` that belong to runs scored at more than one point of their training."""
    return C[C.groupby("run")["step"].transform("nunique") > 1] if not C.empty else C


def plot_compute_curves(C, baseline: tuple[str, float] | None = None):
    """Claim 1's figure: the J&F of each cell of :func:`curves` (its runs scored along training) against
    cumulative training GFLOPs, mean over seeds with a band of ± 1 sd (FLOPs per step are fixed, so the seeds
    of a cell share their x), and against each run's cumulative training energy in Wh, one line per run (the
    energy is each run's own estimate and follows the machine's load). ``baseline``: (name, J&F), e.g.
    :func:`best_baseline_score`, drawn dotted on both. Log x axes with plain 1-2-5 ticks. Returns the
    figure, or None when no run was scored along its training."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    import seaborn as sns

    D = along_training(C)
    if D.empty:
        return None
    D = D.assign(train_wh=D["train_kwh"] * 1000)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    sns.lineplot(data=D, x="train_gflops", y="J&F-Mean", hue="cell", errorbar="sd", marker="o", ax=axes[0], legend=False)
    sns.lineplot(data=D, x="train_wh", y="J&F-Mean", hue="cell", units="run", estimator=None, marker="o", lw=1,
                 ax=axes[1])
    axes[0].set(xscale="log", xlabel="cumulative training GFLOPs (log scale)", ylabel="J&F",
                title="line: mean over seeds, band: ± 1 sd")
    axes[1].set(xscale="log", xlabel="cumulative training energy, Wh (estimate, log scale)",
                title="one line per run (seed)")
    for ax in axes:
        ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        if baseline is not None:
            ax.axhline(baseline[1], color="grey", ls=":", lw=1.2)
    sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1, 1), frameon=False)
    if baseline is not None:
        axes[1].text(1.02, 0.02, f"dotted: {baseline[0]}", transform=axes[1].transAxes, fontsize=9, color="grey")
    fig.tight_layout()
    return fig


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
        targets[(f"patch-level accuracy: the final J&F of {claim['reference']} (mean over seeds) less "
                 f"{claim['tolerance']:g}")] = claim["target"]
    out = []
    col = "train_gflops to reach"
    for name, target in targets.items():
        T = reach_table(D, target)
        ref = claim["reference"] if claim is not None else None
        if ref in T.index and T.loc[ref, col] == T.loc[ref, col]:
            T[f"x less than {ref}"] = T.loc[ref, col] / T[col]
        out.append((T.round({col: 0, "sd": 0}),
                    f"training GFLOPs to reach J&F {target:.3f}, {name}; mean and sd over the seeds that reach it "
                    "(a seed already there at its first evaluation counts that point's compute: an upper bound)"))
    return out


def compute_to_reach(curve, target: float, cost: str = "train_gflops", score: str = "J&F-Mean") -> float | None:
    """The training cost at which one run's curve (rows by increasing cost) first reaches ``target``: linear
    interpolation between the last point below it and the first at or above it; the first point's cost when
    that one already reaches it (no earlier point: an upper bound); None when the run never reaches it."""
    pts = curve.dropna(subset=[cost, score]).sort_values(cost)
    xs, ys = pts[cost].tolist(), pts[score].tolist()
    for i, (x, y) in enumerate(zip(xs, ys)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = xs[i - 1], ys[i - 1]
            return float(x0 + (target - y0) * (x - x0) / (y - y0))
    return None


def reach_table(C, target: float, cost: str = "train_gflops", score: str = "J&F-Mean"):
    """Per cell of :func:`curves`: how many runs (seeds) reach ``target``, and the mean and sample sd of
    their :func:`compute_to_reach`; a cell's mean is over the runs that reached it (``reached`` says how
    many), so a cell where some seeds never reach the target is not made to look cheap silently."""
    import pandas as pd

    rows = []
    for cell, g in C.groupby("cell", sort=False):
        costs = [compute_to_reach(r, target, cost, score) for _, r in g.groupby("run", sort=False)]
        hit = pd.Series([c for c in costs if c is not None], dtype=float)
        rows.append({"cell": cell, "runs": len(costs), "reached": len(hit),
                     f"{cost} to reach": hit.mean() if len(hit) else None,
                     "sd": hit.std(ddof=1) if len(hit) > 1 else None})
    return pd.DataFrame(rows).set_index("cell")


def note(text: str) -> None:
    """Show a visible sentence in a notebook (used where a result file is absent)."""
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** {text}"))


def snapshot_info(path: str | Path) -> dict[str, Any] | None:
    """``SNAPSHOT.json`` of a committed results snapshot (written by :func:`ever.report.snapshot`): command,
    commit, date, machine, split, title; None when ``path`` is not a snapshot."""
    return read_json(Path(path) / "SNAPSHOT.json")


def provenance(path: str | Path, shown: str | None = None) -> str:
    """One sentence saying where a snapshot's numbers come from: its command, commit, date and machine
    (``shown``: the path as the reader should see it, default ``path``)."""
    info = snapshot_info(path)
    shown = shown or str(path)
    if info is None:
        raise FileNotFoundError(f"{path}: not a results snapshot (no SNAPSHOT.json)")
    m = info.get("machine") or {}
    hw = f"{m.get('cpu')}, {m.get('cpu_count')} cores, " + (", ".join(m["gpus"]) if m.get("gpus") else "no GPU")
    cmd = info["command"]
    how = (f"made by `{cmd}`" if "\n" not in cmd else f"made by the commands in `{shown}/SNAPSHOT.json`")
    runs_at = info.get("trained_at") or []
    taken = f"snapshot taken at commit `{(info.get('commit') or '?')[:7]}`"
    if runs_at == [info.get("commit")]:
        at = f"at commit `{runs_at[0][:7]}`"
    elif runs_at:
        at = (f"runs trained at commit{'s' if len(runs_at) > 1 else ''} "
              + ", ".join(f"`{c[:7]}`" for c in runs_at) + f", {taken}")
    else:
        at = taken
    by_files: dict[tuple[str, ...], list[str]] = {}
    for run, files in (info.get("trained_changes") or {}).items():
        by_files.setdefault(tuple(files), []).append(f"`{run}`")
    changed = "".join(f"; {', '.join(runs)} {'were' if len(runs) > 1 else 'was'} trained with uncommitted changes to "
                      + ", ".join(f"`{f}`" for f in files) for files, runs in by_files.items())
    return f"From the committed results snapshot `{shown}`, {how}, {at}, on {info.get('date')} ({hw}){changed}."


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
        rows.append({"method": label.split("--")[0], score: s.get(score),
                     "protocol": f"{c.get('context')} context, {c.get('label_resize')} labels"})
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)  # pivot, not pivot_table: two evaluations of one cell are an error, not a mean
    return (df.pivot(index="method", columns="protocol", values=score)
            .reindex(index=list(dict.fromkeys(df["method"])), columns=list(dict.fromkeys(df["protocol"]))))


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


def evaluation_comparisons(path: str | Path) -> list[str]:
    """One sentence per pair ``[a, b]`` of the snapshot's ``compare`` list: a's J&F against b's, sequence by
    sequence (:func:`compare`), with the number of sequences and the paired t-test."""
    info = snapshot_info(path) or {}
    Q = evaluation_sequences(path) if info.get("compare") else None
    return [comparison_line(Q, a, b) for a, b in info.get("compare", [])]


def comparison_line(Q, a: str, b: str) -> str:
    """:func:`compare` of columns ``a`` and ``b`` of a sequences x methods table as one Markdown sentence: both
    means, the lead, on how many sequences a is ahead, its largest lead and the mean lead without it, and the
    paired t-test."""
    c = compare(Q, a, b)
    line = (f"**`{a}` against `{b}`**: J&F {Q[a].mean():.3f} against {Q[b].mean():.3f} ({c['lead']:+.3f}) on "
            f"{c['n']} sequences, ahead on {c['ahead']} of {c['n']}; its largest lead is {c['top_lead']:+.3f} on "
            f"`{c['top']}`")
    if c["lead_without_top"] is not None:
        line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
    return line + (f" (paired t-test over the sequences: p = {c['p']:.2g})." if c["p"] is not None else ".")


PROTOCOL_WORDS = {  # eval.context / eval.label_resize values (ever.evaluate.propagation) as the book names them
    "reference": "frame 0 padded in front (reference)", "first_once": "frame 0 once (EVER's earlier)",
    "bilinear": "labels resized bilinearly", "area": "labels area-averaged",
}


def evaluation_legend(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """Readable names for :func:`evaluation_table` of a snapshot of bare evaluations, from each evaluation's
    summary.json: ``(columns, lines)``, a readable name per protocol column (:data:`PROTOCOL_WORDS`; a value
    it does not know is shown as recorded) and one Markdown line per row name and per ``compare`` label
    that names a row and a protocol (``method--context-labels``): what was evaluated (raw Lab colour, the
    random-init encoder, a shipped model, a trained checkpoint) and with which feature stage (the summary's
    ``eval_stage``, else a ``-layerN`` ending of the name)."""
    import re

    from ever.models import pretrained

    info = snapshot_info(path) or {}
    shipped = pretrained.names()
    columns, rows, labels = {}, {}, {}
    for label in info.get("evaluations", []):
        s = read_json(Path(path) / label / "summary.json") or {}
        c, m, row = s.get("cfg") or {}, s.get("method"), label.split("--")[0]
        words = [PROTOCOL_WORDS.get(c.get(k), f"{k.replace('_', ' ')}: {c.get(k)}") for k in ("context", "label_resize")]
        columns[f"{c.get('context')} context, {c.get('label_resize')} labels"] = "; ".join(words)
        stage = s.get("eval_stage") or next(iter(re.findall(r"-(layer\d)$", row)), None)
        what = ([] if m is None else ["raw Lab colour of 8x8 blocks, no learned features"] if m == "lab" else
                ["the same encoder with random weights, no training"] if m == "random" else
                [f"the shipped model `{m}`"] if m in shipped else [f"the trained checkpoint `{m}`"]) + ([f"features of {stage}"] if stage else [])
        if what:
            rows.setdefault(row, ", ".join(what))
        if "--" in label:
            labels[label] = f"`{row}` with " + ", ".join(words)
    used = {x for pair in info.get("compare", []) for x in pair}
    return columns, ([f"`{r}`: {w}" for r, w in rows.items()]
                     + [f"`{k}`: {w}" for k, w in labels.items() if k in used])


def live_or_snapshot(runs_dir: str | Path, snapshot: str | Path, split: str, names: list[str] | None = None):
    """Where a chapter reads a study's results: ``(runs_dir, names, None)`` when ``runs_dir`` holds an
    evaluated model run for ``split`` (this machine ran the study; baselines alone do not count), else ``(snapshot, None, info)`` when the committed
    snapshot exists (``names``: :func:`snapshot_runs`), else ``(runs_dir, names, None)`` with nothing in it."""
    if not summaries(runs_dir, split, names, baselines=False).empty:
        return Path(runs_dir), names, None
    info = snapshot_info(snapshot)
    if info is not None and info.get("kind", "runs") == "runs" and info.get("split") == split:
        return Path(snapshot), snapshot_runs(info), info
    return Path(runs_dir), names, None


def study_source(grid_path: str | Path, snapshot: str | Path) -> tuple[Path, list[str] | None, str, dict[str, Any] | None]:
    """Where a chapter reads a study that has its own grid (the real-video or the green study):
    ``(folder, run names, split, snapshot info or None)``. With the grid file present, :func:`live_or_snapshot`
    of its runs; without it (the grid only locates local runs), the committed snapshot with its own split.
    The folder holds nothing when neither exists."""
    from ever.report import load_grid

    if Path(grid_path).is_file():
        g = load_grid(grid_path)
        src, names, info = live_or_snapshot(g.runs_dir, snapshot, g.split, [r.name for r in g.runs])
        return src, names, g.split, info
    info = snapshot_info(snapshot)
    if info is not None and info.get("kind", "runs") == "runs":
        return Path(snapshot), snapshot_runs(info), info["split"], info
    return Path(snapshot), None, "", None


def mean_sd(mean: float, sd: float, fmt: str = "{:.3f}") -> str:
    """``mean ± sd`` as text: the mean alone when the sd is NaN (one seed), "–" when the mean is."""
    return "–" if mean != mean else fmt.format(mean) + ("" if sd != sd else " ± " + fmt.format(sd))


def unbroken(df):
    """``df`` as text with every " ± " joined by non-breaking spaces, so a page never wraps a "mean ± sd" cell."""
    return df.apply(lambda col: col.astype(str).str.replace(" ± ", "\u00a0±\u00a0", regex=False))


def seed_table(runs_dir: str | Path, split: str, names: list[str] | None = None,
               scores: tuple[str, ...] = ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2")):
    """One row per cell (seeds grouped, :func:`over_seeds`) and per baseline: ``seeds`` and, per score,
    ``mean ± sd`` as text (the mean alone for a cell of one seed), in the grid's order."""
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
        row = {"run": cell, "seeds": "–" if cell in ("baseline: copy", "baseline: lab") else n}  # no seed to vary
        for c in cols:
            mean, sd = r[f"{c} mean"], r[f"{c} sd"]
            row[c] = mean_sd(mean, sd)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def cell_gaps(runs_dir: str | Path, split: str, names: list[str] | None, pairs: list[tuple[str, str]]):
    """Cell ``a`` against cell ``b`` for each pair -> DataFrame, one row each (columns ``a``, ``b``, ``seeds a``,
    ``seeds b``, ``J&F a``, ``J&F b``, ``a - b``, ``noise``, ``beyond noise``, ``a ahead``, ``sequences``,
    ``p``): both final J&F (means over seeds), the difference a - b, the :func:`noise` of the two cells (NaN
    when neither has two seeds) and whether the difference exceeds it (None when that noise is not measured),
    and sequence by sequence (:func:`paired`) on how many of the ``sequences`` both were scored on a is ahead
    (both counts 0 when there are none) and the paired t-test's p. A pair naming a cell the runs do not have is
    skipped."""
    import pandas as pd

    S = summaries(runs_dir, split, names)
    if S.empty or "J&F-Mean" not in S:
        return pd.DataFrame()
    O = over_seeds(S, ("J&F-Mean",))
    CQ = cell_sequence_scores(sequence_scores(runs_dir, split, names))
    rows = []
    for a, b in pairs:
        if a not in O.index or b not in O.index:
            continue
        (ma, sa), (mb, sb) = (O.loc[c, ["J&F-Mean mean", "J&F-Mean sd"]].tolist() for c in (a, b))
        n = noise(sa, sb)
        c = paired(CQ, a, b)
        rows.append({"a": a, "b": b, "seeds a": int(O.loc[a, "J&F-Mean n"]), "seeds b": int(O.loc[b, "J&F-Mean n"]),
                     "J&F a": ma, "J&F b": mb, "a - b": ma - mb,
                     "noise": float("nan") if n is None else n,
                     "beyond noise": None if n is None or ma != ma or mb != mb else abs(ma - mb) > n,
                     "a ahead": c["ahead"] if c else 0, "sequences": c["n"] if c else 0,
                     "p": float("nan") if c is None or c["p"] is None else c["p"]})
    return pd.DataFrame(rows)


def readme_results(root: str | Path = "results") -> str:
    """The README's results section, generated from the committed snapshots under ``root`` (each
    ``<study>/SNAPSHOT.json``, in name order): per study its title, :func:`provenance`, the :func:`seed_table`
    and the :func:`findings`. ``tests/test_readme.py`` checks that the README holds exactly this text, so a
    README number always comes from a committed result; ``python -m ever.results README.md`` rewrites it."""
    parts = []
    for f in sorted(Path(root).glob("*/SNAPSHOT.json")):
        d = f.parent
        if d.name.endswith(SCRATCH):  # a snapshot being written or replaced
            continue
        info = snapshot_info(d) or {}
        parts.append(f"**{info.get('title') or d.name}.** {provenance(d, f'{Path(root).name}/{d.name}')}")
        if info.get("note"):
            parts.append(info["note"])
        if info.get("kind") == "evaluations":
            e = evaluation_table(d)  # NaN (a method not run under a protocol) -> None, which prints as "–"
            parts.append(e.astype(object).where(e.notna(), None).to_markdown(floatfmt=".3f", missingval="–"))
            parts.append("\n".join(f"- {line}" for line in evaluation_comparisons(d)))
            continue
        names = snapshot_runs(info)
        parts.append(seed_table(d, info["split"], names).to_markdown(disable_numparse=True, missingval="–"))
        parts.append("\n".join(f"- {line}" for line in findings(d, info["split"], names)))
    return "\n\n".join(p for p in parts if p)


SCRATCH = (".tmp", ".old")  # suffixes of a snapshot folder being written or replaced (ever.report._write_snapshot)
README_BEGIN = "<!-- results: generated from results/ by `python -m ever.results README.md`; do not edit by hand -->"
README_END = "<!-- /results -->"


def readme_section(readme_text: str) -> str:
    """The generated part of the README (between :data:`README_BEGIN` and :data:`README_END`), stripped."""
    if README_BEGIN not in readme_text or README_END not in readme_text:
        raise ValueError("README has no generated results section (markers missing)")
    return readme_text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is None or isinstance(v, (str, int, float, bool))}


def model_runs(runs_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Run folders (those with a ``config.yaml``), in the grid's order when ``names`` is given."""
    runs_dir = Path(runs_dir)
    if names:
        return [runs_dir / n for n in names if (runs_dir / n / "config.yaml").is_file()]
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if (p / "config.yaml").is_file() and p.name != "baselines")


def result_dirs(runs_dir: str | Path, names: list[str] | None = None) -> list[tuple[str, Path]]:
    """(label, folder) of every run (:func:`model_runs`) then every baseline (``baseline: <kind>``), the
    order every table of the book uses; baselines are listed whether or not they were evaluated."""
    runs_dir = Path(runs_dir)
    return ([(d.name, d) for d in model_runs(runs_dir, names)]
            + [(f"baseline: {b}", runs_dir / "baselines" / b) for b in BASELINES])


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
        n = graph_size(load_config(d / "config.yaml"))[1]
        m = m.assign(run=d.name, N=n)
        if "loss" in m:
            m["loss / ln N"] = m["loss"] / math.log(n)
        if "acc" in m:
            m["acc × N"] = m["acc"] * n
        curves.append(m)
    return pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()


def chance_runs(runs_dir: str | Path, names: list[str] | None = None, margin: float = 0.02) -> list[dict[str, Any]]:
    """Runs whose training walk never left chance: over the second half of their logged steps, the mean
    ``loss / ln N`` of :func:`training_curves` is at least ``1 - margin`` (1 is the loss of a uniform walk, what
    features that tell no node from another give). Per such run: ``run``, that mean, the mean ``acc × N``
    (1 = chance) and the median gradient norm over the same steps (None when not logged)."""
    M = training_curves(runs_dir, names)
    out = []
    if M.empty or "loss / ln N" not in M:
        return out
    for run, m in M.groupby("run", sort=False):
        late = m[m["step"] > m["step"].max() / 2].dropna(subset=["loss / ln N"])
        if late.empty or late["loss / ln N"].mean() < 1 - margin:
            continue
        out.append({"run": run, "loss / ln N": float(late["loss / ln N"].mean()),
                    "acc × N": float(late["acc × N"].mean()) if "acc × N" in late else None,
                    "grad_norm": float(late["grad_norm"].median()) if "grad_norm" in late else None})
    return out


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
        assumptions = [a.replace(f"{epochs} epoch(s)", f"{epochs} epoch{'' if epochs == 1 else 's'}")
                       for a in e["assumptions"]]
        rows.append({"run": d.name, "PFLOPs": None if e["flops"] is None else e["flops"] / 1e15,
                     "CPU hours": cpu_h, "wall hours": e["hours"],
                     "cores busy": cpu_h / e["hours"] if cpu_h is not None and e["hours"] else None,
                     "kWh (estimate)": e["kwh"], "kg CO2eq (estimate)": e["co2_kg"],
                     "clips": e["clips"], "scaled from clips": e["measured_on"]["clips"]})
    return (pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()), assumptions


@functools.lru_cache(maxsize=1)
def _default_config_flat() -> dict[str, Any]:
    """Today's default config, flattened (built once; callers copy it, never change it)."""
    import dataclasses

    from ever.config import config_from_dict

    return flatten(dataclasses.asdict(config_from_dict({})))


def run_config_flat(run_dir: str | Path) -> dict[str, Any]:
    """A run's saved config as a flat ``{"section.key": value}`` dict (lists as strings). A field the config
    does not hold, because the run was saved before the field existed, reads as today's default: a new field's
    default keeps the behaviour from before it, so runs from before and after compare as equal there."""
    try:
        raw = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    flat = {**_default_config_flat(), **flatten(raw)}
    return {k: (str(v) if isinstance(v, list) else v) for k, v in flat.items()}


def load_metrics(run_dir: str | Path):
    """``metrics.jsonl`` as a DataFrame (empty when absent)."""
    import pandas as pd

    rows = []
    try:
        for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    except (OSError, ValueError):
        pass
    return pd.DataFrame(rows)


def summaries(runs_dir: str | Path, split: str, names: list[str] | None = None, baselines: bool = True):
    """One row per evaluated run and baseline: its summary.json plus ``run`` and ``kind`` columns."""
    import pandas as pd

    rows = []
    for label, d in result_dirs(runs_dir, names):
        s = read_json(d / "eval" / split / "summary.json")
        kind = "baseline" if label.startswith("baseline: ") else "model"
        if s is not None and (baselines or kind == "model"):
            rows.append({"run": label, "kind": kind, **_scalars(s)})
    return pd.DataFrame(rows)


def best_baseline(S, score: str = "J&F-Mean") -> str | None:
    """The label (``baseline: <kind>``) of the best-scoring baseline of a :func:`summaries` table; None
    when it holds no baseline with that score."""
    if S.empty or score not in S:
        return None
    base = S[S["kind"] == "baseline"].dropna(subset=[score])
    return None if base.empty else str(base.loc[base[score].idxmax(), "run"])


def best_baseline_score(S, score: str = "J&F-Mean") -> tuple[str, float] | None:
    """``(label, score)`` of :func:`best_baseline`; None when there is none."""
    best = best_baseline(S, score)
    return None if best is None else (best, float(S.set_index("run").loc[best, score]))


def noise(*sds: float | None) -> float | None:
    """What a difference between cells must exceed to be called real: twice the mean of their sample sds
    over seeds (a cell of one seed, sd None or NaN, adds none); None when no cell has a spread."""
    have = [float(x) for x in sds if x is not None and x == x]
    return 2 * sum(have) / len(have) if have else None


def cell_of(run: str) -> str:
    """The grid cell of a run: its name without the ``-s<seed>`` suffix a row with ``seeds`` adds."""
    import re

    return re.sub(r"-s\d+$", "", run)


def over_seeds(df, scores: tuple[str, ...] = ("J&F-Mean", "PCK@0.1", "PCK@0.2")):
    """Runs named ``<cell>-s<seed>`` (a grid row with ``seeds``) grouped by cell: for each score its mean,
    sample standard deviation and the number of seeds, one row per cell (a run without a seed suffix is a
    cell of one). ``df`` has a ``run`` column, e.g. :func:`summaries`."""
    import pandas as pd

    d = df.assign(cell=[cell_of(r) for r in df["run"]])
    cols = [c for c in scores if c in d]
    g = d.groupby("cell", sort=False)[cols]
    out = pd.concat({"mean": g.mean(), "sd": g.std(ddof=1), "n": g.count()}, axis=1)
    out.columns = [f"{c} {stat}" for stat, c in out.columns]
    return out[[f"{c} {stat}" for c in cols for stat in ("mean", "sd", "n")]]


def cell_sequence_scores(Q):
    """:func:`sequence_scores` with the seeds of a cell averaged: one column per cell, in order (empty when
    ``Q`` is)."""
    return Q.T.groupby([cell_of(c) for c in Q.columns], sort=False).mean().T


def eval_sequences(src: str | Path, split: str, run: str) -> list[str]:
    """The sequences a run's evaluation was restricted to (its ``eval.sequences``, as recorded in
    ``<src>/<run>/eval/<split>/summary.json``): e.g. a recipe screen's tuning sequences. Empty when it
    scored the whole split or was not evaluated."""
    summary = read_json(Path(src) / run / "eval" / split / "summary.json") or {}
    return list(summary.get("cfg", {}).get("sequences") or [])


def paired(CQ, a: str | None, b: str | None) -> dict[str, Any] | None:
    """:func:`compare` of cells ``a`` and ``b`` of a sequences x cells table, or None when either is missing or
    they share no scored sequence."""
    return compare(CQ, a, b) if a in CQ and b in CQ and len(CQ[[a, b]].dropna()) else None


def _ahead_clause(c: dict[str, Any] | None) -> str:
    """A :func:`compare` as " (ahead on k of n sequences, p = ...)"; empty without one or without a p."""
    return "" if c is None or c["p"] is None else f" (ahead on {c['ahead']} of {c['n']} sequences, p = {c['p']:.2g})"


def held_out_scores(C, tuned: list[str]):
    """Mean J&F of every column of a sequences x methods table (:func:`cell_sequence_scores`) over the
    sequences a choice was made on (``tuned``, e.g. a recipe screen's ``eval.sequences``), over the others
    and over all: one row per method, columns ``tuning (n)``, ``held out (m)``, ``all (n + m)``. A score on
    the tuning sequences is optimistic; the held-out one is not."""
    import pandas as pd

    unknown = sorted(set(tuned) - set(C.index))
    if unknown:
        raise ValueError(f"held_out_scores: tuned sequences not in the table: {', '.join(unknown)}")
    tuned_rows = C.index.isin(list(tuned))
    if not tuned_rows.any() or tuned_rows.all():
        raise ValueError(f"held_out_scores: {len(C)} sequences, {int(tuned_rows.sum())} of them tuned on: need both kinds")
    return pd.DataFrame({f"tuning ({int(tuned_rows.sum())})": C[tuned_rows].mean(),
                         f"held out ({int((~tuned_rows).sum())})": C[~tuned_rows].mean(),
                         f"all ({len(C)})": C.mean()})


def screen_line(jf, main: str, Q, seeds: list[str], rows: list[str]) -> str:
    """A screen of single runs read against its noise, as one sentence: every run's J&F (``jf``: run ->
    score, on the screen's sequences) minus ``main``'s, and which differ by more than twice the spread over
    seeds of one recipe on the same sequences: the sd of the means over ``rows`` of the ``seeds`` columns of
    ``Q`` (a sequences x runs table, :func:`sequence_scores`, e.g. of a three-seed study scored on more)."""
    sd = float(Q.loc[Q.index.isin(list(rows)), list(seeds)].mean().std(ddof=1))
    diffs = {r: float(v - jf[main]) for r, v in jf.items() if r != main}
    beyond = [r for r, d in diffs.items() if abs(d) > 2 * sd]
    return (f"Against the kept run `{main}` (J&F {jf[main]:.3f}): "
            + ", ".join(f"`{r}` {d:+.3f}" for r, d in diffs.items())
            + f". The same recipe's {len(seeds)} seeds spread by sd {sd:.3f} on these {len(rows)} sequences: "
            + (f"{', '.join(f'`{r}`' for r in beyond)} differ{'s' if len(beyond) == 1 else ''} by more than twice that, "
               "the others by less." if beyond else "every run is within twice that."))


def compare(Q, a: str, b: str) -> dict[str, Any]:
    """Column ``a`` against column ``b`` of a sequences x methods table (:func:`sequence_scores` or
    :func:`cell_sequence_scores`), over the sequences both scored: ``n``, ``ahead`` (sequences where a > b),
    ``lead`` (mean of a - b), ``top`` and ``top_lead`` (the sequence of a's largest lead), ``lead_without_top``
    and ``p`` (two-sided paired t-test over the sequences; None with fewer than 3)."""
    from scipy.stats import ttest_rel

    import numpy as np

    both = Q[[a, b]].dropna()
    d = both[a] - both[b]
    if d.empty:
        raise ValueError(f"compare: `{a}` and `{b}` share no scored sequence")
    top = d.idxmax()
    return {"n": len(d), "ahead": int((d > 0).sum()), "lead": float(d.mean()), "top": top,
            "top_lead": float(d[top]), "lead_without_top": float(d.drop(top).mean()) if len(d) > 1 else None,
            "p": float(ttest_rel(both[a], both[b]).pvalue) if len(d) >= 3 and np.ptp(d) > 1e-9 else None}


def protocol_text(summary: dict[str, Any]) -> str:
    """One sentence naming the label-propagation protocol an evaluation used (from its summary.json)."""
    c = summary.get("cfg") or {}
    context = {"reference": "the reference (CRW) context: frame 0 unrestricted plus the preceding frames, the "
                            "video padded in front by copies of frame 0",
               "first_once": "frame 0 once plus the preceding frames (EVER's earlier protocol)"}.get(
        c.get("context"), f"context {c.get('context')!r}")
    size = f"frames resized to a long side of {c['long_side']} px" if c.get("long_side") else "native resolution"
    text = (f"Protocol: {context}; {c.get('n_context')} preceding frames, top-{c.get('topk')}, radius "
            f"{c.get('radius')} cells, temperature {c.get('temperature')}, first-frame labels resized "
            f"{'bilinearly' if c.get('label_resize') == 'bilinear' else 'by area averaging'}, {size}; J and F "
            "as the official DAVIS evaluation (F on seg2bmap boundaries, void as background)")
    if c.get("sequences"):
        text += f"; only the sequences {', '.join(c['sequences'])} of split {c.get('split')!r} (eval.sequences)"
    if summary.get("pck_convention"):
        text += f"; PCK by the {summary['pck_convention'].upper()} convention"
    return text + "."


def eval_protocol(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str | None:
    """:func:`protocol_text` of the first evaluated run (or baseline) of ``runs_dir``; None when none is."""
    found = (read_json(d / "eval" / split / "summary.json") for _, d in result_dirs(runs_dir, names))
    first = next((s for s in found if s is not None), None)
    return protocol_text(first) if first is not None else None


def per_sequence(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """All ``per_sequence.csv`` files of runs and baselines stacked, with a ``run`` column."""
    import pandas as pd

    frames = []
    for name, d in result_dirs(runs_dir, names):
        f = d / "eval" / split / "per_sequence.csv"
        if f.is_file():
            df = pd.read_csv(f)
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


def findings(runs_dir: str | Path, split: str, names: list[str] | None = None, crop: dict | None = None) -> list[str]:
    """What the evaluated runs of ``runs_dir`` show, as Markdown sentences computed from their files (the
    book opens with them, the README carries them for the committed snapshots). Each says on how many
    sequences and seeds it rests:

    * the first cell (the first run, its seeds averaged) and every other cell against the best baseline,
      overall and sequence by sequence, called a win only when a paired t-test over the sequences gives
      p < 0.05 and every seed is above (else "above, but not clearly"), and "clearly below" in the mirror case;
    * claim 2, the GCN: its effect in every pair of runs whose configs differ only in ``gcn.*``, whether
      that exceeds the spread over seeds (when the grid measures one), sequence by sequence, where the walk
      without it ends against the best baseline, and its share of the training FLOPs;
    * object-node runs against the untrained encoder and against copying the first mask;
    * claim 1, objects at patch accuracy for >= 5x less compute: where the grid has patch-crop and
      object-crop cells with curves, :func:`crop_claim` (compute to reach the patch walk's J&F, over seeds);
      else :func:`green_claim`'s verdict, or that the grid cannot test it when its object and patch cells
      cost the same FLOPs (pooled nodes). ``crop``: that :func:`crop_claim`, when the caller already has it."""
    S = summaries(runs_dir, split, names)
    if S.empty or "J&F-Mean" not in S or not (S["kind"] == "model").any():
        return []
    jf = S.set_index("run")["J&F-Mean"]
    models = list(S.loc[S["kind"] == "model", "run"])
    base = S[S["kind"] == "baseline"].set_index("run")["J&F-Mean"]
    n_seq = int(S["num_sequences"].max()) if "num_sequences" in S else None
    on = f"on {n_seq} sequences" if n_seq else "on the evaluation split"
    cfgs = {r: run_config_flat(Path(runs_dir) / r) for r in models}
    cells = list(dict.fromkeys(cell_of(r) for r in models))
    seeds_of = {c: [r for r in models if cell_of(r) == c] for c in cells}
    best = best_baseline(S)
    Q = sequence_scores(runs_dir, split, names)
    CQ = cell_sequence_scores(Q)
    out = []

    def against_best(cell: str) -> dict[str, Any] | None:
        seeds = seeds_of[cell]
        if best is None or not jf[seeds].notna().any():
            return None
        m = jf[seeds].mean()
        above = int((jf[seeds] > base[best]).sum())
        shared = not Q.empty and set(seeds) <= set(Q) and best in Q and len(CQ[[cell, best]].dropna()) > 0
        c = compare(CQ, cell, best) if shared else None
        clear = c is not None and c["p"] is not None and c["p"] < 0.05 and above == len(seeds)
        lead = m - base[best]
        below = c is not None and c["p"] is not None and c["p"] < 0.05 and above == 0  # the mirror of a win
        verdict = ("scores clearly below the best baseline" if lead < 0 and below else
                   "does not beat the best baseline" if lead <= 0 else
                   "beats the best baseline" + (" on this seed" if len(seeds) == 1 else "") if clear else
                   "scores above the best baseline, but not clearly")
        return {"seeds": seeds, "m": m, "lead": lead, "above": above, "c": c, "verdict": verdict}

    main = cells[0]
    v = against_best(main)
    if v is not None:
        seeds, c = v["seeds"], v["c"]
        who = f"The main run `{main}`" if len(seeds) == 1 else f"The main cell `{main}`"
        if len(seeds) == 1:
            score, spread = f"J&F {v['m']:.3f}", f", seed {cfgs[seeds[0]].get('seed')}."
        else:
            score = f"J&F {v['m']:.3f} (mean of {len(seeds)} seeds)"
            spread = (f"; seeds {', '.join(f'{jf[r]:.3f}' for r in seeds)} (sd {jf[seeds].std(ddof=1):.3f}), "
                      f"{v['above']} of {len(seeds)} above that baseline.")
        line = (f"**{who} {v['verdict']}** (`{best}`{_one_init(S, best)}): {score} against {base[best]:.3f} "
                f"({v['lead']:+.3f}) {on}{spread}")
        if c is not None:
            line += (f" Sequence by sequence {'the seed mean' if len(seeds) > 1 else 'it'} is ahead on {c['ahead']} "
                     f"of {c['n']}; its largest lead is {c['top_lead']:+.3f} on `{c['top']}`")
            if c["lead_without_top"] is not None:
                line += f", and without that sequence its mean lead is {c['lead_without_top']:+.3f}"
            if c["p"] is not None:
                line += f" (paired t-test over the sequences: p = {c['p']:.2g})"
            line += "."
        out.append(line)
        others = []
        for cell in cells[1:]:
            o = against_best(cell)
            if o is None:
                continue
            n = len(o["seeds"])
            txt = f"`{cell}` {o['m']:.3f}" + (f" ± {jf[o['seeds']].std(ddof=1):.3f} ({n} seeds)" if n > 1 else " (1 seed)")
            txt += f" {o['verdict'].replace('the best baseline', 'it')}"
            others.append(txt + _ahead_clause(o["c"]))
        if others:
            out.append(f"**The other cells against the same baseline** ({base[best]:.3f}): " + "; ".join(others) + ".")

    def without_gcn(c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k != "name" and not k.startswith("gcn.") and k not in SAME_WEIGHTS_KEYS}

    A = ablation_table(runs_dir, split, names)  # GCN FLOP share and claim 1, read once
    pairs = [(r, g) for g in cells if cfgs[seeds_of[g][0]].get("gcn.enabled") for r in cells
             if not cfgs[seeds_of[r][0]].get("gcn.enabled")
             and without_gcn(cfgs[seeds_of[r][0]]) == without_gcn(cfgs[seeds_of[g][0]])]
    if pairs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in cells}
        sds = [jf[seeds_of[c]].std(ddof=1) for c in cells if len(seeds_of[c]) > 1]
        d = {g: cell_jf[g] - cell_jf[r] for r, g in pairs}
        diffs = ", ".join(f"`{g}` {d[g]:+.3f}{_ahead_clause(paired(CQ, g, r))}" for r, g in pairs)
        bare = list(dict.fromkeys(r for r, _ in pairs))  # what the GCN is added to, and how far that walk learned
        diffs += ("; without it " + ", ".join(f"`{r}` ends at {cell_jf[r]:.3f}" for r in bare)
                  + (f" (best baseline {base[best]:.3f})" if best is not None else ""))
        n = noise(*sds)  # the grid's own noise: twice the mean sd over seeds of its cells
        if n is not None:
            sd = n / 2
            up, down = sum(x > n for x in d.values()), sum(x < -n for x in d.values())
            where = f"in all {len(pairs)} pairs" if len(pairs) > 1 else "in its one pair"
            verdict = (f"moved J&F by less than twice the spread over seeds (sd {sd:.3f}) {where}" if up == down == 0
                       else f"raised J&F beyond twice the spread over seeds (sd {sd:.3f}) in {up} of {len(pairs)} "
                       f"pairs and lowered it in {down}")
            hint = ""
        else:
            verdict = "is not shown to raise J&F"
            hint = "; one seed each, and this grid does not measure the spread over seeds, so a difference is a hint"
        share = A.loc[A["GCN"], "GCN % of FLOPs"].dropna() if "GCN % of FLOPs" in A else A.iloc[0:0]
        cost = (f" It adds {share.max():.2g} % of the training FLOPs: it cannot lower the footprint by itself, "
                "only by letting a smaller encoder reach the same accuracy, which this grid does not test."
                if len(share) else "")
        out.append(f"**The GCN (claim 2) {verdict}**: run with GCN minus run without, {diffs}{hint}.{cost}")
    objects = [c for c in cells if str(cfgs[seeds_of[c][0]].get("nodes.kind", "")).startswith("object")]
    refs = [b for b in ("baseline: random", "baseline: copy") if b in base]
    if objects and refs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in objects}
        learned = [c for c in objects if cell_jf[c] > base[refs[0]] + 0.02]
        head = (f"**{len(learned)} of {len(objects)} object-node cells score more than 0.02 above "
                + ("the untrained encoder" if refs[0] == "baseline: random" else "copying the first mask") + "**")
        out.append(head + " (" + f"`{refs[0]}` {base[refs[0]]:.3f}" + "): "
                   + ", ".join(f"`{c}` {cell_jf[c]:.3f}" for c in objects)
                   + ("." if learned else ": every one scores below it."
                      if all(v < base[refs[0]] for v in cell_jf.values())
                      else ": they learned little beyond what the architecture gives."))
    stuck = chance_runs(runs_dir, models)
    if stuck:
        out.append(f"**{len(stuck)} of {len(models)} runs never left chance in training** (loss over the second half "
                   "of training relative to a uniform walk's; their scores stay in their cells' means and spreads): "
                   + "; ".join(f"`{r['run']}` loss {r['loss / ln N']:.2f}x a uniform walk's"
                               + (f", accuracy {r['acc × N']:.2f}x chance" if r["acc × N"] is not None else "")
                               + (f", median gradient norm {r['grad_norm']:.2g}" if r["grad_norm"] is not None else "")
                               + f", J&F {jf[r['run']]:.3f}" for r in stuck) + ".")
    crop = crop if crop is not None else crop_claim(runs_dir, split, names)
    if crop is not None:  # nodes encoded on their own, with curves over seeds: the test the claim is about
        out.append(crop_claim_line(crop))
        return out
    claim = green_claim(A)
    ratios = [r["compute ratio"] for r in claim.get("rows", []) if r["compute ratio"] is not None]
    if claim["holds"] is not None and ratios and not claim["testable"]:
        out.append(f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) is not "
                   f"tested by this grid**: its object and patch cells pool their nodes from one dense encoding "
                   f"of each frame, so their training FLOPs per clip differ by at most "
                   f"{(max(max(ratios), 1 / min(ratios)) - 1) * 100:.1f} % (chapter 5). It can show only where "
                   f"each node is encoded on its own, as in the original walk (`configs/report-green.yaml`).")
    elif claim["holds"] is not None:
        out.append(f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) "
                   f"{'holds' if claim['holds'] else 'does not hold'} on this grid** (chapter 5).")
    return out


def in_short(real: list[str], studies: dict[str, list[str]]) -> list[str]:
    """The book's first lines: the bold verdicts that open :func:`findings`' sentences, for the shipped
    recipe's study (its main cell, ``real[0]``) and, per study of the green claims (``studies``: label ->
    its findings, in the order given), its sentences whose verdict names claim 1 or claim 2, labelled."""
    import re

    def head(line: str) -> str | None:
        m = re.match(r"\*\*(.+?)\*\*", line)
        return m.group(1) if m else None

    first = [f"Shipped recipe: {h[0].lower()}{h[1:]}" for h in map(head, real[:1]) if h]
    return first + [f"{label}: {h}" for label, lines in studies.items() for h in map(head, lines)
                    if h and re.search(r"claim [12]\b", h, re.I)]


def _one_init(S, baseline: str) -> str:
    """", one initialisation" when ``baseline`` is the random encoder (a single seed of it was scored)."""
    return ", one initialisation" if baseline == "baseline: random" else ""


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
        s = read_json(d / "eval" / split / "summary.json") or {}
        row.update({k: v for k, v in _scalars(s).items() if k not in ("method", "data", "split", "device")})
        led = read_json(d / "ledger.json") or {}
        tot = ((led.get("phases") or {}).get("train") or {}).get("totals") or {}
        for k in ("seconds", "cpu_seconds", "steps", "kwh", "co2_kg", "flops", "flops_per_clip", "peak_mem_bytes",
                  "estimate"):
            if k in tot:
                row[f"train_{k}"] = tot[k]
        if tot.get("seconds") is not None and tot.get("steps"):
            row["train_s_per_step"] = tot["seconds"] / tot["steps"]
        if tot.get("cpu_seconds") is not None and tot.get("steps"):
            row["train_cpu_s_per_step"] = tot["cpu_seconds"] / tot["steps"]
        for k in ("walk_flop_share", "gcn_flop_share"):
            if k in (tot.get("metrics") or {}):
                row[k] = tot["metrics"][k]
        rows.append(row)
    return pd.DataFrame(rows)


def varying_columns(df, prefix: tuple[str, ...] = ("data.", "model.", "nodes.", "walk.", "gcn.", "optim.", "train.")):
    """Config columns whose value differs between the rows (what an ablation changed)."""
    cols = []
    for c in df.columns:
        if c.startswith(prefix) and df[c].astype(str).nunique() > 1 and c not in SAME_WEIGHTS_KEYS:
            cols.append(c)
    return cols


def walk_example(checkpoint: str | Path, data_root: str | Path, split: str, seq_index: int = 0,
                 num_frames: int = 4, stride: int = 1) -> dict[str, Any]:
    """Transition matrices of a trained encoder on the first frames of an evaluation sequence.

    Nodes are grid cells average-pooled from the encoder's dense map (``PatchPoolNodes`` with the
    run's patch size and stride), embedded by its projection head and L2-normalised; the GCN (if any)
    is not applied. Returns ``{"frames" (T, H, W, 3) uint8, "mask0" (H, W), "centers" (N, 2) as
    (x, y) px, "grid" (gh, gw), "fwd" / "bwd" lists of (N, N) arrays, "temperature", "sequence"}``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ever.data.davis import DavisDataset
    from ever.models import load_checkpoint
    from ever.nodes import PatchPoolNodes, grid_centers
    from ever.walk import transition_matrices

    model, cfg = load_checkpoint(checkpoint)
    ds = DavisDataset(str(data_root), split=split)
    name = ds.sequences[seq_index % len(ds.sequences)]
    seq = ds.sequence(name)
    idx = [min(i * stride, len(seq) - 1) for i in range(num_frames)]
    frames = np.stack([seq.frame(i) for i in idx])
    mask0 = np.asarray(seq.first_mask())
    H, W = (frames.shape[1] // 8) * 8, (frames.shape[2] // 8) * 8
    frames, mask0 = frames[:, :H, :W], mask0[:H, :W]
    p = max(8, (cfg.nodes.patch_size // 8) * 8)
    s = max(8, (cfg.nodes.patch_stride // 8) * 8)
    p = min(p, (min(H, W) // 8) * 8)
    extractor = PatchPoolNodes(p, s)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None]  # (1, T, 3, H, W)
    with torch.no_grad():
        feats, valid = extractor(model.dense, x)
        emb = F.normalize(model.head(feats).float(), dim=-1)
        fwd, bwd = transition_matrices(emb, valid, temperature=cfg.walk.temperature)
    centers, grid = grid_centers(H, W, p, s)
    return {"frames": frames, "mask0": mask0, "centers": centers, "grid": grid, "fwd": [a[0].numpy() for a in fwd], "bwd": [b[0].numpy() for b in bwd],
            "temperature": cfg.walk.temperature, "sequence": name, "patch": p, "stride": s}


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
        rows.append({"run": label, "J&F": r["jf"], "GFLOPs": r["gflops"], "GFLOPs/clip": r["gflops_per_clip"],
                     "wall s": wall, "CPU s": cpu, "cores busy": cpu / wall if cpu is not None and wall else None,
                     "Wh": r["wh"], "g CO2eq": r["co2_g"], "peak MiB": r["peak_mem_mib"],
                     "estimate": r["estimate"], "PCK": r["pck"], "kWh": r["kwh"]})
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
    T = T.assign(PFLOPs=T["train_flops"] / 1e15, **{"GFLOPs/clip": T["train_flops_per_clip"] / 1e9,
                 "wall s": T["train_seconds"], "CPU s": get("train_cpu_seconds"), "Wh": get("train_kwh") * 1000})
    O = over_seeds(T, ("PFLOPs", "GFLOPs/clip", "wall s", "CPU s", "Wh"))
    out = pd.DataFrame({"seeds": O["wall s n"].astype(int), "PFLOPs": O["PFLOPs mean"],
                        "GFLOPs/clip": O["GFLOPs/clip mean"]}, index=O.index)
    for c in ("wall s", "CPU s", "Wh"):
        out[c], out[f"{c} sd"] = O[f"{c} mean"], O[f"{c} sd"]
    out["cores busy"] = out["CPU s"] / out["wall s"]
    return out.rename_axis("cell")


def cost_ratios(T, a: str, b: str) -> dict[str, float]:
    """How many times cell ``a`` of :func:`training_cost` costs cell ``b``: per clip in FLOPs, and in the
    mean wall seconds, CPU seconds and energy estimate of their seeds (the same number of steps, so per clip
    too; NaN where a ledger lacks the figure)."""
    return {k: float(T.loc[a, c] / T.loc[b, c])
            for k, c in (("flops", "GFLOPs/clip"), ("wall", "wall s"), ("cpu", "CPU s"), ("energy", "Wh"))}


def training_cost_table(T):
    """:func:`training_cost` for the page, as :func:`unbroken` text: PFLOPs, GFLOPs/clip, then :func:`mean_sd`
    of the seconds and the energy estimate, and cores busy."""
    import pandas as pd

    show = pd.DataFrame({"seeds": T["seeds"], "PFLOPs": T["PFLOPs"].map(lambda v: f"{v:.3f}"),
                         "GFLOPs/clip": T["GFLOPs/clip"].map(lambda v: f"{v:.2f}")}, index=T.index)
    for c, fmt in (("wall s", "{:,.0f}"), ("CPU s", "{:,.0f}"), ("Wh", "{:.2f}")):
        show[c + (" (estimate)" if c == "Wh" else "")] = [mean_sd(m, sd, fmt) for m, sd in zip(T[c], T[f"{c} sd"])]
    show["cores busy"] = T["cores busy"].map(lambda v: "–" if v != v else f"{v:.2f}")
    return unbroken(show)


def cost_findings(T, claim: dict[str, Any] | None) -> list[str]:
    """What :func:`training_cost` ``T`` says, as sentences: how far the seeds of one cell spread in wall
    seconds (the timing's noise on this machine), and, for claim 1 (``claim``: :func:`crop_claim`), each
    object-crop cell's saving against the patch-crop walk in counted FLOPs per clip beside its saving in
    timed wall and CPU seconds and estimated energy, means over seeds for the same number of steps."""
    out, any_smaller = [], False
    multi = T[T["seeds"] > 1].dropna(subset=["wall s sd"])
    if len(multi):
        rel = (multi["wall s sd"] / multi["wall s"]).sort_values()
        out.append(f"Over the seeds of one cell the wall seconds spread by {100 * rel.iloc[0]:.0f} % (`{rel.index[0]}`) "
                   f"to {100 * rel.iloc[-1]:.0f} % (`{rel.index[-1]}`) of their mean (sd / mean).")
    for row in (claim or {}).get("rows", []):
        ref, obj = claim["reference"], row["cell"]
        if ref not in T.index or obj not in T.index:
            continue
        r = cost_ratios(T, ref, obj)
        timed = [f"{r[k]:.1f}x less {what}" for k, what in (("wall", "wall time"), ("cpu", "CPU time"),
                                                            ("energy", "estimated energy")) if r[k] == r[k]]
        if not timed:
            continue
        smaller = all(r[k] < r["flops"] for k in ("wall", "cpu", "energy") if r[k] == r[k])
        any_smaller = any_smaller or smaller
        out.append(f"`{obj}` needs {r['flops']:.1f}x fewer FLOPs per clip than `{ref}`"
                   + (", but only " if smaller else ", and ") + ", ".join(timed[:-1])
                   + (" and " if len(timed) > 1 else "") + timed[-1] + ".")
    if any_smaller:
        out.append("Where the saving in time and energy is smaller than the saving in FLOPs, the FLOP counter does not "
                   "see all the work (an object walk also segments every frame, in the data workers, whose CPU time the "
                   "ledger includes) or this machine runs the two cells' FLOPs at different rates.")
    return out


def pareto_front(points, cost: str, score: str) -> list:
    """The rows of ``points`` (a DataFrame) that no other row beats on both ``cost`` (lower is better)
    and ``score`` (higher is better), cheapest first; rows with a missing value are left out."""
    front, best = [], float("-inf")
    for name, r in points.dropna(subset=[cost, score]).sort_values([cost, score], ascending=[True, False]).iterrows():
        if r[score] > best:
            front.append(name)
            best = r[score]
    return front


def cost_spread(values) -> float | None:
    """How far apart costs are: largest / smallest - 1 (0.01 = the costliest is 1 % above the cheapest);
    missing and non-positive values are left out, None when fewer than two remain."""
    vals = [float(v) for v in values if v is not None and v == v and float(v) > 0]
    return max(vals) / min(vals) - 1 if len(vals) >= 2 else None


def front_summary(points, cost: str, score: str, negligible: float = 0.01) -> dict[str, Any]:
    """The Pareto front of ``points`` on ``cost`` and ``score`` (:func:`pareto_front`), or none at all when
    the costs are too close to rank: ``{"spread"`` (:func:`cost_spread` of the cost), ``"negligible"``
    (spread below ``negligible``: the runs cost the same, and a front would be decided by noise in the
    last digits), ``"front"`` (empty when negligible), ``"best"`` (the row with the highest score)}."""
    pts = points.dropna(subset=[cost, score])
    spread = cost_spread(pts[cost])
    tie = spread is not None and spread < negligible
    return {"spread": spread, "negligible": tie, "front": [] if tie else pareto_front(pts, cost, score),
            "best": pts[score].idxmax() if len(pts) else None}


def load_confound(table, flops: str, wall: str, cores: str, negligible: float = 0.01) -> dict[str, Any]:
    """Whether the time (and so the estimated energy) of the rows of ``table`` measures their method:
    ``{"flops_spread"``, ``"wall_ratio"`` (slowest / fastest), ``"cores"`` (min, max of CPU seconds / wall
    seconds), ``"confounded"``, ``"uncounted"}``. ``confounded``: they ran on different numbers of cores
    (more than a quarter of a core apart), so the machine's load decided part of their time. ``uncounted``:
    the same FLOPs (within ``negligible``) and the same cores, yet wall times more than 10 % apart, so the
    slower rows did work the FLOP counter does not see (e.g. CPU segmentation), or met other load."""
    t = table.dropna(subset=[wall])
    walls = [float(v) for v in t[wall] if v and v > 0]
    cs = [float(v) for v in t[cores] if v is not None and v == v]
    spread = cost_spread(t[flops])
    ratio = max(walls) / min(walls) if len(walls) >= 2 else None
    span = (min(cs), max(cs)) if cs else None
    confounded = bool(span is not None and span[1] - span[0] > 0.25)
    uncounted = bool(not confounded and spread is not None and spread < negligible and ratio is not None and ratio > 1.1)
    return {"flops_spread": spread, "wall_ratio": ratio, "cores": span, "confounded": confounded,
            "uncounted": uncounted}


def core_range(span: tuple[float, float]) -> str:
    """(min, max) cores busy as words: "2.0" when they round alike, else "1.0 to 2.0"."""
    lo, hi = (f"{v:.1f}" for v in span)
    return lo if lo == hi else f"{lo} to {hi}"


def fixed(v: Any, decimals: int = 3) -> str:
    """A small quantity (Wh, g CO2eq) as the book prints it: fixed decimals, never e-notation; below the
    last decimal ``< 0.001``; "–" when missing."""
    if v is None or v != v:
        return "–"
    step = 10.0 ** -decimals
    return f"< {step:.{decimals}f}" if 0 < abs(float(v)) < step else f"{float(v):,.{decimals}f}"


def percent(v: Any) -> str:
    """A share already in percent as "0.18 %" (two significant digits, so 0.18 % never reads as 18 %)."""
    if v is None or v != v:
        return "–"
    return f"{float(v):.2g} %" if abs(float(v)) < 100 else f"{float(v):.0f} %"


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
        row = {"run": run, "N": int(t["N"].iloc[0]), "first step": int(t["step"].iloc[0]),
               "last step": int(t["step"].iloc[-1]), "points": len(t), "loss / ln N": float(t["loss / ln N"].mean())}
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
        gflops=lambda d: d["flops"] / 1e9).drop(columns=["flops"]), False


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
        cfg = load_config(Path(runs_dir) / r["run"] / "config.yaml")  # an unreadable config fails the book
        t = tail.loc[r["run"]] if r["run"] in tail.index else {}
        wall, cpu = r.get("train_s_per_step"), r.get("train_cpu_s_per_step")
        rows.append({
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
        })
    return pd.DataFrame(rows)


def _div(v: Any, d: float) -> float | None:
    return None if v is None or v != v else float(v) / d


def green_claim(table, reference: str | None = None, factor: float = 5.0, tolerance: float = 0.02) -> dict[str, Any]:
    """Test "object nodes reach the patch walk's accuracy at >= ``factor``x less compute" on an
    :func:`ablation_table`: for every object run, its J&F gap to the ``reference`` patch run (default:
    the first patch run without GCN) and its compute ratio (reference GFLOPs per clip / its own).
    ``holds`` when some object run is within ``tolerance`` J&F of the reference (or above it) at a
    ratio >= ``factor``; None when there is nothing to compare."""
    if reference is None:
        patch = table[~table["nodes"].str.startswith("object") & ~table["GCN"]] if len(table) else table
        reference = str(patch["run"].iloc[0]) if len(patch) else ""
    ref = table[table["run"] == reference] if len(table) else table
    if ref.empty or ref["J&F"].isna().all():
        return {"reference": reference, "holds": None, "rows": [], "why": f"no evaluated run {reference!r}"}
    ref_jf, ref_fl = float(ref["J&F"].iloc[0]), ref["GFLOPs/clip"].iloc[0]
    rows = []
    for _, r in table[table["nodes"].str.startswith("object")].iterrows():
        if r["J&F"] is None or r["J&F"] != r["J&F"]:
            continue
        ratio = None if ref_fl is None or not r["GFLOPs/clip"] else float(ref_fl) / float(r["GFLOPs/clip"])
        gap = float(r["J&F"]) - ref_jf
        rows.append({"run": r["run"], "J&F gap": gap, "compute ratio": ratio,
                     "equal accuracy": gap >= -tolerance, "cheap enough": ratio is not None and ratio >= factor})
    holds = any(x["equal accuracy"] and x["cheap enough"] for x in rows) if rows else None
    ratios = [x["compute ratio"] for x in rows if x["compute ratio"]]
    # Testable only where the object runs' compute differs from the patch run's (not pooled from one encoding).
    testable = bool(ratios) and max(max(ratios), 1 / min(ratios)) >= 1.5
    return {"reference": reference, "reference_jf": ref_jf, "factor": factor, "tolerance": tolerance,
            "holds": holds, "testable": testable, "rows": rows}


def gcn_cycle(A, base: str) -> list[dict[str, Any]]:
    """What the GCN did to the training cycle and to J&F, per GCN cell of an :func:`ablation_table` ``A`` (runs
    ``<cell>-s<seed>``) against the cell ``base`` without it: the change of the mean ``loss / ln N`` (the
    cycle's loss relative to chance: lower is an easier cycle) and of the mean J&F, each with its :func:`noise`
    (twice the mean of the two cells' sample sds over seeds), and a word: ``"easier"``/``"harder"`` (loss) or
    ``"higher"``/``"lower"`` (J&F) beyond that, else ``"within noise"``. A GCN that closes the cycle without
    learning appearance shows as an easier cycle with a lower J&F."""
    O = over_seeds(A, ("J&F", "loss / ln N"))
    if base not in O.index:
        return []
    rows = []
    for cell in O.index:
        if cell == base or not A.loc[A["run"].map(cell_of) == cell, "GCN"].any():
            continue
        row = {"cell": cell}
        for col, key, up, down in (("loss / ln N", "loss", "harder", "easier"), ("J&F", "jf", "higher", "lower")):
            d = O.loc[cell, f"{col} mean"] - O.loc[base, f"{col} mean"]
            n = noise(O.loc[cell, f"{col} sd"], O.loc[base, f"{col} sd"])
            row.update({f"d_{key}": float(d), f"noise_{key}": n,
                        key: "within noise" if n is None or abs(d) <= n else up if d > 0 else down})
        rows.append(row)
    return rows


def crop_claim(runs_dir: str | Path, split: str, names: list[str] | None = None, factor: float = 5.0,
               tolerance: float = 0.02) -> dict[str, Any] | None:
    """Claim 1 on training curves and over seeds, where each node is encoded on its own (``patch_crop`` against
    ``object_crop``, so the encoder's cost grows with the number of nodes). The target is patch-level
    accuracy: the patch-crop cell's final J&F (mean over its seeds) less ``tolerance``, the same margin that
    counts as equal accuracy, so that a patch seed just below its own cell's mean still reaches it. For the
    patch cell and every object-crop cell, each seed's training GFLOPs to reach the target
    (:func:`compute_to_reach` on :func:`curves`) and its final J&F. Per object cell:

    * ``ratio``: the patch cell's mean GFLOPs to reach the target / this cell's (None unless every seed of
      this cell reaches it); ``ratio_low``: the fastest patch seed against the slowest object seed, the
      ratio's floor over the seeds, so "beyond the spread" means ``ratio_low >= factor``; ``ratio_reached``:
      the same ratio over the seeds that reach the target, whether or not all do;
    * ``gap``: its mean final J&F minus the patch cell's, and ``equal`` when that is >= -``tolerance``;
      ``noise``: :func:`noise` of the two cells' final J&F over seeds (None with one seed each), and
      ``beyond_noise`` when the gap exceeds it;
    * ``clip_ratio``: the patch cell's training FLOPs per clip / this cell's (from the ledgers);
    * ``vs_reference``: :func:`compare` of this cell against the patch cell sequence by sequence (seeds averaged;
      None without per-sequence scores).

    ``holds``: True when some object cell has every seed at the target with ``ratio >= factor`` and equal
    final accuracy (``clear``: the same with ``ratio_low >= factor``); False when every object cell refutes
    it, either less accurate by more than ``tolerance`` and beyond the :func:`noise` of the two cells, or as
    accurate without the saving; else None, not decided, and ``undecided`` says why: ``"baseline"`` when the
    patch-crop cell does not end above the best baseline (matching a walk that has not learned says nothing
    about the claim; "above" means by more than the :func:`noise` of its own seeds), ``"noise"`` when an object
    cell's shortfall is within the noise or no object cell has two seeds. Only object cells with two or more
    seeds decide; a one-seed cell (a diagnostic) is in ``rows`` with the reference's noise alone.
    ``reference_vs_baseline``: :func:`compare` of the patch cell against the best baseline sequence by sequence
    (information beside the seed rule: whether its lead would carry over to other videos).
    The reference is the first patch-crop cell in the order of the runs (the grid's order); other patch-crop cells
    (e.g. ``patchcrop49-home0``) are compared in the tables only.
    The whole result is None when there is no patch-crop cell with a curve or no object-crop cell."""
    C = curves(runs_dir, split, names)
    if C.empty or "train_gflops" not in C:
        return None
    kinds = {c: run_config_flat(Path(runs_dir) / g["run"].iloc[0]).get("nodes.kind") for c, g in C.groupby("cell", sort=False)}
    refs = [c for c, k in kinds.items() if k == "patch_crop"]
    objects = [c for c, k in kinds.items() if k == "object_crop"]
    if not refs or not objects:
        return None

    def per_seed(cell: str, target: float | None = None) -> tuple[list[float], list[float | None], int]:
        """Final J&F per seed, GFLOPs to reach ``target`` per seed, and how many reach it at their first point."""
        runs = [g.sort_values("train_gflops") for _, g in C[C["cell"] == cell].groupby("run", sort=False)]
        final = [float(g["J&F-Mean"].iloc[-1]) for g in runs]
        reach = [compute_to_reach(g, target) for g in runs] if target is not None else []
        first = sum(r is not None and r == float(g["train_gflops"].iloc[0]) for r, g in zip(reach, runs))
        return final, reach, first

    T = runs_table(runs_dir, split, names)
    clip = ({c: T.loc[T["run"].map(cell_of) == c, "train_flops_per_clip"].mean() for c in [refs[0], *objects]}
            if "train_flops_per_clip" in T else {})
    ref_final, _, _ = per_seed(refs[0])
    ref_mean = sum(ref_final) / len(ref_final)
    target = ref_mean - tolerance
    _, ref_reach, ref_first = per_seed(refs[0], target)
    ref_hit = [x for x in ref_reach if x is not None]
    ref_cost = sum(ref_hit) / len(ref_hit) if ref_hit else None
    CQ = cell_sequence_scores(sequence_scores(runs_dir, split, names))

    rows = []
    for cell in objects:
        final, reach, _ = per_seed(cell, target)
        hit = [x for x in reach if x is not None]
        every = len(hit) == len(reach)
        mean = sum(final) / len(final)
        reached_ratio = ref_cost / (sum(hit) / len(hit)) if hit and ref_hit else None
        n = noise(_sd(final), _sd(ref_final))
        rows.append({"cell": cell, "seeds": len(final), "final": mean, "final_sd": _sd(final), "gap": mean - ref_mean,
                     "noise": n, "beyond_noise": n is not None and abs(mean - ref_mean) > n,
                     "equal": mean - ref_mean >= -tolerance, "reached": len(hit),
                     "reach": sum(hit) / len(hit) if hit else None, "reach_sd": _sd(hit),
                     "ratio": reached_ratio if every else None, "ratio_reached": reached_ratio,
                     "ratio_low": min(ref_hit) / max(hit) if every and ref_hit else None,
                     "clip_ratio": clip[refs[0]] / clip[cell] if clip and clip[cell] > 0 and clip[refs[0]] > 0 else None,
                     "vs_reference": paired(CQ, cell, refs[0])})
    # Only cells with a spread of their own decide (a one-seed cell, e.g. a diagnostic, is shown, not judged).
    judged = [r for r in rows if r["seeds"] > 1]
    ok = [r for r in judged if r["ratio"] is not None and r["ratio"] >= factor and r["equal"]]
    # A cell refutes the claim when it is less accurate beyond the noise, or as accurate without the saving.
    refuted = [r for r in judged if (not r["equal"] and r["beyond_noise"])
               or (r["equal"] and (r["ratio"] is None or r["ratio"] < factor))]
    bb = best_baseline_score(summaries(runs_dir, split, names))
    best, best_jf = bb if bb else (None, None)
    # The reference must end above the best baseline by more than the noise of its own seeds (by anything with
    # one seed): matching a walk that is not shown to have learned says nothing about the claim.
    ref_noise = noise(_sd(ref_final))
    learned = best_jf is None or ref_mean - best_jf > (ref_noise or 0.0)
    holds = None if not learned else True if ok else False if judged and len(refuted) == len(judged) else None
    undecided = "baseline" if not learned else "noise" if holds is None else None
    return {"reference": refs[0], "baseline": best, "baseline_jf": best_jf, "learned": learned, "undecided": undecided,
            "reference_final": ref_mean, "target": target, "reference_seeds": len(ref_final),
            "reference_sd": _sd(ref_final), "reference_noise": ref_noise,
            "reference_reach": ref_cost, "reference_reached": len(ref_hit),
            "reference_at_first": ref_first, "reference_vs_baseline": paired(CQ, refs[0], best),
            "factor": factor, "tolerance": tolerance, "rows": rows, "holds": holds,
            "clear": learned and any(r["ratio_low"] >= factor for r in ok)}


def crop_claim_line(claim: dict[str, Any]) -> str:
    """:func:`crop_claim` as one Markdown sentence for the findings."""
    verdict = ("is not decided by this grid" if claim["holds"] is None else "holds beyond the spread over seeds"
               if claim["clear"] else "holds on the mean, not beyond the spread over seeds" if claim["holds"] else
               "does not hold in this grid")
    n = claim["reference_seeds"]
    ref = (f"the patch-crop walk `{claim['reference']}` (every patch encoded on its own) ends at J&F "
           f"{claim['reference_final']:.3f}" + (f" ± {claim['reference_sd']:.3f} ({n} seeds)" if n > 1 else " (1 seed)")
           + f", so patch-level accuracy is J&F ≥ {claim['target']:.3f} (within {claim['tolerance']:g})")
    at_first = claim["reference_reached"] > 0 and claim["reference_at_first"] == claim["reference_reached"]
    if claim["reference_reach"] is not None:
        ref += (f"; {claim['reference_reached']} of its {n} seeds reach it, after "
                f"{claim['reference_reach']:,.0f} training GFLOPs on average"
                + (", all at their first evaluation" if at_first else ""))
    cells = []
    for r in claim["rows"]:
        t = (f"`{r['cell']}`" + (f" ({r['clip_ratio']:.1f}x fewer training FLOPs per clip)" if r.get("clip_ratio") else "")
             + f" ends at {r['final']:.3f}" + (f" ± {r['final_sd']:.3f}" if r["final_sd"] is not None else "")
             + f" ({r['gap']:+.3f}" + ("" if r.get("noise") is None else
                                        f", {'beyond' if r['beyond_noise'] else 'within'} the noise of the patch walk's "
                                        f"seeds, twice their sd, {r['noise']:.3f}; one seed, so it does not enter the verdict"
                                        if r["seeds"] == 1 else
                                        f", {'beyond' if r['beyond_noise'] else 'within'} the noise of the two cells, "
                                        f"twice the mean of their sds over seeds, {r['noise']:.3f}")
             + ")" + (f", below it on {v['n'] - v['ahead']} of {v['n']} sequences (paired t-test p = {v['p']:.2g})"
                      if (v := r.get("vs_reference")) and v["p"] is not None else "")
             + f"; {r['reached']} of {r['seeds']} seeds reach {claim['target']:.3f}")
        if r["reach"] is not None:
            t += f", after {r['reach']:,.0f}" + (f" ± {r['reach_sd']:,.0f}" if r["reach_sd"] is not None else "") + " GFLOPs"
        if r["ratio"] is not None:
            t += f": {r['ratio']:.1f}x less compute (slowest of its seeds against the fastest patch seed: {r['ratio_low']:.1f}x)"
        elif r["ratio_reached"] is not None:
            t += f" ({r['ratio_reached']:.1f}x less than the patch walk, counting only the seeds that reach it)"
        cells.append(t)
    lead = claim["reference_final"] - claim["baseline_jf"] if claim.get("baseline_jf") is not None else None
    vb = claim.get("reference_vs_baseline")
    above = ("" if lead is None or claim.get("undecided") == "baseline" else
             f" That walk ends above the best baseline (`{claim['baseline']}`, {claim['baseline_jf']:.3f}) by {lead:+.3f}"
             + ("" if claim["reference_noise"] is None else
                f", more than the noise of its seeds (twice their sd, {claim['reference_noise']:.3f})")
             + ("." if vb is None or vb["p"] is None else
                f"; sequence by sequence it is ahead on {vb['ahead']} of {vb['n']} (paired t-test p = {vb['p']:.2g})"
                + (", so that lead is not shown to carry over to other videos." if vb["p"] >= 0.05 else ".")))
    why = above   # then, when the grid does not decide, why not
    if claim["holds"] is None and claim.get("undecided") == "baseline":
        why += (f" That walk does not end above the best baseline (`{claim['baseline']}`, {claim['baseline_jf']:.3f}): "
                "it has not learned beyond what the baselines give" if lead <= 0 else
                f" That walk does not end clearly above the best baseline (`{claim['baseline']}`, "
                f"{claim['baseline_jf']:.3f}): its lead, {lead:+.3f}, is within the noise of its seeds (twice their "
                f"sd, {claim['reference_noise']:.3f}), so it is not shown to have learned beyond what the baselines give")
        why += ", and reaching its accuracy, at any compute, says nothing about the claim."
    elif claim["holds"] is None:
        unshown = [r for r in claim["rows"] if not r["equal"] and not r["beyond_noise"]
                   and (r["seeds"] > 1 or r.get("noise") is None)]
        why += " " + " ".join(
            f"`{r['cell']}` ends below patch-level accuracy, "
            + ("but with one seed in each cell the grid does not measure the noise, so that is not shown to be real."
               if r.get("noise") is None else
               "but by less than the noise: with seeds this scattered it is not shown to be less accurate, and "
               "not shown to be as accurate either.") for r in unshown)
        if claim["reference_seeds"] != 1 and not any(r["seeds"] > 1 for r in claim["rows"]):
            why += " No object cell has two seeds: a cell of one seed has no spread of its own, so none enters the verdict."
    return (f"**Claim 1 (object nodes at patch accuracy for ≥{claim['factor']:g}x less compute) {verdict}** where "
            f"each node is encoded on its own: {ref}.{why} " + "; ".join(cells) + ". A seed already at the target "
            "at its first evaluation counts that point's compute, an upper bound of what it needed"
            + ("; every patch seed was, so no ratio here bounds the saving either way" if at_first else "")
            + " (chapter 5).")


def _sd(xs: list[float]) -> float | None:
    """Sample standard deviation; None for fewer than two values."""
    import statistics

    return statistics.stdev(xs) if len(xs) > 1 else None


def with_readme_results(readme_text: str, generated: str) -> str:
    """``readme_text`` with its generated section (between the markers) replaced by ``generated``."""
    readme_section(readme_text)  # the markers are there
    head, rest = readme_text.split(README_BEGIN, 1)
    return f"{head}{README_BEGIN}\n{generated}\n{README_END}{rest.split(README_END, 1)[1]}"


if __name__ == "__main__":  # python -m ever.results README.md: regenerate the README's results section
    import sys

    from ever.utils import atomic_write_text

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    atomic_write_text(readme, with_readme_results(readme.read_text(), readme_results(readme.parent / "results")))
