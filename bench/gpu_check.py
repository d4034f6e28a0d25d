"""The GPU check (issue 32): what a lent CUDA GPU is asked, in one call, written to one JSON.

    python bench/gpu_check.py [--out runs/gpu-check/gpu_check.json] [--minutes 10] [--work runs/gpu-check]
    make gpu-check                        # the same, with the defaults
    python bench/gpu_check.py --reduced   # the reduced form anywhere (what the tests run, seconds on a CPU)

On CUDA, three measurements of the reference walk (``configs/crw-reference.yaml``: ResNet-18 width 64,
49 patch crops of 64 px from 256-px frames, clips of 8, batch 32):

1. **training step** in bf16 (``train.precision=bf16``, channels_last, as ``ever.train``), through layer4
   (the reference) and through layer3 (``model.train_stage``): ms a step (median), clips/s, FLOPs a clip
   (torch's ``FlopCounterMode``) and model FLOPs utilisation against the GPU's dense bf16 peak
   (``bench/_common.PEAK_TFLOPS``; none for a GPU not listed);
2. **propagation at 480p**: ``ever.evaluate.run.evaluate`` with the width-64 encoder's layer3 features (a
   random one: speed does not depend on the weights) on generated 854 x 480 sequences (DAVIS's 480p size;
   no data leaves this machine for it), reference protocol: frames/s, keypoint-free;
3. **a ``--minutes`` training** of the reference config on generated ever-synth videos (the step count is
   the one that fits ``--minutes`` at the step time measured in 1, through layer4), then its J&F on
   ever-synth's labelled split, with the run's own clips/s and ledger.

Without a GPU, or with ``--reduced``, the same three run in a reduced form (64-px clips, width 8, a few
steps, 112 x 64 frames, bf16 only where the device has it natively; seconds on a CPU): it checks the script, not the
machine, and says so in the JSON
(``"reduced": true``). Generated data goes under ``--work`` (reused when present). Prints figures only.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import count_flops, device_info, peak_tflops, sync, write_json  # noqa: E402

from ever.config import load_config  # noqa: E402
from ever.models.crw import CRW  # noqa: E402
from ever.train import autocast, cpu_has_bf16  # noqa: E402
from ever.utils import select_device  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "configs" / "crw-reference.yaml"


def sizes(reduced: bool) -> dict:
    """What each part runs on: the reference's sizes on a GPU, seconds-sized ones in the reduced form."""
    if reduced:
        return {
            "set": [
                "data.size=64",
                "data.clip_len=4",
                "model.width=8",
                "model.proj_dim=16",
                "nodes.patch_size=32",
                "nodes.patch_stride=16",
                "train.batch_size=2",
                "data.num_workers=0",
            ],
            "steps": 2,
            "warmup": 1,
            "train_steps": 3,
            "frames": (64, 112),
            "eval_frames": 4,
            "synth": dict(num_train=2, num_eval=1, frames_train=10, frames_eval=4, height=64, width=96),
        }
    return {
        "set": ["data.num_workers=8"],
        "steps": 10,
        "warmup": 3,
        "train_steps": None,
        "frames": (480, 854),
        "eval_frames": 40,
        "synth": dict(),
    }


def reference_config(reduced: bool, work: Path, *extra: str):
    s = sizes(reduced)
    return load_config(
        REFERENCE,
        [
            *s["set"],
            f"data.roots=[{work / 'synth' / 'videos' / 'train'}]",
            f"eval.data={work / 'synth'}",
            "eval.split=val",
            f"out_dir={work / 'runs'}",
            "train.device=auto",
            *extra,
        ],
    )


