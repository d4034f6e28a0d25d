"""One training step taken apart (issue 34): why object crops cost far fewer FLOPs than patch crops but not
far less time. Reads the snapshot ``bench/step_breakdown.py`` writes (``results/step-breakdown/breakdown.json``)
and returns tables and the sentences that explain the gap from its numbers. No figure is typed here.

    snap = load("results/step-breakdown/breakdown.json")
    part_table(snap, 1)        # parts x cells: ms of CPU, share of the step, ms of wall time, GFLOPs
    gap_table(snap, 1)         # per cell: GFLOPs, CPU and wall seconds a step, encoder throughput; ratios
    conv_table(snap, 1)        # per cell: the encoder's convolution calls (images, map sizes, GFLOP/s)
    gap_text(snap)             # what scales with FLOPs and what does not, in words
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ever.errors import EverError

PARTS = (
    "data",
    "segmentation",
    "home view",
    "crops",
    "encoder forward",
    "walk + loss",
    "head + glue",
    "encoder backward",
    "backward rest",
    "optimiser",
    "other",
)
ENCODER = ("encoder forward", "encoder backward")
WORKERS = ("data", "segmentation")  # in training these run in the DataLoader's workers
KEYS = ("commit", "command", "date", "machine", "threads", "load_average", "settings", "cells", "rows", "convs")
CELLS = ("objcrop8", "patchcrop49", "patchpool49")  # object crops, patch crops, pooled patches


def load(path: str | Path) -> dict[str, Any]:
    """The snapshot as a dict, checked: its keys, the three cells, every part of every timed step once,
    no negative time (a one-line :class:`EverError` naming the file otherwise)."""
    path = Path(path)
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EverError(
            f"{path}: no step-breakdown snapshot here (python bench/step_breakdown.py --out {path})"
        ) from None
    except (OSError, ValueError) as e:
        raise EverError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
    missing = [k for k in KEYS if not isinstance(snap, dict) or k not in snap]
    if missing:
        raise EverError(f"{path}: not a step-breakdown snapshot (missing {', '.join(missing)})")
    if set(snap["cells"]) != set(CELLS):
        raise EverError(f"{path}: cells {sorted(snap['cells'])}, expected {list(CELLS)}")
    steps: dict[tuple, list[str]] = {}
    for r in snap["rows"]:
        if r["wall_s"] < 0 or r["cpu_s"] < 0:
            raise EverError(f"{path}: negative time for {r['part']!r} of {r['cell']} (step {r['step']})")
        steps.setdefault((r["cell"], r["threads"], r["step"]), []).append(r["part"])
    bad = [k for k, parts in steps.items() if sorted(parts) != sorted(PARTS)]
    if bad or not steps:
        raise EverError(f"{path}: step {bad[0] if bad else '-'} does not hold each part of {list(PARTS)} once")
    return snap


def medians(snap: dict[str, Any]):
    """DataFrame (cell, threads, part) -> the median over timed steps of ``wall_s`` and ``cpu_s``."""
    import pandas as pd

    R = pd.DataFrame(snap["rows"])
    return R.groupby(["cell", "threads", "part"])[["wall_s", "cpu_s"]].median()


def _part_gflop(snap: dict[str, Any], cell: str, part: str) -> float:
    return float(snap["cells"][cell]["gflop"].get(part, 0.0))


def part_table(snap: dict[str, Any], threads: int):
    """Parts (rows, in step order, then ``step``: their sum) x cells: median ms of CPU time, its share of the
    step's, median ms of wall time, GFLOPs counted in the part (one step, the batch)."""
    import pandas as pd

    M = medians(snap)
    cols = {}
    for cell in CELLS:
        m = M.loc[(cell, threads)].reindex(list(PARTS)).fillna(0.0)
        cpu, wall = 1e3 * m["cpu_s"], 1e3 * m["wall_s"]
        gf = pd.Series({p: _part_gflop(snap, cell, p) for p in PARTS})
        cols[(cell, "CPU ms")] = pd.concat([cpu, pd.Series({"step": cpu.sum()})])
        cols[(cell, "% CPU")] = pd.concat([100 * cpu / cpu.sum(), pd.Series({"step": 100.0})])
        cols[(cell, "wall ms")] = pd.concat([wall, pd.Series({"step": wall.sum()})])
        cols[(cell, "GFLOP")] = pd.concat([gf, pd.Series({"step": snap["cells"][cell]["gflop_step"]})])
    T = pd.DataFrame(cols)
    T.columns = pd.MultiIndex.from_tuples(T.columns)
    return T.rename_axis("part").round({c: 3 if c[1] == "GFLOP" else 1 for c in T.columns})
