"""Every figure of the chapters: one function a figure, returning the matplotlib figure."""
from __future__ import annotations

from ever.analysis.stats import along_training


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
