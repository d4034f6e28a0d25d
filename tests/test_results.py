"""ever.analysis: the tables and verdicts the book shows, computed from run folders written here by hand."""

import dataclasses
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel

from ever.analysis import claims, plots, readme, sources, stats, tables, wording
from ever.analysis import display as view
from ever.config import config_from_dict
from ever.gcn import graph_size
from ever.runs import RunDir, baseline_dir, run_config_flat


def _run(root, name, nodes=None, gcn=False, jf=0.5, flops_per_clip=None, per_seq=None, seed=0):
    """A run folder as `ever train` + `ever eval` leave it (config, summary, per-sequence scores, ledger)."""
    rd = RunDir(root / name)
    cfg = config_from_dict({"name": name, "seed": seed, "nodes": nodes or {}, "gcn": {"enabled": gcn}})
    rd.write_config(cfg)
    rd.write_summary("val", {"J&F-Mean": jf, "J-Mean": jf + 0.1, "F-Mean": jf - 0.1, "cfg": {}})
    rows = per_seq or {"s1": jf, "s2": jf}
    rd.write_per_sequence("val", {"sequence": list(rows), "J-Mean": list(rows.values()), "F-Mean": list(rows.values())})
    if flops_per_clip is not None:
        rd.write_ledger(
            {"phases": {"train": {"totals": {"flops_per_clip": flops_per_clip, "seconds": 20.0, "steps": 10}}}}
        )
    return cfg


def test_summaries_and_per_sequence_follow_the_grid_order_and_label_baselines(tmp_path):
    _run(tmp_path, "b", jf=0.3)
    _run(tmp_path, "a", jf=0.6, per_seq={"s1": 0.7, "s2": 0.5})
    base = tmp_path / "baselines" / "copy" / "eval" / "val"
    base.mkdir(parents=True)
    (base / "summary.json").write_text(json.dumps({"J&F-Mean": 0.2}))

    S = sources.summaries(tmp_path, "val", ["a", "b"])
    assert list(S["run"]) == ["a", "b", "baseline: copy"]
    assert list(S["kind"]) == ["model", "model", "baseline"]
    assert S.set_index("run").loc["a", "J&F-Mean"] == 0.6
    assert "cfg" not in S  # only scalar fields become columns

    P = sources.per_sequence(tmp_path, "val", ["a"])
    assert set(P["run"]) == {"a"}  # the copy baseline has no per-sequence file here
    assert P.set_index("sequence").loc["s1", "J-Mean"] == 0.7
    assert sources.summaries(tmp_path, "test").empty


def test_ablation_table_counts_nodes_and_cost_from_each_runs_own_files(tmp_path):
    patch = _run(tmp_path, "patch", jf=0.5, flops_per_clip=10e9)
    obj = _run(
        tmp_path,
        "obj8",
        nodes={"kind": "object", "segmenter": "felzenszwalb", "k": 8},
        gcn=True,
        jf=0.45,
        flops_per_clip=2e9,
    )
    A = tables.ablation_table(tmp_path, "val", ["patch", "obj8"]).set_index("run")
    assert A.loc["patch", "N/frame"] == graph_size(patch)[1] > 8  # the default patch grid
    assert A.loc["obj8", "N/frame"] == graph_size(obj)[1] == 8
    assert A.loc["obj8", "nodes"] == "object (felzenszwalb)" and bool(A.loc["obj8", "GCN"])
    assert A.loc["obj8", "GFLOPs/clip"] == pytest.approx(2.0)
    assert A.loc["patch", "s/step"] == pytest.approx(2.0)


def _table(obj_jf, obj_gflops):
    return pd.DataFrame(
        [
            {"run": "patch", "nodes": "patch_pool", "GCN": False, "J&F": 0.50, "GFLOPs/clip": 10.0},
            {"run": "obj", "nodes": "object (slic)", "GCN": False, "J&F": obj_jf, "GFLOPs/clip": obj_gflops},
        ]
    )


@pytest.mark.parametrize(
    "obj_jf, obj_gflops, holds",
    [
        (0.49, 1.5, True),  # within 0.02 J&F at 6.7x less compute
        (0.60, 1.5, True),  # more accurate and cheap
        (0.49, 3.0, False),  # equal accuracy, only 3.3x cheaper
        (0.40, 1.0, False),  # cheap, but 0.10 J&F below
    ],
)
def test_green_claim_needs_both_equal_accuracy_and_the_compute_factor(obj_jf, obj_gflops, holds):
    c = claims.green_claim(_table(obj_jf, obj_gflops))
    assert c["reference"] == "patch"
    assert c["holds"] is holds
    (row,) = c["rows"]
    assert row["compute ratio"] == pytest.approx(10.0 / obj_gflops)
    assert row["J&F gap"] == pytest.approx(obj_jf - 0.50)


def test_green_claim_says_why_when_there_is_nothing_to_compare():
    c = claims.green_claim(_table(0.4, 1.0), reference="missing")
    assert c["holds"] is None and "missing" in c["why"]


def test_varying_columns_name_what_an_ablation_changed_not_neutral_keys(tmp_path):
    _run(tmp_path, "a", nodes={"kind": "object", "segmenter": "slic", "k": 8})
    _run(tmp_path, "b", nodes={"kind": "object", "segmenter": "slic", "k": 16})
    T = tables.runs_table(tmp_path, "val")
    assert tables.varying_columns(T) == ["nodes.k"]  # `name` differs too, but is not an ablated field


@pytest.mark.parametrize(
    "value, shown",
    [
        (0, "0"),
        (7.0, "7"),
        (4630.0, "4,630"),
        (0.4361, "0.436"),
        (5.78, "5.780"),
        (23.456, "23.46"),
        (0.00031, "3.1e-04"),
        (float("nan"), "–"),
        (None, "–"),
        (True, "yes"),
        ({"a": 1}, '{"a": 1}'),
        ("x", "x"),
    ],
)
def test_table_cells_print_integers_as_integers_and_never_nan(value, shown):
    assert view.format_value(value) == shown


