"""Benchmark of label propagation at 480p (854x480): frames/s and peak memory.

    .venv/bin/python bench/eval.py [--width 16 --width 64] [--frames 20] [--device cpu|cuda] [--json out.json]

Methods: raw Lab colour (``lab``) and a randomly initialised EverModel of each ``--width`` (default 16
and 64; features of ``model.eval_stage``), with the default EvalConfig (20 context frames, top-10,
radius 12, temperature 0.05, native resolution). Frames come from the first davis2016-dev sequence
when ``../shared/data/davis2016-dev`` exists, else from a generated 854x480 video. Each method runs in
a fresh process so its peak resident memory (max RSS) is its own; on CUDA the peak allocated GPU memory
is reported too. Timing covers reading, encoding and propagating the frames (not scoring), after one
warm-up frame.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "davis2016-dev"


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

    def mask(self, i):
        return self._mask(i)

    def first_mask(self):
        return self._mask(0)


def _sequence(frames: int):
    if (DEV / "ImageSets").is_dir():
        from ever.data.davis import DavisDataset

        ds = DavisDataset(DEV, "train")
        for name in ds.sequences:
            seq = ds.sequence(name)
            if len(seq) >= frames:
                return f"davis2016-dev/{name}", seq
    return "generated-854x480", SyntheticSequence(frames)


def run_one(method: str, frames: int, device: str) -> dict:
    """Time one method in this process; returns a result dict."""
    import torch

    from ever.config import EvalConfig, ModelConfig
    from ever.evaluate.propagation import lab_features, model_features, propagate_masks

    source, seq = _sequence(frames)
    if method == "lab":
        fn = lab_features
    else:
        from ever.models import EverModel

        torch.manual_seed(0)
        mcfg = ModelConfig(width=int(method.split("=")[1]))
        fn = model_features(EverModel(mcfg).to(device).eval(), mcfg.eval_stage)
    cfg = EvalConfig()
    n = min(frames, len(seq))
    it = propagate_masks(seq, fn, cfg.n_context, cfg.topk, cfg.radius, cfg.temperature, cfg.long_side, device)
    next(it), next(it)  # frame 0 and one propagated frame: warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n - 2):
        next(it)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    out = {"method": method, "source": source, "size": list(seq.size), "frames": n - 2, "seconds": round(seconds, 3),
           "frames_per_s": round((n - 2) / seconds, 3), "device": device, "torch_threads": torch.get_num_threads(),
           "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device == "cuda":
        out["cuda_max_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _options(argv: list[str]) -> dict:
    opts: dict = {"width": [], "frames": 20, "device": None, "json": None, "one": None}
    i = 0
    while i < len(argv):
        key = argv[i].lstrip("-")
        if key not in opts or i + 1 >= len(argv):
            sys.exit(f"usage: bench/eval.py [--width W ...] [--frames N] [--device cpu|cuda] [--json PATH] "
                     f"(bad argument {argv[i]!r})")
        value = argv[i + 1]
        if key == "width":
            opts["width"].append(int(value))
        else:
            opts[key] = int(value) if key == "frames" else value
        i += 2
    opts["width"] = opts["width"] or [16, 64]
    return opts


def main(argv: list[str]) -> int:
    opts = _options(argv)
    if opts["device"] is None:
        import torch

        opts["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if opts["one"]:  # child process: one method, result as JSON on the last line
        print(json.dumps(run_one(opts["one"], opts["frames"], opts["device"])))
        return 0
    results = []
    for method in ["lab"] + [f"width={w}" for w in opts["width"]]:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", method, "--frames", str(opts["frames"]),
               "--device", opts["device"]]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env())
        if proc.returncode != 0:
            print(f"{method}: failed\n{proc.stderr.strip()}", file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        gpu = f"  cuda peak {r['cuda_max_allocated_mb']:.0f} MB" if "cuda_max_allocated_mb" in r else ""
        print(f"{method:10s} {r['size'][1]}x{r['size'][0]} {r['device']}: {r['frames_per_s']:7.2f} frames/s  "
              f"max RSS {r['max_rss_mb']:.0f} MB{gpu}  ({r['frames']} frames of {r['source']})", flush=True)
    if opts["json"]:
        from ever.utils import atomic_write_json, environment

        atomic_write_json(opts["json"], {"results": results, "environment": environment()})
    return 0


def _env() -> dict:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
