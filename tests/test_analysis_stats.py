"""The rule every green verdict goes through: an effect with a two-level bootstrap interval, Holm's correction,
the four verdicts, and the minimal effect of interest a grid file declares."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ever.analysis import claims, stats, wording
from ever.grid import GridError, load_grid

ROOT = Path(__file__).resolve().parents[1]


def _cells(effect: float, sequences: int = 15, seeds=(3, 2), seq_sd: float = 0.1, seed_sd: float = 0.03, rng=0):
    """Sequences x seeds J&F of two cells whose true difference is ``effect`` (a shared sequence difficulty)."""
    r = np.random.default_rng(rng)
    hard = r.normal(0.5, seq_sd, (sequences, 1))
    return hard + effect + r.normal(0, seed_sd, (sequences, seeds[0])), hard + r.normal(
        0, seed_sd, (sequences, seeds[1])
    )


def test_the_bootstrap_interval_covers_a_known_effect_and_excludes_zero_when_it_is_large():
    A, B = _cells(0.10)
    e = stats.effect(A, B, "a", "b")
    assert e.low < 0.10 < e.high and e.low > 0  # covers the truth, excludes 0
    assert e.effect == pytest.approx((A.mean(axis=1) - B.mean(axis=1)).mean())
    assert (e.n_sequences, e.seeds_a, e.seeds_b, e.key) == (15, 3, 2, "a − b")
    assert stats.effect(A, B, "a", "b") == e  # seeded: the same files give the same interval
    assert stats.effect(A, B, seed=1) != stats.effect(A, B, seed=0)
    # Coverage over many synthetic grids: the truth lies in the 95 % interval about 95 % of the time.
    hits = [
        (lambda x: x.low <= 0.02 <= x.high)(stats.effect(*_cells(0.02, rng=k, seeds=(2, 2)), draws=2000))
        for k in range(40)
    ]
    assert sum(hits) >= 32
    # The seeds' spread widens it: the same sequence means with noisier seeds give a wider interval.
    wide = stats.effect(*_cells(0.10, seed_sd=0.2))
    assert wide.high - wide.low > e.high - e.low
    # A seed worse on every sequence (one trained model scored on all) widens the interval: the seeds are drawn
    # once per replicate, not again for every sequence, which would average it away and call 0.05 a clear loss.
    A, B = np.full((15, 3), 0.5), np.full((15, 2), 0.5)
    A[:, 2] = 0.35
    bad = stats.effect(A, B)
    assert bad.effect == pytest.approx(-0.05) and bad.low == pytest.approx(-0.15) and bad.high == pytest.approx(0)
    assert claims.verdict(bad, 0.03) == claims.UNDECIDED
    # Any number of seeds per cell (six against one), NaN sequences left out, nothing shared is an error.
    A6, B1 = _cells(0.0, seeds=(6, 1))
    A6[0, 2] = np.nan
    assert stats.effect(A6, B1).n_sequences == 14 and stats.effect(A6, B1).seeds_a == 6
    with pytest.raises(ValueError, match="share no scored sequence"):
        stats.effect(np.full((3, 2), np.nan), np.ones((3, 2)), "x", "y")


def test_identical_cells_give_an_interval_around_zero_and_no_effect_when_the_minimal_effect_is_wide():
    A, _ = _cells(0.0)
    e = stats.effect(A, A.copy())
    assert e.effect == 0 and e.low <= 0 <= e.high and e.high - e.low < 0.05 and e.p is None
    assert claims.verdict(e, 0.05) == claims.NO_EFFECT
    assert claims.verdict(e, None) == claims.UNDECIDED  # no minimal effect declared: no claim of no effect
    assert wording.effect_text(e, 0.05).startswith("no effect larger than 0.05 (")


def test_cell_effect_reads_the_seeds_of_each_cell_from_the_sequence_table():
    A, B = _cells(0.1, sequences=4)
    Q = pd.DataFrame(
        np.hstack([A, B, B[:, :1] - 0.2]),
        index=list("abcd"),
        columns=["x-s0", "x-s1", "x-s2", "y-s0", "y-s1", "baseline: lab"],
    )
    e = stats.cell_effect(Q, "x", "y")
    assert (e.seeds_a, e.seeds_b) == (3, 2)
    assert e == stats.effect(Q[["x-s0", "x-s1", "x-s2"]], Q[["y-s0", "y-s1"]], "x", "y")
    assert stats.cell_effect(Q, "x", "baseline: lab").seeds_b == 1
    assert stats.cell_effect(Q, "x", "missing") is None


def test_holm_on_known_p_values():
    # m = 4: 0.01 x 4 = 0.04; 0.02 x 3 = 0.06; 0.03 x 2 = 0.06; 0.5 x 1 = 0.5; None stays out of m
    assert stats.holm({"a": 0.03, "b": 0.01, "c": 0.5, "d": 0.02, "e": None}) == pytest.approx(
        {"a": 0.06, "b": 0.04, "c": 0.5, "d": 0.06, "e": None}
    )
    assert stats.holm({"a": 0.4, "b": 0.9}) == {"a": 0.8, "b": 0.9}  # monotone, capped at 1
    assert stats.holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}
    assert stats.holm({}) == {}


@pytest.mark.parametrize(
    "x, low, high, m, verdict, words",
    [
        (0.05, 0.02, 0.09, 0.03, claims.RAISES, "raises J&F by 0.050 [0.020, 0.090]"),
        (-0.05, -0.09, -0.02, 0.03, claims.LOWERS, "lowers J&F by 0.050 [0.020, 0.090]"),
        (0.005, -0.02, 0.025, 0.03, claims.NO_EFFECT, "no effect larger than 0.03 (+0.005 [-0.020, +0.025])"),
        (0.02, -0.02, 0.06, 0.03, claims.UNDECIDED, "undecided (+0.020 [-0.020, +0.060]; m = 0.03)"),
        (0.0, -0.02, 0.02, None, claims.UNDECIDED, "undecided (+0.000 [-0.020, +0.020]; no minimal effect declared)"),
    ],
)
def test_the_verdict_rule_has_four_branches(x, low, high, m, verdict, words):
    e = stats.Effect("a", "b", x, low, high, 0.2, 15, 2, 2)
    assert claims.verdict(e, m) == verdict
    assert wording.effect_text(e, m).startswith(words)
    assert wording.effect_text(e, m, 0.6).endswith("(p = 0.2, Holm 0.6)")


def test_the_grid_declares_its_minimal_effect_and_a_bad_one_is_one_line_naming_the_file(tmp_path):
    for name in ("report-green.yaml", "report-green-long.yaml"):
        assert load_grid(ROOT / "configs" / name).claims.min_effect == 0.03
    assert load_grid(ROOT / "configs" / "report.yaml").claims.min_effect is None  # default: none declared
    runs = "runs: [{name: a, config: configs/crw-patch-cpu.yaml}]\n"
    for bad, why in (
        ("1.5", "between 0 and 1"),
        ("-0.03", "between 0 and 1"),
        ("'small'", "min_effect"),
        ("0.03\n  typo: 1", "typo"),
    ):
        p = tmp_path / "g.yaml"
        p.write_text(runs + f"claims:\n  min_effect: {bad}\n")
        with pytest.raises(GridError, match=why) as err:
            load_grid(p)
        assert str(p) in str(err.value) and "\n" not in str(err.value)
    p.write_text(runs + "claims:\n  min_effect: 0.05\n")
    assert load_grid(p).claims.min_effect == 0.05


def test_the_committed_snapshots_read_the_minimal_effect_of_the_grid_that_made_them():
    from ever.analysis import sources

    assert sources.declared_min_effect(ROOT / "results" / "green-long") == 0.03
    assert sources.declared_min_effect(ROOT / "results" / "ship") is None  # its grid declares none
    assert sources.declared_min_effect(ROOT / "nowhere") is None


def test_the_gcn_share_counts_both_passes_where_the_ledger_counted_one(tmp_path):
    import json
    import shutil

    from ever.analysis import tables

    src = ROOT / "results" / "green-long" / "patchpool49-gcn-3k-s0"  # trained before the per-module count
    one_pass = json.loads((src / "ledger.json").read_text())["phases"]["train"]["totals"]["metrics"]["gcn_flop_share"]
    T = tables.runs_table(ROOT / "results" / "green-long", "train", ["patchpool49-gcn-3k-s0"])
    assert T["gcn_flop_share"].iloc[0] == pytest.approx(2 * one_pass)  # clip and home view: two passes a step
    assert tables.gcn_passes_uncounted(src, {"walk.home_shift": 0}) == 1  # no home view: one pass, counted
    run = tmp_path / "new"
    shutil.copytree(src, run)
    env = json.loads((run / "env.json").read_text())
    (run / "env.json").write_text(json.dumps({**env, "git_commit": None}))
    ledger = json.loads((run / "ledger.json").read_text())
    assert tables.gcn_passes_uncounted(run, {"walk.home_shift": 32}) == 2  # no commit: its date says before
    ledger["phases"]["train"]["segments"][0]["start"] = "2026-12-07T00:00:00+00:00"
    (run / "ledger.json").write_text(json.dumps(ledger))
    assert tables.gcn_passes_uncounted(run, {"walk.home_shift": 32}) == 1  # trained after: counted as run


def test_the_pooled_walk_is_judged_against_the_patch_crop_walks_accuracy_in_flops_and_seconds():
    from ever.analysis import sources, tables

    snap = ROOT / "results" / "green-long"
    info = sources.snapshot_info(snap)
    c = claims.crop_claim(snap, info["split"], sources.snapshot_runs(info))
    (w,) = c.pooled
    C = sources.curves(snap, info["split"], sources.snapshot_runs(info))
    first = C[(C["cell"] == "patchpool49-3k") & (C["step"] == 1000)].set_index("run")["J&F-Mean"]
    reach = list(first.index[first >= c.target])  # seeds there at step 1000 (none of them gets there later)
    assert w.cell == "patchpool49-3k" and (w.seeds, w.reached, w.at_first, w.first_step) == (
        len(first),
        len(reach),
        True,
        1000,
    )
    assert len(first) == sum(r.startswith("patchpool49-3k-s") for r in sources.snapshot_runs(info)) >= 5  # all scored
    assert [k for k, _ in w.steps] == [1000, 2000, 3000] and w.effect.key == "patchpool49-3k − patchcrop49-3k"
    assert w.flops_ratio == pytest.approx(c.reference_reach / w.reach)
    # CPU seconds to reach: each run's training CPU seconds per step (its ledger) at the step where it reaches it.
    T = tables.runs_table(snap, info["split"], reach).set_index("run")
    assert w.reach_cpu_seconds == pytest.approx(1000 * T["train_cpu_s_per_step"].mean())
    assert 1 < w.cpu_ratio < w.flops_ratio  # the FLOP saving is larger than the time saving (issue 34)


def test_the_gcn_cycle_judges_jf_by_the_same_rule_when_it_has_the_per_sequence_scores():
    from ever.analysis import sources, tables

    snap = ROOT / "results" / "green-long"
    names = sources.snapshot_runs(sources.snapshot_info(snap))
    A, Q = tables.ablation_table(snap, "train", names), sources.sequence_scores(snap, "train", names)
    (row,) = claims.gcn_cycle(A, "patchpool49-3k", Q, 0.03)
    e = stats.cell_effect(Q, "patchpool49-gcn-3k", "patchpool49-3k")
    assert row["interval_jf"] == (e.low, e.high) and row["jf"] == claims.verdict(e, 0.03) == "undecided"
    (old,) = claims.gcn_cycle(A, "patchpool49-3k")  # without them: the seeds' noise, as before
    assert old["jf"] == "within noise" and "interval_jf" not in old


def _components(rng, S, k, inter, res, seed_a, seed_b, effect=0.0):
    """Sequences x seeds of two cells drawn from J&F = 0.5 + sequence + seed + sequence x cell + residual."""
    seq = rng.normal(0, 0.1, S)[:, None]
    A = 0.5 + effect + seq + rng.normal(0, inter, S)[:, None] + rng.normal(0, seed_a, k)[None]
    A = A + rng.normal(0, res, (S, k))
    B = 0.5 + seq + rng.normal(0, seed_b, k)[None] + rng.normal(0, res, (S, k))
    return A, B


def test_power_recovers_known_variance_components():
    from ever.analysis.stats import power

    A, B = _components(np.random.default_rng(0), S=400, k=40, inter=0.06, res=0.03, seed_a=0.02, seed_b=0.01)
    pw = power(A, B)
    assert pw.sd_interaction == pytest.approx(0.06, rel=0.15)
    assert pw.sd_residual == pytest.approx(0.03, rel=0.05)
    assert pw.sd_seed_a == pytest.approx(0.02, rel=0.4) and pw.sd_seed_b == pytest.approx(0.01, abs=0.01)
    assert (pw.sequences, pw.seeds_a, pw.seeds_b) == (400, 40, 40)


def test_power_predicts_the_bootstrap_interval_and_what_would_resolve_an_effect():
    from ever.analysis.stats import effect, power

    rng = np.random.default_rng(1)
    A, B = _components(rng, S=15, k=6, inter=0.05, res=0.03, seed_a=0.015, seed_b=0.015)
    pw = power(A, B)
    e = effect(A, B, draws=2000)
    # the predicted half-width is the bootstrap's, to within the bootstrap's own small-sample bias
    assert pw.half_width(6) == pytest.approx((e.high - e.low) / 2, rel=0.35)
    # more seeds narrow the interval down to the sequences' floor, more sequences below it
    assert pw.half_width(2) > pw.half_width(6) > pw.half_width(1000)
    floor = 1.96 * pw.sd_interaction / 15**0.5
    assert pw.floor == pytest.approx(floor)
    assert pw.half_width(10_000) == pytest.approx(floor, rel=0.05)
    assert pw.seeds_needed(floor * 0.99) is None  # the sequences' spread alone exceeds it
    k = pw.seeds_needed(floor * 1.5)
    assert k is not None and pw.half_width(k) <= floor * 1.5 < pw.half_width(k - 1)
    seed_floor = 1.96 * ((pw.sd_seed_a**2 + pw.sd_seed_b**2) / 6) ** 0.5  # what no number of sequences removes
    target = max(seed_floor * 1.2, 0.5 * pw.half_width(6))
    s = pw.sequences_needed(target, seeds=6)
    assert s > 15 and pw.half_width(6, s) <= target < pw.half_width(6, s - 1)
    assert pw.sequences_needed(seed_floor * 0.99, seeds=6) is None


def test_power_needs_two_seeds_and_three_sequences():
    from ever.analysis.stats import power

    with pytest.raises(ValueError, match="2 seeds"):
        power(np.ones((5, 1)), np.ones((5, 2)))


def test_power_text_says_what_more_seeds_or_sequences_would_do():
    from ever.analysis.stats import Power, cell_power

    wide = Power(0.09, 0.045, 0.03, 0.0, 15, 2, 2)  # claim 2's components: the sequences set the floor
    text = wording.power_text(wide, 0.03)
    assert f"±{wide.half_width(6):.3f}" in text and f"below ±{wide.half_width(10**6):.3f}" in text
    assert f"about {wide.sequences_needed(0.03, 6)} sequences at 6 seeds would" in text
    narrow = Power(0.02, 0.03, 0.01, 0.01, 15, 3, 3)  # seeds set the interval: more seeds resolve m
    text = wording.power_text(narrow, 0.03)
    assert f"needs about {narrow.seeds_needed(0.03)} seeds a cell" in text and "cannot be resolved" not in text
    Q = pd.DataFrame({"a-s0": [0.5, 0.6, 0.4], "a-s1": [0.5, 0.6, 0.5], "b-s0": [0.4, 0.5, 0.4]})
    assert cell_power(Q, "a", "b") is None  # one seed of b: no seed variance to estimate
    Q["b-s1"] = [0.45, 0.5, 0.3]
    assert cell_power(Q, "a", "b").sequences == 3
