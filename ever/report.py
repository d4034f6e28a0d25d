"""``ever report``: data -> training -> evaluation -> baselines -> notebooks -> book, from one grid file.

A *grid* (``configs/report.yaml``, ``configs/report-tiny.yaml``, ``configs/report-gpu.yaml``) says
which data to generate, which runs to train (a config file plus ``key=value`` overrides, each with a
name), which baselines to evaluate, on which split, and the parameters handed to the notebooks.

Every step is incremental and isolated:

- data: generated only if ``ever.data.synth.is_generated`` says the folder does not already hold it;
- a run is trained in its own ``ever train`` subprocess, and skipped when ``runs/<name>/`` already
  holds a finished training of *the same* config (``config.yaml`` compared field by field, except the
  fields in :data:`NEUTRAL_KEYS` that do not change what is learnt); a finished run of another
  config is deleted and retrained from scratch; an unfinished one of the same config is resumed;
- evaluation (``ever eval``) is skipped when its ``summary.json`` is newer than the checkpoint;
- baselines (copy, lab, random) are evaluated once into ``runs/baselines/<kind>/eval/<split>/``;
- papermill executes ``book/NN_*.ipynb`` into ``book/generated/`` with the grid's parameters
  injected into each notebook's ``parameters`` cell;
- ``jupyter-book build`` renders the executed copies into ``_build/html`` (``index.html``), with
  warnings as errors.

A failing step names the run and raises :class:`ReportError`; the steps before it keep their files.
A timing summary is printed at the end and written to ``<runs>/report.json``.

The second half of this module holds the small read-only helpers that the book's notebooks use to
load run files (tables of summaries, configs, metrics, ledgers) and to say when a file is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ever.config import NEUTRAL_KEYS, flatten
from ever.errors import EverError

BASELINES = ("copy", "lab", "random")
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class ReportError(EverError):
    """A step of the report failed (the message names the step and the run)."""


# ------------------------------------------------------------------------------------------ the grid

@dataclass
class RunSpec:
    name: str
    config: str
    set: list[str] = field(default_factory=list)


@dataclass
class Grid:
    path: Path
    data_name: str = "ever-synth"
    data_root: Path = Path("data/ever-synth")
    data_options: dict[str, Any] = field(default_factory=dict)
    override_run_data: bool = True
    runs_dir: Path = Path("runs")
    book_root: Path = Path(".")
    split: str = "val"
    common_set: list[str] = field(default_factory=list)
    eval_set: list[str] = field(default_factory=list)
    runs: list[RunSpec] = field(default_factory=list)
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    random_config: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    execute: bool = True  # run the notebooks (false: a grid of runs and evaluations only, no book)
    build: bool = True

    @property
    def generated_dir(self) -> Path:
        return self.book_root / "book" / "generated"

    @property
    def html_dir(self) -> Path:
        return self.book_root / "_build" / "html"


_GRID_KEYS = {"data", "paths", "split", "common_set", "eval_set", "runs", "baselines", "notebooks", "build"}


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid YAML file (unknown keys are errors, like in :mod:`ever.config`)."""
    from ever.utils import read_yaml

    path = Path(path)
    raw = read_yaml(path, ReportError, "grid file") or {}
    if not isinstance(raw, dict):
        raise ReportError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(raw) - _GRID_KEYS)
    if unknown:
        raise ReportError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_GRID_KEYS))})")
    g = Grid(path=path)
    data = raw.get("data") or {}
    g.data_name = str(data.get("name", g.data_name))
    g.data_root = Path(data.get("root", g.data_root))
    g.data_options = dict(data.get("options") or {})
    g.override_run_data = bool(data.get("override_run_data", True))
    paths = raw.get("paths") or {}
    g.runs_dir = Path(paths.get("runs", g.runs_dir))
    g.book_root = Path(paths.get("book", g.book_root))
    g.split = str(raw.get("split", g.split))
    g.common_set = [str(s) for s in raw.get("common_set") or []]
    g.eval_set = [str(s) for s in raw.get("eval_set") or []]
    names = set()
    for i, r in enumerate(raw.get("runs") or []):
        if not isinstance(r, dict) or "name" not in r or "config" not in r:
            raise ReportError(f"{path}: runs[{i}] needs 'name' and 'config'")
        if r["name"] in names or r["name"] == "baselines" or "/" in str(r["name"]):
            raise ReportError(f"{path}: runs[{i}]: bad or duplicate run name {r['name']!r}")
        names.add(r["name"])
        g.runs.append(RunSpec(str(r["name"]), str(r["config"]), [str(s) for s in r.get("set") or []]))
    base = raw.get("baselines", {}) or {}
    if isinstance(base, list):
        base = {"kinds": base}
    g.baselines = [str(b) for b in base.get("kinds", list(BASELINES))]
    bad = [b for b in g.baselines if b not in BASELINES]
    if bad:
        raise ReportError(f"{path}: unknown baseline {bad[0]!r} (known: {', '.join(BASELINES)})")
    g.random_config = base.get("random_config") or (g.runs[0].config if g.runs else None)
    nb = raw.get("notebooks") or {}
    unknown = sorted(set(nb) - {"parameters", "execute"})
    if unknown:
        raise ReportError(f"{path}: unknown key notebooks.{unknown[0]} (known: execute, parameters)")
    g.parameters = dict(nb.get("parameters") or {})
    g.execute = bool(nb.get("execute", True))
    g.build = bool(raw.get("build", True)) and g.execute
    return g


