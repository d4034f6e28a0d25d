"""ever.analysis, the cost side of chapters 5 and 6: FLOPs first, time and estimated energy with the CPU and wall
seconds they are made from, units without e-notation, training metrics relative to chance. Run folders are
written here by hand."""

import json
import math

import pandas as pd
import pytest

from ever.analysis import display as view
from ever.analysis import plots, stats, tables, wording
from ever.config import config_from_dict
from ever.gcn import graph_size
from ever.runs import RunDir

CPU_METHOD = {
    "method": "estimate",
    "estimate": True,
    "how": "codecarbon cpu_load mode",
    "assumption": "power = TDP x (CPU time / wall time / logical cores)",
}
RAM_METHOD = {
    "method": "estimate",
    "estimate": True,
    "how": "codecarbon RAM power model",
    "assumption": "about 5 W per DIMM",
}


def _run(root, name, nodes=None, gcn=False, jf=0.5, train=None, evaluation=None, metrics=None):
    """A run folder: config, eval summary, optional metrics.jsonl and a ledger with train/eval totals."""
    rd = RunDir(root / name)
    rd.write_config(config_from_dict({"name": name, "nodes": nodes or {}, "gcn": {"enabled": gcn}}))
    rd.write_summary("val", {"J&F-Mean": jf})
    if metrics:
        rd.write_metrics(metrics)
    phases = {}
    for phase, tot in (("train", train), ("eval", evaluation)):
        if tot is not None:
            phases[phase] = {
                "segments": [
                    {"method": {"cpu": CPU_METHOD, "ram": RAM_METHOD, "gpu": {"method": "none", "estimate": False}}}
                ],
                "totals": {"estimated": ["cpu", "ram"], **tot},
            }
    if phases:
        rd.write_ledger({"phases": phases})
    return rd.path


def _train(seconds, cpu_seconds, flops_per_clip=5e9, clips=800, steps=100, kwh=0.002, peak=700 * 2**20):
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "steps": steps,
        "clips": clips,
        "flops": flops_per_clip * clips,
        "flops_per_clip": flops_per_clip,
        "kwh": kwh,
        "co2_kg": kwh * 0.056,
        "peak_mem_bytes": peak,
    }


def test_ablation_table_reports_loss_and_accuracy_relative_to_chance_over_the_last_logged_points(tmp_path):
    log = [
        {"step": s, "loss": loss, "acc": acc}
        for s, loss, acc in ((10, 3.0, 0.1), (20, 2.0, 0.2), (30, 1.0, 0.3), (40, 1.5, 0.5))
    ]
    patch = config_from_dict({})
    _run(tmp_path, "patch", metrics=log, train=_train(480.0, 485.0))
    _run(
        tmp_path,
        "obj8",
        nodes={"kind": "object", "segmenter": "felzenszwalb", "k": 8},
        metrics=log,
        train=_train(130.0, 260.0),
    )
    A = tables.ablation_table(tmp_path, "val", ["patch", "obj8"]).set_index("run")
    n = graph_size(patch)[1]
    # the mean of the last three logged points (steps 20-40), not the last batch alone
    assert A.loc["patch", "loss / ln N"] == pytest.approx((2.0 + 1.0 + 1.5) / 3 / math.log(n))
    assert A.loc["obj8", "loss / ln N"] == pytest.approx((2.0 + 1.0 + 1.5) / 3 / math.log(8))
    assert A.loc["obj8", "acc × N"] == pytest.approx((0.2 + 0.3 + 0.5) / 3 * 8)
    # time of a step on the machine: wall, CPU and how many cores that is
    assert A.loc["patch", "s/step"] == pytest.approx(4.8) and A.loc["patch", "CPU s/step"] == pytest.approx(4.85)
    assert A.loc["obj8", "cores busy"] == pytest.approx(2.0)
    assert A.loc["obj8", "peak MiB"] == pytest.approx(700.0)  # MiB, the unit of every chapter
    assert "kWh" not in A and "peak MB" not in A
    T = tables.training_tail(tmp_path, ["patch", "obj8"], last=2)
    assert T.loc["obj8", "first step"] == 30 and T.loc["obj8", "last step"] == 40 and T.loc["obj8", "points"] == 2
    assert T.loc["obj8", "N"] == 8 and T.loc["obj8", "acc × N"] == pytest.approx(0.4 * 8)
    assert tables.training_tail(tmp_path / "none").empty


