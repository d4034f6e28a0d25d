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
    shipped model against the bar (:func:`ever.analysis.bar.bar_text`) and one line per claim
    (:func:`ever.analysis.wording.answers` of the :data:`SUMMARY` study); empty without the snapshots.
    ``tests/test_readme.py`` checks that the README holds exactly this text."""
    from ever.analysis.bar import bar_text
    from ever.analysis.tables import table1, table1_caption
    from ever.analysis.wording import front

    f = front(root)
    if f is None:
        return ""
    T, b, s = f["table"], f["bar"], f["study"]
    lines = [f"**The shipped model** (`{T.index[0]}`, on the {b.sequences} held-out sequences) {bar_text(b)}."]
    lines += answers(s)
    return "\n\n".join(
        [table1_caption(T, root), table1(T).to_markdown(disable_numparse=True), "\n".join(f"- {ln}" for ln in lines)]
    )


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
        parts.append(seed_table(d, info["split"], names).to_markdown(disable_numparse=True, missingval="–"))
        parts.append("\n".join(f"- {line}" for line in findings(d, info["split"], names)))
    return "\n\n".join(p for p in parts if p)


README_BEGIN = (
    "<!-- results: generated from results/ by `python -m ever.analysis.readme README.md`; do not edit by hand -->"
)


README_END = "<!-- /results -->"


def readme_section(readme_text: str) -> str:
    """The generated part of the README (between :data:`README_BEGIN` and :data:`README_END`), stripped."""
    if README_BEGIN not in readme_text or README_END not in readme_text:
        raise ValueError("README has no generated results section (markers missing)")
    return readme_text.split(README_BEGIN, 1)[1].split(README_END, 1)[0].strip()


def with_readme_results(readme_text: str, generated: str) -> str:
    """``readme_text`` with its generated section (between the markers) replaced by ``generated``."""
    readme_section(readme_text)  # the markers are there
    head, rest = readme_text.split(README_BEGIN, 1)
    return f"{head}{README_BEGIN}\n{generated}\n{README_END}{rest.split(README_END, 1)[1]}"


def main(argv: list[str] | None = None) -> None:
    """``python -m ever.analysis.readme [README.md]``: regenerate the README's results section in place."""
    import sys

    from ever.utils import atomic_write_text

    args = sys.argv[1:] if argv is None else argv
    readme = Path(args[0] if args else "README.md")
    atomic_write_text(readme, with_readme_results(readme.read_text(), readme_summary(readme.parent / "results")))


if __name__ == "__main__":
    main()
