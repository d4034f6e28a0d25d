"""The README's generated results block (and the book's findings in full), from the snapshots under ``results/``.

``python -m ever.analysis.readme README.md`` rewrites it; ``tests/test_readme.py`` checks that it is current.
"""

from __future__ import annotations

from pathlib import Path

from ever.analysis.claims import study
from ever.analysis.sources import SCRATCH, evaluation_table, snapshot_info, snapshot_runs
from ever.analysis.tables import seed_table
from ever.analysis.wording import answers, evaluation_comparisons, findings, provenance

SUMMARY = "green-long"  # the snapshot whose study answers the three questions of the Results summary


def results_summary(root: str | Path = "results") -> str:
    """The Results summary: :func:`answers` of the study of ``<root>/`` :data:`SUMMARY` (objects, the GCN,
    pooled patches), one line each with its effects and 95 % intervals; empty without that snapshot."""
    d = Path(root) / SUMMARY
    info = snapshot_info(d)
    if info is None:
        return ""
    s = study(d, info["split"], snapshot_runs(info))
    lines = answers(s)
    if not lines:
        return ""
    m = f"m = {s.min_effect:g}, declared in the grid file" if s.min_effect is not None else "no m declared"
    return (
        f"**Results summary** (`{Path(root).name}/{SUMMARY}`, {s.n_sequences} sequences; each effect is a difference "
        "in J&F with its 95 % interval from a bootstrap over sequences and seeds, judged against the minimal effect "
        f"of interest, {m}; p: paired t-test over the sequences, Holm: corrected over the grid's comparisons):\n\n"
        + "\n".join(f"- {line}" for line in lines)
    )


def readme_summary(root: str | Path = "results") -> str:
    """The README's generated results block: Table 1 (:func:`ever.analysis.tables.table1`) with its caption, the
    shipped model against the bar (:func:`ever.analysis.bar.bar_text`), what more video would give
    (:func:`more_video`) and one line per claim
    (:func:`ever.analysis.wording.answers` of the :data:`SUMMARY` study); empty without the snapshots.
    ``tests/test_readme.py`` checks that the README holds exactly this text."""
    from ever.analysis.bar import bar_text
    from ever.analysis.tables import table1, table1_caption
    from ever.analysis.wording import front
    from ever.models.pretrained import DEFAULT

    f = front(root)
    if f is None:
        return ""
    T, b, s = f["table"], f["bar"], f["study"]
    lines = [
        f"**The shipped model** (`{DEFAULT}`, its recipe `{T.index[0]}` on the {b.sequences} held-out "
        f"sequences) {bar_text(b)}."
    ]
    more = more_video(root, b.target)
    lines += ([f"**More video** (chapter 9): {more}"] if more else []) + answers(s)
    return "\n\n".join(
        [table1_caption(T, root), table1(T).to_markdown(disable_numparse=True), "\n".join(f"- {ln}" for ln in lines)]
    )


def more_video(root: str | Path = "results", target: float | None = None) -> str:
    """What the data-scaling study (``<root>/data-scaling``) says more training video would give on the shipped
    recipe's held-out sequences (:func:`ever.analysis.scaling.growth_text`, ``target``: the bar's J&F); empty
    without that snapshot."""
    from ever.analysis import scaling
    from ever.analysis.tables import held_out

    d = Path(root) / "data-scaling"
    info, amounts, held = snapshot_info(d), scaling.read_data(d), held_out(root)
    if info is None or amounts is None:
        return ""
    g = scaling.growth(d, list(amounts.index), info["split"], held or None, target, amounts)
    return "" if g is None else scaling.growth_text(g, "held-out sequences" if held else "sequences")


def readme_results(root: str | Path = "results") -> str:
    """Every study in full (the book's "Findings in full"), generated from the committed snapshots under ``root`` (each
    ``<study>/SNAPSHOT.json``, in name order), after the :func:`results_summary`: per study its title,
    :func:`provenance`, the :func:`seed_table` and the :func:`findings`. Until 2026-12-06 this was the README's
    results section; the README now holds :func:`readme_summary`."""
    parts = [results_summary(root)]
    for f in sorted(Path(root).glob("*/SNAPSHOT.json")):
        d = f.parent
        if d.name.endswith(SCRATCH):  # a snapshot being written or replaced
            continue
        info = snapshot_info(d) or {}
        parts.append(f"**{info.get('title') or d.name}.** {provenance(d, f'{Path(root).name}/{d.name}')}")
        if info.get("note"):
            parts.append(info["note"])
        if info.get("kind") == "evaluations":
            e = evaluation_table(d)  # NaN (a method not run under a protocol) -> None, which prints as "–"
            parts.append(e.astype(object).where(e.notna(), None).to_markdown(floatfmt=".3f", missingval="–"))
            parts.append("\n".join(f"- {line}" for line in evaluation_comparisons(d)))
            continue
        names = snapshot_runs(info)
        table = seed_table(d, info["split"], names).to_markdown(disable_numparse=True, missingval="–")
        parts.append(table.replace(" ± ", "\u00a0±\u00a0"))  # a "mean ± sd" cell never wraps on the page
        parts.append("\n".join(f"- {line}" for line in findings(d, info["split"], names)))
    return "\n\n".join(p for p in parts if p)


