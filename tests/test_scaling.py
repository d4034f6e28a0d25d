"""The data-scaling study (ever.analysis.scaling): amounts of video, scores over seeds and steps, effects."""

import numpy as np
import pandas as pd
import pytest

from ever.analysis import scaling
from ever.analysis.claims import LOWERS, RAISES, UNDECIDED
from ever.data.clips import distinct_videos, group_keys, video_weights

SEQS = [f"seq{i}" for i in range(8)]
CELLS = {"small": (3, 500, 0.40), "medium": (18, 1600, 0.40), "large": (34, 8000, 0.50)}  # distinct, frames, J&F


def test_near_duplicates_count_as_one_distinct_video():
    names = ["a", "asl_1", "asl_2", "asl_3", "b"]
    root_of = [0, 0, 0, 0, 1]
    assert distinct_videos(root_of, names) == 5
    assert distinct_videos(root_of, names, ["asl_*"]) == 3
    # the same pattern in two roots is two groups, as video_weights weighs them
    assert distinct_videos([0, 0, 1, 1], ["asl_1", "asl_2", "asl_3", "asl_4"], ["asl_*"]) == 2
    keys = group_keys(root_of, names, ["asl_*"])
    assert keys[1] == keys[3] == (0, "asl_*") and keys[0] == (0, None)
    w = video_weights(root_of, names, groups=["asl_*"])
    assert w.sum() == pytest.approx(1) and w[1:4].sum() == pytest.approx(w[0])  # the group weighs one video


def _snapshot(tmp_path, rng, steps=(500, 1000), seeds=3):
    """A data-scaling snapshot: three cells x seeds, curve.csv and per-sequence scores, data.csv."""
    for cell, (_, _, jf) in CELLS.items():
        for s in range(seeds):
            run = tmp_path / f"{cell}-s{s}"
            (run / "eval" / "train").mkdir(parents=True)
            (run / "config.yaml").write_text("seed: %d\n" % s)
            per_seq = jf + rng.normal(0, 0.02, len(SEQS))
            rows = [{"sequence": q, "object": 1, "frames": 10, "J-Mean": v, "F-Mean": v} for q, v in zip(SEQS, per_seq)]
            pd.DataFrame(rows).to_csv(run / "eval" / "train" / "per_sequence.csv", index=False)
            curve = [
                {"step": st, "train_gflops": 1.75 * st, "J&F-Mean": per_seq.mean() - 0.05 * (st < max(steps))}
                for st in steps
            ]
            pd.DataFrame(curve).to_csv(run / "curve.csv", index=False)
    pd.DataFrame(
        [
            {"cell": c, "roots": i + 1, "videos": d, "distinct": d, "frames": f}
            for i, (c, (d, f, _)) in enumerate(CELLS.items())
        ]
    ).to_csv(tmp_path / scaling.DATA_FILE, index=False)
    return tmp_path


def test_points_and_table_carry_the_amount_of_video_and_the_seed_spread(tmp_path):
    snap = _snapshot(tmp_path, np.random.default_rng(0))
    P = scaling.points(snap)
    assert len(P) == 3 * 3 * 2
    assert set(P.loc[P["cell"] == "large", "distinct"]) == {34}
    T = scaling.table(P)
    assert list(T["cell"]) == ["small", "small", "medium", "medium", "large", "large"]  # least video first
    last = T[(T["cell"] == "large") & (T["step"] == 1000)].iloc[0]
    mine = P[(P["cell"] == "large") & (P["step"] == 1000)]["J&F-Mean"]
    assert last["J&F-Mean mean"] == pytest.approx(mine.mean())
    assert last["J&F-Mean sd"] == pytest.approx(mine.std(ddof=1))
    assert last["J&F-Mean n"] == 3 and last["frames"] == 8000


