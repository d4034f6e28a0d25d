"""The book: `ever report` on the tiny grid, end to end, then checks of the built HTML in a browser.

The slow test runs the real pipeline (ever-synth generation, `ever train`, `ever eval`, baselines,
papermill, jupyter-book) on ``configs/report-tiny.yaml`` with every output in ``tmp_path``. It checks
each chapter page, its figures and the absence of error output, then screenshots the index and the
results page with headless Chromium, and reads every chapter there (placeholders, Python reprs, cut-off
tables). The screenshots are kept in ``_build/screenshots/`` for a human.
Select it with ``pytest -m slow tests/test_book.py`` (or ``-k book``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


# ----------------------------------------------------------------------------- fast checks of the grid


def test_grid_files_load():
    from ever.grid import load_grid

    grids = sorted((ROOT / "configs").glob("report*.yaml"))
    assert len(grids) >= 8
    for path in grids:
        g, name = load_grid(path), path.name
        assert g.runs, name
        assert set(g.baselines.kinds) <= {"copy", "lab", "lab-dist", "random"}
        assert len({r.name for r in g.runs}) == len(g.runs)


def test_grid_rejects_unknown_key(tmp_path):
    from ever.grid import GridError, load_grid

    p = tmp_path / "g.yaml"
    p.write_text("runs: []\nrunz: []\n")
    with pytest.raises(GridError, match="runz"):
        load_grid(p)
    p.write_text("runs: [{name: a, config: x.yaml}, {name: a, config: y.yaml}]\n")
    with pytest.raises(GridError, match="duplicate"):
        load_grid(p)
    p.write_text("runs: []\ntime: {hours: 0.5, date: '2026-12-01', source: ledgers}\n")
    assert load_grid(p).time.hours == 0.5 and load_grid(p).time.source == "ledgers"
    for bad in ("{hours: -1}", "{source: ledgers}", "{hours: 1, minutes: 3}", "{hours: soon}"):
        p.write_text(f"runs: []\ntime: {bad}\n")
        with pytest.raises(GridError, match=f"{p}: time"):
            load_grid(p)


def test_grid_without_notebooks_scores_given_data_and_prints_the_table(tmp_path, capsys):
    from ever.data.synth import SynthConfig, generate
    from ever.grid import GridError, load_grid
    from ever.report import ReportError, report

    data = tmp_path / "given"
    generate(data, SynthConfig(num_train=1, num_eval=2, frames_train=4, frames_eval=5, height=48, width=64))
    grid = tmp_path / "g.yaml"
    body = {
        "data": {"name": "mine", "root": str(data)},
        "paths": {"runs": str(tmp_path / "r"), "book": str(tmp_path)},
        "runs": [],
        "baselines": {"kinds": ["copy"], "random_config": str(ROOT / "configs" / "crw-patch-cpu.yaml")},
    }
    grid.write_text(yaml.safe_dump({**body, "notebooks": {"execute": False}}))
    report(grid)
    out = capsys.readouterr().out
    assert (tmp_path / "r" / "baselines" / "copy" / "eval" / "val" / "summary.json").is_file()
    assert "| baseline: copy" in out and "J&F-Mean" in out and "notebook" not in out
    assert not (tmp_path / "book" / "generated").exists()
    log = json.loads((tmp_path / "r" / "report.json").read_text())  # written after every step, then finished
    assert log["status"] == "finished" and [s["step"] for s in log["steps"]] == ["data mine", "baseline copy"]
    grid.write_text(yaml.safe_dump({**body, "notebooks": {"exec": False}}))
    with pytest.raises(GridError, match="notebooks: unknown key 'exec'"):
        load_grid(grid)
    grid.write_text(yaml.safe_dump({**body, "data": {"name": "mine", "root": str(tmp_path / "nope")}}))
    with pytest.raises(ReportError, match="nope not found"):
        report(grid)


def test_notebook_parameters_must_be_declared_by_a_notebook(tmp_path):
    pytest.importorskip("papermill", reason="book extras not installed (pip install -e '.[book]')")
    from ever.report import ReportError, declared_parameters, report

    assert {"overlay_seqs", "real_grid", "runs_dir"} <= declared_parameters(ROOT / "book" / "04_results.ipynb")
    assert "long_side" in declared_parameters(ROOT / "book" / "08_explore.ipynb")
    grid = tmp_path / "g.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "data": {"name": "x", "root": str(tmp_path / "none")},
                "runs": [],
                "paths": {"runs": str(tmp_path / "r"), "book": str(ROOT)},
                "notebooks": {"parameters": {"overlay_seqz": 1}},
            }
        )
    )
    with pytest.raises(ReportError, match="notebooks.parameters.overlay_seqz is declared by no notebook"):
        report(grid)
    assert not (tmp_path / "r").exists()  # refused before any work


def test_configs_match_ignores_only_where_it_ran():
    from ever.config import Config
    from ever.report import configs_match

    a = Config().to_dict()
    b = Config().to_dict()
    b["train"]["device"] = "cuda"
    b["data"]["num_workers"] = 7
    assert configs_match(a, b)
    b["walk"]["temperature"] = 0.5
    assert not configs_match(a, b)


def test_run_config_points_runs_at_the_grid_paths(tmp_path):
    from ever.grid import RunSpec, load_grid
    from ever.report import run_config

    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("train: {steps: 5}\n")
    grid = tmp_path / "g.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "data": {"root": str(tmp_path / "d")},
                "paths": {"runs": str(tmp_path / "r")},
                "split": "val",
                "common_set": ["walk.temperature=0.2"],
                "runs": [{"name": "x", "config": str(cfg_file), "set": ["train.steps=2"]}],
            }
        )
    )
    g = load_grid(grid)
    cfg = run_config(g, g.runs[0], device="cpu")
    assert cfg.name == "x" and cfg.train.steps == 2 and cfg.walk.temperature == 0.2
    assert cfg.run_dir == tmp_path / "r" / "x"
    assert cfg.data.roots == [str(tmp_path / "d" / "videos" / "train")]
    assert cfg.eval.data == str(tmp_path / "d") and cfg.train.device == "cpu"
    assert isinstance(g.runs[0], RunSpec)


# ----------------------------------------------------------------------------- the book, end to end


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return None


def _ensure_chromium() -> str:
    exe = _chromium()
    if exe:
        return exe
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("headless Chromium is not installed and cannot be installed here (not root or no apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "chromium"]
    try:
        if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"could not install Chromium with apt-get: {e}")
    exe = _chromium()
    if not exe:
        pytest.skip("`apt-get install chromium` did not provide a chromium executable")
    return exe


def _screenshot(exe: str, page: Path, out: Path, profile: Path) -> None:
    cmd = [
        exe,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        "--window-size=1280,900",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.is_file(), f"chromium wrote no screenshot of {page} (exit {proc.returncode}): {proc.stderr[-800:]}"


def _non_blank(png: Path) -> float:
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return float(a.var())


def _title(page: Path) -> str:
    m = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S)
    return html.unescape(m.group(1)).strip() if m else ""


def _clone(dest: Path) -> Path:
    """The files git tracks or would track (as they are in the working tree), copied to ``dest``: a fresh
    clone, without this checkout's .venv, runs, caches or build."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    for rel in filter(None, out.decode().split("\0")):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def _pytest_in(clone: Path, env: dict) -> None:
    """What `make test` leaves behind in a checkout: a pytest run with its cache (.pytest_cache/README.md)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "cacheprovider", "tests/test_packaging.py"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"pytest in the clone failed:\n{proc.stdout[-2000:]}"


@pytest.mark.slow
def test_book_builds_from_the_tiny_grid_after_and_before_the_tests(tmp_path):
    """The README's two commands in both orders, on the tiny grid, in a fresh clone: the tests, then the main
    job (which must build the book though the tests left .pytest_cache/ behind), then the tests again
    (which must not trip over the runs, data and book the main job wrote)."""
    pytest.importorskip("papermill", reason="book extras not installed (pip install -e '.[book]')")
    pytest.importorskip("jupyter_book", reason="book extras not installed (pip install -e '.[book]')")

    clone = _clone(tmp_path / "clone")
    env = dict(os.environ, PYTHONPATH=str(clone) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _pytest_in(clone, env)
    assert (clone / ".pytest_cache" / "README.md").is_file()
    (clone / ".venv" / "lib").mkdir(parents=True)  # more of what a checkout holds: a venv's stray Markdown
    (clone / ".venv" / "lib" / "README.md").write_text("# not part of the book\n")

    grid = yaml.safe_load((clone / "configs" / "report-tiny.yaml").read_text())
    grid_file = clone / "configs" / "report-tiny.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "ever.cli", "report", "--grid", str(grid_file)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"ever report failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "timing summary" in proc.stdout
    _pytest_in(clone, env)

    check_built_book(clone, grid, clone / grid["paths"]["runs"], tmp_path)


def _check_curve(run: Path, split: str) -> None:
    """The snapshots of a run with train.snapshot_every=1 (3 steps), evaluated into curve.csv."""
    import pandas as pd
    import torch

    from ever.analysis.sources import training_curve
    from ever.models import load_checkpoint

    snaps = sorted(p.name for p in (run / "snapshots").glob("*.pt"))
    assert snaps == ["step-000001.pt", "step-000002.pt"]  # step 3 is checkpoint.pt
    weights = [
        load_checkpoint(p)[0].state_dict()
        for p in (run / "snapshots" / snaps[0], run / "snapshots" / snaps[1], run / "checkpoint.pt")
    ]
    assert load_checkpoint(run / "snapshots" / snaps[0])[1].train.steps == 3
    for a, b in ((0, 1), (1, 2)):  # three different points of the training, not one model saved thrice
        assert any(not torch.equal(weights[a][k], weights[b][k]) for k in weights[a])
    curve = pd.read_csv(run / "curve.csv")
    assert curve["step"].tolist() == [1, 2, 3]
    ledger = json.loads((run / "ledger.json").read_text())
    per_step = ledger["phases"]["train"]["segments"][0]["flops_per_step"]
    assert per_step > 0 and abs(curve["train_gflops"].iloc[-1] * 1e9 - 3 * per_step) < 1e-3 * per_step
    assert curve["J&F-Mean"].between(0, 1).all()
    assert training_curve(run, split).round(9).equals(curve.round(9))


PLACEHOLDER = re.compile(r"No [^.\n]{0,60}?(yet|found|was found|were found)|is (absent|missing)|TODO|placeholder", re.I)
REPR = re.compile(r"<(ever|matplotlib|pandas)\.[^>\n]*object at 0x|\{'|dtype: (float|int|object)|Name: [^\n]*, dtype")
# Run in the page by Chromium after load: the text a reader sees in the cell outputs (innerText); every
# output table that reaches past the article's right edge with no horizontally scrolling box around it, or
# that a box which does not scroll (overflow hidden / clip) cuts off; a scrolling table whose caption starts
# out of view; and every table cell holding "±" whose text wraps onto a second line.
PROBE = """<script>
window.addEventListener("load", function () {
  var seen = {text: "", cut: [], wrapped: [], outputs: 0, cells: document.querySelectorAll("div.cell").length};
  var outputs = document.querySelectorAll("div.cell_output");
  seen.outputs = outputs.length;
  outputs.forEach(function (c) { seen.text += c.innerText + "\\n"; });
  var article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  var edge = article.getBoundingClientRect().right;
  function lines(el) {  // the distinct line boxes of an element's text
    var r = document.createRange(); r.selectNodeContents(el);
    var tops = {}; Array.prototype.forEach.call(r.getClientRects(), function (b) {
      if (b.width > 0) tops[Math.round(b.top)] = 1; });
    return Object.keys(tops).length;
  }
  document.querySelectorAll("div.cell_output table").forEach(function (t, i) {
    var right = t.getBoundingClientRect().right, name = "table " + (i + 1);
    for (var el = t.parentElement; el && el !== document.body; el = el.parentElement) {
      var ox = getComputedStyle(el).overflowX, box = el.getBoundingClientRect();
      if (ox === "auto" || ox === "scroll") {
        var cap = t.querySelector("caption");
        if (cap && cap.textContent.trim()) {
          var r = document.createRange(); r.selectNodeContents(cap);
          var first = r.getClientRects()[0];
          var ends = Math.max.apply(null, Array.prototype.map.call(r.getClientRects(),
                                                                   function (b) { return b.right; }));
          if (first && first.left > box.right - 20)
            seen.cut.push(name + "'s caption starts at " + Math.round(first.left) + " px, out of its box (ends "
                          + Math.round(box.right) + ")");
          else if (ends > box.right + 1)
            seen.cut.push(name + "'s caption runs to " + Math.round(ends) + " px, past its box (ends "
                          + Math.round(box.right) + "): cut until scrolled");
        }
        return;
      }
      if ((ox === "hidden" || ox === "clip") && right > box.right + 1) {
        seen.cut.push(name + " ends at " + Math.round(right) + " px, clipped by a box that does not scroll at "
                      + Math.round(box.right));
        return;
      }
    }
    if (right > edge + 1)
      seen.cut.push(name + " ends at " + Math.round(right) + " px, the page at " + Math.round(edge));
  });
  document.querySelectorAll("div.cell_output td, div.cell_output th").forEach(function (c) {
    if (c.textContent.indexOf("\u00b1") >= 0 && lines(c) > 1)
      seen.wrapped.push(JSON.stringify(c.textContent.trim()) + " on " + lines(c) + " lines");
  });
  // The first screen: the first cell output (the first page's abstract) and the head of the first output
  // table (Table 1 there), in page pixels from the top.
  if (outputs.length) {
    var o = outputs[0].getBoundingClientRect();
    seen.first_output = {text: outputs[0].innerText.slice(0, 400), top: o.top + window.scrollY};
  }
  var t1 = document.querySelector("div.cell_output table");
  var head = t1 && (t1.querySelector("thead") || t1.querySelector("tr"));
  if (head) seen.table_head = {text: head.innerText, bottom: head.getBoundingClientRect().bottom + window.scrollY};
  var pre = document.createElement("pre"); pre.id = "ever-seen"; pre.textContent = JSON.stringify(seen);
  document.body.appendChild(pre);
});
</script>"""


def read_in_browser(exe: str, page: Path, profile: Path) -> dict:
    """What Chromium renders of a built page at 1280x900: ``{"text": the cell outputs' visible text,
    "cut": tables cut off at the right edge or clipped, "wrapped": "±" cells on several lines, "outputs": n,
    "cells": n}`` (via :data:`PROBE`, run in a copy
    of the page beside it, so that its styles and scripts load as in the original)."""
    probe = page.with_name(page.stem + ".ever-probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        proc = subprocess.run(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--window-size=1280,900",
                "--virtual-time-budget=5000",
                "--dump-dom",
                probe.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        probe.unlink()
    m = re.search(r'<pre id="ever-seen"[^>]*>(.*?)</pre>', proc.stdout, re.S)
    assert m, f"chromium did not run the page check on {page} (exit {proc.returncode}): {proc.stderr[-800:]}"
    return json.loads(html.unescape(m.group(1)))


def render_cells(exe: str, tmp_path: Path, outputs, head: str = "", narrative: str = "") -> dict:
    """:func:`read_in_browser` of a small page laid out as a built chapter: ``narrative`` then one code cell
    per HTML string of ``outputs`` (inside ``div.cell_output``), ``head`` (e.g. a stylesheet link) in <head>."""
    page = tmp_path / "p.html"
    cells = "".join(
        f'<div class="cell"><div class="cell_input">x</div><div class="cell_output">'
        f'<div class="output text_html">{o}</div></div></div>'
        for o in outputs
    )
    page.write_text(f"<html><head>{head}</head><body>{narrative}<main>{cells}</main></body></html>", encoding="utf-8")
    return read_in_browser(exe, page, tmp_path / "profile")


def page_problems(stem: str, seen: dict) -> list[str]:
    """What a reader should never meet in a chapter's cell outputs as Chromium shows them
    (:func:`read_in_browser`): a placeholder sentence ("No ... yet", "... is absent"), a Python repr (an
    object address, a dict, a pandas Series footer), a table cut off at the right edge or clipped by a box
    that does not scroll (or whose caption scrolled out of view), or a "mean ± sd" cell wrapped onto a
    second line. The exploration notebook is exempt from the placeholder rule (it says what to install or
    run)."""
    if not seen["cells"]:
        return ["no code cell found (has the page markup changed?)"]
    problems = []
    if stem != "08_explore":
        problems += [f"placeholder {m.group(0)!r}" for m in PLACEHOLDER.finditer(seen["text"])]
    problems += [f"python repr {m.group(0)!r}" for m in REPR.finditer(seen["text"])]
    return problems + [f"cut off: {c}" for c in seen["cut"]] + [f"wrapped: {w}" for w in seen.get("wrapped", [])]


FOLD = 900  # px from the top of the page: the first screen of issue 35 (a 1280x900 screenshot shows this much)


def first_screen_problems(seen: dict) -> list[str]:
    """What a reader must see without scrolling on the first page (:func:`read_in_browser` at 1280x900): the
    abstract (the first cell output) starting above :data:`FOLD` with at least one number in it, and the head
    of the first table (Table 1) ending above it. (Page coordinates: Chromium's --dump-dom reports a window
    shorter than its --screenshot does at the same --window-size, so the fold is fixed, not innerHeight.)"""
    fold, problems = FOLD, []
    first, head = seen.get("first_output"), seen.get("table_head")
    if first is None or first["top"] >= fold:
        problems.append(f"the abstract starts at {first and round(first['top'])} px, below the fold at {fold}")
    elif not re.search(r"\d\.\d", first["text"]):
        problems.append(f"the first output has no number: {first['text'][:80]!r}")
    if head is None or head["bottom"] > fold:
        problems.append(f"Table 1's head ends at {head and round(head['bottom'])} px, below the fold at {fold}")
    return problems


def test_first_screen_problems_find_an_abstract_or_table_below_the_fold(tmp_path):
    exe = _ensure_chromium()
    abstract = "<p>EVER scores J&amp;F 0.484 against 0.515.</p>"
    table = "<table><thead><tr><th>method</th><th>J&amp;F</th></tr></thead><tr><td>a</td><td>0.5</td></tr></table>"
    good = render_cells(exe, tmp_path, [abstract, table], narrative="<h1>EVER</h1>")
    assert first_screen_problems(good) == []
    tall = '<div style="height:1200px"></div>'
    low = first_screen_problems(render_cells(exe, tmp_path, [abstract, table], narrative=tall))
    assert len(low) == 2 and "the abstract starts at" in low[0] and "Table 1's head ends at" in low[1], low
    late = first_screen_problems(render_cells(exe, tmp_path, [abstract, tall + table]))
    assert len(late) == 1 and late[0].startswith("Table 1's head"), late
    words = first_screen_problems(render_cells(exe, tmp_path, ["<p>No numbers here.</p>", table]))
    assert len(words) == 1 and "no number" in words[0], words


def test_page_problems_finds_placeholders_reprs_and_cut_off_tables(tmp_path):
    """The browser check on small pages: each kind of problem is found, a clean page has none."""
    exe = _ensure_chromium()

    def seen(*outputs: str, narrative: str = "") -> dict:
        return render_cells(exe, tmp_path, outputs, narrative=narrative)

    wide = "<table><tr>" + "<td>0.354</td>" * 400 + "</tr></table>"
    good = seen("<p>J&amp;F 0.354</p>", f'<div style="overflow-x:auto; max-width:100%">{wide}</div>')
    assert page_problems("04_results", good) == [] and "J&F 0.354" in good["text"]
    assert page_problems("04_results", seen("<p><strong>Note.</strong> No real-video scores yet: run it</p>"))
    assert page_problems("04_results", seen("<p><code>runs/report.json</code> is absent</p>"))
    assert page_problems("06_green", seen("<pre>{&#x27;a&#x27;: 1}</pre>"))
    cut = page_problems("05_ablations", seen(wide))
    assert len(cut) == 1 and cut[0].startswith("cut off: table 1"), cut
    assert page_problems("05_ablations", seen("<table><tr><td>1</td></tr></table>")) == []  # narrow: fine
    assert page_problems("08_explore", seen("<p>No model found yet</p>")) == []  # it may say what to install
    assert page_problems("01_intro", {"cells": 0, "text": "", "cut": []})  # never silently checks nothing
    assert page_problems("01_intro", seen("<p>J&amp;F 0.354</p>", narrative="<p>Where a file is missing</p>")) == []


def test_page_problems_finds_wrapped_spreads_and_clipped_tables_and_the_book_style_passes(tmp_path):
    """A "mean ± sd" cell on two lines and a table cut by a box that does not scroll are found; the same
    tables as the book shows them (book/_static/ever.css, ever.analysis.display.table's markup and its
    non-breaking spaces) pass, a wide one scrolling in its own box with its caption in view."""
    exe = _ensure_chromium()
    from ever.analysis.display import table

    def seen(*outputs: str, css: bool = False) -> dict:
        link = f'<link rel="stylesheet" href="{(ROOT / "book" / "_static" / "ever.css").as_uri()}">' if css else ""
        return render_cells(exe, tmp_path, outputs, head=link)

    def shown(df, caption: str) -> str:  # the HTML display.table puts in a cell's output
        from unittest import mock

        with mock.patch("IPython.display.display") as out:
            table(df, caption=caption)
        return out.call_args.args[0].data

    import pandas as pd

    narrow = '<table style="width:40px"><tr><th>J&amp;F</th></tr><tr><td>0.484 ± 0.056</td></tr></table>'
    wrapped = page_problems("05_ablations", seen(narrow))
    assert len(wrapped) == 1 and wrapped[0].startswith('wrapped: "0.484 ± 0.056" on 3 lines'), wrapped
    wide = "<table><tr>" + "<td>0.354</td>" * 400 + "</tr></table>"
    clipped = page_problems("05_ablations", seen(f'<div style="overflow:hidden; max-width:600px">{wide}</div>'))
    assert len(clipped) == 1 and "clipped by a box that does not scroll" in clipped[0], clipped
    spread = pd.DataFrame({"J&F": ["0.484 ± 0.056"]}, index=["objcrop8"])
    many = pd.DataFrame({f"column {i}": ["0.484 ± 0.056"] for i in range(40)}, index=["patchcrop49"])
    caption = "final scores, mean ± sd over seeds"
    raw = seen(shown(many, caption))  # a wide table in its scroll box, without the book's style
    assert any("caption starts at" in p for p in page_problems("05_ablations", raw)), raw["cut"]
    long = "one change at a time: " + "fewer patches, windows instead of a grid, resized boxes; " * 12
    runs = seen(f'<div style="overflow-x:auto; width:600px">{shown(many, long)}</div>')  # caption as wide as its table
    assert any("caption runs to" in p for p in page_problems("05_ablations", runs)), runs["cut"]
    styled = seen(f'<div style="width:40px">{shown(spread, "J&F")}</div>', shown(many, long), css=True)
    assert page_problems("05_ablations", styled) == [] and "0.484 ± 0.056" in styled["text"].replace("\xa0", " ")


def check_built_book(book: Path, grid: dict, runs: Path, tmp_path: Path) -> None:
    """Every check of a book built by `ever report` (files, pages, figures, errors, browser)."""
    for r in grid["runs"]:
        assert (runs / r["name"] / "checkpoint.pt").is_file()
        assert (runs / r["name"] / "eval" / grid["split"] / "summary.json").is_file()
    for b in grid["baselines"]["kinds"]:
        assert (runs / "baselines" / b / "eval" / grid["split"] / "summary.json").is_file()
    _check_curve(runs / "tiny-patch", grid["split"])

    html_dir = book / "_build" / "html"
    index = html_dir / "index.html"
    assert index.is_file()
    chapters = sorted((book / "book").glob("[0-9][0-9]_*.ipynb"))
    assert len(chapters) == 10  # the first page, 7 chapters, the exploration notebook and the data-scaling study
    pages = {c.stem: html_dir / "book" / "generated" / f"{c.stem}.html" for c in chapters}
    for stem, page in pages.items():
        assert page.is_file(), f"chapter {stem} missing from the built book"
        text = page.read_text(encoding="utf-8")
        assert "<h1>" in text, stem
        assert "_static/ever.css" in text, f"{stem}: the book's CSS (book/_static/ever.css) is not linked"
        # No error output of any kind in the rendered cells.
        assert "Traceback (most recent call last)" not in text, f"{stem}: a traceback in the page"
        assert 'class="output traceback' not in text and "ansi-red-fg" not in text, f"{stem}: an error output"
        for block in re.findall(r'<div class="output stderr">(.*?)</div>', text, re.S):
            assert "Error" not in block, f"{stem}: an error on stderr: {html.unescape(block)[:300]}"
        # Figures: embedded PNGs written by the build and present on disk.
        imgs = re.findall(r'<img[^>]+src="([^"]+\.png)"', text)
        if stem not in ("00_index", "07_reproduce"):
            assert imgs, f"{stem}: no figure"
        for src in imgs:
            assert (page.parent / src).resolve().is_file(), f"{stem}: image {src} not in the build"
    # The first page opens with what EVER found: the verdicts on real video and on this build's grid.
    first = pages["00_index"].read_text(encoding="utf-8")
    assert "What EVER found" in first and "On real video" in first and "On this build" in first, "first page"
    assert "best baseline" in first and "Limitations" in first and "show code cell" not in first.lower()
    # The pages fed by the real pipeline show its results, not "file absent" notes.
    walk = pages["03_walk"].read_text(encoding="utf-8")
    results = pages["04_results"].read_text(encoding="utf-8")
    notes = re.compile(r"<strong>Note\.</strong>\s*(.*?)</p>", re.S)
    walk_notes, result_notes = notes.findall(walk), notes.findall(results)
    assert not [n for n in walk_notes if "No trained run" in n or "could not be computed" in n], walk_notes
    assert not [n for n in result_notes if "No evaluation summary" in n], result_notes
    assert "J&amp;F-Mean" in results
    assert "Protocol: the reference (CRW) context" in results  # the book says which protocol was used
    # Real video, from the committed snapshot (a fresh clone has not run that study) and saying so.
    assert "From the committed results snapshot <code" in results and "results/davis-dev" in results
    for b in ("copy", "lab", "random"):
        assert f"baseline: {b}" in results

    # The built pages in a real browser: what a reader sees in every chapter, then screenshots.
    exe = _ensure_chromium()
    for stem, page in pages.items():
        problems = page_problems(stem, read_in_browser(exe, page, tmp_path / "chrome-profile-check"))
        assert not problems, f"{stem}: {problems}"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    # index.html redirects to the root page (Jupyter Book's layout); the screenshot follows it.
    assert "EVER" in _title(index), f"index.html title {_title(index)!r}"
    m = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', index.read_text(encoding="utf-8"))
    landing = (index.parent / m.group(1)) if m else index
    assert landing.is_file(), f"index.html redirects to a missing page {landing}"
    # The first screen of the first page (issue 35): the abstract with a number and Table 1's head, unscrolled.
    first_screen = read_in_browser(exe, landing, tmp_path / "chrome-profile-fold")
    assert not first_screen_problems(first_screen), (first_screen_problems(first_screen), first_screen["first_output"])
    for label, page in (("index", landing), ("results", pages["04_results"])):
        title = _title(page)
        assert "EVER" in title, f"{label}: page title {title!r}"
        png = tmp_path / f"{label}.png"
        _screenshot(exe, page, png, tmp_path / f"chrome-profile-{label}")
        var = _non_blank(png)
        assert var > 20.0, f"{label}: the screenshot is blank (pixel variance {var:.1f})"
        shutil.copy(png, shots / f"{label}.png")


def test_executed_pages_drop_code_cells_that_show_nothing(tmp_path):
    import nbformat

    from ever.report import _tidy_parameters

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("import numpy", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_code_cell(
            "print(x)", metadata={"tags": ["hide-input"]}, outputs=[nbformat.v4.new_output("stream", text="2\n")]
        ),
        nbformat.v4.new_markdown_cell("text"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    _tidy_parameters(path)
    cells = nbformat.read(str(path), as_version=4).cells
    assert ["remove-cell" in c.metadata.get("tags", []) for c in cells] == [True, True, True, False, False]
    assert cells[1].source.startswith("# Parameters of this build")


def test_cached_steps_notice_new_data_and_eval_settings(tmp_path):
    from ever.grid import load_grid
    from ever.report import _inputs, _same_inputs, _write_inputs

    data = tmp_path / "d"
    data.mkdir()
    (data / "checksums.sha256").write_text("aaa  x.jpg\n")
    grid = tmp_path / "g.yaml"
    spec = {
        "data": {"name": "other", "root": str(data)},
        "paths": {"runs": str(tmp_path / "r")},
        "split": "val",
        "eval_set": ["eval.topk=5"],
        "runs": [],
    }
    grid.write_text(yaml.safe_dump(spec))
    g = load_grid(grid)
    out = tmp_path / "r" / "x" / "eval" / "val"
    assert not _same_inputs(out, _inputs(g, True))  # nothing recorded yet: not reusable
    _write_inputs(out, _inputs(g, True))
    assert _same_inputs(out, _inputs(g, True))
    spec["eval_set"] = ["eval.topk=7"]
    grid.write_text(yaml.safe_dump(spec))
    assert not _same_inputs(out, _inputs(load_grid(grid), True))  # other eval settings
    (data / "checksums.sha256").write_text("bbb  x.jpg\n")
    assert not _same_inputs(out, _inputs(g, True))  # regenerated data
    assert _inputs(g, False).keys() == {"data", "data_digest"}  # training ignores the eval settings


def test_protocol_text_names_the_settings_of_an_evaluation():
    from dataclasses import asdict

    from ever.analysis.wording import protocol_text
    from ever.config import EvalConfig

    s = {"cfg": asdict(EvalConfig(long_side=427)), "pck_convention": "badja"}
    text = protocol_text(s)
    assert "reference (CRW) context" in text and "20 preceding frames" in text and "top-10" in text
    assert "bilinearly" in text and "long side of 427 px" in text and "BADJA convention" in text
    s["cfg"].update(context="first_once", label_resize="area", long_side=0)
    text = protocol_text({"cfg": s["cfg"]})
    assert "earlier protocol" in text and "area averaging" in text and "native resolution" in text
    assert "PCK" not in text


def test_bench_step_measures_once_and_keeps_the_file(tmp_path):
    from ever.grid import load_grid
    from ever.report import ReportError, _step_bench

    grid = tmp_path / "g.yaml"
    grid.write_text(yaml.safe_dump({"paths": {"runs": str(tmp_path / "r"), "book": str(tmp_path)}}))
    g = load_grid(grid)
    assert _step_bench(g) == "no bench/"
    (tmp_path / "bench").mkdir()
    script = tmp_path / "bench" / "walk.py"  # stands in for bench/walk.py: writes --json, records its arguments
    script.write_text(
        "import json, sys\na = sys.argv[1:]\nopen(a[a.index('--json') + 1], 'w').write(json.dumps("
        "{'walk': [], 'argv': a}))\n"
    )
    (tmp_path / "r" / "bench").mkdir(parents=True)
    assert _step_bench(g) == "measured"
    written = json.loads((tmp_path / "r" / "bench" / "walk.json").read_text())
    assert written["argv"][:2] == ["--nodes", "8,16,32,64,128"]
    assert _step_bench(g) == "cached"
    (tmp_path / "r" / "bench" / "walk.json").unlink()
    script.write_text("import sys\nprint('boom')\nsys.exit(3)\n")
    with pytest.raises(ReportError, match=r"walk.py --nodes .* failed \(exit 3\):\nboom"):
        _step_bench(g)


def test_a_run_saved_before_a_config_field_existed_is_still_the_same_run():
    from ever.config import Config
    from ever.report import configs_match

    old = Config().to_dict()
    del old["eval"]["sequences"]  # saved before the field existed: it ran with today's default
    assert configs_match(old, Config().to_dict())
    new = Config().to_dict()
    new["eval"]["sequences"] = ["bear"]
    assert not configs_match(old, new)
