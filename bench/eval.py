"""Benchmark of label propagation: frames/s at 427 px and native 480p, today's code against the code of
another tree and against ajabri/videowalk's affinity + top-k, on identical features and real label maps.

    OMP_NUM_THREADS=1 .venv/bin/python bench/eval.py [--base ../wt-main] [--videowalk /work/ref/videowalk]
        [--frames 30] [--sequence NAME] [--size 427 --size 0] [--width 16 --width 64] [--device cpu|cuda]
        [--json out.json]

Methods: raw Lab colour (``lab``); ``w16``: the shipped default model (width 16; its ``layer3``, 64 channels);
``w64``: a randomly initialised EverModel of width 64 read at ``layer3`` (256 channels, CRW's res3, as
``configs/crw-reference.yaml``); other widths are random models read at layer3. Protocol: the default
EvalConfig (20 context frames as the reference pads them, top-10, radius 12, temperature 0.05).

Frames: the first ``--frames`` frames of a davis2016-dev sequence (``../shared/data/davis2016-dev``;
``--sequence NAME``, else the first with enough frames), else a generated 854x480 video with a moving
ellipse. ``--size 427`` resizes the long side to 427 px, ``0`` keeps 480p. For each size and method this
process encodes the frames once (today's encoder; its seconds a frame are reported) and saves the
normalised features; each implementation then propagates over exactly those features in a fresh process,
so its peak resident memory is its own:

* ``today``, ``base``: ``ever.evaluate.propagation.propagate`` of this tree and of the tree given by
  ``--base`` (e.g. an export of main), imported from there: the first frame's mask carried frame by frame,
  each frame against frame 0 and the 20 preceding frames with the soft labels *predicted* for them (at first
  the reference's copies of frame 0), as in an evaluation. Real label maps matter: keys whose affinities tie
  carry different soft labels, as they do on real video. The two run alternately, three times each; the
  median of the three is printed, and ``max|d|`` is the largest difference between their soft labels
  (0: bit for bit the same);
* ``videowalk``: ``mem_efficient_batched_affinity`` of ``code/utils/test_utils.py`` and ``MaskedAttention`` of
  ``code/utils/__init__.py`` under the ``--videowalk`` folder (a copy of github.com/ajabri/videowalk, kept
  outside this repository; the functions are read from the files, so videowalk's other imports are not
  needed), then its label propagation as in ``code/test.py`` (the column is skipped without the folder).

Timing covers the propagation step only (``predict``: affinities, top-k, weighted labels; the first frame is a
warm-up); frames/s adds the encoder's seconds a frame, the same for every column. On CPU the seconds are the
process's CPU time (``time.process_time``: on a shared machine wall-clock is mostly the other processes; run
with ``OMP_NUM_THREADS=1`` for single-thread figures), on CUDA wall-clock after a synchronize. The load
average is printed before and after.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "davis2016-dev"
N_CONTEXT, TOPK, RADIUS, TEMPERATURE = 20, 10, 12.0, 0.05


class SyntheticSequence:
    """A generated 854x480 video: a textured background and a moving ellipse (object 1)."""

    def __init__(self, frames: int):
        import numpy as np

        self.n, self.size, self.object_ids = frames, (480, 854), [1]
        rng = np.random.default_rng(0)
        self.bg = (rng.random((60, 107, 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)[:480, :854]
        self.yy, self.xx = np.mgrid[:480, :854]

    def __len__(self):
        return self.n

    def _mask(self, i):
        return (((self.yy - 240) / 90.0) ** 2 + ((self.xx - 200 - 6 * i) / 140.0) ** 2 < 1).astype("int64")

    def frame(self, i):
        import numpy as np

        f = self.bg.copy()
        f[self._mask(i) > 0] = np.array([220, 40, 40], np.uint8)
        return f

    def first_mask(self):
        return self._mask(0)


def _sequence(frames: int, name: str | None):
    if (DEV / "ImageSets").is_dir():
        from ever.data.davis import DavisDataset

        ds = DavisDataset(DEV, "train")
        if name is not None:
            if name not in ds.sequences:
                raise SystemExit(f"{DEV}: no sequence {name!r} in the train split")
            return f"davis2016-dev/{name}", ds.sequence(name)
        for seq_name in ds.sequences:
            seq = ds.sequence(seq_name)
            if len(seq) >= frames:
                return f"davis2016-dev/{seq_name}", seq
    return "generated-854x480", SyntheticSequence(frames)


def _feature_fn(method: str, device: str):
    import torch

    from ever.evaluate.propagation import lab_features, model_features

    if method == "lab":
        return lab_features
    if method == "w16":
        from ever.models.pretrained import DEFAULT, resolve_model

        model, _ = resolve_model(DEFAULT)
        return model_features(model.to(device).eval(), "layer3")
    from ever.config import ModelConfig
    from ever.models import EverModel

    torch.manual_seed(0)
    return model_features(
        EverModel(ModelConfig(width=int(method[1:]), eval_stage="layer3")).to(device).eval(), "layer3"
    )


def encode_features(method: str, frames: int, sequence: str | None, long_side: int, device: str, path: Path) -> dict:
    """Encode the frames with today's code; save {'feats' (T, C, h, w) normalised, 'labels' (K, h, w)}."""
    import torch

    from ever.evaluate.propagation import CellGrid, encode, first_mask, mask_labels

    source, seq = _sequence(frames, sequence)
    n = min(frames, len(seq))
    grid = CellGrid(seq.size, long_side)
    fn = _feature_fn(method, device)
    rgb = [seq.frame(i) for i in range(n)]
    list(encode(rgb[:2], grid, fn, device))  # warm-up
    _sync(device)
    t0 = _clock(device)
    feats = torch.stack(list(encode(rgb, grid, fn, device)))
    _sync(device)
    seconds = _clock(device) - t0
    _, labels = mask_labels(first_mask(seq), seq.object_ids, grid, "bilinear")
    torch.save({"feats": feats.cpu(), "labels": labels}, path)
    return {
        "source": source,
        "size": list(seq.size),
        "cells": list(grid.cells),
        "channels": feats.shape[1],
        "frames": n,
        "encode_s_per_frame": seconds / n,
    }


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _clock(device: str) -> float:
    """Seconds: the process's CPU time on CPU, wall-clock on CUDA (after :func:`_sync`)."""
    return time.process_time() if device == "cpu" else time.perf_counter()


