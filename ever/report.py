"""``ever report``: data -> training -> evaluation -> baselines -> notebooks -> book, from one grid file.

A *grid* (``configs/report*.yaml``: the default, ``-tiny`` for tests, ``-gpu``, ``-davis-dev``, ``-ship``,
``-green``) says
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

``jobs`` > 1 (``ever report --jobs N``) trains and scores that many runs at once, each run's train ->
eval -> curve in order, then the baselines that many at a time; notebooks and the book follow, one by one.
On a CPU each job's subprocesses get ``OMP_NUM_THREADS`` = cores // jobs unless it is set (several
one-thread runs use a small machine better than one run on every core). A failing run stops neither the
others nor what they computed: the first failure is raised when every job has ended.

The grid file's schema is :mod:`ever.grid`; what the notebooks read back from the run folders (tables,
curves, verdicts) is :mod:`ever.analysis`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ever.analysis.sources import SCRATCH, training_curve
from ever.analysis.wording import results_text
from ever.config import NEUTRAL_KEYS, flatten
from ever.errors import EverError
from ever.grid import Grid, RunSpec, load_grid
from ever.runs import (
    CONFIG_FILE,
    CURVE_FILE,
    ENV_FILE,
    LEDGER_FILE,
    METRICS_FILE,
    PER_SEQUENCE_FILE,
    SUMMARY_FILE,
    RunDir,
    baseline_dir,
    read_json,
    result_dirs,
)

NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class ReportError(EverError):
    """A step of the report failed (the message names the step and the run)."""


# ------------------------------------------------------------------------------------------ helpers


def config_differences(
    saved: dict[str, Any], wanted: dict[str, Any], ignore: tuple[str, ...] = NEUTRAL_KEYS
) -> dict[str, tuple[Any, Any]]:
    """``{key: (saved value, wanted value)}`` for every flat config field but ``ignore`` where two config dicts
    differ (a field one of them lacks, saved before it existed, counts at its default:
    :func:`ever.config.with_defaults`)."""
    from ever.config import with_defaults

    a = {k: v for k, v in flatten(with_defaults(saved)).items() if k not in ignore}
    b = {k: v for k, v in flatten(with_defaults(wanted)).items() if k not in ignore}
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def configs_match(saved: dict[str, Any], wanted: dict[str, Any], ignore: tuple[str, ...] = NEUTRAL_KEYS) -> bool:
    """True when two config dicts are equal on every field except ``ignore`` (:func:`config_differences`)."""
    return not config_differences(saved, wanted, ignore)


def _show_path(p: Path) -> str:
    """A path as the notebooks get it: relative to the working folder when inside it."""
    p = Path(os.path.abspath(p))
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def _ever(*args: str, log: Path | None = None) -> None:
    """Run ``python -m ever.cli ARGS`` in a subprocess; raise ReportError with its last lines on failure."""
    _run([sys.executable, "-m", "ever.cli", *args], log)


def _run(cmd: list[str], log: Path | None = None) -> None:
    """Run ``cmd`` with this checkout's ``ever`` importable; raise ReportError with its last lines on failure."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        shown = ["ever", *cmd[3:]] if cmd[1:3] == ["-m", "ever.cli"] else cmd[1:]
        raise ReportError(f"`{' '.join(map(str, shown))}` failed (exit {proc.returncode}):\n{tail}")


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