def test_cost_table_puts_flops_first_and_shows_the_seconds_the_energy_is_made_from(tmp_path):
    _run(
        tmp_path,
        "a",
        jf=0.35,
        train=_train(480.0, 490.0, kwh=0.0019),
        evaluation={
            "seconds": 100.0,
            "cpu_seconds": 180.0,
            "kwh": 0.0005,
            "co2_kg": 0.0005 * 0.056,
            "peak_mem_bytes": 500 * 2**20,
        },
    )
    base = tmp_path / "baselines" / "copy"
    base.mkdir(parents=True)
    (base / "ledger.json").write_text(
        json.dumps(
            {
                "phases": {
                    "eval": {
                        "totals": {
                            "seconds": 20.0,
                            "cpu_seconds": 22.0,
                            "kwh": 7.8e-5,
                            "co2_kg": 4.4e-6,
                            "peak_mem_bytes": 600 * 2**20,
                        }
                    }
                }
            }
        )
    )
    T = tables.cost_table(tmp_path, ["a"])
    assert list(T.index) == ["a", "baseline: copy"]
    assert list(T.columns[:9]) == [
        "J&F",
        "GFLOPs",
        "GFLOPs/clip",
        "wall s",
        "CPU s",
        "cores busy",
        "Wh",
        "g CO2eq",
        "peak MiB",
    ]
    assert "J&F/kWh" not in T and "hours" not in T  # no ratio that ranks the cheapest baseline first
    a = T.loc["a"]
    assert a["GFLOPs"] == pytest.approx(4000.0) and a["GFLOPs/clip"] == pytest.approx(5.0)
    assert a["wall s"] == pytest.approx(580.0) and a["CPU s"] == pytest.approx(670.0)  # training + evaluation
    assert a["cores busy"] == pytest.approx(670.0 / 580.0)
    assert a["Wh"] == pytest.approx(2.4) and a["g CO2eq"] == pytest.approx(2.4e-3 * 56)
    assert a["peak MiB"] == pytest.approx(700.0)  # the largest peak of any phase
    assert T.loc["baseline: copy", "Wh"] == pytest.approx(0.078)
    assert pd.isna(T.loc["baseline: copy", "GFLOPs"])
    assert view.fixed(T.loc["baseline: copy", "g CO2eq"]) == "0.004"  # grams, fixed decimals: never 4.4e-06


def test_energy_method_lists_each_estimated_component_once_from_the_ledgers(tmp_path):
    _run(tmp_path, "a", train=_train(10.0, 10.0), evaluation={"seconds": 5.0, "kwh": 1e-4})
    _run(tmp_path, "b", train=_train(10.0, 20.0))
    lines = tables.energy_method(tmp_path, ["a", "b"])
    assert lines == [
        "cpu (estimate): codecarbon cpu_load mode. Assumption: power = TDP x (CPU time / wall time / logical cores)",
        "ram (estimate): codecarbon RAM power model. Assumption: about 5 W per DIMM",
    ]
    assert tables.energy_method(tmp_path / "none") == []


def test_kinetics_table_scales_flops_and_both_clocks_and_says_one_epoch(tmp_path):
    _run(tmp_path, "patch", train=_train(480.0, 480.0))
    _run(tmp_path, "obj", train=_train(120.0, 240.0))
    K, assumptions = tables.kinetics_table(tmp_path, ["patch", "obj"])
    scale = K.loc["obj", "clips"] / 800
    assert K.loc["obj", "PFLOPs"] == pytest.approx(5e9 * 800 * scale / 1e15) == pytest.approx(K.loc["patch", "PFLOPs"])
    assert K.loc["obj", "wall hours"] == pytest.approx(120 * scale / 3600)
    assert K.loc["obj", "CPU hours"] == pytest.approx(240 * scale / 3600)
    assert K.loc["obj", "cores busy"] == pytest.approx(2.0) and K.loc["patch", "cores busy"] == pytest.approx(1.0)
    assert K.loc["obj", "scaled from clips"] == 800
    assert any(a.endswith("1 epoch") for a in assumptions) and not any("epoch(s)" in a for a in assumptions)
    lc = stats.load_confound(K, "PFLOPs", "wall hours", "cores busy")
    assert lc["confounded"] and lc["wall_ratio"] == pytest.approx(4.0) and lc["flops_spread"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    "gflops, negligible, front",
    [
        ([4627.0, 4653.0, 4614.0, 4616.0], True, []),  # 0.85 % apart: one cost, no front
        ([1000.0, 4653.0, 500.0, 4616.0], False, ["c", "a"]),  # real differences: the front
    ],
)
def test_front_summary_draws_no_front_when_the_costs_are_the_same(gflops, negligible, front):
    pts = pd.DataFrame({"GFLOPs": gflops, "J&F": [0.354, 0.226, 0.229, 0.235]}, index=list("abcd"))
    fs = stats.front_summary(pts, "GFLOPs", "J&F")
    assert fs["negligible"] is negligible and fs["front"] == front and fs["best"] == "a"
    assert fs["spread"] == pytest.approx(max(gflops) / min(gflops) - 1)