def time_propagation(path: Path, device: str, out: Path) -> float:
    """Seconds a frame of ``predict`` (of whichever tree is imported) while ``propagate`` carries the first
    frame's labels through the saved features (T, C, h, w); saves the soft labels (T - 1, K, h, w) to ``out``.
    The first frame is a warm-up."""
    import numpy as np
    import torch

    from ever.evaluate import propagation as P

    data = torch.load(path)
    feats, labels = data["feats"].to(device), data["labels"].to(device)
    T, _, h, w = feats.shape
    grid = P.CellGrid((h * P.STRIDE, w * P.STRIDE))  # cells (h, w), no resize
    done = [0]

    def saved(x: torch.Tensor) -> torch.Tensor:  # the next len(x) saved frames' features
        done[0] += len(x)
        return feats[done[0] - len(x) : done[0]]

    inner, times = P.predict, []

    def timed(*args, **kwargs):
        _sync(device)
        t0 = _clock(device)
        soft = inner(*args, **kwargs)
        _sync(device)
        times.append(_clock(device) - t0)
        return soft

    blank = np.zeros((h * P.STRIDE, w * P.STRIDE, 3), np.uint8)
    args = (N_CONTEXT, TOPK, RADIUS, TEMPERATURE, device)
    P.predict = timed  # propagate calls the module's predict: its own loop and ring buffer are what is run
    try:
        soft = torch.stack([s.cpu() for s in P.propagate([blank] * T, labels, grid, saved, *args)])
    finally:
        P.predict = inner
    torch.save(soft, out)
    timed_ = times[1:] or times
    return sum(timed_) / len(timed_)


