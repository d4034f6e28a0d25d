"""Chapters 2, 3, 7 and 8 of the book, statically (their sources) and through the pieces they call:
nothing typed that the run files give, code blocks that fit the page, citations that resolve, no MathJax
in the exploration chapter, and the explorer's default point and propagation heat map."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = ["02_data", "03_walk", "07_reproduce", "08_explore"]
WIDTH = 76  # characters of a code line that fit the book's page (1300 px window) without a cut


def cells(stem: str) -> list[dict]:
    return json.loads((BOOK / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]


def source(c: dict) -> str:
    return "".join(c["source"])


@pytest.mark.parametrize("stem", CHAPTERS)
def test_code_blocks_of_the_narrative_fit_the_page(stem):
    """Fenced code in the Markdown cells wraps its long commands (``\\``) instead of running off the page."""
    long = [
        line
        for c in cells(stem)
        if c["cell_type"] == "markdown"
        for block in re.findall(r"```[a-z]*\n(.*?)```", source(c), re.S)
        for line in block.splitlines()
        if len(line) > WIDTH
    ]
    assert not long, long


def test_every_citation_of_the_book_has_a_bibliography_entry():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (BOOK / "references.bib").read_text(encoding="utf-8"), re.M))
    cited = {k for nb in BOOK.glob("[0-9][0-9]_*.ipynb") for k in re.findall(r"\{cite:p\}`([^`]+)`", nb.read_text())}
    cited = {k.strip() for ks in cited for k in ks.split(",")}
    assert cited and cited <= keys, cited - keys
    # the works these chapters use are cited where they are used
    text = {s: "\n".join(source(c) for c in cells(s)) for s in CHAPTERS}
    assert "biggs2018badja" in text["02_data"] and "perazzi2016davis" in text["02_data"]
    assert "pontuset2017davis" in text["02_data"]
    assert "felzenszwalb2004efficient" in text["07_reproduce"] and "achanta2012slic" in text["07_reproduce"]


def test_the_first_page_shows_no_code():
    # every code cell of the first page is removed or shows only its output (a reader sees no Python there)
    for c in cells("00_index"):
        if c["cell_type"] == "code":
            tags = c["metadata"].get("tags", [])
            assert "remove-input" in tags or "remove-cell" in tags, source(c)[:80]


def test_exploration_chapter_needs_no_mathjax_and_hides_its_plumbing():
    nb = cells("08_explore")
    md = "\n".join(source(c) for c in nb if c["cell_type"] == "markdown")
    assert "$" not in md and "\\mathrm" not in md  # plain HTML / Unicode formulas: MathJax needs a CDN
    assert "φ(q<sub>i</sub><sup>t</sup>)" in md  # chapter 1's notation
    for c in nb:
        if c["cell_type"] == "code" and "display(Markdown" in source(c):
            assert "hide-input" in c["metadata"].get("tags", []), source(c)[:80]
    interactive = [c for c in nb if c["cell_type"] == "markdown" and source(c).startswith("## Interactive")]
    assert len(interactive) == 1 and "live Jupyter kernel" in source(interactive[0])


def test_reproduce_chapter_computes_its_timing_sentence():
    text = "\n".join(source(c) for c in cells("07_reproduce"))
    assert not re.search(r"about \d+ minutes", text)  # the time is read from runs/report.json, not typed
    assert "captions.report_timing(" in text  # whole seconds in the timing table: tests/test_analysis_chapters.py


def test_walk_chapter_keeps_no_unsupported_claim():
    text = "\n".join(source(c) for c in cells("03_walk"))
    assert "earlier evaluation protocol" not in text
    assert "another node" not in text


def colour_features(x):
    """(t, 3, H, W) -> (t, 3, H/8, W/8): the centred mean colour of each 8x8 cell (a stand-in encoder)."""
    import torch.nn.functional as F

    return F.avg_pool2d(x - 0.5, 8)


def _davis_sequence(root: Path, T: int = 3, H: int = 48, W: int = 80) -> Path:
    from PIL import Image

    seq, ann = root / "JPEGImages" / "480p" / "sq", root / "Annotations" / "480p" / "sq"
    seq.mkdir(parents=True)
    ann.mkdir(parents=True)
    for t in range(T):
        f = np.full((H, W, 3), 90, np.uint8)
        f[8 + 4 * t : 24 + 4 * t, 40:56] = (230, 30, 30)
        Image.fromarray(f).save(seq / f"{t:05d}.jpg", quality=95)
    m = np.zeros((H, W), np.uint8)
    m[8:24, 40:56] = 1
    Image.fromarray(m, "P").save(ann / "00000.png")
    return seq


def test_default_point_is_the_centre_of_the_annotated_objects(tmp_path):
    """Chapter 8's default point is where chapter 3 starts its walker (the mask's centroid); without
    an annotation, the frame's centre."""
    from ever.explore import Explorer

    ex = Explorer(_davis_sequence(tmp_path), feature_fn=colour_features, device="cpu")
    assert ex.object_point(0) == pytest.approx((47.5, 15.5))
    assert ex.object_point(1) == (40.0, 24.0)  # frame 1 has no mask: the centre of 80x48
    bare = Explorer(np.zeros((2, 32, 64, 3), np.uint8), feature_fn=colour_features, device="cpu")
    assert bare.object_point(0) == (32.0, 16.0)


def test_propagation_figure_shows_its_heat_map_with_a_colour_bar(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ever import explore_plots as XP
    from ever.explore import Explorer

    ex = Explorer(_davis_sequence(tmp_path), feature_fn=colour_features, mode="cells", device="cpu")
    node = ex.node_at(0, *ex.object_point(0))
    steps = ex.propagate(0, node, steps=2, k=3)
    fig = XP.plot_propagation(ex, 0, steps, ex.object_point(0))
    try:
        assert len(fig.axes) == len(steps) + 2  # source, one per step, the colour bar
        heat = fig.axes[1].images[1]
        assert heat.norm.vmax == pytest.approx(max(float(s.heat.max()) for s in steps))
        assert np.ma.count(heat.get_array()) > 0  # some of the heat map is drawn, not all masked
    finally:
        plt.close(fig)