def _in_parallel(jobs: int, fn, items) -> None:
    """``fn(item)`` for every item, ``jobs`` at a time; when every call has ended, raise the first failure
    (in the order of ``items``): one failing run neither stops the others nor loses what they computed."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(fn, item) for item in items]
    for f in futures:
        f.result()


@contextlib.contextmanager
def _threads_per_job(jobs: int, device: str | None):
    """On a CPU, ``OMP_NUM_THREADS`` = cores // ``jobs`` (at least 1) for the subprocesses started inside,
    unless the caller set it; restored afterwards."""
    import torch

    if "OMP_NUM_THREADS" in os.environ or (device != "cpu" and torch.cuda.is_available()):
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


# ------------------------------------------------------------------------------------------ steps


def _step_data(g: Grid) -> str:
    if g.data.name != "ever-synth":
        if not g.data_root.is_dir():
            raise ReportError(f"data: {g.data_root} not found (only ever-synth is generated by the report)")
        return "given"
    from ever.data import synth

    items = [f"{k}={json.dumps(v)}" for k, v in g.data.options.items()]
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
    if g.data.override_run_data:
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
    saved = RunDir(run_dir).config_path
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
    from ever.utils import sha256_file

    key: dict[str, Any] = {"data": str(g.data_root), "data_digest": sha256_file(sums) if sums.is_file() else None}
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
    rd = RunDir(g.runs_dir / spec.name)
    ckpt = rd.path / "checkpoint.pt"
    if _fresh(rd.summary_path(g.split), ckpt) and _same_inputs(rd.eval_dir(g.split), _inputs(g, True)):
        return "cached"
    return _run_eval(g, str(ckpt), rd.config_path, rd.eval_dir(g.split), f"eval {spec.name}", f"eval-{spec.name}")


def _step_curve(g: Grid, spec: RunSpec) -> str:
    """Evaluate every snapshot of a run (``train.snapshot_every``) and write ``<run>/curve.csv``: accuracy
    against training compute (:func:`training_curve`)."""
    from ever.config import snapshot_step

    rd = RunDir(g.runs_dir / spec.name)
    steps = int(rd.config_flat()["train.steps"])
    done = 0
    for snap in sorted((rd.path / "snapshots").glob("step-*.pt")):
        if snapshot_step(snap.stem) == steps:  # the final weights (older runs): the run's own evaluation scores them
            continue
        out = rd.curve_eval_dir(snap.stem, g.split)
        if _fresh(out / SUMMARY_FILE, snap) and _same_inputs(out, _inputs(g, True)):
            continue
        _run_eval(g, str(snap), rd.config_path, out, f"curve {spec.name} {snap.stem}", f"curve-{spec.name}-{snap.stem}")
        done += 1
    from ever.utils import atomic_write_text

    atomic_write_text(rd.curve_path, training_curve(rd.path, g.split).to_csv(index=False))
    return f"{done} evaluated" if done else "cached"


def _run_eval(g: Grid, what: str, config: Path, out: Path, label: str, log_name: str) -> str:
    """``ever eval WHAT --config CONFIG`` on the grid's data into ``out`` (a checkpoint or a baseline kind)."""
    args = ["eval", what, "--config", str(config), "--data", str(g.data_root), "--split", g.split, "--out", str(out)]
    for s in g.eval_set:
        args += ["--set", s]
    _ever(*args, log=g.runs_dir / "logs" / f"{log_name}.log")
    if not (out / SUMMARY_FILE).is_file():
        raise ReportError(f"{label}: finished without writing {out / SUMMARY_FILE}")
    _write_inputs(out, _inputs(g, True))
    return "evaluated"


def baseline_config(g: Grid):
    """Config of the baselines: ``random_config`` with the grid's ``common_set`` (same architecture as the
    runs) and eval settings; copy and lab use only its ``eval`` section."""
    from ever.config import load_config

    if not g.random_config:
        raise ReportError("baselines: no config for the random encoder's architecture (baselines.random_config)")
    return load_config(
        g.random_config,
        list(g.common_set)
        + ["name=baselines", f"out_dir={g.runs_dir}", f"eval.data={g.data_root}", f"eval.split={g.split}"],
    )