def test_cost_spread_and_load_confound():
    assert stats.cost_spread([5.768, 5.817, None, float("nan")]) == pytest.approx(5.817 / 5.768 - 1)
    assert stats.cost_spread([5.0]) is None
    same = pd.DataFrame({"F": [5.0, 5.01], "wall": [100.0, 102.0], "cores": [1.9, 1.95]})
    assert not stats.load_confound(same, "F", "wall", "cores")["confounded"]
    slowed = same.assign(wall=[400.0, 102.0], cores=[1.0, 1.95])
    lc = stats.load_confound(slowed, "F", "wall", "cores")
    assert lc["confounded"] and lc["wall_ratio"] == pytest.approx(400 / 102) and lc["cores"] == (1.0, 1.95)
    cheaper = pd.DataFrame({"F": [5.0, 1.0], "wall": [400.0, 80.0], "cores": [1.9, 1.95]})
    assert not stats.load_confound(cheaper, "F", "wall", "cores")["confounded"]  # less work, less time: the method
    assert not stats.load_confound(cheaper, "F", "wall", "cores")["uncounted"]
    hidden = same.assign(wall=[130.0, 102.0])  # same FLOPs, same cores, 27 % slower: work the counter misses
    lc = stats.load_confound(hidden, "F", "wall", "cores")
    assert lc["uncounted"] and not lc["confounded"]
    assert wording.core_range((1.96, 2.01)) == "2.0" and wording.core_range((1.0, 1.95)) == "1.0 to 1.9"


@pytest.mark.parametrize(
    "value, shown",
    [(2.3592, "2.359"), (0.0044, "0.004"), (0.00044, "< 0.001"), (0.0, "0.000"), (None, "–"), (float("nan"), "–")],
)
def test_fixed_prints_small_quantities_without_e_notation(value, shown):
    assert view.fixed(value) == shown


@pytest.mark.parametrize(
    "value, shown", [(0.181, "0.18 %"), (0.00293, "0.0029 %"), (28.9, "29 %"), (100.0, "100 %"), (None, "–")]
)
def test_percent_keeps_small_shares_small(value, shown):
    assert view.percent(value) == shown


def test_walk_growth_reads_the_bench_settings_and_exponents_or_fits_the_fallback(tmp_path):
    rows = [{"nodes": n, "ms": 0.01 * n**1.5, "gflops": 1e-4 * n**2, "peak_mb": 300 + n} for n in (8, 16, 32, 64, 128)]
    (tmp_path / "walk.json").write_text(
        json.dumps({"walk": rows, "exponent_time": 1.275, "exponent_flops": 2.276, "B": 8, "T": 8, "D": 128})
    )
    g = tables.walk_growth(tmp_path / "walk.json")
    assert g == {
        "measured": True,
        "B": 8,
        "T": 8,
        "D": 128,
        "backward": True,
        "exponent_flops": 2.276,
        "exponent_time": 1.275,
        "time_from": 32,
    }
    (tmp_path / "old.json").write_text(json.dumps({"walk": rows}))  # a bench file without the fits
    g = tables.walk_growth(tmp_path / "old.json")
    assert g["exponent_flops"] == pytest.approx(2.0) and g["exponent_time"] == pytest.approx(1.5)
    g = tables.walk_growth(tmp_path / "none.json")  # chapter 1's count: one clip, forward only
    assert not g["measured"] and (g["B"], g["T"], g["D"], g["backward"]) == (1, 4, 64, False)
    assert g["exponent_time"] is None and 2.0 <= g["exponent_flops"] < 3.0


def test_label_points_spaces_stacked_labels_by_their_type_size():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, ax = plt.subplots()
    ax.set(xlim=(0, 8), ylim=(0, 1))  # the three points within 3 pt of each other: one cluster
    plots.label_points(ax, [5.77, 5.78, 5.78], [0.229, 0.226, 0.235], ["a", "b", "c"], fontsize=10)
    fig.canvas.draw()
    texts = {t.get_text(): t for t in ax.texts}
    y = sorted(Text.get_window_extent(t).extents[[1, 3]].mean() * 72 / fig.dpi for t in texts.values())
    plt.close(fig)
    assert [b - a for a, b in zip(y, y[1:])] == pytest.approx([13, 13], abs=0.5)  # one line of 10 pt type + 3 pt apart
    assert {t.get_fontsize() for t in texts.values()} == {10}