README_BEGIN = (
    "<!-- results: generated from results/ by `python -m ever.analysis.readme README.md`; do not edit by hand -->"
)


README_END = "<!-- /results -->"

REPRODUCE_BEGIN = (
    "<!-- reproduce: generated from configs/ and results/ by `python -m ever.analysis.readme README.md`; "
    "do not edit by hand -->"
)
REPRODUCE_END = "<!-- /reproduce -->"


def readme_reproduce(root: str | Path = ".") -> str:
    """The README's short reproduce table: :func:`ever.analysis.tables.reproduce_table` of the repository at
    ``root``, one row per grid file with its results snapshot (or the grid file where it made none), the
    command, the data and the measured hours (with the date it ran); then one row for the snapshots of evaluations
    (``results/baselines``, ...: made by the commands each one's ``SNAPSHOT.json`` records, not by a grid)."""
    from ever.analysis.tables import reproduce_table
    from ever.grid import load_grid

    R = reproduce_table(root)
    dates = {g: load_grid(Path(root) / g).time.date for g in R.index}
    rows = [
        (
            f"`{s}`" if s != "–" else f"`{g}`",
            f"`{c}`",
            d,
            "not measured" if h != h else f"{h:.2f} ({dates[g]})" if dates[g] else f"{h:.2f}",
        )
        for g, s, c, d, h in zip(R.index, R["snapshot"], R["command"], R["data"], R["hours"])
    ]
    evaluations = [
        f"`results/{f.parent.name}`"
        for f in sorted((Path(root) / "results").glob("*/SNAPSHOT.json"))
        if (snapshot_info(f.parent) or {}).get("kind") == "evaluations"
    ]
    if evaluations:
        rows.append(
            (", ".join(evaluations), "the commands in each one's `SNAPSHOT.json`", "as they say", "not measured")
        )
    head = ("study", "command", "data (`data_manifest/`)", "hours, measured")
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ("---",) * len(head), *rows])


SPEED_BEGIN = (
    "<!-- speed: generated from results/speed/ by `python -m ever.analysis.readme README.md`; do not edit by hand -->"
)
SPEED_END = "<!-- /speed -->"
MARKERS = {
    "results": (README_BEGIN, README_END),
    "reproduce": (REPRODUCE_BEGIN, REPRODUCE_END),
    "speed": (SPEED_BEGIN, SPEED_END),
}


def _markers(which: str) -> tuple[str, str]:
    return MARKERS[which]


def readme_section(readme_text: str, which: str = "results") -> str:
    """A generated part of the README (``which``: ``results``, ``reproduce`` or ``speed``, between its
    :data:`MARKERS`), stripped."""
    begin, end = _markers(which)
    if begin not in readme_text or end not in readme_text:
        raise ValueError(f"README has no generated {which} section (markers missing)")
    return readme_text.split(begin, 1)[1].split(end, 1)[0].strip()


def with_readme_results(readme_text: str, generated: str, which: str = "results") -> str:
    """``readme_text`` with its generated ``which`` section (between its markers) replaced by ``generated``."""
    readme_section(readme_text, which)  # the markers are there
    begin, end = _markers(which)
    head, rest = readme_text.split(begin, 1)
    return f"{head}{begin}\n{generated}\n{end}{rest.split(end, 1)[1]}"


def main(argv: list[str] | None = None) -> None:
    """``python -m ever.analysis.readme [README.md]``: regenerate the README's results, speed and reproduce
    sections in place."""
    import sys

    from ever.analysis.speed import readme_speed
    from ever.utils import atomic_write_text

    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    text = with_readme_results(readme.read_text(), readme_summary(readme.parent / "results"))
    text = with_readme_results(text, readme_speed(readme.parent / "results" / "speed"), "speed")
    atomic_write_text(readme, with_readme_results(text, readme_reproduce(readme.parent), "reproduce"))


if __name__ == "__main__":
    main()