# ------------------------------------------------------------------------------------------ helpers

def configs_match(saved: dict[str, Any], wanted: dict[str, Any], ignore: tuple[str, ...] = NEUTRAL_KEYS) -> bool:
    """True when two config dicts are equal on every field except ``ignore``."""
    a = {k: v for k, v in flatten(saved).items() if k not in ignore}
    b = {k: v for k, v in flatten(wanted).items() if k not in ignore}
    return a == b


def _show_path(p: Path) -> str:
    """A path as the notebooks get it: relative to the working folder when inside it."""
    p = Path(os.path.abspath(p))
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _ever(*args: str, log: Path | None = None) -> None:
    """Run ``python -m ever.cli ARGS`` in a subprocess; raise ReportError with its last lines on failure."""
    cmd = [sys.executable, "-m", "ever.cli", *args]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise ReportError(f"`ever {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")


class _Timer:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, step: str, seconds: float, status: str) -> None:
        self.rows.append({"step": step, "seconds": round(seconds, 2), "status": status})
        print(f"[ever report] {step:<38s} {status:<10s} {seconds:8.1f} s", flush=True)

    def summary(self) -> str:
        total = sum(r["seconds"] for r in self.rows)
        lines = ["", "ever report: timing summary", f"{'step':<40s}{'status':<12s}{'seconds':>10s}"]
        lines += [f"{r['step']:<40s}{r['status']:<12s}{r['seconds']:>10.1f}" for r in self.rows]
        lines.append(f"{'total':<52s}{total:>10.1f}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ steps

def _step_data(g: Grid) -> str:
    if g.data_name != "ever-synth":
        if not g.data_root.is_dir():
            raise ReportError(f"data: {g.data_root} not found (only ever-synth is generated by the report)")
        return "given"
    from ever.data import synth

    items = [f"{k}={json.dumps(v)}" for k, v in g.data_options.items()]
    cfg = synth.config_from_sets(items)
    if synth.is_generated(g.data_root, cfg):
        return "cached"
    synth.generate(g.data_root, cfg)
    return "generated"


def run_config(g: Grid, spec: RunSpec, device: str | None = None):
    """The full :class:`ever.config.Config` of one run of the grid."""
    from ever.config import load_config

    over = list(g.common_set) + list(spec.set)
    over += [f"name={spec.name}", f"out_dir={g.runs_dir}"]
    if g.override_run_data:
        over += [f"data.roots={json.dumps([str(g.data_root / 'videos' / 'train')])}", f"eval.data={g.data_root}"]
    over.append(f"eval.split={g.split}")
    if device:
        over.append(f"train.device={device}")
    return load_config(spec.config, over)


def _is_finished(run_dir: Path, steps: int) -> bool:
    """A training is finished when its checkpoint was saved at the last step."""
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.is_file():
        return False
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        return int(state.get("step", -1)) >= steps
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is not a finished run
        return False


def _step_train(g: Grid, spec: RunSpec, device: str | None, cfg_path: Path) -> str:
    from ever.config import save_config

    cfg = run_config(g, spec, device)
    run_dir = g.runs_dir / spec.name
    saved = run_dir / "config.yaml"
    resume = False
    if saved.is_file():
        try:
            old = yaml.safe_load(saved.read_text()) or {}
        except yaml.YAMLError:
            old = {}
        same = configs_match(old, cfg.to_dict()) and _same_inputs(run_dir, _inputs(g, False))
        if same and _is_finished(run_dir, cfg.train.steps):
            return "cached"
        if same and (run_dir / "checkpoint.pt").is_file():
            resume = True
        else:
            shutil.rmtree(run_dir)  # another config (or nothing to resume): from scratch
    elif run_dir.exists():
        shutil.rmtree(run_dir)
    save_config(cfg, cfg_path)  # the exact config handed to `ever train`
    _write_inputs(run_dir, _inputs(g, False))  # first, so an interrupted run can resume
    args = ["train", str(cfg_path)] + (["--resume"] if resume else [])
    _ever(*args, log=g.runs_dir / "logs" / f"train-{spec.name}.log")
    if not (run_dir / "checkpoint.pt").is_file():
        raise ReportError(f"train {spec.name}: finished without writing {run_dir / 'checkpoint.pt'}")
    return "resumed" if resume else "trained"


def _fresh(summary: Path, *inputs: Path) -> bool:
    if not summary.is_file():
        return False
    t = summary.stat().st_mtime
    return all(not p.exists() or p.stat().st_mtime <= t for p in inputs)


INPUTS = "report_inputs.json"  # beside a run's checkpoint / an evaluation's summary: what it was made from


def _inputs(g: Grid, evaluation: bool) -> dict[str, Any]:
    """What a step's result depends on beyond its config: the data (the digest of its checksum list,
    which regenerated or replaced data changes) and, for an evaluation, the split and ``eval_set``."""
    sums = g.data_root / "checksums.sha256"
    key: dict[str, Any] = {"data": str(g.data_root),
                           "data_digest": hashlib.sha256(sums.read_bytes()).hexdigest() if sums.is_file() else None}
    if evaluation:
        from ever.evaluate.run import SCORING_VERSION

        key.update(split=g.split, eval_set=list(g.eval_set), scoring=SCORING_VERSION)
    return key


def _same_inputs(folder: Path, key: dict[str, Any]) -> bool:
    return read_json(folder / INPUTS) == key


def _write_inputs(folder: Path, key: dict[str, Any]) -> None:
    from ever.utils import atomic_write_json  # (torch-importing module: load it only when a step runs)

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / INPUTS, key)


