"""The bar a trained model must clear: baselines as distributions and issue 33's goal (ever.analysis.bar)."""

import json

import numpy as np
import pandas as pd
import pytest

from ever.analysis.bar import bar_text, clear_bar, families, family, strongest, summary_scores

SEQS = [f"seq{i}" for i in range(10)]


def baselines(rng) -> pd.DataFrame:
    """Ten sequences x copy, lab, lab-dist and five untrained inits at two stages."""
    cols = {"copy": 0.25, "lab": 0.40, "lab-dist": 0.50}
    cols |= {f"random-s{s}-layer3": 0.20 + 0.05 * s for s in range(5)}  # s4 = 0.40
    cols |= {f"random-s{s}-layer4": 0.22 + 0.07 * s for s in range(5)}  # s4 = 0.50 + 0.00
    return pd.DataFrame({c: m + rng.normal(0, 0.01, len(SEQS)) for c, m in cols.items()}, index=SEQS)


def test_family_groups_initialisations_by_stage():
    assert family("random-s3-layer4") == "random layer4"
    assert family("random-s12-layer3") == "random layer3"
    assert family("lab-dist") == "lab-dist"


def test_families_are_distributions_with_their_best_member():
    B = baselines(np.random.default_rng(0))
    F = families(B)
    assert list(F.index) == ["copy", "lab", "lab-dist", "random layer3", "random layer4"]
    r3 = F.loc["random layer3"]
    assert r3["members"] == 5
    assert r3["best"] == "random-s4-layer3"
    assert r3["J&F"] == pytest.approx(B.filter(like="layer3").mean().mean())
    assert r3["sd"] == pytest.approx(B.filter(like="layer3").mean().std(ddof=1))
    assert r3["min"] < r3["J&F"] < r3["max"]
    assert np.isnan(F.loc["copy", "sd"])  # a family of one has no spread


def test_strongest_is_the_single_best_label_across_families():
    B = baselines(np.random.default_rng(1))
    label, score = strongest(B)
    assert label == B.mean().idxmax()
    assert label in ("lab-dist", "random-s4-layer4")
    assert score == pytest.approx(B[label].mean())


def model(rng, mean: float, seeds: int = 3, sd: float = 0.01) -> pd.DataFrame:
    return pd.DataFrame({f"s{s}": mean + rng.normal(0, sd, len(SEQS)) for s in range(seeds)}, index=SEQS)


def test_a_model_far_above_every_baseline_clears_the_bar():
    rng = np.random.default_rng(2)
    B, M = baselines(rng), model(rng, 0.65)
    bar = clear_bar(M, B)
    assert bar.jf_clears and bar.clears
    assert bar.seeds_above == bar.seeds == 3 and bar.sequences == 10
    assert bar.lead == pytest.approx(M.mean().mean() - B.mean().max())
    assert bar.p < 0.05
    assert "clears the bar" in bar_text(bar) and "does not" not in bar_text(bar)


def test_a_model_above_the_mean_baseline_but_not_the_luckiest_init_does_not_clear():
    rng = np.random.default_rng(3)
    B = baselines(rng)
    M = model(rng, 0.53)  # above lab-dist's 0.50 by less than the margin, and near the luckiest init
    bar = clear_bar(M, B)
    assert not bar.clears
    assert bar.lead < bar.margin
    assert "does not clear the bar" in bar_text(bar)


def test_one_seed_below_the_baseline_fails_the_bar_even_with_a_large_mean_lead():
    rng = np.random.default_rng(4)
    B = baselines(rng)
    M = model(rng, 0.70)
    M["s2"] = 0.45  # one seed below lab-dist
    bar = clear_bar(M, B)
    assert bar.lead >= bar.margin and bar.seeds_above == 2
    assert not bar.jf_clears


def test_pck_bar_is_the_untrained_encoders_mean_plus_spread():
    rng = np.random.default_rng(5)
    B = baselines(rng)
    pck = {c: 0.2 for c in B} | {f"random-s{s}-layer4": 0.10 + 0.02 * s for s in range(5)}
    layer4 = pd.Series([0.10 + 0.02 * s for s in range(5)])
    needed = max(0.2, layer4.mean() + layer4.std(ddof=1))  # layer3's inits all 0.2 (no spread), layer4's vary
    low = clear_bar(model(rng, 0.7), B, model_pck=[0.19, 0.2, 0.21], baseline_pck=pck)
    assert low.pck_needed == pytest.approx(needed)
    assert low.pck_clears is False and not low.clears  # J&F clears, PCK does not
    high = clear_bar(model(rng, 0.7), B, model_pck=[0.4, 0.41, 0.42], baseline_pck=pck)
    assert high.pck_clears and high.clears