def test_table_scrolls_instead_of_cutting_wide_tables(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    view.table(pd.DataFrame({"seed": [0.0, 1.0], "J&F": [0.5, float("nan")]}, index=["a", "b"]), caption="c")
    html = shown[0].data
    assert "overflow-x:auto" in html and ">0<" in html and "0.0" not in html and "–" in html and "nan" not in html
    # Markdown code spans become HTML code in cells, index and caption (a table is HTML: backticks would show)
    shown.clear()
    view.table(pd.DataFrame({"run": ["`ship` < `lab`"]}, index=["`results/ship`"]), caption="from `results/ship`")
    html = shown[0].data
    assert "`" not in html and "<code>ship</code> &lt; <code>lab</code>" in html
    assert html.count("<code>results/ship</code>") == 2
    # a named index heads its column in the one header row: no second header row of empty cells
    shown.clear()
    df = pd.DataFrame({"J&F": [0.5]}, index=pd.Index(["a"], name="run"))
    view.table(df, caption="c")
    head = shown[0].data.split("<thead>")[1].split("</thead>")[0]
    assert head.count("<tr>") == 1 and ">run<" in head and ">J&F<" in head
    assert df.index.name == "run"  # the caller's frame is left as it was


def test_sequence_scores_average_objects_and_keep_the_grid_order(tmp_path):
    _run(tmp_path, "b", per_seq={"s1": 0.2, "s2": 0.4})
    _run(tmp_path, "a", per_seq={"s1": 0.6, "s2": 0.8})
    d = tmp_path / "a" / "eval" / "val" / "per_sequence.csv"
    pd.concat([pd.read_csv(d), pd.DataFrame({"sequence": ["s1"], "J-Mean": [0.0], "F-Mean": [0.0]})]).to_csv(
        d, index=False
    )
    Q = sources.sequence_scores(tmp_path, "val", ["b", "a"])
    assert list(Q.columns) == ["b", "a"] and list(Q.index) == ["s1", "s2"]
    assert Q.loc["s1", "a"] == pytest.approx(0.3)  # objects 0.6 and 0.0 of s1, each (J + F) / 2
    assert Q.loc["s2", "b"] == pytest.approx(0.4)
    assert sources.sequence_scores(tmp_path, "test").empty


def test_pareto_front_keeps_only_runs_nothing_beats_on_both_cost_and_score():
    pts = pd.DataFrame(
        {"kWh": [1.0, 2.0, 3.0, 2.5, 0.5], "J&F": [0.3, 0.5, 0.6, 0.4, None]},
        index=["a", "b", "c", "dominated", "no score"],
    )
    assert stats.pareto_front(pts, "kWh", "J&F") == ["a", "b", "c"]


def test_cost_table_reads_each_ledger_and_names_baselines(tmp_path):
    from ever.ledger import Ledger

    _run(tmp_path, "a")
    base = tmp_path / "baselines" / "lab"
    base.mkdir(parents=True)
    for d, phase in ((tmp_path / "a", "train"), (base, "eval")):
        with Ledger(d, phase=phase, country="FRA") as led:
            led.add(steps=1, clips=4)
    T = tables.cost_table(tmp_path, ["a"])
    assert list(T.index) == ["a", "baseline: lab"]
    assert (T["kWh"] >= 0).all()
    assert tables.cost_table(tmp_path / "none").empty


def test_walk_cost_reads_the_benchmark_or_counts_flops(tmp_path):
    B, measured = tables.walk_cost(tmp_path / "none.json")
    assert not measured and len(B) > 3
    assert (B["gflops"].diff().dropna() > 0).all()  # more nodes, more FLOPs
    (tmp_path / "walk.json").write_text(json.dumps({"walk": [{"nodes": 8, "ms": 1.0, "gflops": 0.1, "peak_mb": 5}]}))
    B, measured = tables.walk_cost(tmp_path / "walk.json")
    assert measured and B.loc[0, "ms"] == 1.0


def test_over_seeds_groups_seed_runs_into_cells_with_spread():
    S = pd.DataFrame({"run": ["w-s0", "w-s1", "w-s2", "baseline: lab"], "J&F-Mean": [0.4, 0.5, 0.6, 0.41]})
    T = stats.over_seeds(S)
    assert list(T.index) == ["w", "baseline: lab"]
    assert T.loc["w", "J&F-Mean mean"] == pytest.approx(0.5) and T.loc["w", "J&F-Mean sd"] == pytest.approx(0.1)
    assert T.loc["w", "J&F-Mean n"] == 3 and T.loc["baseline: lab", "J&F-Mean n"] == 1


def test_grid_rows_with_seeds_become_one_run_per_seed(tmp_path):
    import yaml

    from ever.grid import load_grid

    grid = tmp_path / "g.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "runs": [
                    {"name": "w", "config": "c.yaml", "set": ["train.steps=5"], "seeds": [0, 2]},
                    {"name": "x", "config": "c.yaml"},
                ]
            }
        )
    )
    g = load_grid(grid)
    assert [(r.name, r.set) for r in g.runs] == [
        ("w-s0", ["train.steps=5", "seed=0"]),
        ("w-s2", ["train.steps=5", "seed=2"]),
        ("x", []),
    ]


def test_findings_are_computed_from_the_runs_and_name_their_evidence(tmp_path):
    _run(tmp_path, "main", jf=0.40, per_seq={"s1": 0.80, "s2": 0.10, "s3": 0.30}, flops_per_clip=10.0e9)
    _run(tmp_path, "main-gcn", gcn=True, jf=0.30, per_seq={"s1": 0.6, "s2": 0.2, "s3": 0.1}, flops_per_clip=10.1e9)
    obj = {"kind": "object", "segmenter": "felzenszwalb", "k": 8}
    _run(tmp_path, "obj", nodes=obj, jf=0.25, flops_per_clip=9.9e9)
    _run(tmp_path, "obj-gcn", nodes=obj, gcn=True, jf=0.29, flops_per_clip=10.0e9)
    base = tmp_path / "baselines" / "copy" / "eval" / "val"
    base.mkdir(parents=True)
    (base / "summary.json").write_text(json.dumps({"J&F-Mean": 0.26, "num_sequences": 3}))
    pd.DataFrame({"sequence": ["s1", "s2", "s3"], "J-Mean": [0.2, 0.3, 0.28], "F-Mean": [0.2, 0.3, 0.28]}).to_csv(
        base / "per_sequence.csv", index=False
    )
    lead, others, gcn, objects, claim1 = wording.findings(tmp_path, "val", ["main", "main-gcn", "obj", "obj-gcn"])
    assert "`main` scores above the best baseline, but not clearly" in lead and "0.400 against 0.260 (+0.140)" in lead
    assert "ahead on 2 of 3" in lead and "+0.600 on `s1`" in lead and "mean lead is -0.090" in lead
    assert "one initialisation" not in lead  # only the random encoder is one draw of many
    assert (
        "`main-gcn` 0.300 (1 seed) scores above it, but not clearly" in others
        and "`obj` 0.250 (1 seed) does not beat it" in others
    )
    # each pair an effect with its interval (stats.effect, claims.verdict; no minimal effect declared here)
    assert "GCN (claim 2): `main-gcn` against `main` undecided (-0.100 [" in gcn
    assert "; no minimal effect declared) (p = " in gcn
    assert "mean of 3 per-sequence differences, 1 seed against 1" in gcn
    assert (
        "`obj-gcn` against `obj` raises J&F by 0.040 [0.040, 0.040], mean of 2 per-sequence differences" in gcn
    )  # per-sequence files alike
    # how far the walk without the GCN learned
    assert "Without it `main` ends at 0.400, `obj` ends at 0.250 (best baseline 0.260)" in gcn
    assert "1 of 2 object-node cells score more than 0.02 above copying the first mask" in objects
    assert "`obj` 0.250, `obj-gcn` 0.290." in objects
    # Pooled nodes: the object and patch cells cost the same FLOPs, so claim 1 cannot show here.
    assert "Claim 1 (object nodes at patch accuracy for ≥5x less compute) is not tested by this grid" in claim1
    assert "differ by at most 1.0 %" in claim1
    assert wording.findings(tmp_path, "test") == []
    (objects,) = [t for t in wording.findings(tmp_path, "val", ["main", "obj"]) if "object-node cells" in t]
    assert objects.endswith("`obj` 0.250: every one scores below it.")  # below copying the first mask (0.26)
    from ever.analysis.claims import ObjectCells

    untrained = ObjectCells("baseline: random", 0.406, (("o8", 0.288),), (), 0.02)
    # the grid's random baseline is one initialisation, never "the untrained encoder's" score
    assert "above this grid's untrained encoder** (`baseline: random`, one initialisation, 0.406): `o8` 0.288" in (
        wording._objects_line(untrained)
    )
    assert wording._objects_line(untrained).endswith("`o8` 0.288: every one scores below that initialisation.")


def test_findings_judge_the_gcn_against_the_grids_own_seed_spread_and_claim_one_where_it_can_show(tmp_path):
    obj = {"kind": "object", "segmenter": "felzenszwalb", "k": 8}
    for s in (0, 1):
        _run(tmp_path, f"p-s{s}", jf=0.40 + 0.02 * s, seed=s, flops_per_clip=10e9)  # sd 0.014 in both cells
        _run(tmp_path, f"p-gcn-s{s}", gcn=True, jf=0.50 + 0.02 * s, seed=s, flops_per_clip=10e9)
        _run(tmp_path, f"o-s{s}", nodes=obj, jf=0.40 + 0.02 * s, seed=s, flops_per_clip=1e9)  # 10x cheaper
    names = [f"{c}-s{s}" for c in ("p", "p-gcn", "o") for s in (0, 1)]
    text = wording.findings(tmp_path, "val", names)
    (gcn,) = [t for t in text if "GCN (claim 2)" in t]
    # seeds 0.40/0.42 against 0.50/0.52 on both sequences: the bootstrap's seed draws give 0.08 to 0.12
    assert (
        "`p-gcn` against `p` raises J&F by 0.100 [0.080, 0.120], mean of 2 per-sequence differences, 2 seeds against 2"
        in gcn
    )
    assert (
        text[-1] == "**Claim 1 (object nodes at patch accuracy for ≥5x less compute) holds on this grid** (chapter 5)."
    )
    study = claims.study(tmp_path, "val", names)
    assert wording.sentences(study) == text  # findings: the study's verdicts as data, then as sentences
    assert claims.verdict(study.gcn.pairs[0].effect, study.min_effect) == claims.RAISES
    assert (study.pooled.holds, study.pooled.testable) == (True, True)
    short = wording.in_short(None, {"Short grid": study, "Long grid": None})  # the first page: the verdicts, labelled
    assert short == [
        "Short grid: The GCN (claim 2): `p-gcn` against `p` raises J&F by 0.100 [0.080, 0.120], mean of 2 "
        "per-sequence differences, 2 seeds against 2",
        "Short grid: Claim 1 (object nodes at patch accuracy for ≥5x less compute) holds on this grid",
    ]
    assert all(f"**{h.split(': ', 1)[1]}**" in " ".join(text) for h in short)  # each is the opening of a finding

    # A GCN whose interval holds 0 is undecided (no minimal effect declared: no claim of no effect either).
    for s in (0, 1):
        _run(tmp_path / "flat", f"p-s{s}", jf=0.40 + 0.02 * s, seed=s)
        _run(tmp_path / "flat", f"p-gcn-s{s}", gcn=True, jf=0.41 + 0.02 * s, seed=s)
    (gcn,) = [t for t in wording.findings(tmp_path / "flat", "val", names[:4]) if "GCN (claim 2)" in t]
    assert gcn.startswith("**The GCN (claim 2): `p-gcn` against `p` undecided (+0.010 [-0.010, +0.030]; no minimal")