def test_effects_compare_each_amount_with_the_one_before_and_correct_for_the_family(tmp_path):
    snap = _snapshot(tmp_path, np.random.default_rng(1))
    E = scaling.effects(snap, ["small", "medium", "large"], min_effect=0.03)
    keys = [e["effect"].key for e in E]
    assert keys == ["medium − small", "large − medium", "large − small"]
    by = {e["effect"].key: e for e in E}
    assert by["large − medium"]["verdict"] == RAISES  # +0.10 with sd 0.02 over 8 sequences x 3 seeds
    assert by["large − medium"]["effect"].effect == pytest.approx(0.10, abs=0.03)
    assert by["medium − small"]["verdict"] in (UNDECIDED, "no effect")  # same mean
    for e in E:  # Holm never lowers a p-value
        assert e["p_holm"] is None or e["p_holm"] >= e["effect"].p - 1e-12
    flipped = scaling.effects(snap, ["large", "medium"])
    assert flipped[0]["verdict"] == LOWERS and len(flipped) == 1  # two cells: no extra end-to-end comparison


def _baselines(root):
    """A snapshot of bare evaluations under ``root/baselines``: lab-dist and copy, three untrained inits."""
    import json

    labels = {"lab-dist": 0.45, "copy": 0.25} | {f"random-s{s}-layer3": 0.2 + 0.05 * s for s in range(3)}
    for label, v in labels.items():
        d = root / "baselines" / label
        d.mkdir(parents=True)
        rows = [{"sequence": q, "object": 1, "frames": 10, "J-Mean": v, "F-Mean": v} for q in SEQS]
        pd.DataFrame(rows).to_csv(d / "per_sequence.csv", index=False)
        (d / "summary.json").write_text(json.dumps({"J&F-Mean": v, "PCK@0.1": 0.1 if "random" in label else None}))
    (root / "baselines" / "SNAPSHOT.json").write_text(json.dumps({"kind": "evaluations", "evaluations": list(labels)}))
    return root


def test_model_scores_and_the_bar_of_a_cell(tmp_path):
    snap = _snapshot(tmp_path / "scaling", np.random.default_rng(2))
    M = scaling.model_scores(snap, "large")
    assert list(M.columns) == ["large-s0", "large-s1", "large-s2"]
    assert M.mean().mean() == pytest.approx(0.50, abs=0.02)
    root = _baselines(tmp_path / "results")
    bar = scaling.cell_bar(snap, "large", root=root)
    assert bar.baseline == "lab-dist" and bar.baseline_jf == pytest.approx(0.45)
    assert bar.lead == pytest.approx(M.mean().mean() - 0.45)
    assert bar.sequences == len(SEQS) and bar.seeds == 3
    assert not bar.jf_clears  # +0.05 is below the goal's +0.08
    assert scaling.cell_bar(snap, "nothing", root=root) is None
    assert scaling.cell_bar(snap, "large", root=tmp_path / "none") is None


def test_figure_draws_every_seed_and_the_baselines(tmp_path):
    from ever.analysis.bar import families
    from ever.analysis.sources import evaluation_sequences

    snap = _snapshot(tmp_path / "scaling", np.random.default_rng(3))
    F = families(evaluation_sequences(_baselines(tmp_path / "results") / "baselines"))
    fig = scaling.figure(scaling.points(snap), F)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    dots = sum(len(c.get_offsets()) for c in ax.collections)
    assert dots == 3 * 3 * 2  # every run at every step
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"lab-dist", "copy", "random layer3", "random layer3 ± sd", "step 1000 (mean of seeds)"} <= set(labels)
    assert len(ax.patches) == 1  # one band: the untrained family's sd


def test_describe_data_counts_what_training_reads(tmp_path):
    from PIL import Image

    root = tmp_path / "videos"
    for name, n in {"clip_a": 6, "sign_1": 5, "sign_2": 5}.items():
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (32, 24), (i * 20, 0, 0)).save(d / f"{i:05d}.jpg")
    (tmp_path / "base.yaml").write_text(f"data:\n  roots: [{root}]\n  groups: ['sign_*']\n  clip_len: 2\n")
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"data: {{name: given, root: {tmp_path}, override_run_data: false}}\n"
        f"paths: {{runs: {tmp_path / 'runs'}}}\n"
        f"runs: [{{name: one, config: {tmp_path / 'base.yaml'}, seeds: [0, 1]}}]\n"
    )
    D = scaling.describe_data(grid)
    assert D.to_dict("records") == [{"cell": "one", "roots": 1, "videos": 3, "distinct": 2, "frames": 16}]


