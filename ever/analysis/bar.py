"""The bar a trained model must clear (issue 33): what a user gets without training, as distributions.

The baselines of one protocol are bare evaluations (a snapshot of kind ``evaluations``, e.g.
``results/baselines``), labelled

* ``copy`` (the first mask for every frame), ``lab`` (the direction of each cell's Lab colour) and
  ``lab-dist`` (Lab distances kept: :mod:`ever.evaluate.baselines`);
* ``random-s<seed>-<stage>``: one untrained encoder (the initial weights a seed draws) read at a stage.
  The initialisations of a stage are one *family*: a distribution, not a number.

"Above the best baseline" means above the strongest single member of every family, the luckiest
initialisation included (:func:`strongest`). The goal of issue 33, written once (:func:`clear_bar`): on the
deciding sequences a model's mean J&F is at least ``margin`` above that baseline, every seed is above it and
the paired t-test over sequences (the model's seed mean against the baseline) gives p < ``p_max``; and its
PCK@0.1 is above every untrained encoder's by more than their spread (sample sd over initialisations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ever.analysis.sources import snapshot_info
from ever.analysis.stats import compare
from ever.runs import read_json

RANDOM = re.compile(r"^random-s(\d+)-(layer\d)$")  # one untrained initialisation: seed, stage
MARGIN = 0.08  # J&F a model must gain over the strongest baseline (issue 33's goal)
P_MAX = 0.05  # paired t-test over the deciding sequences


def family(label: str) -> str:
    """``random-s3-layer4`` -> ``random layer4``; a colour or copy baseline is a family of one."""
    m = RANDOM.match(label)
    return f"random {m.group(2)}" if m else label


def summary_scores(path: str | Path, score: str = "PCK@0.1") -> dict[str, float | None]:
    """``score`` of every evaluation of a snapshot of bare evaluations (its ``summary.json``), by label."""
    labels = (snapshot_info(path) or {}).get("evaluations", [])
    return {label: (read_json(Path(path) / label / "summary.json") or {}).get(score) for label in labels}


def families(Q, pck: dict[str, float | None] | None = None):
    """Baselines as distributions: ``Q`` is sequences x labels (J&F, e.g.
    :func:`ever.analysis.sources.evaluation_sequences`); one row per family with ``members``, the ``J&F``
    mean over members of their mean over sequences, its ``sd`` over members (NaN for one), ``min``, ``max``,
    ``best`` (the label of the max) and, given ``pck`` (label -> PCK@0.1), the members' ``PCK@0.1`` mean and sd."""
    import pandas as pd

    means = Q.mean()  # each label's mean over the sequences it scored
    rows = []
    for fam, labels in pd.Series(means.index, index=[family(c) for c in means.index]).groupby(level=0, sort=False):
        m = means[list(labels)]
        row = {
            "family": fam,
            "members": len(m),
            "J&F": m.mean(),
            "sd": m.std(ddof=1),
            "min": m.min(),
            "max": m.max(),
            "best": m.idxmax(),
        }
        if pck is not None:
            p = pd.Series([pck.get(label) for label in labels], dtype=float)
            row |= {"PCK@0.1": p.mean(), "PCK@0.1 sd": p.std(ddof=1)}
        rows.append(row)
    return pd.DataFrame(rows).set_index("family")


def strongest(Q) -> tuple[str, float]:
    """``(label, mean J&F)`` of the single best baseline of ``Q`` (sequences x labels), over all families."""
    means = Q.mean()
    return str(means.idxmax()), float(means.max())


@dataclass(frozen=True)
class Bar:
    """A model (seeds) against the strongest baseline on the deciding sequences (:func:`clear_bar`)."""

    baseline: str  # the strongest single baseline's label
    baseline_jf: float
    model_jf: float  # mean over seeds of the mean over the deciding sequences
    model_sd: float | None  # sd over seeds (None for one seed)
    lead: float  # model_jf - baseline_jf
    seeds_above: int
    seeds: int
    sequences: int
    p: float | None  # paired t-test over sequences, the model's seed mean against the baseline
    pck: float | None  # the model's mean PCK@0.1 over seeds
    pck_needed: float | None  # the highest untrained family's PCK@0.1 mean + its sd
    margin: float
    p_max: float

    @property
    def target(self) -> float:
        """The J&F the goal asks for: the strongest baseline's plus the margin."""
        return self.baseline_jf + self.margin

    @property
    def jf_clears(self) -> bool:
        return (
            self.lead >= self.margin and self.seeds_above == self.seeds and self.p is not None and self.p < self.p_max
        )

    @property
    def pck_clears(self) -> bool | None:
        return None if self.pck is None or self.pck_needed is None else self.pck > self.pck_needed

    @property
    def clears(self) -> bool:
        return self.jf_clears and self.pck_clears is not False