def _step_eval(g: Grid, spec: RunSpec) -> str:
    run_dir = g.runs_dir / spec.name
    ckpt = run_dir / "checkpoint.pt"
    out = run_dir / "eval" / g.split
    if _fresh(out / "summary.json", ckpt) and _same_inputs(out, _inputs(g, True)):
        return "cached"
    return _run_eval(g, str(ckpt), run_dir / "config.yaml", out, f"eval {spec.name}", f"eval-{spec.name}")


def _step_curve(g: Grid, spec: RunSpec) -> str:
    """Evaluate every snapshot of a run (``train.snapshot_every``) and write ``<run>/curve.csv``: accuracy
    against training compute (:func:`training_curve`)."""
    run_dir = g.runs_dir / spec.name
    done = 0
    for snap in sorted((run_dir / "snapshots").glob("step-*.pt")):
        out = run_dir / "eval-curve" / snap.stem / g.split
        if _fresh(out / "summary.json", snap) and _same_inputs(out, _inputs(g, True)):
            continue
        _run_eval(g, str(snap), run_dir / "config.yaml", out, f"curve {spec.name} {snap.stem}",
                  f"curve-{spec.name}-{snap.stem}")
        done += 1
    from ever.utils import atomic_write_text

    atomic_write_text(run_dir / "curve.csv", training_curve(run_dir, g.split).to_csv(index=False))
    return f"{done} evaluated" if done else "cached"


def training_curve(run_dir: str | Path, split: str):
    """Accuracy against training compute for one run: a DataFrame with one row per evaluated snapshot and
    the final checkpoint: step, train_gflops (the ledger's FLOPs per step x step: exact for a fixed
    graph), train_kwh (the run's training energy x step / steps: an estimate that assumes a steady
    rate), J&F-Mean, J-Mean, F-Mean (and PCK@0.1, PCK@0.2 when scored)."""
    import pandas as pd

    from ever.ledger import load_ledger

    run_dir = Path(run_dir)
    try:
        train = (load_ledger(run_dir).get("phases") or {}).get("train") or {}
    except FileNotFoundError:  # a run with ledger.enabled=false
        train = {}
    segs = train.get("segments") or []
    per_step = next((s["flops_per_step"] for s in segs if s.get("flops_per_step")), None)
    steps = int(run_config_flat(run_dir)["train.steps"])
    kwh = (train.get("totals") or {}).get("kwh")
    points = [(int(p.parent.parent.name.split("-")[1]), p)  # eval-curve/step-NNNNNN/<split>/summary.json
              for p in sorted(run_dir.glob(f"eval-curve/step-*/{split}/summary.json"))]
    final = run_dir / "eval" / split / "summary.json"
    if final.is_file():
        points.append((steps, final))
    rows = []
    for step, path in sorted(points):
        s = read_json(path) or {}
        rows.append({"step": step,
                     "train_gflops": per_step * step / 1e9 if per_step else None,
                     "train_kwh": kwh * step / steps if kwh is not None and steps else None,
                     **{k: s[k] for k in ("J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2") if k in s}})
    return pd.DataFrame(rows)


