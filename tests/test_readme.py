"""The README's numbers come from the committed results snapshots, not from a keyboard."""

from pathlib import Path

from ever.analysis import readme, sources, tables

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_are_generated_from_the_committed_snapshots():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.readme_section(text) == readme.readme_results(ROOT / "results"), (
        "README.md's results section differs from results/: run `python -m ever.analysis.readme README.md`"
    )
    import re

    assert not re.search(r"\bnan\b|\bNone\b", readme.readme_section(text)), "a missing value printed as nan/None"


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
    import re

    for f in sorted((ROOT / "results").glob("*/SNAPSHOT.json")):
        for grid in re.findall(r"--grid (\S+)", sources.snapshot_info(f.parent)["command"]):
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