def clear_bar(
    M,
    B,
    sequences: list[str] | None = None,
    model_pck: list[float] | None = None,
    baseline_pck: dict[str, float | None] | None = None,
    margin: float = MARGIN,
    p_max: float = P_MAX,
) -> Bar:
    """Issue 33's goal for a model: ``M`` sequences x seeds (J&F of each seed), ``B`` sequences x baseline
    labels, both on one protocol; ``sequences`` the deciding ones declared in advance (default: those both
    scored). ``model_pck``: the seeds' PCK@0.1; ``baseline_pck``: label -> PCK@0.1 (the untrained families'
    spread sets the PCK bar). A sequence either table lacks is an error, not a smaller test."""
    import numpy as np
    import pandas as pd

    seqs = list(sequences) if sequences is not None else sorted(set(M.index) & set(B.index))
    missing = sorted(set(seqs) - (set(M.dropna().index) & set(B.dropna().index)))
    if missing:
        raise ValueError(f"clear_bar: no score for the deciding sequences {missing}")
    M, B = M.loc[seqs], B.loc[seqs]
    label, base = strongest(B)
    per_seed = M.mean()
    p = compare(pd.DataFrame({"model": M.mean(axis=1), "baseline": B[label]}), "model", "baseline")["p"]
    needed = None
    if baseline_pck:
        fam = families(B, baseline_pck)
        rnd = fam[fam.index.str.startswith("random")].dropna(subset=["PCK@0.1"])
        if len(rnd):
            needed = float((rnd["PCK@0.1"] + rnd["PCK@0.1 sd"].fillna(0)).max())
    return Bar(
        baseline=label,
        baseline_jf=base,
        model_jf=float(per_seed.mean()),
        model_sd=float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None,
        lead=float(per_seed.mean() - base),
        seeds_above=int((per_seed > base).sum()),
        seeds=len(per_seed),
        sequences=len(seqs),
        p=p,
        pck=float(np.mean(model_pck)) if model_pck else None,
        pck_needed=needed,
        margin=margin,
        p_max=p_max,
    )


def bar_text(bar: Bar) -> str:
    """One line: the verdict against the goal with the numbers that decide it."""
    sd = f" ± {bar.model_sd:.3f}" if bar.model_sd is not None else ""
    p = f"p = {bar.p:.2g}" if bar.p is not None else "p undefined"
    head = "clears the bar" if bar.clears else "does not clear the bar"
    text = (
        f"{head}: J&F {bar.model_jf:.3f}{sd} ({bar.seeds} seeds) against the strongest baseline, "
        f"`{bar.baseline}` {bar.baseline_jf:.3f}, on {bar.sequences} sequences: {bar.lead:+.3f} "
        f"(goal +{bar.margin:.2f}), {bar.seeds_above} of {bar.seeds} seeds above it (goal: all), "
        f"{p} (goal < {bar.p_max:g})"
    )
    if bar.pck is not None and bar.pck_needed is not None:
        text += f"; PCK@0.1 {bar.pck:.3f} against the untrained encoders' mean + sd {bar.pck_needed:.3f}"
    return text


def _spread(values) -> dict[str, float | int | None]:
    """``{"mean", "sd", "seeds"}`` of the finite ``values`` (sample sd; None for fewer than two)."""
    import numpy as np

    v = np.asarray([float(x) for x in values], dtype=float)
    v = v[np.isfinite(v)]
    return {
        "mean": float(v.mean()) if len(v) else None,
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "seeds": int(len(v)),
    }


def recipe_summary(path: str | Path, cell: str, root: str | Path = "results") -> dict | None:
    """What a shipped model's card records of its recipe (``ever models``): the seeds of ``cell`` in the runs
    snapshot ``path`` at the end of training, as plain numbers: ``J&F-Mean`` and ``PCK@0.1`` (``mean``, sample
    ``sd`` over seeds, ``seeds``) on every scored sequence; ``deciding``: the same J&F on the shipped recipe's
    held-out sequences (:func:`ever.analysis.tables.held_out`) and ``bar``, the :func:`clear_bar` verdict
    against ``root``'s baselines (its fields, ``clears`` and :func:`bar_text`). None without the snapshot or
    the cell; no ``deciding`` without ``root``'s baselines."""
    from dataclasses import asdict

    from ever.analysis.scaling import cell_bar, model_scores
    from ever.analysis.sources import snapshot_info, summaries
    from ever.analysis.tables import held_out

    info = snapshot_info(path)
    if info is None:
        return None
    M = model_scores(path, cell, info["split"])
    if M.empty:
        return None
    S = summaries(path, info["split"], list(M.columns), baselines=False)
    out = {
        "snapshot": Path(path).as_posix(),
        "cell": cell,
        "runs": list(M.columns),
        "split": info["split"],
        "commit": info.get("commit"),
        "sequences": int(len(M.dropna())),
        "J&F-Mean": _spread(S["J&F-Mean"]),
        "PCK@0.1": _spread(S["PCK@0.1"]) if "PCK@0.1" in S else None,
    }
    bar = cell_bar(path, cell, info["split"], root)
    if bar is not None:
        out["deciding"] = {
            "sequences": held_out(root),
            "J&F-Mean": {"mean": bar.model_jf, "sd": bar.model_sd, "seeds": bar.seeds},
            "bar": {**asdict(bar), "clears": bar.clears, "text": bar_text(bar)},
        }
    return out