def test_loss_figure_draws_one_line_per_cell_with_its_amount(tmp_path):
    import json

    snap = _snapshot(tmp_path, np.random.default_rng(4))
    for cell in CELLS:
        for s in range(3):
            rows = [{"step": st, "loss": 2.0 - st / 1000 + 0.01 * s, "acc": 0.5} for st in (50, 100, 150)]
            (snap / f"{cell}-s{s}" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    fig = scaling.loss_figure(snap, amounts=scaling.read_data(snap))
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == [
        "large (34 videos)",
        "medium (18 videos)",
        "small (3 videos)",
    ]
    line = ax.get_lines()[0]
    assert np.allclose(line.get_ydata(), [1.96, 1.91, 1.86])  # the mean over seeds 0-2 of each step


def test_growth_is_the_slope_per_doubling_and_what_it_says_of_the_bar(tmp_path):
    """The line through every run's final J&F against log2(distinct videos): its slope is a direct least-squares
    fit; its interval a seeded bootstrap over sequences and seeds that collapses when neither varies; the
    doublings to a target follow from the line; a falling line never reaches it; the text says when the
    interval includes zero and gives a count of videos only when it does not."""
    snap = _snapshot(tmp_path, np.random.default_rng(3))
    cells = ["small", "medium", "large"]
    g = scaling.growth(snap, cells, target=0.60)
    x = np.repeat(np.log2([3, 18, 34]), 3)
    y = np.concatenate([scaling.model_scores(snap, c).mean().to_numpy() for c in cells])
    slope, intercept = np.polyfit(x, y, 1)
    assert g.slope == pytest.approx(slope) and g.runs == 9 and g.cells == 3 and g.sequences == len(SEQS)
    assert g.low < g.slope < g.high and g == scaling.growth(snap, cells, target=0.60)  # seeded
    assert g.span == pytest.approx(np.log2(34 / 3)) and g.most == pytest.approx(34)
    assert g.fitted == pytest.approx(intercept + slope * np.log2(34))
    assert g.doublings == pytest.approx((0.60 - g.fitted) / slope)
    assert g.fewest == pytest.approx((0.60 - g.fitted) / g.high)
    assert g.videos(g.doublings) == pytest.approx(34 * 2**g.doublings)
    text = scaling.growth_text(g)
    assert f"{g.slope:+.3f} [{g.low:+.3f}, {g.high:+.3f}] per doubling" in text and "extrapolated" in text
    assert ("includes zero" in text) == (g.low <= 0) and ("distinct videos." in text) == (g.low > 0)
    assert scaling.growth(snap, cells, target=0.30).doublings == 0.0  # already above
    # a subset of sequences, the last cell missing from the counts: the line rests on what was used
    sub = scaling.growth(snap, cells + ["absent"], sequences=SEQS[:5])
    assert sub.sequences == 5 and sub.cells == 3
    # every sequence and seed the same within a cell: nothing to resample, the interval is the slope
    flat = tmp_path / "flat"
    for cell, (_, _, jf) in CELLS.items():
        for s in range(2):
            run = flat / f"{cell}-s{s}" / "eval" / "train"
            run.mkdir(parents=True)
            (run.parents[1] / "config.yaml").write_text(f"seed: {s}\n")
            rows = [{"sequence": q, "object": 1, "frames": 10, "J-Mean": jf, "F-Mean": jf} for q in SEQS]
            pd.DataFrame(rows).to_csv(run / "per_sequence.csv", index=False)
    f = scaling.growth(flat, cells, amounts=scaling.read_data(snap))
    assert f.low == pytest.approx(f.slope) == pytest.approx(f.high) and f.runs == 6
    falling = scaling.growth(
        snap, cells, target=0.60, amounts=scaling.read_data(snap).assign(distinct=[34, 18, 3])
    )  # the same runs with the amounts reversed: J&F falls with video
    assert falling.slope < 0 and falling.doublings is None and "no amount of video" in scaling.growth_text(falling)
    assert scaling.growth(snap, ["large"]) is None  # one amount of video: no line
    assert "bar" not in scaling.growth_text(scaling.growth(snap, cells))