def test_training_curves_stack_every_runs_metrics_and_kinetics_skips_runs_without_ledger(tmp_path):
    _run(tmp_path, "a")
    _run(tmp_path, "b")
    (tmp_path / "a" / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 2.0, "acc": 0.1}\n{"step": 2, "loss": 1.5, "acc": 0.2}\n'
    )
    M = sources.training_curves(tmp_path)
    assert list(M["run"]) == ["a", "a"] and list(M["loss"]) == [2.0, 1.5]
    n = graph_size(config_from_dict({}))[1]  # the default patch grid: chance is 1/n, a uniform walk's loss ln n
    assert (M["N"] == n).all() and M["loss / ln N"].tolist() == pytest.approx([2.0 / np.log(n), 1.5 / np.log(n)])
    assert M["acc × N"].tolist() == pytest.approx([0.1 * n, 0.2 * n])
    assert sources.training_curves(tmp_path / "none").empty
    K, assumptions = tables.kinetics_table(tmp_path)
    assert K.empty and assumptions == []


def _copy_baseline(root, per_seq):
    rd = RunDir(baseline_dir(root, "copy"))
    rd.write_summary("val", {"J&F-Mean": 0.3, "num_sequences": len(per_seq)})
    rd.write_per_sequence(
        "val", {"sequence": list(per_seq), "J-Mean": list(per_seq.values()), "F-Mean": list(per_seq.values())}
    )


def test_findings_over_seeds_give_the_mean_the_spread_and_a_paired_test(tmp_path):
    for s, jf in enumerate((0.40, 0.50, 0.60)):
        _run(tmp_path, f"w-s{s}", jf=jf, seed=s, per_seq={"a": jf + 0.1, "b": jf, "c": jf - 0.1, "d": jf})
    _copy_baseline(tmp_path, {"a": 0.3, "b": 0.3, "c": 0.6, "d": 0.2})
    lead = wording.findings(tmp_path, "val", ["w-s0", "w-s1", "w-s2"])[0]
    assert stats.best_baseline(sources.summaries(tmp_path, "val", ["w-s0"])) == "baseline: copy"
    assert stats.best_baseline(sources.summaries(tmp_path, "val", ["w-s0"], baselines=False)) is None
    assert "The main cell `w` scores above the best baseline, but not clearly" in lead  # one sequence against it
    main = claims.study(tmp_path, "val", ["w-s0", "w-s1", "w-s2"]).main
    assert (main.outcome, main.above, main.seeds) == ("above, not clearly", 3, ("w-s0", "w-s1", "w-s2"))
    assert wording.in_short(claims.study(tmp_path, "val", ["w-s0", "w-s1", "w-s2"]), {}) == [
        "Shipped recipe: the main cell `w` scores above the best baseline, but not clearly"
    ]
    assert "J&F 0.500 (mean of 3 seeds)" in lead and "seeds 0.400, 0.500, 0.600 (sd 0.100), 3 of 3 above" in lead
    p = ttest_rel([0.6, 0.5, 0.4, 0.5], [0.3, 0.3, 0.6, 0.2]).pvalue  # over the seed means of each sequence
    assert "ahead on 3 of 4" in lead and "+0.300 on `a`" in lead and f"p = {p:.2g}, Holm {p:.2g})" in lead and p > 0.05
    Q = stats.cell_sequence_scores(sources.sequence_scores(tmp_path, "val", ["w-s0", "w-s1", "w-s2"]))
    assert list(Q.columns) == ["w", "baseline: copy"] and Q.loc["a", "w"] == pytest.approx(0.6)
    assert stats.cell_sequence_scores(
        sources.sequence_scores(tmp_path, "test", None)
    ).empty  # nothing scored: nothing to group
    c = stats.compare(Q, "w", "baseline: copy")
    assert (c["n"], c["ahead"], c["top"]) == (4, 3, "a") and c["lead"] == pytest.approx(0.15)
    assert c["lead_without_top"] == pytest.approx(0.1) and c["p"] == pytest.approx(p)
    H = stats.held_out_scores(Q, ["a", "b"])  # a choice made on a and b: c and d are held out
    assert list(H.columns) == ["tuning (2)", "held out (2)", "all (4)"] and list(H.index) == ["w", "baseline: copy"]
    assert H.loc["w"].tolist() == pytest.approx([0.55, 0.45, 0.5]) and H.loc[
        "baseline: copy", "held out (2)"
    ] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="need both kinds"):
        stats.held_out_scores(Q, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="not in the table: zz"):
        stats.held_out_scores(Q, ["a", "zz"])  # a typo must not shrink the tuning set silently
    assert (
        sources.eval_sequences(tmp_path, "val", "w-s0") == [] and sources.eval_sequences(tmp_path, "val", "none") == []
    )
    summary = tmp_path / "w-s0" / "eval" / "val" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "cfg": {"sequences": ["a", "b"]}}))
    assert sources.eval_sequences(tmp_path, "val", "w-s0") == ["a", "b"]  # a screen restricted to its tuning sequences
    T = tables.seed_table(tmp_path, "val", ["w-s0", "w-s1", "w-s2"])
    assert T.loc["w", "J&F-Mean"] == "0.500 ± 0.100" and T.loc["w", "seeds"] == 3
    assert T.loc["baseline: copy", "J&F-Mean"] == "0.300"  # one value: no spread shown
    assert T.loc["baseline: copy", "seeds"] == "–"  # deterministic: it has no seed

    # Every sequence ahead, every seed above: now it is a win.
    _copy_baseline(tmp_path / "clear", {"a": 0.3, "b": 0.3, "c": 0.25, "d": 0.2})
    for s, jf in enumerate((0.40, 0.50, 0.60)):
        _run(tmp_path / "clear", f"w-s{s}", jf=jf, seed=s, per_seq={"a": jf + 0.1, "b": jf, "c": jf - 0.05, "d": jf})
    assert (
        "**The main cell `w` beats the best baseline**"
        in wording.findings(tmp_path / "clear", "val", ["w-s0", "w-s1", "w-s2"])[0]
    )