def training_step(reduced: bool, work: Path, device: torch.device, stage: str) -> dict:
    """Part 1: the reference walk's training step in bf16 on ``device``."""
    s = sizes(reduced)
    eval_stage = "layer3"
    precision = "bf16" if device.type == "cuda" or cpu_has_bf16() else "fp32"
    cfg = reference_config(
        reduced, work, f"model.train_stage={stage}", f"model.eval_stage={eval_stage}", f"train.precision={precision}"
    )
    torch.manual_seed(0)
    crw = CRW(cfg).to(device)
    if device.type == "cuda":
        crw = crw.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(crw.parameters(), lr=cfg.optim.lr)
    amp = autocast(device, cfg.train.precision)
    B, T, S = cfg.train.batch_size, cfg.data.clip_len, cfg.data.size
    frames = torch.rand(B, T, 3, S, S, generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator().manual_seed(0)

    def fwd_bwd():
        with amp:
            out = crw(frames, None, gen)
        out.loss.backward()
        return out

    def step():
        out = fwd_bwd()
        torch.nn.utils.clip_grad_norm_(crw.parameters(), cfg.optim.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out

    for _ in range(s["warmup"]):
        loss = step().loss.item()
    times = []
    for _ in range(s["steps"]):
        sync(device)
        t0 = time.perf_counter()
        out = step()
        sync(device)
        times.append(time.perf_counter() - t0)
    flops = count_flops(fwd_bwd)
    opt.zero_grad(set_to_none=True)
    step_s = statistics.median(times)
    peak = peak_tflops(device, "bf16")
    return {
        "train_stage": stage,
        "precision": cfg.train.precision,
        "batch": B,
        "clip_len": T,
        "size": S,
        "width": cfg.model.width,
        "nodes": cfg.nodes.kind,
        "nodes_per_frame": cfg.nodes_per_frame,
        "step_ms": 1e3 * step_s,
        "step_ms_min": 1e3 * min(times),
        "clips_per_s": B / step_s,
        "gflops_per_clip": flops / 1e9 / B,
        "mfu": flops / step_s / (peak * 1e12) if peak else None,
        "loss_finite": bool(math.isfinite(loss) and torch.isfinite(out.loss).item()),
        "peak_mem_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }


def propagation(reduced: bool, work: Path, device: torch.device) -> dict:
    """Part 2: label propagation frames/s with the width-64 encoder's layer3 features at 480p."""
    from ever.data.synth import SynthConfig, generate
    from ever.evaluate.propagation import model_features
    from ever.evaluate.run import evaluate
    from ever.models import EverModel

    s = sizes(reduced)
    h, w = s["frames"]
    root = work / f"synth-{h}p"
    generate(root, SynthConfig(num_train=0, num_eval=2, frames_eval=s["eval_frames"], height=h, width=w))
    cfg = reference_config(reduced, work, "model.train_stage=layer3", "model.eval_stage=layer3", "ledger.enabled=false")
    torch.manual_seed(0)
    model = EverModel(cfg.model).to(device).eval()
    t0 = time.perf_counter()
    summary = evaluate(
        model_features(model, "layer3"),
        root,
        "val",
        work / f"eval-{h}p",
        cfg.eval,
        f"random-w{cfg.model.width}",
        device=device,
        ledger=cfg.ledger,
        identity=f"gpu-check {time.time()}",
        eval_stage="layer3",
    )
    return {
        "frames": summary["frames"],
        "height": h,
        "width": w,
        "frames_per_s": summary["frames_per_s"],
        "wall_s": time.perf_counter() - t0,
        "encoder_width": cfg.model.width,
        "eval_stage": "layer3",
        "n_context": cfg.eval.n_context,
        "topk": cfg.eval.topk,
        "radius": cfg.eval.radius,
    }


def short_training(reduced: bool, work: Path, device: torch.device, minutes: float, step_ms: float) -> dict:
    """Part 3: train the reference config for about ``minutes`` on ever-synth, then score it there."""
    import json

    from ever.evaluate.propagation import model_features
    from ever.evaluate.run import evaluate
    from ever.models import load_checkpoint
    from ever.train import train

    s = sizes(reduced)
    steps = s["train_steps"] or max(1, int(minutes * 60_000 / step_ms))
    cfg = reference_config(
        reduced,
        work,
        f"train.steps={steps}",
        f"optim.warmup_steps={min(1000, steps // 10)}",
        f"train.ckpt_every={max(1, steps // 4)}",
        "train.log_every=10",
        "name=reference-short",
        "train.precision=auto",
    )
    run = cfg.run_dir
    t0 = time.perf_counter()
    train(cfg, resume=(run / "checkpoint.pt").exists())
    train_s = time.perf_counter() - t0
    model, saved = load_checkpoint(run / "checkpoint.pt")
    summary = evaluate(
        model_features(model.to(device), saved.model.eval_stage),
        cfg.eval.data,
        "val",
        run / "eval" / "val",
        saved.eval,
        cfg.name,
        device=device,
        ledger=saved.ledger,
        eval_stage=saved.model.eval_stage,
    )
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return {
        "steps": steps,
        "train_s": train_s,
        "final_loss": rows[-1]["loss"] if rows else None,
        "clips_per_s_end": rows[-1]["clips_per_s"] if rows else None,
        "J&F-Mean": summary["J&F-Mean"],
        "J-Mean": summary["J-Mean"],
        "F-Mean": summary["F-Mean"],
        "eval_frames_per_s": summary["frames_per_s"],
        "data": "ever-synth (generated)",
        "run": str(run),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/gpu-check/gpu_check.json")
    ap.add_argument("--work", default="runs/gpu-check", help="generated data, runs and evaluations")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the short training (CUDA)")
    ap.add_argument("--reduced", action="store_true", help="the reduced form even on a GPU")
    args = ap.parse_args(argv)
    device = select_device("auto")
    reduced = args.reduced or device.type != "cuda"
    work = Path(args.work)
    from ever.data.synth import SynthConfig, generate

    t0 = time.perf_counter()
    generate(work / "synth", SynthConfig(**sizes(reduced)["synth"]))
    info = device_info(device)
    print(f"gpu check on {info['gpu'] or info['cpu_model']} ({'reduced form' if reduced else 'full'})", flush=True)
    result = {
        "bench": "gpu_check",
        "reduced": reduced,
        "info": info,
        "config": str(REFERENCE.relative_to(REPO)),
        "training_step": [],
    }
    for stage in ("layer4", "layer3"):
        result["training_step"].append(training_step(reduced, work, device, stage))
        r = result["training_step"][-1]
        print(
            f"  training step {r['precision']} through {stage}: {r['step_ms']:.1f} ms, {r['clips_per_s']:.2f} clips/s, "
            f"{r['gflops_per_clip']:.1f} GFLOP/clip, MFU {r['mfu'] if r['mfu'] is None else round(r['mfu'], 3)}",
            flush=True,
        )
    result["propagation"] = propagation(reduced, work, device)
    print(
        f"  propagation {result['propagation']['height']}p: {result['propagation']['frames_per_s']:.2f} frames/s",
        flush=True,
    )
    result["short_training"] = short_training(
        reduced, work, device, args.minutes, result["training_step"][0]["step_ms"]
    )
    t = result["short_training"]
    print(f"  {t['steps']} steps in {t['train_s'] / 60:.1f} min: J&F {t['J&F-Mean']:.3f} on ever-synth val", flush=True)
    result["wall_s"] = time.perf_counter() - t0
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