def _save_baseline_config(g: Grid) -> Path:
    """Write ``<runs>/configs/baselines.yaml`` unless it already holds :func:`baseline_config` (a new baseline
    config makes every baseline stale: their summaries are then older than it)."""
    from ever.config import save_config

    cfg = baseline_config(g)
    cfg_path = g.runs_dir / "configs" / "baselines.yaml"
    old = None
    if cfg_path.is_file():
        try:
            old = yaml.safe_load(cfg_path.read_text())
        except yaml.YAMLError:
            old = None
    if old is None or not configs_match(old, cfg.to_dict()):
        save_config(cfg, cfg_path)
    return cfg_path


def _step_baseline(g: Grid, kind: str) -> str:
    out = RunDir(baseline_dir(g.runs_dir, kind)).eval_dir(g.split)
    cfg_path = _save_baseline_config(g)
    if _fresh(out / SUMMARY_FILE, cfg_path) and _same_inputs(out, _inputs(g, True)):
        return "cached"
    return _run_eval(g, kind, cfg_path, out, f"baseline {kind}", f"eval-baseline-{kind}")


def _step_bench(g: Grid) -> str:
    """The walk's cost against nodes per frame, measured by ``bench/walk.py`` at small sizes (chapter 6);
    kept once written (delete ``runs/bench/walk.json`` to measure again)."""
    out = g.runs_dir / "bench" / "walk.json"
    script = g.book_root / "bench" / "walk.py"
    if out.is_file():
        return "cached"
    if not script.is_file():
        return "no bench/"
    _run(
        [sys.executable, str(script), "--nodes", "8,16,32,64,128", "--steps", "1", "--json", str(out)],
        log=g.runs_dir / "logs" / "bench-walk.log",
    )
    return "measured"


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
    params.update(g.notebooks.parameters)
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
        pm.execute_notebook(
            str(src),
            str(out),
            parameters=params,
            cwd=str(Path.cwd()),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
        )
    except pm.PapermillExecutionError as e:
        raise ReportError(
            f"notebook {src.name}: cell {e.exec_count} raised {e.ename}: {e.evalue} "
            f"(executed copy with the traceback: {out})"
        ) from None
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    _tidy_parameters(out)
    return "executed"


def _tidy_parameters(path: Path) -> None:
    """In the executed copy: drop the default ``parameters`` cell from the page, fold the injected one, and
    remove every code cell that shows nothing (no output: imports, parameters), which would otherwise
    leave an empty "show code" toggle on the page."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
            cell.source = "# Parameters of this build (injected by ever report from the grid)\n" + cell.source
        if cell.cell_type == "code" and not cell.get("outputs") and "remove-cell" not in tags:
            tags.append("remove-cell")
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
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>EVER</title>\n'
        f'<meta http-equiv="Refresh" content="0; url={url}">\n</head>\n'
        f'<body><p>The EVER book is at <a href="{url}">{url}</a>.</p></body>\n</html>\n',
        encoding="utf-8",
    )


def part_of(g: Grid, only: list[str]) -> list[RunSpec]:
    """The runs of ``g`` that ``only`` names, by cell or by run, in the grid's order (a name that is neither is
    refused, naming the grid's cells)."""
    from ever.analysis.stats import cell_of

    cells = list(dict.fromkeys(cell_of(r.name) for r in g.runs))
    for name in only:
        if not any(name in (r.name, cell_of(r.name)) for r in g.runs):
            raise ReportError(f"{g.path}: --only {name} is no cell or run of the grid (its cells: {', '.join(cells)})")
    return [r for r in g.runs if r.name in only or cell_of(r.name) in only]


