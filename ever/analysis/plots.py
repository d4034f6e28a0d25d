"""Every figure of the chapters: one function a figure, returning the matplotlib figure."""

from __future__ import annotations

from pathlib import Path

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
        return (
            left[ga].min() < right[gb].max()
            and left[gb].min() < right[ga].max()
            and ya.min() - h < yb.max()
            and yb.min() - h < ya.max()
        )

    while True:  # merge colliding groups until none collide
        pair = next(
            ((a, b) for a in range(len(groups)) for b in range(a + 1, len(groups)) if collide(groups[a], groups[b])),
            None,
        )
        if pair is None:
            break
        a, b = pair
        groups[a] = sorted(groups[a] + groups.pop(b), key=lambda i: pts[i, 1])
    for g in groups:
        for i, ly in zip(g, place(g)):
            dy = float(ly - pts[i, 1])
            line = dict(arrowstyle="-", lw=0.8, color="0.3", shrinkA=1, shrinkB=5) if len(g) > 1 else None
            ax.annotate(
                str(labels[i]),
                (x[i], y[i]),
                textcoords="offset points",
                xytext=(7 if line is None else 18, dy),
                fontsize=fontsize,
                va="center",
                arrowprops=line,
                annotation_clip=False,
                bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none", alpha=0.8),
            )  # over grid lines


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


def plot_compute_curves(
    C, baseline: tuple[str, float] | None = None, untrained: tuple[str, float, float, int] | None = None
):
    """Claim 1's figure: the J&F of each cell of :func:`curves` (its runs scored along training) against
    cumulative training GFLOPs, mean over seeds with a band of ± 1 sd (FLOPs per step are fixed, so the seeds
    of a cell share their x), and against each run's cumulative training energy in Wh, one line per run (the
    energy is each run's own estimate and follows the machine's load). ``baseline``: (name, J&F), e.g.
    :func:`best_baseline_score`, drawn dotted on both; ``untrained``:
    :func:`ever.analysis.tables.untrained_inits`, drawn on both as
    a dashed line at its mean in a grey band of ± 1 sd over its initialisations. Log x axes with plain 1-2-5
    ticks. Returns the figure, or None when no run was scored along its training."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt
    import seaborn as sns

    D = along_training(C)
    if D.empty:
        return None
    D = D.assign(train_wh=D["train_kwh"] * 1000)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    sns.lineplot(
        data=D, x="train_gflops", y="J&F-Mean", hue="cell", errorbar="sd", marker="o", ax=axes[0], legend=False
    )
    sns.lineplot(
        data=D, x="train_wh", y="J&F-Mean", hue="cell", units="run", estimator=None, marker="o", lw=1, ax=axes[1]
    )
    axes[0].set(
        xscale="log",
        xlabel="cumulative training GFLOPs (log scale)",
        ylabel="J&F",
        title="line: mean over seeds, band: ± 1 sd",
    )
    axes[1].set(
        xscale="log", xlabel="cumulative training energy, Wh (estimate, log scale)", title="one line per run (seed)"
    )
    for ax in axes:
        ax.xaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        if baseline is not None:
            ax.axhline(baseline[1], color="grey", ls=":", lw=1.2)
        if untrained is not None:
            _, mean, sd, _ = untrained
            ax.axhspan(mean - sd, mean + sd, color="grey", alpha=0.15, lw=0)
            ax.axhline(mean, color="dimgrey", ls="--", lw=1.2)
    sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1, 1), frameon=False)
    notes = ([f"dotted: {baseline[0]}"] if baseline is not None else []) + (
        [f"dashed, band: {untrained[0]}", f"(mean ± sd of {untrained[3]} inits)"] if untrained is not None else []
    )
    if notes:
        axes[1].text(1.02, 0.02, "\n".join(notes), transform=axes[1].transAxes, fontsize=9, color="grey", va="bottom")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------- chapters 1 to 3: the walk


def walk_cost(cost):
    """Chapter 1: FLOPs of one walk loss against nodes per frame (``cost``: :func:`ever.analysis.tables.
    walk_flops_table` as a DataFrame), log-log, with an N² guide through the last point."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.loglog(cost["nodes"], cost["flops"], "o-", label="walk loss (measured)")
    ref = cost["flops"].iloc[-1] * (cost["nodes"] / cost["nodes"].iloc[-1]) ** 2
    ax.loglog(cost["nodes"], ref, "--", color="grey", label=r"$\propto N^2$ (guide)")
    ax.set_xlabel("nodes per frame N")
    ax.set_ylabel("FLOPs of one walk loss")
    ax.set_title("The walk's cost grows at least quadratically in the nodes")
    ax.legend()
    fig.tight_layout()
    return fig