def _run_eval(g: Grid, what: str, config: Path, out: Path, label: str, log_name: str) -> str:
    """``ever eval WHAT --config CONFIG`` on the grid's data into ``out`` (a checkpoint or a baseline kind)."""
    args = ["eval", what, "--config", str(config), "--data", str(g.data_root), "--split", g.split, "--out", str(out)]
    for s in g.eval_set:
        args += ["--set", s]
    _ever(*args, log=g.runs_dir / "logs" / f"{log_name}.log")
    if not (out / "summary.json").is_file():
        raise ReportError(f"{label}: finished without writing {out / 'summary.json'}")
    _write_inputs(out, _inputs(g, True))
    return "evaluated"


def baseline_config(g: Grid):
    """Config of the baselines: ``random_config`` with the grid's ``common_set`` (same architecture as the
    runs) and eval settings; copy and lab use only its ``eval`` section."""
    from ever.config import load_config

    if not g.random_config:
        raise ReportError("baselines: no config for the random encoder's architecture (baselines.random_config)")
    return load_config(g.random_config, list(g.common_set) + ["name=baselines", f"out_dir={g.runs_dir}",
                                                             f"eval.data={g.data_root}", f"eval.split={g.split}"])


def _step_baseline(g: Grid, kind: str) -> str:
    from ever.config import save_config

    out = g.runs_dir / "baselines" / kind / "eval" / g.split
    cfg = baseline_config(g)
    cfg_path = g.runs_dir / "configs" / "baselines.yaml"
    old = None
    if cfg_path.is_file():
        try:
            old = yaml.safe_load(cfg_path.read_text())
        except yaml.YAMLError:
            old = None
    if old is None or not configs_match(old, cfg.to_dict()):
        save_config(cfg, cfg_path)  # a new baseline config makes every baseline stale
    if _fresh(out / "summary.json", cfg_path) and _same_inputs(out, _inputs(g, True)):
        return "cached"
    return _run_eval(g, kind, cfg_path, out, f"baseline {kind}", f"eval-baseline-{kind}")


def notebook_parameters(g: Grid) -> dict[str, Any]:
    """What papermill injects into every notebook's ``parameters`` cell."""
    params = {
        "runs_dir": _show_path(g.runs_dir),
        "data_root": _show_path(g.data_root),
        "split": g.split,
        "run_names": [r.name for r in g.runs],
        "grid_path": _show_path(g.path),
        "bench_json": _show_path(g.runs_dir / "bench" / "walk.json"),
    }
    params.update(g.parameters)
    return params


def source_notebooks(book_root: Path) -> list[Path]:
    return sorted((book_root / "book").glob(NOTEBOOK_GLOB))


def declared_parameters(src: Path) -> set[str]:
    """Names a notebook declares in its ``parameters`` cell (what papermill may set)."""
    import papermill as pm

    return set(pm.inspect_notebook(str(src)))


def _step_notebook(g: Grid, src: Path, params: dict[str, Any]) -> str:
    import papermill as pm

    out = g.generated_dir / src.name
    out.parent.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[1])
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(Path.cwd()), kernel_name="python3",
                            progress_bar=False, log_output=False, request_save_on_cell_execute=False)
    except pm.PapermillExecutionError as e:
        raise ReportError(f"notebook {src.name}: cell {e.exec_count} raised {e.ename}: {e.evalue} "
                          f"(executed copy with the traceback: {out})") from None
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    _tidy_parameters(out)
    return "executed"


