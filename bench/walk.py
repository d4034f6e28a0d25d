"""Walk cost against nodes per frame, and the two patch extractors side by side.

    python bench/walk.py [--T 8] [--D 128] [--B 8] [--json runs/bench/walk.json]

Prints, in one run on the device it finds: forward+backward time, FLOPs and peak memory of the walk
loss for N = 8 .. 256 nodes per frame with the fitted growth exponents (time ~ N^a), then the training
step time of the reference (crop) and efficient (pooled) patch extractors and their ratio.
Peak memory: CUDA max allocated on GPU; on CPU the growth of the process's peak RSS, measured with N
ascending (a lower bound of the walk's own peak).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    count_flops,
    fit_exponent,
    peak_memory,
    peak_tflops,
    reset_peak,  # noqa: E402
    time_fn,
    write_json,
)

from ever.config import load_config  # noqa: E402
from ever.models.crw import CRW  # noqa: E402
from ever.utils import select_device  # noqa: E402
from ever.walk import walk_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def bench_walk(device, B: int, T: int, D: int, nodes: list[int]) -> list[dict]:
    rows = []
    for n in nodes:
        emb = F.normalize(torch.randn(B, T, n, D, device=device), dim=-1).requires_grad_(True)

        def step():
            walk_loss(emb, temperature=0.07, edge_dropout=0.1).loss.backward()

        reset_peak(device)
        secs = time_fn(step, device)
        rows.append(
            {"nodes": n, "ms": 1e3 * secs, "gflops": count_flops(step) / 1e9, "peak_mb": peak_memory(device) / 2**20}
        )
    return rows


def bench_extractors(device, steps: int) -> dict:
    """Training step (fwd+bwd) of the two patch extractors; on CUDA also bf16 autocast and torch.compile
    variants of the pooled one, with model FLOPs utilisation against the device's peak."""
    cfg = load_config(REPO / "configs" / "crw-patch-cpu.yaml", ["train.batch_size=8"])
    x = torch.rand(cfg.train.batch_size, cfg.data.clip_len, 3, cfg.data.size, cfg.data.size, device=device)
    variants = [("patch_crop", "fp32", False), ("patch_pool", "fp32", False)]
    if device.type == "cuda":
        variants += [("patch_pool", "bf16", False), ("patch_pool", "bf16", True)]
    out = {}
    for kind, dtype, compiled in variants:
        cfg.nodes.kind = kind
        crw = CRW(cfg).to(device)
        if compiled:
            crw.encode = torch.compile(crw.model.dense)
        gen = torch.Generator().manual_seed(0)
        amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

        def step():
            with amp:
                loss = crw(x, generator=gen).loss
            loss.backward()

        flops = count_flops(step)
        secs = time_fn(step, device, reps=steps)
        peak = peak_tflops(device, dtype)
        key = kind if (dtype, compiled) == ("fp32", False) else f"{kind}+{dtype}{'+compile' if compiled else ''}"
        out[key] = {"ms": 1e3 * secs, "gflops": flops / 1e9, "mfu": (flops / secs / 1e12 / peak) if peak else None}
    out["ratio_crop_over_pool"] = out["patch_crop"]["ms"] / out["patch_pool"]["ms"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--B", type=int, default=8)
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--D", type=int, default=128)
    p.add_argument("--nodes", default="8,16,32,64,128,256")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per extractor")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    device = select_device()
    nodes = [int(n) for n in a.nodes.split(",")]
    rows = bench_walk(device, a.B, a.T, a.D, nodes)
    print(f"walk loss fwd+bwd on {device} (B={a.B}, T={a.T}, D={a.D}, all cycle lengths)")
    print(
        f"{'N':>5} {'ms':>9} {'GFLOPs':>9} {'peak MB':>9}   (peak MB: CUDA max allocated, or process peak RSS on CPU)"
    )
    for r in rows:
        print(f"{r['nodes']:>5} {r['ms']:>9.2f} {r['gflops']:>9.3f} {r['peak_mb']:>9.1f}")
    big = [r for r in rows if r["nodes"] >= 32] or rows
    exp_t = fit_exponent([r["nodes"] for r in big], [r["ms"] for r in big])
    exp_f = fit_exponent([r["nodes"] for r in rows], [r["gflops"] for r in rows])
    print(f"fitted exponent: time ~ N^{exp_t:.2f} (N >= 32), FLOPs ~ N^{exp_f:.2f}")
    ext = bench_extractors(device, a.steps)
    print("\ntraining step (fwd+bwd) of configs/crw-patch-cpu.yaml, batch 8")
    for k, v in ext.items():
        if isinstance(v, dict):
            mfu = f"  MFU {100 * v['mfu']:.1f} %" if v["mfu"] is not None else ""
            print(f"  {k:<26} {v['ms']:>9.1f} ms  {v['gflops']:>8.2f} GFLOPs{mfu}")
    print(
        f"  ratio crop / pool: {ext['ratio_crop_over_pool']:.2f}x time, "
        f"{ext['patch_crop']['gflops'] / ext['patch_pool']['gflops']:.2f}x FLOPs"
    )
    if a.json:
        write_json(
            a.json,
            {
                "device": str(device),
                "walk": rows,
                "exponent_time": exp_t,
                "exponent_flops": exp_f,
                "extractors": ext,
                "B": a.B,
                "T": a.T,
                "D": a.D,
            },
        )


if __name__ == "__main__":
    main()
