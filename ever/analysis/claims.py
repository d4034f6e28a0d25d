"""The claims tested, as data: each function returns what a grid shows for one claim (its verdict, the numbers
it rests on, the reason when it does not decide). :mod:`ever.analysis.wording` turns them into sentences."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ever.analysis.sources import curves, declared_min_effect, sequence_scores, summaries, training_curves
from ever.analysis.stats import (
    Effect,
    Power,
    best_baseline,
    best_baseline_score,
    cell_effect,
    cell_of,
    cell_power,
    cell_sequence_scores,
    compare,
    compute_to_reach,
    holm,
    noise,
    over_seeds,
    paired,
    sample_sd,
)
from ever.analysis.tables import ablation_table, runs_table
from ever.config import SAME_WEIGHTS_KEYS
from ever.runs import run_config_flat

P_CLEAR = 0.05  # a paired t-test over the sequences below this after Holm's correction (and every seed on one
# side) makes a lead over a baseline clear
LEARNED_MARGIN = 0.02  # an object cell learned when it ends this much above the untrained encoder (or copying)
FACTOR = 5.0  # claim 1: object nodes at patch accuracy for at least this many times less compute
TOLERANCE = 0.02  # claim 1: J&F within this of the patch walk counts as equal accuracy
CHANCE_MARGIN = 0.02  # a run never left chance when its late loss / ln N stays above 1 - this

RAISES, LOWERS, NO_EFFECT, UNDECIDED = "raises", "lowers", "no effect", "undecided"


def verdict(e: Effect, min_effect: float | None) -> str:
    """The one rule every comparison of two cells is judged by (:func:`ever.analysis.stats.effect`'s 95 %
    interval ``[low, high]`` of ``a - b``): :data:`RAISES` when ``low > 0``, :data:`LOWERS` when ``high < 0``,
    :data:`NO_EFFECT` when the interval lies within ``[-min_effect, min_effect]`` (the minimal effect of interest
    the grid file declares, ``claims.min_effect``; None: no claim of no effect is possible), else
    :data:`UNDECIDED`. :func:`ever.analysis.wording.effect_text` words it."""
    if e.low > 0:
        return RAISES
    if e.high < 0:
        return LOWERS
    if min_effect is not None and -min_effect <= e.low and e.high <= min_effect:
        return NO_EFFECT
    return UNDECIDED


def chance_runs(
    runs_dir: str | Path, names: list[str] | None = None, margin: float = CHANCE_MARGIN
) -> list[dict[str, Any]]:
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
        out.append(
            {
                "run": run,
                "loss / ln N": float(late["loss / ln N"].mean()),
                "acc × N": float(late["acc × N"].mean()) if "acc × N" in late else None,
                "grad_norm": float(late["grad_norm"].median()) if "grad_norm" in late else None,
            }
        )
    return out


def green_claim(
    table, reference: str | None = None, factor: float = FACTOR, tolerance: float = TOLERANCE
) -> dict[str, Any]:
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
        rows.append(
            {
                "run": r["run"],
                "J&F gap": gap,
                "compute ratio": ratio,
                "equal accuracy": gap >= -tolerance,
                "cheap enough": ratio is not None and ratio >= factor,
            }
        )
    holds = any(x["equal accuracy"] and x["cheap enough"] for x in rows) if rows else None
    ratios = [x["compute ratio"] for x in rows if x["compute ratio"]]
    # Testable only where the object runs' compute differs from the patch run's (not pooled from one encoding).
    testable = bool(ratios) and max(max(ratios), 1 / min(ratios)) >= 1.5
    return {
        "reference": reference,
        "reference_jf": ref_jf,
        "factor": factor,
        "tolerance": tolerance,
        "holds": holds,
        "testable": testable,
        "rows": rows,
    }


def gcn_cycle(A, base: str, Q=None, min_effect: float | None = None) -> list[dict[str, Any]]:
    """What the GCN did to the training cycle and to J&F, per GCN cell of an :func:`ablation_table` ``A`` (runs
    ``<cell>-s<seed>``) against the cell ``base`` without it: the change of the mean ``loss / ln N`` (the
    cycle's loss relative to chance: lower is an easier cycle) and of the mean J&F, each with its :func:`noise`
    (twice the mean of the two cells' sample sds over seeds), and a word: ``"easier"``/``"harder"`` (loss) or
    ``"higher"``/``"lower"`` (J&F) beyond that, else ``"within noise"``. With the runs' per-sequence scores
    ``Q`` (:func:`sequence_scores`) J&F is judged by :func:`verdict` instead, against ``min_effect``:
    ``interval_jf`` is the 95 % interval of :func:`~ever.analysis.stats.cell_effect`, ``noise_jf`` None, and the
    word ``"higher"``, ``"lower"``, ``"no effect larger than m"`` or ``"undecided"``. A GCN that closes the cycle
    without learning appearance shows as an easier cycle with a lower J&F."""
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
            row.update(
                {
                    f"d_{key}": float(d),
                    f"noise_{key}": n,
                    key: "within noise" if n is None or abs(d) <= n else up if d > 0 else down,
                }
            )
        e = cell_effect(Q, cell, base) if Q is not None and not Q.empty else None
        if e is not None:
            v = verdict(e, min_effect)
            row.update(
                {
                    "d_jf": e.effect,
                    "noise_jf": None,
                    "interval_jf": (e.low, e.high),
                    "jf": f"no effect larger than {min_effect:g}"
                    if v == NO_EFFECT
                    else {RAISES: "higher", LOWERS: "lower"}.get(v, v),
                }
            )
        rows.append(row)
    return rows


@dataclass(frozen=True)
class CropRow:
    """One object-crop cell of :func:`crop_claim` against the patch-crop reference (see there for each field)."""

    cell: str
    seeds: int
    final: float
    final_sd: float | None
    gap: float
    noise: float | None
    beyond_noise: bool
    equal: bool
    reached: int
    reach: float | None
    reach_sd: float | None
    ratio: float | None
    ratio_reached: float | None
    ratio_low: float | None
    clip_ratio: float | None
    vs_reference: dict[str, Any] | None
    effect: Effect | None = None  # this cell minus the reference (stats.effect; None without per-sequence scores)


@dataclass(frozen=True)
class PooledWalk:
    """A pooled patch walk (nodes pooled from one encoding of the frame, no GCN) against the patch-crop walk's
    accuracy, the target of claim 1 (:func:`crop_claim`): per seed, training GFLOPs and CPU seconds to reach it
    (means over the ``reached`` seeds that do; CPU seconds, all threads, because they stay steady where wall
    seconds follow the machine's load: green-long's runs were trained idle at two threads and side by side at
    one), how many times less than the patch-crop walk needs (its seeds' means over the seeds that reach it),
    whether every seed that reached it did so at its first evaluation (the cost is then an upper bound), the
    difference of seed means of J&F at every step both were scored (from the curves,
    no interval: per-sequence scores are kept at the end of training only), and ``effect`` at the end."""

    cell: str
    seeds: int
    reached: int
    reach: float | None
    reach_cpu_seconds: float | None
    flops_ratio: float | None
    cpu_ratio: float | None
    at_first: bool
    first_step: int | None
    steps: tuple[tuple[int, float], ...]
    effect: Effect | None


@dataclass(frozen=True)
class CropClaim:
    """Claim 1 where each node is encoded on its own (:func:`crop_claim`): the verdict (``holds``, ``clear``,
    ``undecided``), the numbers it rests on and the object cells' rows."""

    reference: str
    baseline: str | None
    baseline_jf: float | None
    learned: bool
    undecided: str | None
    reference_final: float
    target: float
    reference_seeds: int
    reference_sd: float | None
    reference_noise: float | None
    reference_reach: float | None
    reference_reached: int
    reference_at_first: int
    reference_vs_baseline: dict[str, Any] | None
    factor: float
    tolerance: float
    rows: tuple[CropRow, ...]
    holds: bool | None
    clear: bool
    pooled: tuple[PooledWalk, ...] = ()  # the pooled patch walks against the same target
    min_effect: float | None = None  # the grid's declared minimal effect of interest (stats.verdict)


def crop_claim(
    runs_dir: str | Path,
    split: str,
    names: list[str] | None = None,
    factor: float = FACTOR,
    tolerance: float = TOLERANCE,
    min_effect: float | None = None,
) -> CropClaim | None:
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
    patch-crop cell does not end above the best baseline (``learned`` False: matching a walk that has not learned
    says nothing about the claim; "above" means by more than the :func:`noise` of its own seeds) and not every
    object cell falls short of it beyond the noise (a shortfall refutes the claim whatever the reference is
    worth), ``"noise"`` when an object cell's shortfall is within the noise or no object cell has two seeds.
    Only object cells with two or more seeds decide; a one-seed cell (a diagnostic) is in ``rows`` with the
    reference's noise alone.
    ``reference_vs_baseline``: :func:`compare` of the patch cell against the best baseline sequence by sequence
    (information beside the seed rule: whether its lead would carry over to other videos).
    ``effect`` of a row: :func:`~ever.analysis.stats.cell_effect` of the cell against the patch cell (its
    interval over sequences and seeds); where it exists, "beyond the noise" means :func:`verdict` says it
    raises or lowers J&F (the interval excludes 0), else (no per-sequence scores) the seeds' :func:`noise`.
    ``pooled``: every pooled patch cell without GCN against the same target (:class:`PooledWalk`);
    ``min_effect``: the declared minimal effect of interest (default: the snapshot's grid file's,
    :func:`~ever.analysis.sources.declared_min_effect`).
    The reference is the first patch-crop cell in the order of the runs (the grid's order); other patch-crop cells
    (e.g. ``patchcrop49-home0``) are compared in the tables only.
    The whole result is None when there is no patch-crop cell with a curve or no object-crop cell."""
    C = curves(runs_dir, split, names)
    if C.empty or "train_gflops" not in C:
        return None
    kinds = {
        c: run_config_flat(Path(runs_dir) / g["run"].iloc[0]).get("nodes.kind")
        for c, g in C.groupby("cell", sort=False)
    }
    refs = [c for c, k in kinds.items() if k == "patch_crop"]
    objects = [c for c, k in kinds.items() if k == "object_crop"]
    min_effect = declared_min_effect(runs_dir) if min_effect is None else min_effect
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
    clip = (
        {c: T.loc[T["run"].map(cell_of) == c, "train_flops_per_clip"].mean() for c in [refs[0], *objects]}
        if "train_flops_per_clip" in T
        else {}
    )
    ref_final, _, _ = per_seed(refs[0])
    ref_mean = sum(ref_final) / len(ref_final)
    target = ref_mean - tolerance
    _, ref_reach, ref_first = per_seed(refs[0], target)
    ref_hit = [x for x in ref_reach if x is not None]
    ref_cost = sum(ref_hit) / len(ref_hit) if ref_hit else None
    Q = sequence_scores(runs_dir, split, names)
    CQ = cell_sequence_scores(Q)

    rows = []
    for cell in objects:
        final, reach, _ = per_seed(cell, target)
        hit = [x for x in reach if x is not None]
        every = len(hit) == len(reach)
        mean = sum(final) / len(final)
        reached_ratio = ref_cost / (sum(hit) / len(hit)) if hit and ref_hit else None
        n = noise(sample_sd(final), sample_sd(ref_final))
        e = cell_effect(Q, cell, refs[0]) if not Q.empty else None
        beyond = verdict(e, None) in (RAISES, LOWERS) if e is not None else n is not None and abs(mean - ref_mean) > n
        rows.append(
            CropRow(
                cell=cell,
                seeds=len(final),
                final=mean,
                final_sd=sample_sd(final),
                gap=mean - ref_mean,
                noise=n,
                beyond_noise=beyond,
                equal=mean - ref_mean >= -tolerance,
                reached=len(hit),
                reach=sum(hit) / len(hit) if hit else None,
                reach_sd=sample_sd(hit),
                ratio=reached_ratio if every else None,
                ratio_reached=reached_ratio,
                ratio_low=min(ref_hit) / max(hit) if every and ref_hit else None,
                clip_ratio=(clip[refs[0]] / clip[cell] if clip and clip[cell] > 0 and clip[refs[0]] > 0 else None),
                vs_reference=paired(CQ, cell, refs[0]),
                effect=e,
            )
        )
    # Only cells with a spread of their own decide (a one-seed cell, e.g. a diagnostic, is shown, not judged).
    judged = [r for r in rows if r.seeds > 1]
    ok = [r for r in judged if r.ratio is not None and r.ratio >= factor and r.equal]
    # A cell refutes the claim when it is less accurate beyond the noise, or as accurate without the saving.
    refuted = [
        r for r in judged if (not r.equal and r.beyond_noise) or (r.equal and (r.ratio is None or r.ratio < factor))
    ]
    bb = best_baseline_score(summaries(runs_dir, split, names))
    best, best_jf = bb if bb else (None, None)
    # The reference must end above the best baseline by more than the noise of its own seeds (by anything with
    # one seed) for its accuracy to be worth matching: matching a walk that is not shown to have learned says
    # nothing about the claim. Falling short of it does: the claim is equal accuracy to the patch walk, whatever
    # the patch walk is worth, so a shortfall beyond the noise refutes it either way.
    ref_noise = noise(sample_sd(ref_final))
    learned = best_jf is None or ref_mean - best_jf > (ref_noise or 0.0)
    if not learned:
        refuted = [r for r in judged if not r.equal and r.beyond_noise]
    holds = True if learned and ok else False if judged and len(refuted) == len(judged) else None
    undecided = None if holds is not None else "baseline" if not learned else "noise"
    return CropClaim(
        reference=refs[0],
        baseline=best,
        baseline_jf=best_jf,
        learned=learned,
        undecided=undecided,
        reference_final=ref_mean,
        target=target,
        reference_seeds=len(ref_final),
        reference_sd=sample_sd(ref_final),
        reference_noise=ref_noise,
        reference_reach=ref_cost,
        reference_reached=len(ref_hit),
        reference_at_first=ref_first,
        reference_vs_baseline=paired(CQ, refs[0], best),
        factor=factor,
        tolerance=tolerance,
        rows=tuple(rows),
        holds=holds,
        clear=learned and any(r.ratio_low >= factor for r in ok),
        pooled=pooled_walks(C, T, Q, kinds, refs[0], target),
        min_effect=min_effect,
    )


def pooled_walks(C, T, Q, kinds: dict[str, Any], reference: str, target: float) -> tuple[PooledWalk, ...]:
    """:class:`PooledWalk` of every cell of the curves ``C`` whose ``nodes.kind`` (``kinds``) is ``patch_pool`` and
    whose runs have no GCN, against ``reference`` (the patch-crop cell) and its ``target`` J&F (``T``:
    :func:`runs_table`, for the GCN and the CPU seconds per step; ``Q``: :func:`sequence_scores`). CPU seconds
    at a step are the run's training CPU seconds per step (its ledger) times the step: a steady rate assumed."""
    if "train_cpu_s_per_step" in T:
        per_step = T.set_index("run")["train_cpu_s_per_step"]
        C = C.assign(train_cpu_s=C["step"] * C["run"].map(per_step))
    gcn = T.set_index("run")["gcn.enabled"] if "gcn.enabled" in T else None

    def reach(cell: str, cost: str) -> list[float | None]:
        if cost not in C:
            return []
        return [compute_to_reach(g, target, cost) for _, g in C[C["cell"] == cell].groupby("run", sort=False)]

    def mean(xs: list[float | None]) -> float | None:
        hit = [x for x in xs if x is not None]
        return sum(hit) / len(hit) if hit else None

    ref_flops, ref_s = mean(reach(reference, "train_gflops")), mean(reach(reference, "train_cpu_s"))
    ref_steps = C[C["cell"] == reference].groupby("step")["J&F-Mean"].mean()
    out = []
    for cell, k in kinds.items():
        runs = C.loc[C["cell"] == cell, "run"].unique()
        if k != "patch_pool" or (gcn is not None and any(bool(gcn.get(r)) for r in runs)):
            continue
        flops, secs = reach(cell, "train_gflops"), reach(cell, "train_cpu_s")
        hit = [x for x in flops if x is not None]
        first = list(C[C["cell"] == cell].groupby("run", sort=False)["train_gflops"].min())
        steps = C[C["cell"] == cell].groupby("step")["J&F-Mean"].mean()
        both = [s for s in steps.index if s in ref_steps.index]
        f, s = mean(flops), mean(secs)
        out.append(
            PooledWalk(
                cell=cell,
                seeds=len(runs),
                reached=len(hit),
                reach=f,
                reach_cpu_seconds=s,
                flops_ratio=ref_flops / f if ref_flops and f else None,
                cpu_ratio=ref_s / s if ref_s and s else None,
                at_first=bool(hit) and all(x == f0 for x, f0 in zip(flops, first) if x is not None),
                first_step=int(C.loc[C["cell"] == cell, "step"].min()) if len(runs) else None,
                steps=tuple((int(x), float(steps[x] - ref_steps[x])) for x in both),
                effect=cell_effect(Q, cell, reference) if not Q.empty else None,
            )
        )
    return tuple(out)


# ------------------------------------------------------------------ what one study shows, as data (wording words it)


@dataclass(frozen=True)
class VersusBaseline:
    """A cell (its seeds averaged) against the best baseline, overall and sequence by sequence.

    ``outcome``: ``"clearly below"`` (below on every seed and ``p_holm`` < :data:`P_CLEAR`), ``"not above"``,
    ``"beats"`` (above on every seed and ``p_holm`` < :data:`P_CLEAR`) or ``"above, not clearly"``; ``p_holm``:
    the paired t-test's p Holm-corrected over the grid's comparisons (:func:`study`)."""

    cell: str
    seeds: tuple[str, ...]
    seed_jf: tuple[float, ...]
    seed: Any  # the config's seed of a one-seed cell
    mean: float
    sd: float | None  # sample sd over seeds (None for one seed)
    baseline: str
    baseline_jf: float
    lead: float
    above: int  # seeds above the baseline
    compare: dict[str, Any] | None  # stats.compare of the cell against the baseline, sequence by sequence
    outcome: str
    p_holm: float | None = None


@dataclass(frozen=True)
class GcnPair:
    bare: str  # the cell without the GCN
    gcn: str  # the same config with it
    diff: float  # J&F with minus without (means over seeds)
    compare: dict[str, Any] | None  # sequence by sequence (stats.paired)
    effect: Effect | None = None  # with minus without, over sequences and seeds (stats.effect)
    power: Power | None = None  # what more seeds or sequences would resolve (stats.power; >= 2 seeds a cell)


@dataclass(frozen=True)
class GcnClaim:
    """Claim 2, the GCN: every pair of cells whose configs differ only in ``gcn.*``, each with its effect
    (judged by :func:`verdict`)."""

    pairs: tuple[GcnPair, ...]
    bare_ends: tuple[tuple[str, float], ...]  # where each walk without the GCN ends
    baseline_jf: float | None
    flop_share: float | None  # the GCN's largest share of the training FLOPs, in %


@dataclass(frozen=True)
class ObjectCells:
    """Object-node cells against the untrained encoder (or copying the first mask when it is absent)."""

    reference: str
    reference_jf: float
    cells: tuple[tuple[str, float], ...]
    learned: tuple[str, ...]  # cells more than LEARNED_MARGIN above the reference
    margin: float


@dataclass(frozen=True)
class StuckRun:
    """A run whose training walk never left chance (:func:`chance_runs`)."""

    run: str
    loss: float  # mean loss / ln N over the second half of training
    acc: float | None  # mean accuracy × N
    grad_norm: float | None
    jf: float


@dataclass(frozen=True)
class PooledClaim:
    """Claim 1 on a grid whose object and patch cells pool their nodes from one encoding (:func:`green_claim`)."""

    factor: float
    holds: bool
    testable: bool  # False when their training FLOPs per clip barely differ
    spread: float | None  # how far those FLOPs differ, in % (when not testable)


@dataclass(frozen=True)
class Study:
    """What the evaluated runs of one grid show (:func:`study`)."""

    n_sequences: int | None
    main: VersusBaseline | None  # the first cell
    others: tuple[VersusBaseline, ...]
    gcn: GcnClaim | None
    objects: ObjectCells | None
    stuck: tuple[StuckRun, ...]
    runs: int  # trained runs
    crop: CropClaim | None  # claim 1 where each node is encoded on its own
    pooled: PooledClaim | None  # else claim 1 on pooled nodes, when there is something to compare
    min_effect: float | None = None  # the grid's declared minimal effect of interest (verdict)
    holm: dict[str, float | None] | None = None  # Holm-corrected p of every comparison, by Effect.key


def study(
    runs_dir: str | Path,
    split: str,
    names: list[str] | None = None,
    crop: CropClaim | None = None,
    min_effect: float | None = None,
) -> Study | None:
    """What the evaluated runs of ``runs_dir`` show; None when no trained run was evaluated:

    * the first cell (the first run, its seeds averaged) and every other cell against the best baseline,
      overall and sequence by sequence, a win only when a paired t-test over the sequences gives p < :data:`P_CLEAR`
      after Holm's correction over the grid's comparisons and every seed is above, and "clearly below" in the
      mirror case;
    * claim 2, the GCN: its effect in every pair of runs whose configs differ only in ``gcn.*``, against the
      spread over seeds (when the grid measures one), sequence by sequence, where the walk without it ends, and
      its share of the training FLOPs;
    * object-node cells against the untrained encoder and against copying the first mask;
    * runs whose training never left chance;
    * claim 1: :func:`crop_claim` where the grid has patch-crop and object-crop cells with curves (``crop``,
      when the caller already has it), else :func:`green_claim`.

    Every comparison (each cell against the best baseline, each GCN pair, each object-crop cell and pooled walk
    against the patch-crop walk) is one of the grid's family: ``holm`` holds their p-values Holm-corrected
    (:func:`~ever.analysis.stats.holm`), by ``Effect.key`` (``a − b``). ``min_effect``: the declared minimal
    effect of interest, default the snapshot's grid file's (:func:`~ever.analysis.sources.declared_min_effect`)."""
    S = summaries(runs_dir, split, names)
    if S.empty or "J&F-Mean" not in S or not (S["kind"] == "model").any():
        return None
    jf = S.set_index("run")["J&F-Mean"]
    models = list(S.loc[S["kind"] == "model", "run"])
    base = S[S["kind"] == "baseline"].set_index("run")["J&F-Mean"]
    n_seq = int(S["num_sequences"].max()) if "num_sequences" in S else None
    cfgs = {r: run_config_flat(Path(runs_dir) / r) for r in models}
    cells = list(dict.fromkeys(cell_of(r) for r in models))
    seeds_of = {c: [r for r in models if cell_of(r) == c] for c in cells}
    best = best_baseline(S)
    Q = sequence_scores(runs_dir, split, names)
    CQ = cell_sequence_scores(Q)
    min_effect = declared_min_effect(runs_dir) if min_effect is None else min_effect

    def versus_best(cell: str) -> dict[str, Any] | None:
        seeds = seeds_of[cell]
        shared = not Q.empty and set(seeds) <= set(Q) and best in Q and len(CQ[[cell, best]].dropna()) > 0
        return compare(CQ, cell, best) if shared else None

    def against_best(cell: str, adjusted: dict[str, float | None]) -> VersusBaseline | None:
        seeds = seeds_of[cell]
        if best is None or not jf[seeds].notna().any():
            return None
        m = jf[seeds].mean()
        above = int((jf[seeds] > base[best]).sum())
        c = versus_best(cell)
        p_holm = adjusted.get(f"{cell} − {best}")
        significant = p_holm is not None and p_holm < P_CLEAR
        lead = m - base[best]
        outcome = (
            "clearly below"
            if lead < 0 and significant and above == 0
            else "not above"
            if lead <= 0
            else "beats"
            if significant and above == len(seeds)
            else "above, not clearly"
        )
        return VersusBaseline(
            cell,
            tuple(seeds),
            tuple(float(jf[r]) for r in seeds),
            cfgs[seeds[0]].get("seed") if len(seeds) == 1 else None,
            m,
            float(jf[seeds].std(ddof=1)) if len(seeds) > 1 else None,
            best,
            float(base[best]),
            lead,
            above,
            c,
            outcome,
            p_holm,
        )

    def without_gcn(c: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in c.items() if k != "name" and not k.startswith("gcn.") and k not in SAME_WEIGHTS_KEYS}

    A = ablation_table(runs_dir, split, names)  # GCN FLOP share and claim 1, read once
    pairs = [
        (r, g)
        for g in cells
        if cfgs[seeds_of[g][0]].get("gcn.enabled")
        for r in cells
        if not cfgs[seeds_of[r][0]].get("gcn.enabled")
        and without_gcn(cfgs[seeds_of[r][0]]) == without_gcn(cfgs[seeds_of[g][0]])
    ]
    gcn = None
    if pairs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in cells}
        d = {g: cell_jf[g] - cell_jf[r] for r, g in pairs}
        share = A.loc[A["GCN"], "GCN % of FLOPs"].dropna() if "GCN % of FLOPs" in A else A.iloc[0:0]
        gcn = GcnClaim(
            tuple(
                GcnPair(
                    r,
                    g,
                    d[g],
                    paired(CQ, g, r),
                    cell_effect(Q, g, r) if not Q.empty else None,
                    cell_power(Q, g, r) if not Q.empty else None,
                )
                for r, g in pairs
            ),
            tuple((r, cell_jf[r]) for r in dict.fromkeys(r for r, _ in pairs)),
            float(base[best]) if best is not None else None,
            float(share.max()) if len(share) else None,
        )
    objects = None
    object_cells = [c for c in cells if str(cfgs[seeds_of[c][0]].get("nodes.kind", "")).startswith("object")]
    refs = [b for b in ("baseline: random", "baseline: copy") if b in base]
    if object_cells and refs:
        cell_jf = {c: jf[seeds_of[c]].mean() for c in object_cells}
        objects = ObjectCells(
            refs[0],
            float(base[refs[0]]),
            tuple(cell_jf.items()),
            tuple(c for c in object_cells if cell_jf[c] > base[refs[0]] + LEARNED_MARGIN),
            LEARNED_MARGIN,
        )
    stuck = tuple(
        StuckRun(r["run"], r["loss / ln N"], r["acc × N"], r["grad_norm"], float(jf[r["run"]]))
        for r in chance_runs(runs_dir, models)
    )
    crop = crop if crop is not None else crop_claim(runs_dir, split, names)
    pooled = None
    if crop is None:
        g = green_claim(A)
        ratios = [r["compute ratio"] for r in g.get("rows", []) if r["compute ratio"] is not None]
        if g["holds"] is not None:
            untestable = bool(ratios) and not g["testable"]
            pooled = PooledClaim(
                g["factor"],
                g["holds"],
                not untestable,
                (max(max(ratios), 1 / min(ratios)) - 1) * 100 if untestable else None,
            )
    vs = {c: versus_best(c) for c in cells} if best is not None else {}
    family = {f"{c} − {best}": v["p"] for c, v in vs.items() if v is not None}
    effects = [
        *(p.effect for p in (gcn.pairs if gcn is not None else ())),
        *(r.effect for r in (crop.rows if crop is not None else ())),
        *(w.effect for w in (crop.pooled if crop is not None else ())),
    ]
    family.update({e.key: e.p for e in effects if e is not None})
    adjusted = holm(family)
    main = against_best(cells[0], adjusted)
    others = tuple(o for o in (against_best(c, adjusted) for c in cells[1:]) if o is not None) if main else ()
    return Study(n_seq, main, others, gcn, objects, stuck, len(models), crop, pooled, min_effect, adjusted)