def test_a_results_snapshot_keeps_the_small_files_and_reads_like_the_runs(tmp_path):
    from ever.report import snapshot

    runs = tmp_path / "runs"
    _run(runs, "main", jf=0.5, flops_per_clip=1e9, per_seq={"a": 0.6, "b": 0.4})
    _run(runs, "other", jf=0.2)
    _copy_baseline(runs, {"a": 0.3, "b": 0.3})
    (runs / "main" / "checkpoint.pt").write_bytes(b"weights")
    (runs / "main" / "env.json").write_text(
        json.dumps({"git_commit": "a" * 40, "git_changes": ["ever/walk.py", "configs/g.yaml"]})
    )
    (runs / "other" / "env.json").write_text(json.dumps({"git_commit": "a" * 40, "git_changes": ["ever/walk.py"]}))
    (runs / "main" / "eval" / "val" / "overlays").mkdir()
    (runs / "unlisted" / "eval" / "val").mkdir(parents=True)
    out = snapshot(
        runs,
        tmp_path / "results" / "study",
        "val",
        "ever report --grid g.yaml",
        ["main", "other"],
        title="A study",
        note="What it is.",
    )
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        "SNAPSHOT.json",
        "baselines/copy/eval/val/per_sequence.csv",
        "baselines/copy/eval/val/summary.json",
        "main/config.yaml",
        "main/env.json",
        "main/eval/val/per_sequence.csv",
        "main/eval/val/summary.json",
        "main/ledger.json",
        "other/config.yaml",
        "other/env.json",
        "other/eval/val/per_sequence.csv",
        "other/eval/val/summary.json",
    ]
    info = sources.snapshot_info(out)
    assert info["command"] == "ever report --grid g.yaml" and info["split"] == "val" and len(info["date"]) == 10
    assert sources.snapshot_runs(info) == ["main", "other"] and info["machine"]["cpu_count"] >= 1
    pd.testing.assert_frame_equal(
        sources.summaries(out, "val", ["main", "other"]), sources.summaries(runs, "val", ["main", "other"])
    )

    # A chapter reads this machine's runs when there are any, else the snapshot, and says which.
    assert sources.live_or_snapshot(runs, out, "val", ["main"]) == (runs, ["main"], None)
    src, names, seen = sources.live_or_snapshot(tmp_path / "none", out, "val", ["x"])
    assert (src, names, seen["title"]) == (out, ["main", "other"], "A study")
    assert sources.live_or_snapshot(tmp_path / "none", out, "test")[2] is None  # another split: not this study
    assert info["trained_at"] == ["a" * 40]  # the commit the runs recorded, beside the snapshot's own
    said = wording.provenance(out, "results/study")
    assert "`results/study`, made by `ever report --grid g.yaml`, runs trained at commit `aaaaaaa`" in said
    assert info["trained_changes"] == {"main": ["ever/walk.py"], "other": ["ever/walk.py"]}  # code its commit lacks
    assert said.endswith("; `main`, `other` were trained with uncommitted changes to `ever/walk.py`.")

    # The README's generated section: provenance, note, table and findings of every snapshot, spliced
    # between the markers without touching the rest.
    text = readme.readme_results(tmp_path / "results")
    assert text.startswith("**A study.** From the committed results snapshot `results/study`")
    assert "What it is." in text and "| main " in text and "`main` scores above the best baseline" in text
    page = f"# T\n\nbefore\n{readme.README_BEGIN}\nold numbers\n{readme.README_END}\nafter\n"
    new = readme.with_readme_results(page, text)
    assert readme.readme_section(new) == text and new.startswith("# T\n\nbefore\n") and new.endswith("\nafter\n")
    with pytest.raises(ValueError, match="markers"):
        readme.readme_section("# no markers")
    both = readme.with_readme_results(
        f"{new}{readme.REPRODUCE_BEGIN}\nold table\n{readme.REPRODUCE_END}\n", "| a |", "reproduce"
    )
    assert readme.readme_section(both, "reproduce") == "| a |" and readme.readme_section(both) == text
    with pytest.raises(ValueError, match="no generated reproduce section"):
        readme.readme_section(new, "reproduce")

    # A new snapshot of the same study replaces the old one whole: nothing of the old is left behind.
    (out / "stale.txt").write_text("from an older snapshot")
    shutil.rmtree(runs / "other")
    out = snapshot(runs, out, "val", "again", ["main"])
    assert not (out / "stale.txt").exists() and not (out / "other").exists() and (out / "main").is_dir()
    assert sources.snapshot_info(out)["command"] == "again" and not list(out.parent.glob("*.old")) + list(
        out.parent.glob("*.tmp")
    )


def label_boxes(fig, ax):
    """{label: (x0, y0, x1, y1) in points on the page} of the texts of ``ax`` (without their lines), drawn."""
    from matplotlib.text import Text

    fig.canvas.draw()
    return {t.get_text(): tuple(Text.get_window_extent(t).extents * 72 / fig.dpi) for t in ax.texts}


def test_label_points_stacks_the_labels_of_points_that_coincide():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.scatter([5.77, 5.78, 5.78, 1.0], [0.229, 0.226, 0.235, 0.5])
    plots.label_points(ax, [5.77, 5.78, 5.78, 1.0], [0.229, 0.226, 0.235, 0.5], ["a", "b", "c", "far"])
    box = label_boxes(fig, ax)
    lines = {t.get_text(): t.arrow_patch is not None for t in ax.texts}
    offsets = {t.get_text(): t.xyann[1] for t in ax.texts}
    plt.close(fig)
    y = sorted((box[k][1] + box[k][3]) / 2 for k in "abc")
    assert [b - a for a, b in zip(y, y[1:])] == pytest.approx([11, 11], abs=0.5)  # one line of 8 pt type + 3 pt apart
    assert all(box[k][3] - box[k][1] < 11 for k in "abc")  # so they do not overlap
    assert [k for k in sorted("abc", key=lambda k: box[k][1])] == ["b", "a", "c"]  # in the order of their points
    assert lines == {"a": True, "b": True, "c": True, "far": False}  # stacked labels point at their dots
    assert offsets["far"] == 0


def test_evaluation_legend_names_rows_columns_and_compared_labels_from_the_summaries(tmp_path):
    snap = tmp_path / "protocol"
    for label, method, stage, context, resize in (
        ("lab--old", "lab", None, "first_once", "area"),
        ("crw-w16-real-layer3--new", "crw-w16-real", None, "reference", "bilinear"),
        ("run--new", "runs/a/checkpoint.pt", "layer4", "reference", "bilinear"),
        ("random--x", "random", None, "other", "bilinear"),
    ):
        (snap / label).mkdir(parents=True)
        (snap / label / "summary.json").write_text(
            json.dumps({"method": method, "eval_stage": stage, "cfg": {"context": context, "label_resize": resize}})
        )
    (snap / "SNAPSHOT.json").write_text(
        json.dumps(
            {
                "kind": "evaluations",
                "evaluations": sorted(p.name for p in snap.iterdir()),
                "compare": [["run--new", "lab--old"]],
            }
        )
    )
    columns, lines = wording.evaluation_legend(snap)
    assert set(columns) == set(sources.evaluation_table(snap).columns)  # it renames every column of the table
    assert columns["first_once context, area labels"] == "frame 0 once (EVER's earlier); labels area-averaged"
    assert (
        columns["other context, bilinear labels"] == "context: other; labels resized bilinearly"
    )  # unknown: as recorded
    assert lines == [
        "`crw-w16-real-layer3`: the shipped model `crw-w16-real`, features of layer3",
        "`lab`: raw Lab colour of 8x8 blocks, no learned features",
        "`random`: the same encoder with random weights, no training",
        "`run`: the trained checkpoint `runs/a/checkpoint.pt`, features of layer4",
        "`lab--old`: `lab` with frame 0 once (EVER's earlier), labels area-averaged",
        "`run--new`: `run` with frame 0 padded in front (reference), labels resized bilinearly",
    ]


def test_a_snapshot_of_bare_evaluations_reads_as_methods_by_protocol(tmp_path):
    from ever.report import ReportError, snapshot_evaluations

    evals = {}
    for label, context, resize, jf in (
        ("lab--old", "first_once", "area", 0.3),
        ("lab--new", "reference", "bilinear", 0.4),
        ("crw--new", "reference", "bilinear", 0.5),
    ):
        d = tmp_path / "ev" / label
        d.mkdir(parents=True)
        (d / "summary.json").write_text(
            json.dumps({"J&F-Mean": jf, "cfg": {"context": context, "label_resize": resize}})
        )
        (d / "per_sequence.csv").write_text(
            "sequence,object,J-Mean,F-Mean\n"
            + "".join(f"s{i},1,{jf + d_:.2f},{jf + d_:.2f}\n" for i, d_ in enumerate((0.0, 0.1, -0.05, 0.03)))
        )
        (d / "sequences").mkdir()  # per-sequence state of an evaluation: not part of a snapshot
        evals[label] = d
    with pytest.raises(ReportError, match="must name two of the evaluations"):
        snapshot_evaluations(evals, tmp_path / "results" / "protocol", "ever eval ...", compare=[("crw--new", "x")])
    out = snapshot_evaluations(
        evals, tmp_path / "results" / "protocol", "ever eval ...", title="Protocols", compare=[("crw--new", "lab--new")]
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "SNAPSHOT.json",
        "crw--new",
        "crw--new/per_sequence.csv",
        "crw--new/summary.json",
        "lab--new",
        "lab--new/per_sequence.csv",
        "lab--new/summary.json",
        "lab--old",
        "lab--old/per_sequence.csv",
        "lab--old/summary.json",
    ]
    Q = sources.evaluation_sequences(out)
    assert list(Q.columns) == list(evals) and Q.loc["s1", "crw--new"] == pytest.approx(0.6)
    (line,) = wording.evaluation_comparisons(out)  # every sequence +0.1: ahead on 4 of 4, no spread -> no p
    assert "J&F 0.520 against 0.420 (+0.100) on 4 sequences, ahead on 4 of 4" in line and "p =" not in line
    T = sources.evaluation_table(out)
    assert list(T.index) == ["lab", "crw"]
    assert list(T.columns) == ["first_once context, area labels", "reference context, bilinear labels"]
    assert (
        T.loc["lab", "first_once context, area labels"] == 0.3
        and T.loc["crw", "reference context, bilinear labels"] == 0.5
    )
    assert np.isnan(T.loc["crw", "first_once context, area labels"])
    assert sources.live_or_snapshot(tmp_path / "none", out, "val")[2] is None  # not a study of runs
    assert "| lab " in readme.readme_results(tmp_path / "results")
    with pytest.raises(ReportError, match="no evaluation to snapshot"):
        snapshot_evaluations({}, tmp_path / "results" / "none", "ever eval ...")