def _tidy_parameters(path: Path) -> None:
    """In the executed copy: drop the default ``parameters`` cell from the page and fold the injected one."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
            cell.source = "# Parameters of this build (injected by ever report from the grid)\n" + cell.source
    nbformat.write(nb, str(path))


def jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise ReportError("jupyter-book not found: install the book extras (pip install -e '.[book]')")


def stage_book_sources(book_root: str | Path) -> Path:
    """Copy the book's own files, and nothing else, into ``<book_root>/_build/src`` and return that folder.

    The book is ``_config.yml``, ``_toc.yml`` and ``book/`` without the unexecuted source notebooks
    (``book/NN_*.ipynb``; the ToC points at their executed copies in ``book/generated/``) and without
    hidden files or folders. Sphinx reads every file under its source folder, so building from the
    checkout itself would read whatever else lies there (``.pytest_cache/README.md``, a virtual
    environment, run folders) and fail the ``-W`` build on it; an allow-list cannot be outgrown.
    """
    book_root = Path(book_root)
    src = book_root / "_build" / "src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(book_root / name, src / name)
    top, sources = str(book_root / "book"), {p.name for p in source_notebooks(book_root)}

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.startswith(".") or (folder == top and n in sources)]

    shutil.copytree(book_root / "book", src / "book", dirs_exist_ok=True, ignore=ignore)
    return src


def build_book(book_root: str | Path) -> Path:
    """``jupyter-book build`` of the staged book sources (:func:`stage_book_sources`) with warnings as
    errors; returns ``<book_root>/_build/html/index.html``."""
    book_root = Path(book_root)
    src = stage_book_sources(book_root)
    cmd = jupyter_book_cmd() + ["build", str(src), "--path-output", str(book_root), "-W", "--keep-going"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = book_root / "_build" / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout)
    index = book_root / "_build" / "html" / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise ReportError(f"jupyter-book build failed (exit {proc.returncode}, full log {log}):\n{tail}")
    _titled_redirect(index)
    return index


def _titled_redirect(index: Path) -> None:
    """Jupyter Book's top-level index.html is a bare redirect to the root page: give it a title and a link."""
    import re

    text = index.read_text(encoding="utf-8")
    m = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', text)
    if not m or "<title>" in text:
        return
    url = m.group(1)
    index.write_text(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>EVER</title>\n"
        f"<meta http-equiv=\"Refresh\" content=\"0; url={url}\">\n</head>\n"
        f"<body><p>The EVER book is at <a href=\"{url}\">{url}</a>.</p></body>\n</html>\n",
        encoding="utf-8")