def palindrome(seq, name: str):
    """Chapter 1: four frames of a sequence far enough apart for the motion to show, forward then back, with
    the annotated object outlined in white (``seq``: :class:`ever.data.davis.Sequence`)."""
    import matplotlib.pyplot as plt

    step = max(1, (len(seq) - 1) // 3)
    ts = [min(i * step, len(seq) - 1) for i in range(4)]
    order = ts + ts[-2::-1]
    fig, axes = plt.subplots(1, len(order), figsize=(2.3 * len(order), 2.3))
    for ax, t in zip(axes, order):
        ax.imshow(seq.frame(t))
        m = seq.mask(t)
        if m is not None:
            ax.contour(m > 0, levels=[0.5], colors="white", linewidths=1.2)
        ax.set_title(f"frame {t}", fontsize=10)
        ax.axis("off")
    fig.suptitle(f"palindrome of sequence {name}: forward, then back (white: the annotated object)", fontsize=11)
    fig.tight_layout()
    return fig


def frames_and_masks(ds, names: list[str]):
    """Chapter 2: the first, middle and last frames of each sequence ``names`` of ``ds``
    (:class:`ever.data.davis.DavisDataset`) with its annotated objects drawn over them."""
    import matplotlib.pyplot as plt

    from ever.evaluate.run import overlay

    fig, axes = plt.subplots(len(names), 3, figsize=(9, 1.95 * len(names)), squeeze=False)
    for row, name in zip(axes, names):
        seq = ds.sequence(name)
        for ax, t in zip(row, [0, len(seq) // 2, len(seq) - 1]):
            m = seq.mask(t)
            ax.imshow(seq.frame(t) if m is None else overlay(seq.frame(t), m))
            ax.set_title(f"{name}  frame {t}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


def transitions(walk: dict, start: int, idx):
    """Chapter 3: the transition matrices of :func:`ever.explore_walk.walk_example` ``walk``, restricted to the
    nodes ``idx`` around node ``start`` (:func:`ever.explore_walk.walk_window`), on a log scale."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    n_t = len(walk["fwd"])
    fig, axes = plt.subplots(1, n_t, figsize=(4.4 * n_t, 4.0), squeeze=False, layout="constrained")
    for t, ax in enumerate(axes[0]):
        im = ax.imshow(walk["fwd"][t][np.ix_(idx, idx)], cmap="magma", norm=LogNorm(vmin=1e-4, vmax=1))
        ax.set_title(f"$A_{t}$: frame {t} → {t + 1}", fontsize=11)
        ax.set_xlabel(f"node of frame {t + 1} (window)")
        ax.set_ylabel(f"node of frame {t} (window)")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="transition probability (log scale)")
    return fig


def round_trip(walk: dict, start: int, where: list[int], dists: list):
    """Chapter 3: where a walker that starts on node ``start`` is along the palindrome (``where``, ``dists``:
    :func:`ever.explore_walk.walk_round_trip`), over each frame, forward on the top row and back on the bottom."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    frames, centers = walk["frames"], walk["centers"]
    gh, gw = walk["grid"]
    n_fwd = len(walk["fwd"]) + 1  # forward: frames 0..T-1 (top row); back: T-2..0 (bottom row)
    fig, axes = plt.subplots(2, n_fwd, figsize=(3.3 * n_fwd + 1, 5.2), layout="constrained")
    H, W = frames.shape[1:3]
    panels = list(axes[0]) + list(axes[1][: len(dists) - n_fwd])
    for ax in axes[1][len(dists) - n_fwd :]:
        ax.axis("off")
    norm = LogNorm(vmin=1e-3, vmax=1)  # one scale for every panel; below 0.1 % the frame shows through
    half = walk["stride"] / 2
    for k, (ax, d, t) in enumerate(zip(panels, dists, where)):
        ax.imshow(frames[t])
        im = ax.imshow(
            np.ma.masked_less(d.reshape(gh, gw), 1e-3),
            cmap="inferno",
            norm=norm,
            alpha=0.65,
            interpolation="nearest",
            extent=(
                centers[:, 0].min() - half,
                centers[:, 0].max() + half,
                centers[:, 1].max() + half,
                centers[:, 1].min() - half,
            ),
        )
        ax.plot(*centers[start], "w+", ms=12, mew=2)
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_title(("→ " if k < n_fwd else "← ") + f"frame {t}", fontsize=10)
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="walker's probability on a node (log scale)")
    return fig


def training_relative_to_chance(mm):
    """Chapter 3: each run's cycle loss / ln N and accuracy × N along training (``mm``:
    :func:`ever.analysis.sources.training_curves`): runs with different N start from different chance levels,
    so both are drawn relative to chance (1 = a uniform walk)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cols = [c for c in ("loss / ln N", "acc × N") if c in mm]
    fig, axes = plt.subplots(1, len(cols), figsize=(6.5 * len(cols), 3.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
        sns.lineplot(
            data=mm, x="step", y=c, hue="run", ax=ax, marker="o" if len(mm) < 60 else None, legend=ax is axes[0][-1]
        )
        ax.axhline(1, color="grey", ls="--", lw=1)
        ax.set_title(
            {"loss / ln N": "cycle loss / ln N (1 = uniform walk)", "acc × N": "cycle accuracy / chance (1 = chance)"}[
                c
            ]
        )
        if c == "acc × N":
            ax.set_yscale("log")
    sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), frameon=False)
    fig.tight_layout()
    return fig


def loss_by_cycle_length(mm):
    """Chapter 3: each run's loss per cycle length at its last logged step, relative to a uniform walk
    (``mm``: :func:`ever.analysis.sources.training_curves`); None when no run logged ``loss_by_len``."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    import seaborn as sns

    rows = []
    if "loss_by_len" in mm:
        last = mm.dropna(subset=["loss_by_len"]).groupby("run", sort=False).tail(1).set_index("run")["loss_by_len"]
        for run, losses in last.items():
            n = mm.loc[mm["run"] == run, "N"].iloc[0]
            rows += [
                {"run": run, "cycle length (hops each way)": k, "loss / ln N": v / np.log(n)}
                for k, v in enumerate(losses, start=1)
            ]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.6))
    sns.barplot(data=pd.DataFrame(rows), x="cycle length (hops each way)", y="loss / ln N", hue="run", ax=ax)
    ax.set_title("final loss by cycle length, relative to a uniform walk (ln N)")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), frameon=False)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------- chapter 4: the results