def test_ever_report_snapshot_copies_the_grids_results_after_the_run(tmp_path, monkeypatch):
    import argparse

    import yaml

    from ever import report

    monkeypatch.chdir(tmp_path)
    (tmp_path / "g.yaml").write_text(
        yaml.safe_dump({"paths": {"runs": "r"}, "split": "val", "runs": [{"name": "main", "config": "c.yaml"}]})
    )
    _run(tmp_path / "r", "main", jf=0.5)
    ran = []
    monkeypatch.setattr(report, "report", lambda grid, device=None, jobs=1, only=(): ran.append(grid))
    args = argparse.Namespace(grid=str(tmp_path / "g.yaml"), device=None, snapshot="results/study")
    assert report.cli(args) == 0 and ran == [str(tmp_path / "g.yaml")]
    info = sources.snapshot_info(tmp_path / "results" / "study")
    assert info["command"] == "ever report --grid g.yaml" and info["runs"] == ["main"]  # relative, as typed here
    assert info["title"] == "`g.yaml` on `ever-synth` (split `val`)" and info["note"] == ""
    # a grid names its snapshot and says what its runs are: the README and the book show both
    (tmp_path / "g.yaml").write_text(
        yaml.safe_dump(
            {
                "paths": {"runs": "r"},
                "split": "val",
                "title": "A study",
                "note": "What ran.",
                "runs": [{"name": "main", "config": "c.yaml"}],
            }
        )
    )
    assert report.cli(args) == 0
    info = sources.snapshot_info(tmp_path / "results" / "study")
    assert (info["title"], info["note"]) == ("A study", "What ran.")


def test_compute_to_reach_interpolates_the_first_crossing_and_cells_keep_their_misses(tmp_path):
    c = pd.DataFrame({"train_gflops": [100.0, 200.0, 300.0], "J&F-Mean": [0.2, 0.4, 0.35]})
    assert stats.compute_to_reach(c, 0.3) == pytest.approx(150.0)  # halfway from 0.2 to 0.4
    assert stats.compute_to_reach(c, 0.1) == 100.0  # already there at the first point: an upper bound
    assert stats.compute_to_reach(c, 0.5) is None
    assert stats.compute_to_reach(c.iloc[::-1], 0.3) == pytest.approx(150.0)  # rows in any order

    for name, scores in (("a-s0", [0.2, 0.4]), ("a-s1", [0.3, 0.5]), ("b-s0", [0.1, 0.2]), ("b-s1", [0.2, 0.45])):
        _run(tmp_path, name)
        pd.DataFrame({"step": [1, 2], "train_gflops": [10.0, 20.0], "J&F-Mean": scores}).to_csv(
            tmp_path / name / "curve.csv", index=False
        )
    C = sources.curves(tmp_path, "val")
    assert set(C["cell"]) == {"a", "b"} and len(C) == 8
    T = stats.reach_table(C, 0.4)
    assert T.loc["a", "reached"] == 2 and T.loc["a", "train_gflops to reach"] == pytest.approx(17.5)  # 20 and 15
    assert T.loc["a", "sd"] == pytest.approx(np.std([20.0, 10.0 + 10 * 0.5], ddof=1))
    assert (T.loc["b", "runs"], T.loc["b", "reached"]) == (2, 1) and T.loc[
        "b", "train_gflops to reach"
    ] == pytest.approx(18.0)


def test_study_source_reads_the_grids_local_runs_else_the_committed_snapshot(tmp_path, monkeypatch):
    import yaml

    from ever.report import snapshot

    monkeypatch.chdir(tmp_path)
    _run(tmp_path / "made", "main", jf=0.5)
    snap = snapshot(tmp_path / "made", tmp_path / "results" / "study", "val", "ever report ...", ["main"])
    grid = tmp_path / "g.yaml"
    grid.write_text(
        yaml.safe_dump({"paths": {"runs": "r"}, "split": "val", "runs": [{"name": "main", "config": "c.yaml"}]})
    )
    assert sources.study_source(tmp_path / "none.yaml", snap)[:3] == (
        snap,
        ["main"],
        "val",
    )  # no grid: the snapshot's split
    src, names, split, info = sources.study_source(grid, snap)  # a grid, not run here: the snapshot
    assert (src, names, split, info["command"]) == (snap, ["main"], "val", "ever report ...")
    _run(tmp_path / "r", "main", jf=0.7)  # the grid has run here: its own runs, and no snapshot info
    src, names, split, info = sources.study_source(grid, snap)
    assert (src.resolve(), names, split, info) == (tmp_path / "r", ["main"], "val", None)
    assert sources.study_source(tmp_path / "none.yaml", tmp_path / "results" / "absent")[2:] == ("", None)


def _crop_run(root, name, kind, seed, gflops, scores):
    """A run of the green grid: its config's node kind, its ledger's FLOPs per clip (patch crops 10x the
    object crops') and its curve (J&F at cumulative training GFLOPs)."""
    nodes = {"kind": kind} if kind == "patch_crop" else {"kind": kind, "segmenter": "felzenszwalb", "k": 8}
    _run(root, name, nodes=nodes, jf=scores[-1], seed=seed, flops_per_clip=10e9 if kind == "patch_crop" else 1e9)
    pd.DataFrame({"step": range(1, len(scores) + 1), "train_gflops": gflops, "J&F-Mean": scores}).to_csv(
        root / name / "curve.csv", index=False
    )