def report(
    grid_path: str | Path = "configs/report.yaml", device: str | None = None, jobs: int = 1, only: list[str] = ()
) -> Path:
    """Run the whole pipeline of a grid, ``jobs`` runs at a time; returns the built ``_build/html/index.html``.
    ``only``: names of cells (``name`` of a grid row) or runs (``<name>-s<seed>``) of the grid: train and score
    those alone, no baselines, notebooks or book (e.g. seeds added to a grid whose other runs live in its
    committed snapshot: :func:`snapshot`'s ``carry``)."""
    if jobs < 1:
        raise ReportError(f"--jobs must be >= 1, got {jobs}")
    g = load_grid(grid_path)
    if only:
        g.runs = part_of(g, only)
        g.baselines.kinds, g.notebooks.execute, g.build = [], False, False
    if g.notebooks.execute:  # before any work: a parameter no notebook declares would be silently ignored
        sources = source_notebooks(g.book_root)
        declared = {src: declared_parameters(src) for src in sources}
        unused = sorted(set(g.notebooks.parameters) - set().union(*declared.values()))
        if unused:
            raise ReportError(
                f"{g.path}: notebooks.parameters.{unused[0]} is declared by no notebook under {g.book_root / 'book'}"
            )
    timer = _Timer()
    g.runs_dir.mkdir(parents=True, exist_ok=True)
    index = g.html_dir / "index.html"
    from ever.utils import atomic_write_json

    lock = threading.Lock()  # jobs > 1: one step at a time writes the timer and report.json

    def log(status: str) -> None:  # runs/report.json after every step: chapter 7 shows this run's steps so far
        atomic_write_json(
            g.runs_dir / "report.json",
            {"grid": str(g.path), "device": device, "status": status, "steps": timer.rows, "index": str(index)},
        )

    def step(name: str, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            status = fn(*args)
        except Exception as e:  # noqa: BLE001 - name the step that failed
            with lock:
                timer.add(name, time.perf_counter() - t0, "FAILED")
                log("failed")
                print(timer.summary(), flush=True)
            if isinstance(e, ReportError):
                raise
            raise ReportError(f"{name}: {type(e).__name__}: {e}") from e
        with lock:
            timer.add(name, time.perf_counter() - t0, status)
            log("running")

    step(f"data {g.data.name}", _step_data, g)
    cfg_dir = g.runs_dir / "configs"

    def train(spec: RunSpec) -> None:
        step(f"train {spec.name}", _step_train, g, spec, device, cfg_dir / f"{spec.name}.yaml")

    def score(spec: RunSpec) -> None:  # its final weights, then those kept along training
        step(f"eval {spec.name}", _step_eval, g, spec)
        if (g.runs_dir / spec.name / "snapshots").is_dir():
            step(f"curve {spec.name}", _step_curve, g, spec)

    if jobs == 1:  # every training first, then every evaluation: the order of the runs, as always
        for spec in g.runs:
            train(spec)
        for spec in g.runs:
            score(spec)
        for kind in g.baselines.kinds:
            step(f"baseline {kind}", _step_baseline, g, kind)
    else:
        if g.baselines.kinds:
            _save_baseline_config(g)  # once, before the baselines that read it run side by side
        with _threads_per_job(jobs, device):
            _in_parallel(jobs, lambda spec: (train(spec), score(spec)), g.runs)
            _in_parallel(jobs, lambda kind: step(f"baseline {kind}", _step_baseline, g, kind), g.baselines.kinds)
    if g.bench and g.notebooks.execute:
        step("bench walk", _step_bench, g)
    if g.notebooks.execute:
        params = notebook_parameters(g)
        for src in sources:  # each notebook gets the parameters it declares
            step(
                f"notebook {src.stem}", _step_notebook, g, src, {k: v for k, v in params.items() if k in declared[src]}
            )
    if g.build:
        step("jupyter-book build", lambda: (build_book(g.book_root), "built")[1])
    print(timer.summary(), flush=True)
    log("finished")
    if g.build:
        print(f"ever report: book at {index}", flush=True)
    if not g.notebooks.execute:
        print(results_text(g.runs_dir, g.split, [r.name for r in g.runs]), flush=True)
    return index


RUN_FILES = (CONFIG_FILE, LEDGER_FILE, METRICS_FILE, CURVE_FILE, ENV_FILE)
EVAL_FILES = (SUMMARY_FILE, PER_SEQUENCE_FILE)


def snapshot(
    runs_dir: str | Path,
    out: str | Path,
    split: str,
    command: str,
    names: list[str] | None = None,
    title: str = "",
    note: str = "",
    carry: Grid | None = None,
) -> Path:
    """Copy the small result files of a grid's runs into ``out``, a *results snapshot* meant to be committed
    (``results/<study>/``): the same layout as ``runs_dir`` (so every :mod:`ever.analysis` reader works on it)
    holding only each run's :data:`RUN_FILES` and each run's and baseline's ``eval/<split>/`` :data:`EVAL_FILES`
    (no checkpoints, masks or overlays), plus ``SNAPSHOT.json`` (:func:`_write_snapshot`).

    ``carry`` (the grid of ``names``; ``ever report --only``): a run or baseline not evaluated under ``runs_dir``
    is taken from the snapshot already at ``out`` instead, when that one has it; a run only when the config it
    was trained with is the one ``carry`` trains today (:func:`configs_match`), else refused naming the run and
    the keys. ``SNAPSHOT.json`` lists what was carried (``carried``)."""
    runs_dir, out = Path(runs_dir), Path(out)
    listed = result_dirs(runs_dir, names)
    found = [(label, d, runs_dir) for label, d in listed if RunDir(d).summary_path(split).is_file()]
    carried = []
    if carry is not None and out.is_dir():
        have = {label for label, _, _ in found}
        specs = {r.name: r for r in carry.runs}
        committed = result_dirs(out, names)
        for label, d in committed:
            if label in have or not RunDir(d).summary_path(split).is_file():
                continue
            if not label.startswith("baseline: "):
                if label not in specs:  # a run the grid no longer has
                    continue
                _check_carried(carry, specs[label], d)
            found.append((label, d, out))
            carried.append(label)
        both = [label for label, _ in listed + committed]
        order = list(dict.fromkeys([*(names or []), *both]))
        # the runs in the grid's order, then the baselines
        found.sort(key=lambda f: (f[0].startswith("baseline: "), order.index(f[0])))
    pairs = [(label, d) for label, d, _ in found]
    if not pairs:
        raise ReportError(f"{runs_dir}: no evaluation summary (eval/{split}/summary.json) to snapshot")
    tmp = _scratch(out)
    for _, d, root in found:
        dst = tmp / d.relative_to(root)
        for f in RUN_FILES:
            if (d / f).is_file():
                dst.mkdir(parents=True, exist_ok=True)
                shutil.copy2(d / f, dst / f)
        _copy_eval(RunDir(d).eval_dir(split), RunDir(dst).eval_dir(split))
    return _write_snapshot(
        tmp,
        out,
        {
            "kind": "runs",
            "command": command,
            "split": split,
            "title": title,
            "note": note,
            "runs": [label for label, _ in pairs],
            **({"carried": carried} if carried else {}),
        },
        [d for _, d in pairs],
    )


def _check_carried(g: Grid, spec: RunSpec, run_dir: Path) -> None:
    """Refuse to carry ``run_dir`` (a run of a committed snapshot) into a snapshot of ``g`` unless ``g`` would
    train it with the config it was trained with."""
    try:
        saved = yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ReportError(f"{run_dir / CONFIG_FILE}: cannot carry {spec.name} without its config ({e})") from e
    diff = config_differences(saved, run_config(g, spec).to_dict())
    if diff:
        raise ReportError(
            f"{run_dir}: {spec.name} was trained with another config than {g.path} gives it now ({', '.join(diff)}); "
            "train it again (without --only) instead of carrying it"
        )


def snapshot_evaluations(
    evals: dict[str, str | Path],
    out: str | Path,
    command: str,
    title: str = "",
    note: str = "",
    compare: list[tuple[str, str]] = (),
) -> Path:
    """A results snapshot of bare evaluations (``ever eval --out DIR`` folders, e.g. one method under several
    protocols): ``out/<label>/`` holds each one's :data:`EVAL_FILES`; ``SNAPSHOT.json`` has kind
    ``evaluations``, the labels in order and ``compare``, the pairs of labels to set against each other
    sequence by sequence. ``ever.analysis.sources.evaluation_table`` and
    ``ever.analysis.wording.evaluation_comparisons`` read it."""
    out = Path(out)
    if not evals:
        raise ReportError(f"{out}: no evaluation to snapshot")
    for pair in compare:
        if len(pair) != 2 or not set(pair) <= set(evals):
            raise ReportError(f"{out}: compare {list(pair)} must name two of the evaluations ({', '.join(evals)})")
    tmp = _scratch(out)
    for label, d in evals.items():
        if not (Path(d) / SUMMARY_FILE).is_file():
            raise ReportError(f"{d}: no summary.json to snapshot")
        _copy_eval(Path(d), tmp / label)
    return _write_snapshot(
        tmp,
        out,
        {
            "kind": "evaluations",
            "command": command,
            "title": title,
            "note": note,
            "evaluations": list(evals),
            "compare": [list(p) for p in compare],
        },
        [],
    )


def _scratch(out: Path) -> Path:
    """An empty folder beside ``out`` to write a snapshot into before it replaces ``out``."""
    tmp = out.with_name(out.name + SCRATCH[0])
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def _copy_eval(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in EVAL_FILES:
        if (src / f).is_file():
            shutil.copy2(src / f, dst / f)


def _write_snapshot(tmp: Path, out: Path, info: dict[str, Any], run_dirs: list[Path]) -> Path:
    """Write ``tmp/SNAPSHOT.json`` (``info`` plus the commit of this code, the commits the runs recorded in
    their ``env.json`` as ``trained_at``, the runs trained from package code that differed from its commit as
    ``trained_changes`` {run folder: changed files}, the date and the machine), then put ``tmp`` in place of
    ``out``: the old snapshot is renamed aside first and deleted last, so ``out`` is always one whole snapshot."""
    from datetime import datetime, timezone

    from ever.energy import hardware_info
    from ever.utils import atomic_write_json, git_commit

    hw = hardware_info("cpu")
    envs = {d.name: read_json(d / "env.json") or {} for d in run_dirs}
    trained_at = sorted({env.get("git_commit") for env in envs.values()} - {None})
    code = f"{Path(__file__).resolve().parent.name}/"  # runs before ever.utils.git_changes kept to the package
    trained_changes = {
        name: changed
        for name, env in envs.items()  # listed every tracked file: keep its code
        if (changed := [f for f in env.get("git_changes") or [] if f.startswith(code)])
    }
    atomic_write_json(
        tmp / "SNAPSHOT.json",
        {
            **info,
            "commit": git_commit(Path(__file__).resolve().parent),
            "trained_at": trained_at,
            "trained_changes": trained_changes,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            "machine": {
                "cpu": hw["cpu_model"],
                "cpu_count": hw["cpu_count_usable"],
                "ram_gb": hw["ram_gb"],
                "gpus": [gpu["name"] for gpu in hw["gpus"]],
            },
        },
    )
    old = out.with_name(out.name + SCRATCH[1])
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def cli(args) -> int:
    only = getattr(args, "only", None) or []
    report(args.grid, device=getattr(args, "device", None), jobs=getattr(args, "jobs", 1), only=only)
    if getattr(args, "snapshot", None):
        g = load_grid(args.grid)
        cmd = f"ever report --grid {_show_path(g.path)}" + (f" --device {args.device}" if args.device else "")
        out = snapshot(
            g.runs_dir,
            args.snapshot,
            g.split,
            cmd,
            [r.name for r in g.runs],
            title=g.title or f"`{_show_path(g.path)}` on `{g.data.name}` (split `{g.split}`)",
            note=g.note,
            carry=g if only else None,
        )
        print(f"ever report: results snapshot at {out}", flush=True)
    return 0