def report(grid_path: str | Path = "configs/report.yaml", device: str | None = None) -> Path:
    """Run the whole pipeline of a grid; returns the built ``_build/html/index.html``."""
    g = load_grid(grid_path)
    if g.execute:  # before any work: a parameter no notebook declares would be silently ignored
        sources = source_notebooks(g.book_root)
        declared = {src: declared_parameters(src) for src in sources}
        unused = sorted(set(g.parameters) - set().union(*declared.values()))
        if unused:
            raise ReportError(f"{g.path}: notebooks.parameters.{unused[0]} is declared by no notebook "
                              f"under {g.book_root / 'book'}")
    timer = _Timer()
    g.runs_dir.mkdir(parents=True, exist_ok=True)

    def step(name: str, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            status = fn(*args)
        except ReportError:
            timer.add(name, time.perf_counter() - t0, "FAILED")
            print(timer.summary(), flush=True)
            raise
        except Exception as e:  # noqa: BLE001 - name the step that failed
            timer.add(name, time.perf_counter() - t0, "FAILED")
            print(timer.summary(), flush=True)
            raise ReportError(f"{name}: {type(e).__name__}: {e}") from e
        timer.add(name, time.perf_counter() - t0, status)

    step(f"data {g.data_name}", _step_data, g)
    cfg_dir = g.runs_dir / "configs"
    for spec in g.runs:
        step(f"train {spec.name}", _step_train, g, spec, device, cfg_dir / f"{spec.name}.yaml")
    for spec in g.runs:
        step(f"eval {spec.name}", _step_eval, g, spec)
        if (g.runs_dir / spec.name / "snapshots").is_dir():
            step(f"curve {spec.name}", _step_curve, g, spec)
    for kind in g.baselines:
        step(f"baseline {kind}", _step_baseline, g, kind)
    if g.execute:
        params = notebook_parameters(g)
        for src in sources:  # each notebook gets the parameters it declares
            step(f"notebook {src.stem}", _step_notebook, g, src, {k: v for k, v in params.items() if k in declared[src]})
    index = g.html_dir / "index.html"
    if g.build:
        step("jupyter-book build", lambda: (build_book(g.book_root), "built")[1])
    print(timer.summary(), flush=True)
    from ever.utils import atomic_write_json

    atomic_write_json(g.runs_dir / "report.json", {"grid": str(g.path), "device": device, "steps": timer.rows,
                                                  "index": str(index)})
    if g.build:
        print(f"ever report: book at {index}", flush=True)
    if not g.execute:
        print(results_text(g.runs_dir, g.split, [r.name for r in g.runs]), flush=True)
    return index


def results_text(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str:
    """The scores of the evaluated runs (``names``, default all) and baselines of ``runs_dir``, as Markdown."""
    df = summaries(runs_dir, split, names)
    if df.empty:
        return f"(no evaluation under {runs_dir} for split {split!r})"
    cols = [c for c in ("run", "J&F-Mean", "J-Mean", "F-Mean", "PCK@0.1", "PCK@0.2", "frames_per_s") if c in df]
    return df[cols].to_markdown(index=False, floatfmt=".3f")


def cli(args) -> int:
    report(args.grid, device=getattr(args, "device", None))
    return 0


# ------------------------------------------------------------------ read-only helpers for the notebooks

def note(text: str) -> None:
    """Show a visible sentence in a notebook (used where a result file is absent)."""
    from IPython.display import Markdown, display

    display(Markdown(f"> **Note.** {text}"))


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is None or isinstance(v, (str, int, float, bool))}


def model_runs(runs_dir: str | Path, names: list[str] | None = None) -> list[Path]:
    """Run folders (those with a ``config.yaml``), in the grid's order when ``names`` is given."""
    runs_dir = Path(runs_dir)
    if names:
        return [runs_dir / n for n in names if (runs_dir / n / "config.yaml").is_file()]
    if not runs_dir.is_dir():
        return []
    return sorted(p for p in runs_dir.iterdir() if (p / "config.yaml").is_file() and p.name != "baselines")


def run_config_flat(run_dir: str | Path) -> dict[str, Any]:
    """A run's saved config as a flat ``{"section.key": value}`` dict (lists as strings)."""
    try:
        raw = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return {k: (str(v) if isinstance(v, list) else v) for k, v in flatten(raw).items()}


def load_metrics(run_dir: str | Path):
    """``metrics.jsonl`` as a DataFrame (empty when absent)."""
    import pandas as pd

    rows = []
    try:
        for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    except (OSError, ValueError):
        pass
    return pd.DataFrame(rows)


def summaries(runs_dir: str | Path, split: str, names: list[str] | None = None, baselines: bool = True):
    """One row per evaluated run and baseline: its summary.json plus ``run`` and ``kind`` columns."""
    import pandas as pd

    rows = []
    for d in model_runs(runs_dir, names):
        s = read_json(d / "eval" / split / "summary.json")
        if s is not None:
            rows.append({"run": d.name, "kind": "model", **_scalars(s)})
    if baselines:
        for b in BASELINES:
            s = read_json(Path(runs_dir) / "baselines" / b / "eval" / split / "summary.json")
            if s is not None:
                rows.append({"run": f"baseline: {b}", "kind": "baseline", **_scalars(s)})
    return pd.DataFrame(rows)


def protocol_text(summary: dict[str, Any]) -> str:
    """One sentence naming the label-propagation protocol an evaluation used (from its summary.json)."""
    c = summary.get("cfg") or {}
    context = {"reference": "the reference (CRW) context: frame 0 unrestricted plus the preceding frames, the "
                            "video padded in front by copies of frame 0",
               "first_once": "frame 0 once plus the preceding frames (EVER's earlier protocol)"}.get(
        c.get("context"), f"context {c.get('context')!r}")
    size = f"frames resized to a long side of {c['long_side']} px" if c.get("long_side") else "native resolution"
    text = (f"Protocol: {context}; {c.get('n_context')} preceding frames, top-{c.get('topk')}, radius "
            f"{c.get('radius')} cells, temperature {c.get('temperature')}, first-frame labels resized "
            f"{'bilinearly' if c.get('label_resize') == 'bilinear' else 'by area averaging'}, {size}; J and F "
            "as the official DAVIS evaluation (F on seg2bmap boundaries, void as background)")
    if summary.get("pck_convention"):
        text += f"; PCK by the {summary['pck_convention'].upper()} convention"
    return text + "."


def eval_protocol(runs_dir: str | Path, split: str, names: list[str] | None = None) -> str | None:
    """:func:`protocol_text` of the first evaluated run (or baseline) of ``runs_dir``; None when none is."""
    dirs = model_runs(runs_dir, names) + [Path(runs_dir) / "baselines" / b for b in BASELINES]
    found = (read_json(d / "eval" / split / "summary.json") for d in dirs)
    first = next((s for s in found if s is not None), None)
    return protocol_text(first) if first is not None else None


def per_sequence(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """All ``per_sequence.csv`` files of runs and baselines stacked, with a ``run`` column."""
    import pandas as pd

    frames = []
    dirs = [(d.name, d) for d in model_runs(runs_dir, names)]
    dirs += [(f"baseline: {b}", Path(runs_dir) / "baselines" / b) for b in BASELINES]
    for name, d in dirs:
        f = d / "eval" / split / "per_sequence.csv"
        if f.is_file():
            df = pd.read_csv(f)
            df.insert(0, "run", name)
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def runs_table(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """One row per trained run: flat config, last logged metrics, eval summary, ledger totals."""
    import pandas as pd

    rows = []
    for d in model_runs(runs_dir, names):
        row: dict[str, Any] = {"run": d.name}
        row.update(run_config_flat(d))
        m = load_metrics(d)
        if len(m):
            last = m.iloc[-1]
            for k in ("loss", "acc", "clips_per_s"):
                if k in m:
                    row[f"final_{k}"] = last[k]
        s = read_json(d / "eval" / split / "summary.json") or {}
        row.update({k: v for k, v in _scalars(s).items() if k not in ("method", "data", "split", "device")})
        led = read_json(d / "ledger.json") or {}
        tot = ((led.get("phases") or {}).get("train") or {}).get("totals") or {}
        for k in ("seconds", "steps", "kwh", "co2_kg", "flops", "flops_per_clip", "peak_mem_bytes", "estimate"):
            if k in tot:
                row[f"train_{k}"] = tot[k]
        if tot.get("seconds") is not None and tot.get("steps"):
            row["train_s_per_step"] = tot["seconds"] / tot["steps"]
        for k in ("walk_flop_share", "gcn_flop_share"):
            if k in (tot.get("metrics") or {}):
                row[k] = tot["metrics"][k]
        rows.append(row)
    return pd.DataFrame(rows)


def varying_columns(df, prefix: tuple[str, ...] = ("data.", "model.", "nodes.", "walk.", "gcn.", "optim.", "train.")):
    """Config columns whose value differs between the rows (what an ablation changed)."""
    cols = []
    for c in df.columns:
        if c.startswith(prefix) and df[c].astype(str).nunique() > 1 and c not in NEUTRAL_KEYS:
            cols.append(c)
    return cols


def walk_example(checkpoint: str | Path, data_root: str | Path, split: str, seq_index: int = 0,
                 num_frames: int = 4, stride: int = 1) -> dict[str, Any]:
    """Transition matrices of a trained encoder on the first frames of an evaluation sequence.

    Nodes are grid cells average-pooled from the encoder's dense map (``PatchPoolNodes`` with the
    run's patch size and stride), embedded by its projection head and L2-normalised; the GCN (if any)
    is not applied. Returns ``{"frames" (T, H, W, 3) uint8, "mask0" (H, W), "centers" (N, 2) as
    (x, y) px, "grid" (gh, gw), "fwd" / "bwd" lists of (N, N) arrays, "temperature", "sequence"}``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ever.data.davis import DavisDataset
    from ever.models import load_checkpoint
    from ever.nodes import PatchPoolNodes
    from ever.walk import transition_matrices

    model, cfg = load_checkpoint(checkpoint)
    ds = DavisDataset(str(data_root), split=split)
    name = ds.sequences[seq_index % len(ds.sequences)]
    seq = ds.sequence(name)
    idx = [min(i * stride, len(seq) - 1) for i in range(num_frames)]
    frames = np.stack([seq.frame(i) for i in idx])
    mask0 = np.asarray(seq.first_mask())
    H, W = (frames.shape[1] // 8) * 8, (frames.shape[2] // 8) * 8
    frames, mask0 = frames[:, :H, :W], mask0[:H, :W]
    p = max(8, (cfg.nodes.patch_size // 8) * 8)
    s = max(8, (cfg.nodes.patch_stride // 8) * 8)
    p = min(p, (min(H, W) // 8) * 8)
    extractor = PatchPoolNodes(p, s)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None]  # (1, T, 3, H, W)
    with torch.no_grad():
        feats, valid = extractor(model.dense, x)
        emb = F.normalize(model.head(feats).float(), dim=-1)
        fwd, bwd = transition_matrices(emb, valid, temperature=cfg.walk.temperature)
    gh, gw = (H - p) // s + 1, (W - p) // s + 1
    ys, xs = np.meshgrid(np.arange(gh) * s + p / 2, np.arange(gw) * s + p / 2, indexing="ij")
    return {"frames": frames, "mask0": mask0, "centers": np.stack([xs.ravel(), ys.ravel()], 1),
            "grid": (gh, gw), "fwd": [a[0].numpy() for a in fwd], "bwd": [b[0].numpy() for b in bwd],
            "temperature": cfg.walk.temperature, "sequence": name, "patch": p, "stride": s}


def walk_flops(nodes: list[int], T: int = 4, dim: int = 64) -> list[dict[str, Any]]:
    """FLOPs of one palindrome walk loss (forward, one clip) for each node count (:func:`ever.walk.walk_flops`)."""
    from ever.walk import walk_flops as count

    return [{"nodes": n, "flops": count(1, T, n, dim, backward=False), "T": T, "dim": dim} for n in nodes]


def ablation_table(runs_dir: str | Path, split: str, names: list[str] | None = None):
    """The object/GCN ablation, one row per trained run: node type, nodes per frame, GCN, J&F, and what a
    run cost (training GFLOPs per clip, the walk's and the GCN's share of those FLOPs, seconds per step,
    peak memory, kWh). Nodes per frame is the training graph's size (:func:`ever.gcn.graph_size`)."""
    import pandas as pd

    from ever.config import load_config
    from ever.gcn import graph_size

    T = runs_table(runs_dir, split, names)
    rows = []
    for _, r in T.iterrows():
        try:
            cfg = load_config(Path(runs_dir) / r["run"] / "config.yaml")
        except Exception:  # noqa: BLE001 - an unreadable config is left out of the table, not fatal
            continue
        rows.append({
            "run": r["run"],
            "nodes": cfg.nodes.kind if cfg.nodes.kind != "object" else f"object ({cfg.nodes.segmenter})",
            "N/frame": graph_size(cfg)[1],
            "GCN": bool(cfg.gcn.enabled),
            "J&F": r.get("J&F-Mean"),
            "GFLOPs/clip": _div(r.get("train_flops_per_clip"), 1e9),
            "walk % of FLOPs": _div(r.get("walk_flop_share"), 0.01),
            "GCN % of FLOPs": _div(r.get("gcn_flop_share"), 0.01),
            "s/step": r.get("train_s_per_step"),
            "peak MB": _div(r.get("train_peak_mem_bytes"), 2**20),
            "kWh": r.get("train_kwh"),
        })
    return pd.DataFrame(rows)


def _div(v: Any, d: float) -> float | None:
    return None if v is None or v != v else float(v) / d


def green_claim(table, reference: str | None = None, factor: float = 5.0, tolerance: float = 0.02) -> dict[str, Any]:
    """Test "object nodes reach the patch walk's accuracy at >= ``factor``x less compute" on an
    :func:`ablation_table`: for every object run, its J&F gap to the ``reference`` patch run (default:
    the first patch run without GCN) and its compute ratio (reference GFLOPs per clip / its own).
    ``holds`` when some object run is within ``tolerance`` J&F of the reference (or above it) at a
    ratio >= ``factor``; None when there is nothing to compare."""
    if reference is None:
        patch = table[~table["nodes"].str.startswith("object") & ~table["GCN"]] if len(table) else table
        reference = str(patch["run"].iloc[0]) if len(patch) else ""
    ref = table[table["run"] == reference] if len(table) else table
    if ref.empty or ref["J&F"].isna().all():
        return {"reference": reference, "holds": None, "rows": [], "why": f"no evaluated run {reference!r}"}
    ref_jf, ref_fl = float(ref["J&F"].iloc[0]), ref["GFLOPs/clip"].iloc[0]
    rows = []
    for _, r in table[table["nodes"].str.startswith("object")].iterrows():
        if r["J&F"] is None or r["J&F"] != r["J&F"]:
            continue
        ratio = None if ref_fl is None or not r["GFLOPs/clip"] else float(ref_fl) / float(r["GFLOPs/clip"])
        gap = float(r["J&F"]) - ref_jf
        rows.append({"run": r["run"], "J&F gap": gap, "compute ratio": ratio,
                     "equal accuracy": gap >= -tolerance, "cheap enough": ratio is not None and ratio >= factor})
    holds = any(x["equal accuracy"] and x["cheap enough"] for x in rows) if rows else None
    return {"reference": reference, "reference_jf": ref_jf, "factor": factor, "tolerance": tolerance,
            "holds": holds, "rows": rows}