def test_crop_claim_is_the_compute_to_reach_patch_level_accuracy_over_seeds(tmp_path):
    def cross(x0, x1, y0, y1, t):  # where the segment from (x0, y0) to (x1, y1) reaches t
        return x0 + (t - y0) * (x1 - x0) / (y1 - y0)

    # Patch crops: both seeds end at 0.50, so patch-level accuracy is 0.48 (within 0.02), reached at 280 GFLOPs.
    for s in (0, 1):
        _crop_run(tmp_path, f"pc-s{s}", "patch_crop", s, [100.0, 200.0, 300.0], [0.3, 0.4, 0.5])
    # Object crops, 10x cheaper per clip, reach 0.48 at 26 and 18 GFLOPs.
    _crop_run(tmp_path, "oc-s0", "object_crop", 0, [10.0, 20.0, 30.0], [0.3, 0.45, 0.5])
    _crop_run(tmp_path, "oc-s1", "object_crop", 1, [10.0, 20.0, 30.0], [0.4, 0.5, 0.52])
    names = ["pc-s0", "pc-s1", "oc-s0", "oc-s1"]
    ref, o0, o1 = cross(200, 300, 0.4, 0.5, 0.48), cross(20, 30, 0.45, 0.5, 0.48), cross(10, 20, 0.4, 0.5, 0.48)
    c = claims.crop_claim(tmp_path, "val", names)
    assert c.reference == "pc" and c.reference_final == pytest.approx(0.5) and c.target == pytest.approx(0.48)
    assert c.reference_reached == 2 and c.reference_reach == pytest.approx(ref) == pytest.approx(280.0)
    (row,) = c.rows
    assert row.cell == "oc" and row.reached == 2 and row.reach == pytest.approx((o0 + o1) / 2)
    assert (
        row.ratio == pytest.approx(ref / ((o0 + o1) / 2)) and row.ratio_low == pytest.approx(ref / o0) and ref / o0 > 5
    )
    assert row.gap == pytest.approx(0.01) and row.equal and c.holds and c.clear
    assert row.clip_ratio == pytest.approx(10.0)
    line = wording.findings(tmp_path, "val", names)[-1]
    assert line.startswith("**Claim 1 (object nodes at patch accuracy for ≥5x less compute) holds beyond the spread")
    assert (
        "Patch-level accuracy is J&F ≥ 0.480 (`pc` ends at 0.500 ± 0.000 over 2 seeds, less 0.02), reached by 2 of "
        "its 2 seeds after 280 training GFLOPs;"
    ) in line
    # the effect with its interval (seeds 0.50 and 0.52 against 0.50 and 0.50: 0 to +0.02), then compute to reach
    assert (
        "`oc` against `pc` undecided (+0.010 [+0.000, +0.020]; no minimal effect declared), mean of 2 per-sequence "
        "differences, 2 seeds against 2, at 10.0x fewer training FLOPs per clip**"
    ) in line
    assert f"`oc`: 2 of 2 seeds, {ref / ((o0 + o1) / 2):.1f}x less compute (slowest of its seeds" in line
    assert "all at their first evaluation" not in line  # the patch seeds crossed it between evaluations
    assert wording.findings(tmp_path, "val", names, c)[-1] == line  # a claim the caller already has is the one read ...
    assert (
        "`pc-given`" in wording.findings(tmp_path, "val", names, dataclasses.replace(c, reference="pc-given"))[-1]
    )  # ... not recomputed

    # One object seed never gets there: no ratio, the claim does not hold however cheap the other seeds are.
    _crop_run(tmp_path, "oc-s2", "object_crop", 2, [10.0, 20.0, 30.0], [0.2, 0.3, 0.35])
    c = claims.crop_claim(tmp_path, "val", names + ["oc-s2"])
    (row,) = c.rows
    assert (row.reached, row.seeds, row.ratio) == (2, 3, None)
    assert row.ratio_reached == pytest.approx(ref / ((o0 + o1) / 2))  # over the two seeds that reach it
    # ... but its cell ends 0.043 below the patch walk, within the noise of its scattered seeds: not decided.
    assert row.gap == pytest.approx(-0.0433, abs=1e-3) and not row.beyond_noise
    assert (c.holds, c.undecided) == (None, "noise")
    line = wording.crop_claim_line(c)
    assert "is not decided by this grid: `oc` against `pc` undecided (-0.043 [" in line
    assert f"`oc`: 2 of 3 seeds, {ref / ((o0 + o1) / 2):.1f}x less counting those" in line
    # The same with one seed per cell: no measure of the noise, no verdict either way.
    c1 = claims.crop_claim(tmp_path, "val", ["pc-s0", "oc-s2"])
    assert c1.rows[0].noise is None and (c1.holds, c1.undecided) == (None, "noise")
    assert "(one seed: not judged)" in wording.crop_claim_line(c1)

    # Cheap enough on the mean, but a slow seed puts the floor under 5x: holds, not beyond the spread.
    shutil.rmtree(tmp_path / "oc-s2")
    (tmp_path / "oc-s1" / "curve.csv").write_text("step,train_gflops,J&F-Mean\n1,40.0,0.3\n2,80.0,0.5\n3,120.0,0.52\n")
    o1 = cross(40, 80, 0.3, 0.5, 0.48)
    c = claims.crop_claim(tmp_path, "val", names)
    (row,) = c.rows
    assert row.ratio == pytest.approx(ref / ((o0 + o1) / 2)) and ref / ((o0 + o1) / 2) >= 5
    assert row.ratio_low == pytest.approx(ref / o1) and ref / o1 < 5
    assert c.holds and not c.clear and "holds on the mean, not beyond the spread" in wording.crop_claim_line(c)

    # Reaches 0.48 early but ends more than 0.02 below the patch walk: not equal accuracy, does not hold.
    for s in (0, 1):
        (tmp_path / f"oc-s{s}" / "curve.csv").write_text(
            "step,train_gflops,J&F-Mean\n1,10.0,0.3\n2,20.0,0.49\n3,30.0,0.47\n"
        )
        (tmp_path / f"oc-s{s}" / "eval" / "val" / "per_sequence.csv").write_text(
            "sequence,J-Mean,F-Mean\ns1,0.47,0.47\ns2,0.47,0.47\n"  # the same final score per sequence
        )
    c = claims.crop_claim(tmp_path, "val", names)
    (row,) = c.rows
    assert row.reached == 2 and row.ratio > 5 and row.gap == pytest.approx(-0.03) and not row.equal
    assert row.noise == pytest.approx(0.0) and row.beyond_noise  # every seed alike: any gap is beyond it
    assert stats.noise(0.01, float("nan"), None) == pytest.approx(0.02) and stats.noise(0.01, 0.03) == pytest.approx(
        0.04
    )
    assert stats.noise(None, float("nan")) is None
    assert c.holds is False and c.undecided is None
    assert (
        "does not hold in this grid: `oc` against `pc` lowers J&F by 0.030 [0.030, 0.030]" in wording.crop_claim_line(c)
    )
    # A one-seed object cell (a diagnostic) is shown but does not decide, even at patch level and far cheaper.
    _crop_run(tmp_path, "od-s0", "object_crop", 0, [1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    c = claims.crop_claim(tmp_path, "val", names + ["od-s0"])
    assert [r.cell for r in c.rows] == ["oc", "od"] and c.rows[1].equal and c.rows[1].ratio > 5
    assert c.holds is False and "`od` against `pc` " in wording.crop_claim_line(c)
    assert "(one seed: not judged)" in wording.crop_claim_line(c)
    c = claims.crop_claim(tmp_path, "val", ["pc-s0", "pc-s1", "od-s0"])
    assert (c.holds, c.undecided) == (None, "noise")
    assert "no object cell has two seeds, so none enters the verdict" in wording.crop_claim_line(c)
    shutil.rmtree(tmp_path / "od-s0")
    assert claims.crop_claim(tmp_path, "val", ["pc-s0", "pc-s1"]) is None  # nothing to compare with

    # A baseline above the patch-crop walk: object cells short of it beyond the noise still refute the claim
    # (equal accuracy to the patch walk, whatever it is worth), and the line says what the reference is worth ...
    base = tmp_path / "baselines" / "copy" / "eval" / "val"
    base.mkdir(parents=True)
    (base / "summary.json").write_text(json.dumps({"J&F-Mean": 0.55}))
    c = claims.crop_claim(tmp_path, "val", names)
    assert (c.baseline, c.learned, c.holds, c.clear, c.undecided) == ("baseline: copy", False, False, False, None)
    line = wording.crop_claim_line(c)
    assert "does not hold in this grid: `oc` against `pc` lowers J&F by 0.030 [0.030, 0.030]" in line
    assert "the patch walk itself is not shown to end above the best baseline (`baseline: copy`, 0.550)" in line
    # ... but object cells at the patch walk's accuracy do not confirm it: matching a walk that has not learned
    # says nothing, so the claim is not decided.
    for s in (0, 1):
        (tmp_path / f"oc-s{s}" / "curve.csv").write_text(
            "step,train_gflops,J&F-Mean\n1,10.0,0.3\n2,20.0,0.49\n3,30.0,0.5\n"
        )
        (tmp_path / f"oc-s{s}" / "eval" / "val" / "per_sequence.csv").write_text(
            "sequence,J-Mean,F-Mean\ns1,0.5,0.5\ns2,0.5,0.5\n"
        )
    c = claims.crop_claim(tmp_path, "val", names)
    assert c.rows[0].equal and c.rows[0].ratio > 5
    assert (c.baseline, c.learned, c.holds, c.clear, c.undecided) == ("baseline: copy", False, None, False, "baseline")
    line = wording.crop_claim_line(c)
    assert "less compute) is not decided by this grid:" in line
    assert "the patch walk is not shown to end above the best baseline (`baseline: copy`, 0.550)" in line
    # Above the baseline on the mean, but by less than the noise of the patch walk's own seeds: not decided either.
    (tmp_path / "pc-s1" / "curve.csv").write_text("step,train_gflops,J&F-Mean\n1,100.0,0.3\n2,200.0,0.4\n3,300.0,0.7\n")
    c = claims.crop_claim(tmp_path, "val", names)  # patch seeds 0.5 and 0.7: mean 0.60, noise 2 x 0.141 against 0.55
    assert c.reference_final == pytest.approx(0.6) and (c.learned, c.holds, c.undecided) == (False, None, "baseline")
    assert "the patch walk is not shown to end above the best baseline (`baseline: copy`, 0.550)" in (
        wording.crop_claim_line(c)
    )
    (base / "summary.json").write_text(json.dumps({"J&F-Mean": 0.3}))  # a lead beyond that noise: the claim is judged
    assert claims.crop_claim(tmp_path, "val", names).learned

    # Sequence by sequence: the patch walk against the baseline, and each object cell against the patch walk.
    def seqs(folder, scores):
        pd.DataFrame({"sequence": list("abcd"), "J-Mean": scores, "F-Mean": scores}).to_csv(
            folder / "per_sequence.csv", index=False
        )

    for s, jf in ((0, [0.6, 0.5, 0.4, 0.7]), (1, [0.8, 0.5, 0.6, 0.7])):
        seqs(tmp_path / f"pc-s{s}" / "eval" / "val", jf)
        seqs(tmp_path / f"oc-s{s}" / "eval" / "val", [0.3, 0.2, 0.6, 0.1])
    seqs(base, [0.2, 0.6, 0.3, 0.4])
    c = claims.crop_claim(tmp_path, "val", names)
    vb, (row,) = c.reference_vs_baseline, c.rows
    p = ttest_rel([0.7, 0.5, 0.5, 0.7], [0.2, 0.6, 0.3, 0.4]).pvalue
    assert (vb["n"], vb["ahead"]) == (4, 3) and vb["p"] == pytest.approx(p) and p > 0.05
    assert (row.vs_reference["ahead"], row.vs_reference["p"]) == (
        1,
        pytest.approx(ttest_rel([0.3, 0.2, 0.6, 0.1], [0.7, 0.5, 0.5, 0.7]).pvalue),
    )
    line = wording.crop_claim_line(c)
    assert "`oc` against `pc` lowers J&F by 0.300 [" in line and "(p = " in line and "mean of 4 per-sequence" in line


def test_cell_gaps_read_each_pair_against_the_noise_and_sequence_by_sequence(tmp_path):
    for s, (jf, seq) in enumerate([(0.5, {"a": 0.6, "b": 0.4, "c": 0.5}), (0.6, {"a": 0.7, "b": 0.5, "c": 0.6})]):
        _run(tmp_path, f"big-s{s}", jf=jf, per_seq=seq)
    _run(tmp_path, "few-s0", jf=0.3, per_seq={"a": 0.2, "b": 0.3, "c": 0.4})
    G = tables.cell_gaps(tmp_path, "val", ["big-s0", "big-s1", "few-s0"], [("few", "big"), ("few", "absent")])
    (row,) = G.to_dict("records")  # the pair with a cell the runs lack is skipped
    assert (row["a"], row["b"], row["seeds a"], row["seeds b"]) == ("few", "big", 1, 2) and row[
        "a - b"
    ] == pytest.approx(-0.25)
    # its interval over sequences and seeds, and the one rule's word for it (claims.verdict; no m declared here)
    assert row["low"] < row["a - b"] < row["high"] < 0 and row["verdict"] == "lowers"
    assert (row["a ahead"], row["sequences"]) == (0, 3) and row["p"] == pytest.approx(
        ttest_rel([0.2, 0.3, 0.4], [0.65, 0.45, 0.55]).pvalue
    )
    assert tables.cell_gaps(tmp_path, "test", None, [("few", "big")]).empty
    _run(tmp_path, "one-s0", jf=0.4)
    (row,) = tables.cell_gaps(tmp_path, "val", None, [("few", "one")]).to_dict("records")
    assert row["low"] != row["low"] and row["verdict"] is None  # no sequence scored by both: no interval
    assert (row["a ahead"], row["sequences"]) == (0, 0) and row["p"] != row["p"]  # no sequence scored by both


def test_gcn_cycle_says_whether_the_gcn_eased_the_cycle_and_moved_jf_beyond_the_seed_spread():
    def runs(cell, gcn, jfs, losses):
        return [
            {"run": f"{cell}-s{s}", "GCN": gcn, "J&F": j, "loss / ln N": lo}
            for s, (j, lo) in enumerate(zip(jfs, losses))
        ]

    A = pd.DataFrame(
        runs("p", False, [0.50, 0.52, 0.54], [0.50, 0.51, 0.52])  # sds 0.02 and 0.01
        + runs("p-gcn", True, [0.40, 0.42, 0.44], [0.40, 0.41, 0.42])  # shortcut: easier, lower
        + runs("p-gcn-spatial", True, [0.50, 0.53, 0.56], [0.505, 0.515, 0.525])
    )  # within noise
    rows = {r["cell"]: r for r in claims.gcn_cycle(A, "p")}
    assert set(rows) == {"p-gcn", "p-gcn-spatial"}
    g = rows["p-gcn"]
    assert (g["loss"], g["jf"]) == ("easier", "lower")
    assert g["d_loss"] == pytest.approx(-0.10) and g["noise_loss"] == pytest.approx(0.02)
    assert g["d_jf"] == pytest.approx(-0.10) and g["noise_jf"] == pytest.approx(0.04)
    s = rows["p-gcn-spatial"]
    assert (s["loss"], s["jf"]) == ("within noise", "within noise") and s["d_jf"] == pytest.approx(0.01)
    assert claims.gcn_cycle(A, "missing") == []


def test_findings_call_a_cell_clearly_below_the_best_baseline_only_as_they_call_a_win(tmp_path):
    per_base = {"a": 0.5, "b": 0.6, "c": 0.4, "d": 0.55}
    for s, jf in enumerate((0.20, 0.22, 0.24)):  # every seed below the baseline's 0.3, every sequence below it
        _run(
            tmp_path,
            f"w-s{s}",
            jf=jf,
            seed=s,
            per_seq={k: v - 0.2 + 0.01 * s + 0.01 * i for i, (k, v) in enumerate(per_base.items())},
        )
    _copy_baseline(tmp_path, per_base)  # J&F 0.3
    lead = wording.findings(tmp_path, "val", ["w-s0", "w-s1", "w-s2"])[0]
    assert "The main cell `w` scores clearly below the best baseline" in lead and "ahead on 0 of 4" in lead
    shutil.rmtree(tmp_path / "baselines")
    _copy_baseline(tmp_path, {"a": 0.35, "b": 0.2, "c": 0.4, "d": 0.2})  # below on average, not on every sequence
    assert (
        "The main cell `w` does not beat the best baseline"
        in wording.findings(tmp_path, "val", ["w-s0", "w-s1", "w-s2"])[0]
    )


def test_a_screen_of_single_runs_is_read_against_the_spread_over_seeds_of_one_recipe():
    Q = pd.DataFrame({"r-s0": [0.5, 0.5, 0.9], "r-s1": [0.6, 0.6, 0.1], "r-s2": [0.7, 0.7, 0.5]}, index=["a", "b", "c"])
    jf = pd.Series({"kept-s0": 0.50, "near-s0": 0.45, "far-s0": 0.20})
    line = wording.screen_line(jf, "kept-s0", Q, ["r-s0", "r-s1", "r-s2"], ["a", "b"])  # seed means 0.5/0.6/0.7: sd 0.1
    assert line == (
        "Against the kept run `kept-s0` (J&F 0.500): `near-s0` -0.050, `far-s0` -0.300. The same recipe's "
        "3 seeds spread by sd 0.100 on these 2 sequences: `far-s0` differs by more than twice that, "
        "the others by less."
    )
    assert wording.screen_line(jf.drop("far-s0"), "kept-s0", Q, ["r-s0", "r-s1", "r-s2"], ["a", "b"]).endswith(
        "every run is within twice that."
    )


def test_curves_are_drawn_one_line_per_cell_with_the_baselines_as_horizontal_lines():
    import matplotlib

    matplotlib.use("Agg")
    C = pd.DataFrame({"step": [1, 2, 1, 2], "J&F-Mean": [0.3, 0.4, 0.5, 0.45], "cell": ["a", "a", "b", "b"]})
    fig = plots.plot_curves(C, {"baseline: lab": 0.42, "baseline: copy": 0.2}, title="t")
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b", "baseline: lab", "baseline: copy"] and ax.get_title() == "t"
    flat = [
        line.get_ydata() for line in ax.get_lines() if len(set(line.get_ydata())) == 1 and len(line.get_ydata()) == 2
    ]
    assert sorted(float(y[0]) for y in flat) == [0.2, 0.42]  # the baselines, across the whole axis
    assert [list(line.get_ydata()) for line in ax.get_lines()[:2]] == [[0.3, 0.4], [0.5, 0.45]]


def test_claim_one_tables_and_figure_read_the_runs_scored_along_training():
    import matplotlib

    matplotlib.use("Agg")
    # the patch cell p reaches 0.40 after 150 and 200 GFLOPs; the object cell o (10x cheaper a step) after 15 and 20
    rows = []
    for run, cell, cost, scores in (
        ("p-s0", "p", 100.0, [0.3, 0.5]),
        ("p-s1", "p", 100.0, [0.2, 0.4]),
        ("o-s0", "o", 10.0, [0.3, 0.5]),
        ("o-s1", "o", 10.0, [0.2, 0.4]),
        ("g-s0", "g", 100.0, [0.6]),
    ):  # scored once: not part of the curves
        for k, jf in enumerate(scores, 1):
            rows.append(
                {"run": run, "cell": cell, "step": k, "train_gflops": cost * k, "train_kwh": 1e-3 * k, "J&F-Mean": jf}
            )
    C = pd.DataFrame(rows)
    S = pd.DataFrame({"run": ["p-s0", "baseline: lab"], "kind": ["model", "baseline"], "J&F-Mean": [0.45, 0.35]})
    claim = SimpleNamespace(reference="p", tolerance=0.02, target=0.40)  # the fields of claims.CropClaim it reads
    (base, caption_b), (patch, caption_p) = tables.reach_tables(C, S, claim)
    assert (
        "J&F 0.350, the best baseline (baseline: lab)" in caption_b and "J&F 0.400, patch-level accuracy" in caption_p
    )
    assert list(patch.index) == ["p", "o"]  # g, scored once, has no curve
    assert patch.loc["p", "train_gflops to reach"] == 175 and patch.loc["o", "train_gflops to reach"] == pytest.approx(
        17.5, abs=0.5
    )
    assert patch.loc["o", "x less than p"] == pytest.approx(10.0)  # from the unrounded figures
    assert tables.reach_tables(C, S.iloc[:1], None) == []  # no baseline, no claim: no target
    assert tables.reach_tables(C[C["cell"] == "g"], S, claim) == []  # no run scored along its training

    fig = plots.plot_compute_curves(C, stats.best_baseline_score(S))
    left, right = fig.axes
    assert left.get_xscale() == right.get_xscale() == "log"
    assert (
        len(
            [
                ln
                for ln in right.get_lines()
                if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != ln.get_xdata()[1] and len(set(ln.get_ydata())) > 1
            ]
        )
        == 4
    )  # one line per run scored along training, in Wh
    for ax in (left, right):  # the best baseline, dotted across each panel
        assert [list(ln.get_ydata()) for ln in ax.get_lines() if ln.get_linestyle() == ":"] == [[0.35, 0.35]]
    assert plots.plot_compute_curves(C[C["cell"] == "g"]) is None


def test_training_cost_groups_seeds_and_ratios_set_counted_flops_beside_timed_seconds(tmp_path):
    steps = config_from_dict({}).train.steps  # the runs' configured length: their ledgers finished it
    for name, gflops, wall, cpu in (
        ("p-s0", 10.0, 100.0, 190.0),
        ("p-s1", 10.0, 140.0, 210.0),
        ("o-s0", 2.0, 60.0, 100.0),
        ("o-s1", 2.0, 60.0, 100.0),
    ):
        _run(tmp_path, name)
        (tmp_path / name / "ledger.json").write_text(
            json.dumps(
                {
                    "phases": {
                        "train": {
                            "totals": {
                                "flops": gflops * 1e9 * 80,
                                "flops_per_clip": gflops * 1e9,
                                "seconds": wall,
                                "cpu_seconds": cpu,
                                "kwh": wall / 1e5,
                                "steps": steps,
                            }
                        },
                        "eval": {"totals": {"seconds": 1000.0, "cpu_seconds": 1000.0}},
                    }
                }
            )
        )  # evaluation is not training
    T = tables.training_cost(tmp_path, ["p-s0", "p-s1", "o-s0", "o-s1"])
    assert list(T.index) == ["p", "o"] and list(T["seeds"]) == [2, 2]
    assert T.loc["p", "wall s"] == 120.0 and T.loc["p", "wall s sd"] == pytest.approx(np.std([100, 140], ddof=1))
    assert T.loc["p", "PFLOPs"] == pytest.approx(0.0008) and T.loc["o", "GFLOPs/clip"] == 2.0
    assert T.loc["p", "Wh"] == pytest.approx(1.2) and T.loc["p", "cores busy"] == pytest.approx(200 / 120)
    r = stats.cost_ratios(T, "p", "o")
    assert r == pytest.approx({"flops": 5.0, "wall": 2.0, "cpu": 2.0, "energy": 2.0})
    spread, saving, why = wording.cost_findings(T, SimpleNamespace(reference="p", rows=[SimpleNamespace(cell="o")]))
    assert (
        spread
        == "Over the seeds of one cell the wall seconds spread by 0 % (`o`) to 24 % (`p`) of their mean (sd / mean)."
    )
    assert saving == (
        "`o` needs 5.0x fewer FLOPs per clip than `p`, but only 2.0x less wall time, 2.0x less "
        "CPU time and 2.0x less estimated energy."
    )
    assert why.startswith("Where the saving in time and energy is smaller than the saving in FLOPs")
    fast = T.copy()
    fast.loc["o", ["wall s", "CPU s", "Wh"]] /= 10  # timed savings of 20x beside 5x fewer FLOPs: nothing to explain
    assert wording.cost_findings(fast, SimpleNamespace(reference="p", rows=[SimpleNamespace(cell="o")]))[1:] == [
        "`o` needs 5.0x fewer FLOPs per clip than `p`, and 20.0x less wall time, 20.0x less CPU time and 20.0x less "
        "estimated energy."
    ]
    show = tables.training_cost_table(T)
    assert show.loc["p", "wall s"] == "120\u00a0±\u00a028" and show.loc["p", "Wh (estimate)"] == "1.20\u00a0±\u00a00.28"

    # A run still training is not a seed; one seed has no sd; a ledger without CPU time or energy leaves them out.
    (tmp_path / "o-s1" / "ledger.json").write_text(
        json.dumps({"phases": {"train": {"totals": {"flops": 1e9, "flops_per_clip": 2e9, "seconds": 6.0, "steps": 1}}}})
    )
    (tmp_path / "p-s1" / "ledger.json").write_text(
        json.dumps(
            {"phases": {"train": {"totals": {"flops": 8e11, "flops_per_clip": 1e10, "seconds": 140.0, "steps": steps}}}}
        )
    )
    T = tables.training_cost(tmp_path, ["p-s0", "p-s1", "o-s0", "o-s1"])
    assert list(T["seeds"]) == [2, 1] and T.loc["o", "wall s"] == 60.0 and np.isnan(T.loc["o", "wall s sd"])
    assert T.loc["p", "CPU s"] == 190.0  # the one seed that has it
    assert tables.training_cost_table(T).loc["o", "wall s"] == "60"
    assert tables.training_cost(tmp_path / "none").empty


def test_runs_whose_training_walk_never_left_chance_are_named_in_the_findings(tmp_path):
    n = graph_size(config_from_dict({}))[1]  # the default patch grid: a uniform walk's loss is ln n
    for name, late_loss in (("w-s0", 0.5 * np.log(n)), ("w-s1", 1.001 * np.log(n))):
        _run(tmp_path, name, jf=0.4 if name == "w-s0" else 0.2)
        lines = [
            {"step": k, "loss": (np.log(n) if k <= 2 else late_loss), "acc": 1.0 / n, "grad_norm": 1e-3 * k}
            for k in range(1, 5)
        ]
        (tmp_path / name / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (r,) = claims.chance_runs(tmp_path, ["w-s0", "w-s1"])  # w-s0 left chance in its second half
    assert r["run"] == "w-s1" and r["loss / ln N"] == pytest.approx(1.001) and r["acc × N"] == pytest.approx(1.0)
    assert r["grad_norm"] == pytest.approx(3.5e-3)  # the median over steps 3 and 4
    (line,) = [t for t in wording.findings(tmp_path, "val", ["w-s0", "w-s1"]) if "never left chance" in t]
    assert line.startswith("**1 of 2 runs never left chance in training**")
    assert "`w-s1` loss 1.00x a uniform walk's, accuracy 1.00x chance, median gradient norm 0.0035, J&F 0.200." in line
    assert claims.chance_runs(tmp_path / "none") == []


def test_a_config_saved_before_a_field_existed_reads_that_field_as_its_default(tmp_path):
    import yaml

    cfg = _run(tmp_path, "old")
    raw = yaml.safe_load((tmp_path / "old" / "config.yaml").read_text())
    del raw["nodes"]["crop_window"]  # a run from before the field existed
    (tmp_path / "old" / "config.yaml").write_text(yaml.safe_dump(raw))
    flat = run_config_flat(tmp_path / "old")
    assert flat["nodes.crop_window"] == cfg.nodes.crop_window == "box"
    assert flat["name"] == "old" and run_config_flat(tmp_path / "missing") == {}