def scores(S, split: str):
    """Chapter 4: J&F, J and F of every run and baseline of a :func:`ever.analysis.sources.summaries` table."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = S.melt(
        id_vars=["run", "kind"],
        value_vars=[c for c in ("J&F-Mean", "J-Mean", "F-Mean") if c in S],
        var_name="metric",
        value_name="score",
    )
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(S)), 3.8))
    sns.barplot(data=long, x="run", y="score", hue="metric", ax=ax)
    ax.set_ylim(0, min(1.0, 1.2 * float(long["score"].max())))
    ax.set_xlabel("")
    ax.set_title(f"label propagation on {split} (higher is better)")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), frameon=False)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return fig


def pck(S, thresholds: list[str]):
    """Chapter 4: keypoint propagation (PCK at each of ``thresholds``) of the runs of ``S`` that scored it."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sub = S.dropna(subset=thresholds, how="all")
    long = sub.melt(id_vars=["run"], value_vars=thresholds, var_name="threshold", value_name="PCK")
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(sub)), 3.4))
    sns.barplot(data=long, x="run", y="PCK", hue="threshold", ax=ax)
    ax.set_ylim(0, 1)
    ax.set_title("keypoint propagation (PCK)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    return fig


def per_sequence(Q, best: str):
    """Chapter 4: J&F of every method on every sequence, ordered by the first cell's lead over the best baseline
    ``best``. ``Q``: sequences x runs (:func:`ever.analysis.sources.sequence_scores`, one column per seed): the
    seeds of a cell (``<cell>-s<seed>``) are one method, drawn as their mean with a bar of ± one sd over seeds."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from ever.analysis.stats import cell_of, cell_sequence_scores

    C = cell_sequence_scores(Q)
    order = (C.iloc[:, 0] - C[best]).sort_values().index
    long = Q.loc[order].reset_index().melt(id_vars="sequence", var_name="run", value_name="J&F")
    long["method"] = long["run"].map(cell_of)
    fig, ax = plt.subplots(figsize=(11, 4))
    sns.pointplot(
        data=long, x="sequence", y="J&F", hue="method", linestyle="none", dodge=0.4, errorbar="sd", capsize=0.1, ax=ax
    )
    seeded = [c for c in C if (long["method"] == c).sum() > len(order)]
    ax.set(
        xlabel="",
        ylabel="J&F" + (" (mean ± sd over seeds)" if seeded else ""),
        ylim=(0, 1),
        title=f"per sequence, ordered by the first cell's lead over the best baseline ({best})",
    )
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), frameon=False)
    fig.tight_layout()
    return fig


def overlays(runs_dir, split: str, names: list[str] | None, seqs: int, data_root=None) -> list:
    """Chapter 4: for up to ``seqs`` sequences (at least one), the first, middle and last overlay images of the
    main run and the best baseline, from their ``eval/<split>/overlays/<sequence>/*.png``; with ``data_root``
    (the DAVIS-layout data they were scored on) a first row of the same frames with their annotated masks, the
    ground truth. One figure a sequence; empty when they share no sequence with overlays."""
    import matplotlib.pyplot as plt

    from ever.analysis.sources import summaries
    from ever.analysis.stats import best_baseline
    from ever.runs import RunDir, baseline_dir, model_runs

    def seq_dirs(d):
        root = RunDir(d).eval_dir(split) / "overlays"
        return {p.name: p for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}

    main = next(iter(model_runs(runs_dir, names)), None)
    best = best_baseline(summaries(runs_dir, split, names))  # "baseline: <kind>"
    shown = ([(main.name, main)] if main is not None else []) + (
        [(best, baseline_dir(runs_dir, best.removeprefix("baseline: ")))] if best is not None else []
    )
    dirs = {label: seq_dirs(d) for label, d in shown}
    common = sorted(set.intersection(*(set(v) for v in dirs.values()))) if dirs and all(dirs.values()) else []
    figs = []
    for seq in common[: max(1, seqs)]:
        pngs = {label: sorted(dirs[label][seq].glob("*.png")) for label, _ in shown}
        picks = {label: [f[0], f[len(f) // 2], f[-1]] for label, f in pngs.items()}
        truth = _ground_truth(data_root, split, seq, [f.stem for f in picks[shown[0][0]]])
        rows = ([("ground truth", truth)] if truth else []) + [
            (label, [(plt.imread(f), f.stem) for f in picks[label]]) for label, _ in shown
        ]
        fig, axes = plt.subplots(len(rows), 3, figsize=(10, 2.5 * len(rows)), squeeze=False)
        for row, (label, images) in zip(axes, rows):
            for ax, (img, stem) in zip(row, images):
                ax.imshow(img)
                ax.set_title(f"{label}  frame {stem}", fontsize=9)
                ax.axis("off")
        top = "the annotated masks (top), " if truth else ""
        fig.suptitle(f"sequence {seq}: {top}the main run and the best baseline (bottom)", fontsize=10)
        fig.tight_layout()
        figs.append(fig)
    return figs


def _ground_truth(data_root, split: str, seq: str, stems: list[str]) -> list | None:
    """The frames ``stems`` of sequence ``seq`` of the DAVIS-layout ``data_root`` with their annotated masks
    drawn over them, as ``[(image, stem)]``; None when the data, the sequence or an annotation is missing."""
    from ever.data.davis import DavisDataset
    from ever.evaluate.run import overlay

    if data_root is None or not (Path(data_root) / "JPEGImages").is_dir():
        return None
    try:
        sq = DavisDataset(str(data_root), split=split).sequence(seq)
    except Exception:  # noqa: BLE001 - no such split or sequence: no ground-truth row
        return None
    index = {p.stem: i for i, p in enumerate(sq.frame_paths)}
    if any(s not in index or not sq.mask_paths[index[s]].is_file() for s in stems):
        return None
    return [(overlay(sq.frame(index[s]), sq.mask(index[s])), s) for s in stems]


# ------------------------------------------------------------------------------ chapters 5 and 6: claims and cost


def ablation_dots(D):
    """Chapter 5: per run of an :func:`ever.analysis.tables.ablation_table` ``D`` (evaluated runs), its J&F,
    training GFLOPs per clip and the walk's share of them (log), one panel each; colour is the node type, a cross
    a run with the GCN."""
    import matplotlib.pyplot as plt
    import numpy as np
    import seaborn as sns
    from matplotlib.lines import Line2D

    from ever.analysis.display import percent

    kinds = list(dict.fromkeys(D["nodes"]))
    colour = dict(zip(kinds, sns.color_palette()))
    panels = [
        ("J&F", "J&F", False, lambda v: f"{v:.3f}"),
        ("GFLOPs/clip", "training GFLOPs per clip", False, lambda v: f"{v:.2f}"),
        ("walk % of FLOPs", "walk share of the FLOPs (%, log)", True, percent),
    ]
    panels = [p for p in panels if D[p[0]].notna().any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 1.9 + 0.6 * len(D)), sharey=True, squeeze=False)
    ypos = np.arange(len(D))[::-1]  # the first run of the grid on top
    for ax, (col, title, log, fmt) in zip(axes[0], panels):
        for yi, (_, r) in zip(ypos, D.iterrows()):
            if r[col] is None or r[col] != r[col]:
                continue
            ax.scatter(r[col], yi, s=110, color=colour[r["nodes"]], marker="X" if r["GCN"] else "o", zorder=3)
            ax.annotate(fmt(r[col]), (r[col], yi), xytext=(0, 10), textcoords="offset points", ha="center", fontsize=10)
        vals = D[col].dropna()
        if log:
            ax.set_xscale("log")
            ax.set_xlim(vals.min() / 4, vals.max() * 4)
        else:
            ax.set_xlim(0, 1.25 * vals.max())
        ax.set_title(title, fontsize=12)
        ax.tick_params(labelsize=10)
    axes[0][0].set_yticks(ypos, D["run"], fontsize=11)
    axes[0][0].set_ylim(-0.6, len(D) - 0.3)
    handles = [Line2D([], [], ls="", marker="o", markersize=9, color=colour[k], label=k) for k in kinds] + [
        Line2D([], [], ls="", marker="o", markersize=9, color="0.4", label="without GCN"),
        Line2D([], [], ls="", marker="X", markersize=9, color="0.4", label="with GCN"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=11, frameon=False)
    fig.tight_layout(rect=(0, 0.1 + 0.1 / len(D), 1, 1))
    return fig


def nodes_and_compute(D, base):
    """Chapter 5: J&F and training GFLOPs per clip against nodes per frame (log 2) of the evaluated runs of an
    :func:`ever.analysis.tables.ablation_table` ``D``, a dot without the GCN and a cross with it drawn a little
    apart, runs of one node type and GCN setting joined; ``base``: baseline label -> J&F, dotted."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    D = D.assign(line=[f"{k}, {'with' if g else 'without'} GCN" for k, g in zip(D["nodes"], D["GCN"])])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    colour = dict(zip(dict.fromkeys(D["nodes"]), sns.color_palette()))
    for label, g in D.groupby("line", sort=False):
        g = g.sort_values("N/frame")
        gcn = bool(g["GCN"].iloc[0])
        style = dict(
            ls="--" if gcn else "-",
            marker="X" if gcn else "o",
            markersize=9,
            color=colour[g["nodes"].iloc[0]],
            label=label,
        )
        x = g["N/frame"] * (1.04 if gcn else 1 / 1.04)  # a run with and one without the GCN side by side
        axes[0].plot(x, g["J&F"], **style)
        axes[1].plot(x, g["GFLOPs/clip"], **style)
    for (name, v), grey in zip(base.items(), ("0.35", "0.5", "0.65")):
        axes[0].axhline(v, color=grey, ls=":", lw=1.2)
        axes[0].annotate(
            name,
            (1.0, v),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            fontsize=10,
            va="center",
            color="0.3",
        )
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(D["N/frame"].unique()), [str(n) for n in sorted(D["N/frame"].unique())])
        ax.minorticks_off()
        ax.set_xlim(D["N/frame"].min() / 1.35, D["N/frame"].max() * 1.35)
        ax.set_xlabel("nodes per frame N (log scale; object runs: at most K)", fontsize=11)
    axes[0].set(ylabel="J&F", ylim=(0, max(0.05, 1.15 * max(D["J&F"].max(), base.max() if len(base) else 0))))
    axes[0].set_title("accuracy", fontsize=12)
    axes[1].set(ylabel="training GFLOPs per clip", ylim=(0, 1.15 * D["GFLOPs/clip"].max()))
    axes[1].set_title("compute", fontsize=12)
    axes[0].legend(loc="lower left", fontsize=10)
    fig.tight_layout()
    return fig


def accuracy_and_cores(pts, acc, front: list, ev):
    """Chapter 6: left, J&F against training GFLOPs of the trained runs ``pts`` (with the Pareto ``front`` when it
    has two runs, and each baseline of ``acc`` dashed), from zero; right, CPU against wall seconds of every run
    and baseline of the cost table ``ev`` (baselines grey), with one line per number of cores kept busy."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    ax = axes[0]
    ax.scatter(pts["GFLOPs"], pts["J&F"], s=70, zorder=3)
    if len(front) > 1:
        ax.step(
            pts.loc[front, "GFLOPs"],
            pts.loc[front, "J&F"],
            where="post",
            color="tab:green",
            lw=2,
            label="Pareto front",
            zorder=2,
        )
    for i, (b, v) in enumerate(acc[[i.startswith("baseline:") for i in acc.index]].items()):
        ax.axhline(v, ls="--", lw=1, color=f"C{i + 1}", label=b)
    ax.set_xlim(0, 1.6 * pts["GFLOPs"].max())  # from zero: equal costs stay equal to the eye
    ax.set_xlabel("training compute (GFLOPs, counted by PyTorch)", fontsize=11)
    ax.set_ylabel("J&F-Mean", fontsize=11)
    ax.set_title("accuracy against compute", fontsize=12)
    if ax.get_legend_handles_labels()[0]:  # a front or a baseline drawn: name them
        ax.legend(fontsize=9, loc="lower right")
    ax = axes[1]
    top = 1.15 * max(ev["wall s"].max(), ev["CPU s"].max())
    for k in range(1, int(np.ceil(ev["cores busy"].max() + 0.05)) + 1):
        ax.plot([0, top], [0, k * top], color="0.6", lw=1, ls="--", zorder=1)
        ax.annotate(
            f"{k} core{'s' if k > 1 else ''}", (top / k * 0.92, top * 0.92), fontsize=10, color="0.35", ha="right"
        )
    base = [i.startswith("baseline:") for i in ev.index]
    ax.scatter(ev["wall s"], ev["CPU s"], s=70, zorder=3, c=["0.55" if b else "C0" for b in base])
    ax.set(xlim=(0, top), ylim=(0, top))
    ax.set_xlabel("wall seconds (training + evaluation)", fontsize=11)
    ax.set_ylabel("CPU seconds", fontsize=11)
    ax.set_title("what the energy estimate is made of", fontsize=12)
    fig.tight_layout()  # before the labels: they are placed on the final axes, one line apart where crowded
    label_points(axes[0], pts["GFLOPs"], pts["J&F"], list(pts.index), fontsize=10)
    label_points(ax, ev["wall s"], ev["CPU s"], [n.replace("baseline: ", "") for n in ev.index], fontsize=10)
    return fig


def walk_bench(B, g: dict):
    """Chapter 6: the walk's GFLOPs, time and peak memory against nodes per frame (``B``, ``g``:
    :func:`ever.analysis.tables.walk_cost` and :func:`ever.analysis.tables.walk_growth`), one panel each."""
    import matplotlib.pyplot as plt

    panels = [c for c in ("gflops", "ms", "peak_mb") if c in B]
    titles = {
        "gflops": f"GFLOPs (~ N^{g['exponent_flops']:.2f})",
        "ms": "time, ms" + (f" (~ N^{g['exponent_time']:.2f} for N ≥ {g['time_from']})" if g["exponent_time"] else ""),
        "peak_mb": "peak memory of the process (MiB)",
    }
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8), squeeze=False)
    for ax, c in zip(axes[0], panels):
        ax.plot(B["nodes"], B[c], marker="o")
        ax.set_xscale("log")
        if c != "peak_mb":  # memory grows by a third over this range: a linear axis
            ax.set_yscale("log")
        ax.set_xticks(list(B["nodes"]), [str(n) for n in B["nodes"]])
        ax.minorticks_off()
        ax.set_xlabel("nodes per frame N", fontsize=11)
        ax.set_title(titles[c], fontsize=11)
    fig.tight_layout()
    return fig


def figure1(T):
    """Figure 1: J&F against training compute. ``T`` is :func:`ever.analysis.tables.table1_data`: each trained
    method a point at its training GFLOPs (log scale) with its sd over seeds as an error bar; the colour and copy
    baselines as horizontal lines; the untrained encoders of each stage as a band (mean ± sd over their
    initialisations) with their members' spread in the legend."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    trained = T[T["kind"] == "trained"]
    for i, (_name, r) in enumerate(trained.iterrows()):
        ax.errorbar(
            r["GFLOPs"],
            r["J&F"],
            yerr=0 if r["J&F sd"] != r["J&F sd"] else r["J&F sd"],
            fmt="o",
            color="C3" if i == 0 else "C0",
            capsize=3,
            ms=7 if i == 0 else 5,
        )
    for (name, r), style in zip(T[T["kind"] == "baseline"].iterrows(), ("-", "--", ":")):
        ax.axhline(r["J&F"], color="0.3", ls=style, lw=1.2, label=f"{name} {r['J&F']:.3f}")
    for (name, r), colour in zip(T[T["kind"] == "untrained"].iterrows(), ("C2", "C4")):
        ax.axhspan(
            r["J&F"] - r["J&F sd"],
            r["J&F"] + r["J&F sd"],
            color=colour,
            alpha=0.15,
            label=f"{name}: {r['J&F']:.3f} ± {r['J&F sd']:.3f} ({r['seeds']} inits)",
        )
    ax.set_xscale("log")
    ax.set_xlim(trained["GFLOPs"].min() / 2, trained["GFLOPs"].max() * 4)
    label_points(ax, trained["GFLOPs"], trained["J&F"], list(trained.index))
    ax.set_xlabel("training compute (GFLOPs, log scale)")
    ax.set_ylabel("J&F (mean over seeds)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