def test_deciding_sequences_are_declared_and_a_missing_one_is_an_error():
    rng = np.random.default_rng(6)
    B, M = baselines(rng), model(rng, 0.7)
    bar = clear_bar(M, B, sequences=SEQS[:5])
    assert bar.sequences == 5
    with pytest.raises(ValueError, match="seq3"):
        clear_bar(M.drop(index="seq3"), B, sequences=SEQS)


def test_p_is_the_paired_t_test_of_the_seed_mean_against_the_strongest_baseline():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(7)
    B, M = baselines(rng), model(rng, 0.6, sd=0.05)
    bar = clear_bar(M, B)
    assert bar.p == pytest.approx(ttest_rel(M.mean(axis=1), B[bar.baseline]).pvalue, rel=1e-12)
    assert clear_bar(M, B, sequences=SEQS[:2]).p is None  # fewer than 3 sequences: no test
    flat = pd.DataFrame({"s0": B[bar.baseline] + 0.1}, index=SEQS)  # the same lead on every sequence
    assert clear_bar(flat, B).p is None


def test_summary_scores_reads_each_evaluation_of_a_snapshot(tmp_path):
    (tmp_path / "SNAPSHOT.json").write_text(json.dumps({"kind": "evaluations", "evaluations": ["lab", "copy"]}))
    for label, v in (("lab", 0.163), ("copy", None)):
        (tmp_path / label).mkdir()
        (tmp_path / label / "summary.json").write_text(json.dumps({"PCK@0.1": v}))
    assert summary_scores(tmp_path) == {"lab": 0.163, "copy": None}


def test_recipe_summary_is_the_seeds_of_a_committed_snapshot():
    """What a shipped card records of its recipe: the seeds' own summaries (mean, sample sd) and the bar on the
    held-out sequences, as the README's bar line computes it for the default's recipe; nothing for a cell the
    snapshot lacks."""
    from pathlib import Path

    from ever.analysis.bar import recipe_summary
    from ever.analysis.scaling import cell_bar
    from ever.analysis.tables import default_recipe, held_out, ship_bar

    root = Path(__file__).resolve().parents[1] / "results"
    r = recipe_summary(root / "ship", "ship-lr3e-4", root)
    runs = sorted((root / "ship").glob("ship-lr3e-4-s*/eval/train/summary.json"))
    jf = np.array([json.loads(p.read_text())["J&F-Mean"] for p in runs])
    assert r["runs"] == [p.parents[2].name for p in runs] and r["J&F-Mean"]["seeds"] == len(runs) == 3
    assert r["J&F-Mean"]["mean"] == pytest.approx(jf.mean()) and r["J&F-Mean"]["sd"] == pytest.approx(jf.std(ddof=1))
    bar = cell_bar(root / "ship", "ship-lr3e-4", "train", root)
    snap, (cell,) = default_recipe()  # the README's bar line is the default's recipe's
    assert recipe_summary(root / snap, cell, root)["deciding"]["bar"]["text"] == bar_text(ship_bar(root))
    assert r["deciding"]["sequences"] == held_out(root) and len(held_out(root)) == 10
    assert r["deciding"]["bar"]["lead"] == pytest.approx(bar.lead) and r["deciding"]["bar"]["clears"] is bar.clears
    assert r["deciding"]["J&F-Mean"]["mean"] == pytest.approx(bar.model_jf)
    assert r["deciding"]["bar"]["text"] == bar_text(bar)
    assert recipe_summary(root / "ship", "no-such-cell", root) is None
    assert recipe_summary(root / "no-such-snapshot", "ship-lr3e-4", root) is None
    no_baselines = recipe_summary(root / "ship", "ship-lr3e-4", root / "no-such-root")
    assert "deciding" not in no_baselines and no_baselines["J&F-Mean"] == r["J&F-Mean"]
