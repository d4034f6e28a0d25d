"""The grid of ``ever report``: which data, runs, baselines, split and notebook parameters one report makes.

A grid file (``configs/report*.yaml``: the default, ``-tiny`` for tests, ``-gpu``, ``-davis-dev``, ``-ship``,
``-green``, ...) is read by :func:`load_grid` into a typed :class:`Grid`; a row with ``seeds`` becomes one run
per seed (``<name>-s<seed>``). :mod:`ever.report` runs it; :mod:`ever.analysis.sources` reads which runs a
study holds from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ever.errors import EverError
from ever.evaluate import BASELINES


class GridError(EverError):
    """A grid file is unreadable or wrong (the message names the file and the key)."""


@dataclass
class RunSpec:
    """One run of the grid: ``runs/<name>/`` trained from ``config`` with ``set`` overrides. With
    ``seeds: [0, 1, 2]`` the grid file's row stands for one run per seed, ``<name>-s<seed>``."""

    name: str = ""
    config: str = ""
    set: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


@dataclass
class GridData:
    name: str = "ever-synth"  # a dataset of data_manifest/ that ever.data.synth generates, or one given
    root: str = "data/ever-synth"  # DAVIS-layout folder (generated when absent and name is ever-synth)
    options: dict[str, Any] = field(default_factory=dict)  # SynthConfig fields
    override_run_data: bool = True  # every run trains on <root>/videos/train and evaluates on <root>


@dataclass
class GridPaths:
    runs: str = "runs"  # runs/<name>/, runs/baselines/<kind>/, runs/logs/, runs/report.json
    book: str = "."  # the folder holding _config.yml, _toc.yml and book/


@dataclass
class GridBaselines:
    kinds: list[str] = field(default_factory=lambda: list(BASELINES))
    random_config: str | None = None  # architecture of the random-init baseline (default: the first run's)


@dataclass
class GridNotebooks:
    parameters: dict[str, Any] = field(default_factory=dict)  # extra papermill parameters
    execute: bool = True  # false: runs and evaluations only, no notebooks, no book


@dataclass
class GridClaims:
    """What the grid's comparisons are judged against, declared before its runs."""

    # The minimal effect of interest in J&F: a comparison whose 95 % interval lies within [-min_effect,
    # min_effect] shows "no effect larger than min_effect" (ever.analysis.claims.verdict); None: no claim of
    # no effect is possible, a difference is only raised, lowered or undecided.
    min_effect: float | None = None


@dataclass
class GridTime:
    """How long the grid took when it ran (issue 34): measured, never estimated. ``source: ledgers`` means
    ``hours`` is the sum of the training and evaluation wall seconds that the ledgers of its results snapshot
    record (:func:`ever.analysis.tables.measured_time`; tests/test_readme.py checks the two agree), which leaves
    out data generation and the book; any other ``source`` says in words where the figure comes from."""

    hours: float | None = None  # wall-clock hours of one run of the grid; None: never run to the end
    date: str = ""  # when it ran (YYYY-MM-DD, or a span)
    machine: str = ""  # what it ran on (cores, CPU or GPU)
    load: str = ""  # what else ran beside it (wall times grow with it; FLOPs do not)
    source: str = ""  # "ledgers", or where the figure comes from


@dataclass
class Grid:
    """A grid file (``configs/report*.yaml``), typed and checked like a run config (:mod:`ever.config`)."""

    data: GridData = field(default_factory=GridData)
    paths: GridPaths = field(default_factory=GridPaths)
    split: str = "val"  # evaluation split of the DAVIS-layout data
    common_set: list[str] = field(default_factory=list)  # key=value overrides of every run
    eval_set: list[str] = field(default_factory=list)  # eval.* overrides of every evaluation
    runs: list[RunSpec] = field(default_factory=list)
    baselines: GridBaselines = field(default_factory=GridBaselines)
    notebooks: GridNotebooks = field(default_factory=GridNotebooks)
    claims: GridClaims = field(default_factory=GridClaims)
    time: GridTime = field(default_factory=GridTime)  # how long it took when it ran, as measured
    build: bool = True  # false: stop after executing the notebooks
    bench: bool = True  # measure the walk's cost against nodes (bench/walk.py, small sizes) for chapter 6
    title: str = ""  # what a results snapshot of this grid (--snapshot) is called in the README and the book
    note: str = ""  # what its runs are, in words, for the snapshot (data, steps, sequences, resolution)
    path: Path = field(default=Path("configs/report.yaml"), metadata={"internal": True})  # the file it came from

    @property
    def data_root(self) -> Path:
        return Path(self.data.root)

    @property
    def runs_dir(self) -> Path:
        return Path(self.paths.runs)

    @property
    def book_root(self) -> Path:
        return Path(self.paths.book)

    @property
    def random_config(self) -> str | None:
        return self.baselines.random_config or (self.runs[0].config if self.runs else None)

    @property
    def generated_dir(self) -> Path:
        return self.book_root / "book" / "generated"

    @property
    def html_dir(self) -> Path:
        return self.book_root / "_build" / "html"


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid YAML file (unknown keys and bad values are one-line errors naming the key)."""
    from ever.config import ConfigError, dataclass_from_dict
    from ever.utils import read_yaml

    path = Path(path)
    raw = read_yaml(path, GridError, "grid file") or {}
    if not isinstance(raw, dict):
        raise GridError(f"{path}: expected a mapping at the top level")
    if isinstance(raw.get("baselines"), list):  # `baselines: [copy, lab]` is short for `baselines: {kinds: [...]}`
        raw = {**raw, "baselines": {"kinds": raw["baselines"]}}
    try:
        g = dataclass_from_dict(Grid, raw, str(path))
    except ConfigError as e:
        raise GridError(str(e)) from None
    g.path = path
    g.build = g.build and g.notebooks.execute  # no book without executed notebooks
    g.runs = [
        x
        for r in g.runs  # a row with seeds: one run per seed
        for x in ([RunSpec(f"{r.name}-s{s}", r.config, [*r.set, f"seed={s}"]) for s in r.seeds] or [r])
    ]
    names = [r.name for r in g.runs]
    for i, r in enumerate(g.runs):
        if not r.name or not r.config:
            raise GridError(f"{path}: runs[{i}] needs 'name' and 'config'")
        if names.count(r.name) > 1 or r.name == "baselines" or "/" in r.name:
            raise GridError(f"{path}: runs[{i}]: bad or duplicate run name {r.name!r}")
    m = g.claims.min_effect
    if m is not None and not 0 < m < 1:
        raise GridError(f"{path}: claims.min_effect must be a J&F difference between 0 and 1, got {m!r}")
    t = g.time
    if (t.hours is not None and t.hours <= 0) or (t.source == "ledgers" and t.hours is None):
        raise GridError(f"{path}: time.hours must be measured wall hours > 0 (with source: ledgers), got {t.hours!r}")
    bad = [b for b in g.baselines.kinds if b not in BASELINES]
    if bad:
        raise GridError(f"{path}: unknown baseline {bad[0]!r} (known: {', '.join(BASELINES)})")
    return g
