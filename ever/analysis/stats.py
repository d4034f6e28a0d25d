"""Pure statistics on the tables of :mod:`ever.analysis.sources`: seeds grouped into cells, noise, paired
comparisons over sequences, compute to reach a target, Pareto fronts. No file is read here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def along_training(C):
    """The rows of :func:`curves` ``C`` that belong to runs scored at more than one point of their training."""
    return C[C.groupby("run")["step"].transform("nunique") > 1] if not C.empty else C


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
        rows.append(
            {
                "cell": cell,
                "runs": len(costs),
                "reached": len(hit),
                f"{cost} to reach": hit.mean() if len(hit) else None,
                "sd": hit.std(ddof=1) if len(hit) > 1 else None,
            }
        )
    return pd.DataFrame(rows).set_index("cell")


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


def paired(CQ, a: str | None, b: str | None) -> dict[str, Any] | None:
    """:func:`compare` of cells ``a`` and ``b`` of a sequences x cells table, or None when either is missing or
    they share no scored sequence."""
    return compare(CQ, a, b) if a in CQ and b in CQ and len(CQ[[a, b]].dropna()) else None


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
        raise ValueError(
            f"held_out_scores: {len(C)} sequences, {int(tuned_rows.sum())} of them tuned on: need both kinds"
        )
    return pd.DataFrame(
        {
            f"tuning ({int(tuned_rows.sum())})": C[tuned_rows].mean(),
            f"held out ({int((~tuned_rows).sum())})": C[~tuned_rows].mean(),
            f"all ({len(C)})": C.mean(),
        }
    )


def compare(Q, a: str, b: str) -> dict[str, Any]:
    """Column ``a`` against column ``b`` of a sequences x methods table (:func:`sequence_scores` or
    :func:`cell_sequence_scores`), over the sequences both scored: ``n``, ``ahead`` (sequences where a > b),
    ``lead`` (mean of a - b), ``top`` and ``top_lead`` (the sequence of a's largest lead), ``lead_without_top``
    and ``p`` (two-sided paired t-test over the sequences; None with fewer than 3)."""
    import numpy as np
    from scipy.stats import ttest_rel

    both = Q[[a, b]].dropna()
    d = both[a] - both[b]
    if d.empty:
        raise ValueError(f"compare: `{a}` and `{b}` share no scored sequence")
    top = d.idxmax()
    return {
        "n": len(d),
        "ahead": int((d > 0).sum()),
        "lead": float(d.mean()),
        "top": top,
        "top_lead": float(d[top]),
        "lead_without_top": float(d.drop(top).mean()) if len(d) > 1 else None,
        "p": float(ttest_rel(both[a], both[b]).pvalue) if len(d) >= 3 and np.ptp(d) > 1e-9 else None,
    }


def cost_ratios(T, a: str, b: str) -> dict[str, float]:
    """How many times cell ``a`` of :func:`training_cost` costs cell ``b``: per clip in FLOPs, and in the
    mean wall seconds, CPU seconds and energy estimate of their seeds (the same number of steps, so per clip
    too; NaN where a ledger lacks the figure)."""
    return {
        k: float(T.loc[a, c] / T.loc[b, c])
        for k, c in (("flops", "GFLOPs/clip"), ("wall", "wall s"), ("cpu", "CPU s"), ("energy", "Wh"))
    }


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
    return {
        "spread": spread,
        "negligible": tie,
        "front": [] if tie else pareto_front(pts, cost, score),
        "best": pts[score].idxmax() if len(pts) else None,
    }


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
    uncounted = bool(
        not confounded and spread is not None and spread < negligible and ratio is not None and ratio > 1.1
    )
    return {
        "flops_spread": spread,
        "wall_ratio": ratio,
        "cores": span,
        "confounded": confounded,
        "uncounted": uncounted,
    }


def sample_sd(xs: list[float]) -> float | None:
    """Sample standard deviation; None for fewer than two values."""
    import statistics

    return statistics.stdev(xs) if len(xs) > 1 else None


BOOTSTRAP_DRAWS = 10_000  # draws of :func:`effect`'s bootstrap
BOOTSTRAP_SEED = 0  # its RNG seed: the same files give the same interval


@dataclass(frozen=True)
class Effect:
    """Cell ``a`` minus cell ``b`` in J&F (:func:`effect`): the mean over sequences of the seed-mean difference,
    its 95 % interval ``[low, high]`` from the two-level bootstrap, the paired t-test's ``p`` over the sequences
    (seeds averaged; None with fewer than 3 sequences or no spread), how many sequences and seeds it rests on,
    and ``step`` when it compares the cells after that many training steps (None: at the end of training)."""

    a: str
    b: str
    effect: float
    low: float
    high: float
    p: float | None
    n_sequences: int
    seeds_a: int
    seeds_b: int
    step: int | None = None

    @property
    def key(self) -> str:
        """How :func:`holm`'s family names this comparison (``a − b``, ``@ step`` when at a step)."""
        return f"{self.a} − {self.b}" + (f" @ {self.step}" if self.step is not None else "")


def effect(A, B, a: str = "a", b: str = "b", draws: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED, step=None):
    """Cell ``a`` against cell ``b`` of a grid: ``A`` (sequences x seeds of ``a``, a DataFrame or array of J&F)
    and ``B`` (sequences x seeds of ``b``, the same sequences in rows; any number of seeds per cell, one
    included). Sequences where either cell lacks a score are left out. The effect is the mean over sequences of
    (mean over ``a``'s seeds - mean over ``b``'s seeds). Its 95 % interval is the 2.5th and 97.5th percentile of
    ``draws`` (10,000 by default) two-level bootstrap replicates, from a NumPy generator seeded with ``seed``
    (0): each replicate draws the sequences with replacement and each cell's seeds with replacement,
    independently of the other cell's, so the interval carries the spread over both sequences and seeds. A
    replicate's seeds are drawn once and scored on all its drawn sequences, not drawn again for every sequence:
    a seed is one trained model scored on every sequence, and a seed that is worse everywhere (a run that
    never left chance) must widen the interval, where drawing seeds per sequence would average it away.
    ``p``: the paired t-test over the sequences on the seed means (:func:`compare`).
    Returns an :class:`Effect`; raises ValueError when the cells share no scored sequence."""
    import numpy as np
    import pandas as pd
    from scipy.stats import ttest_rel

    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    if A.ndim != 2 or B.ndim != 2 or len(A) != len(B):
        raise ValueError(
            f"effect: need sequences x seeds of both cells over the same sequences, got {A.shape}, {B.shape}"
        )
    keep = ~np.isnan(A).any(axis=1) & ~np.isnan(B).any(axis=1)
    A, B = A[keep], B[keep]
    S = len(A)
    if S == 0 or A.shape[1] == 0 or B.shape[1] == 0:
        raise ValueError(f"effect: `{a}` and `{b}` share no scored sequence")
    ma, mb = A.mean(axis=1), B.mean(axis=1)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, S, size=(draws, S))[..., None]  # (draws, S, 1): the drawn sequences

    def replicate(X):  # (draws,): mean over drawn sequences of the mean over drawn seeds
        cols = rng.integers(0, X.shape[1], size=(draws, 1, X.shape[1]))  # one draw of seeds for all sequences
        return X[rows, cols].mean(axis=2).mean(axis=1)

    boot = replicate(A) - replicate(B)
    low, high = np.percentile(boot, [2.5, 97.5])
    d = pd.Series(ma - mb)
    p = float(ttest_rel(ma, mb).pvalue) if S >= 3 and np.ptp(d) > 1e-9 else None
    return Effect(a, b, float(d.mean()), float(low), float(high), p, S, A.shape[1], B.shape[1], step)