def _load_videowalk(folder: Path) -> dict:
    """The functions benchmarked, read from videowalk's files (its module imports need cv2, imageio...)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    ns: dict = {"torch": torch, "nn": nn, "F": F}
    for file, names in (
        (folder / "code" / "utils" / "test_utils.py", ("context_index_bank", "mem_efficient_batched_affinity")),
        (folder / "code" / "utils" / "__init__.py", ("MaskedAttention",)),
    ):
        tree = ast.parse(file.read_text(), str(file))
        nodes = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
        if len(nodes) != len(names):
            raise SystemExit(f"{file}: expected {', '.join(names)}")
        exec(compile(ast.Module(body=nodes, type_ignores=[]), str(file), "exec"), ns)
    return ns


def time_videowalk(path: Path, device: str, folder: Path) -> float:
    """Seconds a frame of videowalk's affinity + top-k (code/test.py: the video padded with N_CONTEXT copies
    of frame 0, long memory [0], keys in pairs of targets) and its label propagation, over saved features."""
    import torch

    vw = _load_videowalk(folder)
    data = torch.load(path)
    feats, labels = data["feats"], data["labels"]  # (T, C, h, w), (K, h, w)
    T, C, h, w = feats.shape
    feats = torch.cat([feats[:1].expand(N_CONTEXT, -1, -1, -1), feats]).permute(1, 0, 2, 3)[None]  # (1, C, N, h, w)
    N = feats.shape[2]
    key_indices = torch.cat(vw["context_index_bank"](N_CONTEXT, [0], N - N_CONTEXT), dim=-1)  # (N - n, 1 + n)
    D = vw["MaskedAttention"](RADIUS, flat=False).mask(h, w)[None]
    D = D.flatten(-4, -3).flatten(-2)
    D[D == 0] = -1e10
    D[D == 1] = 0
    lbls = torch.zeros(N, h, w, labels.shape[0])
    lbls[: N_CONTEXT + 1] = labels.permute(1, 2, 0)
    targets = list(range(1, N - N_CONTEXT))  # frame 0 is given
    times = []
    for i in range(0, len(targets), 2):  # videowalk batches two targets (bsize = 2)
        t_batch = targets[i : i + 2]
        _sync(device)
        t0 = _clock(device)
        keys = feats[:, :, key_indices[t_batch]].flatten(-2)  # (1, C, b, 1 + n, hw)
        query = feats[:, :, [N_CONTEXT + t for t in t_batch]].flatten(-2)  # (1, C, b, hw)
        Ws, Is = vw["mem_efficient_batched_affinity"](query, keys, D, TEMPERATURE, TOPK, [0], device)
        for t, W_, I_ in zip(t_batch, Ws, Is):
            ctx = lbls[key_indices[t]].flatten(0, 2).transpose(0, 1)  # (K, (1 + n) hw)
            lbls[N_CONTEXT + t] = (ctx[:, I_] * W_[None]).sum(1).view(-1, h, w).permute(1, 2, 0)
        _sync(device)
        times.append((_clock(device) - t0, len(t_batch)))
    timed = times[1:] or times  # the first pair is a warm-up
    return sum(s for s, _ in timed) / sum(n for _, n in timed)


def _options(argv: list[str]) -> dict:
    opts: dict = {
        "width": [],
        "size": [],
        "frames": 30,
        "sequence": None,
        "device": None,
        "json": None,
        "base": None,
        "videowalk": None,
        "child": None,
    }
    i = 0
    while i < len(argv):
        key = argv[i].lstrip("-")
        if key not in opts or i + 1 >= len(argv):
            sys.exit(
                f"usage: bench/eval.py [--base TREE] [--videowalk DIR] [--frames N] [--sequence NAME] [--size S ...] "
                f"[--width W ...] [--device cpu|cuda] [--json PATH] (bad argument {argv[i]!r})"
            )
        value = argv[i + 1]
        if key in ("width", "size"):
            opts[key].append(int(value))
        else:
            opts[key] = int(value) if key == "frames" else value
        i += 2
    opts["width"] = opts["width"] or [16, 64]
    opts["size"] = opts["size"] or [427, 0]
    return opts


def _child(spec: str, device: str) -> dict:
    impl, path, folder, out = json.loads(spec)
    import torch

    if impl == "videowalk":
        s = time_videowalk(Path(path), device, Path(folder))
    else:
        s = time_propagation(Path(path), device, Path(out))
    return {
        "impl": impl,
        "s_per_frame": s,
        "torch_threads": torch.get_num_threads(),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _run_child(impl: str, path: Path, device: str, tree: Path, folder: str = "", out: str = "") -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        json.dumps([impl, str(path), folder, out]),
        "--device",
        device,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"bench/eval.py: {impl} failed on {path.name}:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    opts = _options(argv)
    if opts["device"] is None:
        import torch

        opts["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    device = opts["device"]
    if opts["child"]:
        print(json.dumps(_child(opts["child"], device)))
        return 0
    base = Path(opts["base"]).resolve() if opts["base"] else None
    if base is not None and not (base / "ever" / "evaluate" / "propagation.py").is_file():
        sys.exit(f"{base}: not an EVER tree (no ever/evaluate/propagation.py)")
    vw = Path(opts["videowalk"]).resolve() if opts["videowalk"] else None
    if vw is not None and not (vw / "code" / "utils" / "test_utils.py").is_file():
        print(f"{vw}: no code/utils/test_utils.py, videowalk column skipped", file=sys.stderr)
        vw = None
    from _common import provenance

    from ever.analysis.speed import eval_rows

    prov = provenance("eval.py", argv, device)
    methods = ["lab"] + [f"w{w}" for w in opts["width"]]
    results = []
    head = (
        f"{'size':>5} {'method':6} {'C':>4} {'cells':>7} {'enc s/f':>8} {'base f/s':>9} {'today f/s':>10} "
        f"{'vw f/s':>8} {'x base':>7} {'x vw':>6} {'max|d|':>8}  (propagation s/frame: base / today / videowalk)"
    )
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs", flush=True)
    print(head, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in opts["size"]:
            for method in methods:
                path = Path(tmp) / f"{method}-{size}.pt"
                r = encode_features(method, opts["frames"], opts["sequence"], size, device, path)
                r.update(method=method, long_side=size)
                trees = {"today": ROOT} if base is None else {"base": base, "today": ROOT}
                runs: dict = {impl: [] for impl in trees}
                for _ in range(3):  # alternately, so that a change of load falls on both
                    for impl, tree in trees.items():
                        runs[impl].append(_run_child(impl, path, device, tree, out=str(path.with_suffix(f".{impl}"))))
                for impl, rs in runs.items():
                    r[impl] = sorted(rs, key=lambda x: x["s_per_frame"])[1]  # the median of 3
                if base is not None:
                    import torch

                    a, b = (torch.load(path.with_suffix(f".{impl}")) for impl in trees)
                    r["max_abs_diff"] = (a - b).abs().max().item()
                if vw is not None:
                    r["videowalk"] = _run_child("videowalk", path, device, ROOT, str(vw))
                results.append(r)
                enc = r["encode_s_per_frame"]
                e = eval_rows({"results": [r]})[0]  # frames/s and ratios as the README and the book read them
                cell = lambda k: f"{e[k]:.2f}" if e[k] else "-"  # noqa: E731
                ratio = lambda k: f"{e['x ' + k]:.1f}x" if e[k] else "-"  # noqa: E731
                prop = " / ".join(
                    f"{r[k]['s_per_frame']:.3f}" if k in r else "-" for k in ("base", "today", "videowalk")
                )
                print(
                    f"{size or 480:>5} {method:6} {r['channels']:>4} {r['cells'][0]}x{r['cells'][1]:<4} "
                    f"{enc:8.3f} {cell('base'):>9} {cell('today'):>10} {cell('videowalk'):>8} {ratio('base'):>7} "
                    f"{ratio('videowalk'):>6} {r.get('max_abs_diff', float('nan')):8.1e}  ({prop})",
                    flush=True,
                )
    print(
        f"device {device}; {results[0]['frames']} frames of {results[0]['source']}; frames/s = 1 / (encoder + "
        f"propagation) a frame ({'CPU' if device == 'cpu' else 'wall-clock'} seconds); x base, x vw: today's "
        f"frames/s over theirs; max|d|: the largest difference between base's and today's soft labels",
        flush=True,
    )
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if opts["json"]:
        from ever.utils import atomic_write_json, git_commit

        trees = {}
        if base is not None:  # an export has no .git: git would answer for the folder above it
            trees["base"] = {"path": str(base), "commit": git_commit(base) if (base / ".git").exists() else None}
        atomic_write_json(
            opts["json"], {"bench": "eval", **prov, **trees, "load_after": list(os.getloadavg()), "results": results}
        )
    return 0


if __name__ == "__main__":
    if "--child" not in sys.argv:  # a child imports EVER from the tree its PYTHONPATH names
        sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