def cell_columns(Q, cell: str | None) -> list[str]:
    """The columns of ``Q`` (runs named ``<cell>-s<seed>``, or a baseline's label) that are ``cell``'s seeds."""
    return [c for c in Q.columns if cell_of(c) == cell] if cell is not None else []


def cell_effect(Q, a: str, b: str, **kw) -> Effect | None:
    """:func:`effect` of cells ``a`` and ``b`` of :func:`sequence_scores` ``Q`` (sequences x runs, runs named
    ``<cell>-s<seed>`` or a baseline's label): their runs as seeds. None when either cell has no column or
    they share no scored sequence."""
    ca, cb = cell_columns(Q, a), cell_columns(Q, b)
    if not ca or not cb or not len(Q[ca + cb].dropna()):
        return None
    return effect(Q[ca], Q[cb], a, b, **kw)


def holm(ps: dict[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down correction of one family of p-values (a grid's comparisons, by name): sorted
    ascending, the i-th smallest of m is multiplied by m - i + 1, capped at 1, and made non-decreasing.
    None stays None and does not count in m."""
    known = sorted(((p, k) for k, p in ps.items() if p is not None), key=lambda x: x[0])
    m, out, run = len(known), dict.fromkeys(ps), 0.0
    for i, (p, k) in enumerate(known):
        run = max(run, min(1.0, (m - i) * p))
        out[k] = run
    return out


@dataclass(frozen=True)
class Power:
    """How precisely a grid of ``sequences`` x seeds can measure the difference of two cells (:func:`power`):
    the variance components estimated from the runs (J&F², each floored at 0), and what they predict.

    ``sd_interaction``: how much the difference between the cells varies from sequence to sequence (beyond
    evaluation noise); ``sd_residual``: a seed's score on a sequence around its cell's sequence and seed effects;
    ``sd_seed_a``/``sd_seed_b``: how much a whole seed (one trained model, every sequence) moves its cell."""

    sd_interaction: float
    sd_residual: float
    sd_seed_a: float
    sd_seed_b: float
    sequences: int
    seeds_a: int
    seeds_b: int

    def half_width(self, seeds: int, sequences: int | None = None) -> float:
        """The predicted half-width of the 95 % interval of the effect with ``seeds`` per cell on ``sequences``
        (default: as many as measured): 1.96 x the standard error of the mean over sequences of the seed-mean
        difference, under the model J&F = cell + seed + sequence x cell + residual."""
        S = sequences or self.sequences
        var = (
            self.sd_interaction**2 / S
            + 2 * self.sd_residual**2 / (seeds * S)
            + (self.sd_seed_a**2 + self.sd_seed_b**2) / seeds
        )
        return 1.96 * var**0.5

    @property
    def floor(self) -> float:
        """The half-width no number of seeds goes below on the measured sequences (the interaction's share)."""
        return 1.96 * self.sd_interaction / self.sequences**0.5

    def seeds_needed(self, target: float, max_seeds: int = 100) -> int | None:
        """The fewest seeds per cell whose predicted half-width is at most ``target`` on the measured number of
        sequences; None when even ``max_seeds`` cannot (the sequences' own spread exceeds it)."""
        return next((k for k in range(2, max_seeds + 1) if self.half_width(k) <= target), None)

    def sequences_needed(self, target: float, seeds: int, max_sequences: int = 10_000) -> int | None:
        """The fewest sequences on which ``seeds`` per cell give a predicted half-width of at most ``target``."""
        return next((s for s in range(3, max_sequences + 1) if self.half_width(seeds, s) <= target), None)


def power(A, B) -> Power:
    """Variance components of two cells' J&F (``A``, ``B``: sequences x seeds, the same sequences in rows, at
    least two seeds each; rows with a missing score are dropped), estimated by the method of moments: the
    residual variance from each cell's sequence x seed table (two-way, no replication, pooled over the cells),
    a seed's variance from the variance of its cell's seed means less the residual's share, and the
    interaction from the variance over sequences of the seed-mean difference less the residual's share.
    With two or three seeds a component is itself uncertain by a factor of several: read the predictions as
    orders of magnitude."""
    import numpy as np

    A, B = np.asarray(A, dtype=float), np.asarray(B, dtype=float)
    keep = ~np.isnan(A).any(axis=1) & ~np.isnan(B).any(axis=1)
    A, B = A[keep], B[keep]
    S, ka, kb = len(A), A.shape[1], B.shape[1]
    if S < 3 or ka < 2 or kb < 2:
        raise ValueError(f"power: need >= 3 sequences and >= 2 seeds per cell, got {S} x ({ka}, {kb})")

    def residual_ss(X):  # sum of squares of the two-way residual and its degrees of freedom
        r = X - X.mean(axis=1, keepdims=True) - X.mean(axis=0, keepdims=True) + X.mean()
        return float((r**2).sum()), (X.shape[0] - 1) * (X.shape[1] - 1)

    (ssa, dfa), (ssb, dfb) = residual_ss(A), residual_ss(B)
    res = (ssa + ssb) / (dfa + dfb)
    seed_a = max(float(A.mean(axis=0).var(ddof=1)) - res / S, 0.0)
    seed_b = max(float(B.mean(axis=0).var(ddof=1)) - res / S, 0.0)
    d = A.mean(axis=1) - B.mean(axis=1)
    inter = max(float(d.var(ddof=1)) - res * (1 / ka + 1 / kb), 0.0)
    return Power(inter**0.5, res**0.5, seed_a**0.5, seed_b**0.5, S, ka, kb)


def cell_power(Q, a: str, b: str) -> Power | None:
    """:func:`power` of cells ``a`` and ``b`` of :func:`sequence_scores` ``Q`` (their runs as seeds); None when
    either has fewer than two seeds or they share fewer than three scored sequences."""
    ca, cb = cell_columns(Q, a), cell_columns(Q, b)
    if len(ca) < 2 or len(cb) < 2 or len(Q[ca + cb].dropna()) < 3:
        return None
    return power(Q[ca], Q[cb])
