"""Training throughput of the node types side by side: patch_crop, patch_pool, object nodes pooled or
cropped (object_crop: each segment's box encoded on its own, as patch_crop encodes patches), + GCN.

    python bench/train.py [--size 128 --width 16 --batch 8 --clip-len 4 --k 8 --home-shift 32] [--steps 5] \
        [--json runs/bench/train.json]
    python bench/train.py --size 256 --width 64 --batch 32 --proj-dim 128     # GPU-size setting
    # the reference walk (issue 32): fp32 against bf16, through layer3 against through layer4, and
    # ajabri/videowalk's own training step on the same clips (its code fetched outside the repository)
    python bench/train.py --size 256 --width 64 --proj-dim 128 --batch 2 --clip-len 4 --home-shift 0 \
        --variants patch_crop,patch_pool --precisions fp32,bf16 --stages layer4,layer3 \
        --modes default,channels_last,compile --threads 2 \
        [--videowalk /work/ref/videowalk-train --videowalk-python /work/ref/vw-venv/bin/python]

For each variant, stage (``model.train_stage``: the encoder ends there), precision (``train.precision``;
``ever.train.autocast``, the rule training uses) and mode (``default``: as ``ever.train`` runs it, channels_last
on CUDA only; ``channels_last`` on any device; ``compile``: the encoder ``torch.compile``'d as
``train.compile`` does, after ``torch.compiler.reset()``; its first step, which compiles (inductor's on-disk
cache may make that shorter), is reported apart), on the device it finds: the
training step (forward + backward + grad clip + Adam step) — median of ``--steps`` after ``--warmup`` untimed
steps, in wall time and in the process's CPU time (all threads; on a loaded machine the CPU time is the
steadier figure) — clips/s, FLOPs per clip (``FlopCounterMode`` over forward + backward),
peak memory, nodes per frame (mean valid), the walk loss's share of the step (its own forward +
backward on the step's embeddings), the GCN's share when on (its FLOPs as its module ran in the counted
step, and its time x the times it ran: twice with a home view), and for felzenszwalb/slic the
segmentation time per clip (CPU, as in a DataLoader worker) and its share of a step if one worker did
it serially (divide by ``data.num_workers`` for the training loader). Ratios are against the first row
(patch_crop at the first stage and precision, when it runs).

Before the steps, one GEMM_N^3 (2048^3) matrix product in fp32 (and bf16 when asked for) gives what dense arithmetic
reaches on these threads (``gemm_gflops``); the videowalk table reads both steps' GFLOP/s against it, and the
share a step twice as fast as videowalk's would need.

``--videowalk DIR`` also times ajabri/videowalk's training step (``DIR/code``: its CRW, ResNet-18 with the
strides of layer3/4 at 1 and reflect padding, on 64-px patches of the same clips, dropout 0.1, tau 0.05,
Adam 1e-4, fp32) at each of ``--stages`` (layer4: its train.py default; layer3: ``--remove-layers layer4``),
right after EVER's patch_crop fp32 row at that stage so that both meet the same load, in a
subprocess run by ``--videowalk-python`` (an interpreter with torchvision; bench/videowalk_step.py), with the
same threads and FLOP counter. Its code is never copied here.

Frames: real clips from ``data/ever-synth/videos/train`` when it exists, else clips rendered in
memory by the ever-synth generator (``--random`` for uniform noise: felzenszwalb then over-segments
and its time is pessimistic). Peak memory: CUDA allocator peak; on CPU the process's peak RSS
(VmHWM, reset per variant through /proc/self/clear_refs where Linux allows it, else ever-growing).
On a shared or small CPU pass ``--threads 1``: with more intra-op threads than free cores, OpenMP
barriers spin and tiny ops (the walk) get 100x slower. Prints figures only; nothing asserts times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    device_info,
    gemm_gflops,
    peak_memory,
    provenance,
    reset_peak,
    sync,
    time_stats,
    write_json,
)

from ever.analysis.speed import label, videowalk_pairs  # noqa: E402
from ever.config import config_from_dict  # noqa: E402
from ever.models.crw import CRW  # noqa: E402
from ever.nodes.objects import segment_frames  # noqa: E402
from ever.train import autocast, cpu_has_bf16, flops_by_module  # noqa: E402
from ever.utils import select_device  # noqa: E402
from ever.walk import walk_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# name -> (nodes overrides, gcn enabled)
VARIANTS = {
    "patch_crop": ({"kind": "patch_crop"}, False),
    "patch_pool": ({"kind": "patch_pool"}, False),
    "obj_felz": ({"kind": "object", "segmenter": "felzenszwalb"}, False),
    "obj_slic": ({"kind": "object", "segmenter": "slic"}, False),
    "obj_kmeans": ({"kind": "object", "segmenter": "kmeans"}, False),
    "obj_crop": ({"kind": "object_crop", "segmenter": "felzenszwalb"}, False),  # the green grid's objcrop8
    "obj_crop+mask": ({"kind": "object_crop", "segmenter": "felzenszwalb", "crop_background": "mask"}, False),
    "patch_pool+gcn": ({"kind": "patch_pool"}, True),
    "obj_felz+gcn": ({"kind": "object", "segmenter": "felzenszwalb"}, True),
}


def load_clips(B: int, T: int, size: int, random: bool, seed: int = 0) -> tuple[torch.Tensor, str]:
    """uint8 (B, T, 3, size, size) and where they came from."""
    g = torch.Generator().manual_seed(seed)
    if not random:
        root = REPO / "data" / "ever-synth" / "videos" / "train"
        if root.is_dir():
            try:
                from ever.data.clips import ClipDataset

                ds = ClipDataset([str(root)], T, 2, 0.0, size, seed=seed)
                return torch.stack([torch.as_tensor(ds[i]) for i in range(B)]), f"ClipDataset({root})"
            except Exception as e:  # noqa: BLE001 - fall back to rendering
                print(f"(could not read {root}: {type(e).__name__}: {e}; rendering clips instead)")
        from ever.data.synth import SynthConfig, render_sequence

        n_seq = min(B, 4)
        cfg = SynthConfig(height=size, width=size, frames_train=T)
        seqs = [torch.from_numpy(render_sequence(cfg, "train", i)[0]).permute(0, 3, 1, 2) for i in range(n_seq)]
        return torch.stack([seqs[i % n_seq] for i in range(B)]), f"ever-synth render_sequence x{n_seq} (in memory)"
    return torch.randint(0, 256, (B, T, 3, size, size), dtype=torch.uint8, generator=g), "uniform random"


def _cpu_peak_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu_peak() -> int:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_memory("cpu")


def make_cfg(args, nodes: dict, gcn: bool, stage: str = "layer4", precision: str = "fp32"):
    return config_from_dict(
        {
            "data": {"size": args.size, "clip_len": args.clip_len},
            "model": {"width": args.width, "proj_dim": args.proj_dim, "train_stage": stage, "eval_stage": stage},
            "nodes": {
                "patch_size": args.size // 4,
                "patch_stride": args.size // 8,
                "k": args.k,
                "seg_scale": args.seg_scale * (args.size / 128) ** 2,
                **nodes,
            },
            # k-means clusters have no identity across views, and a rolled frame wraps object crops' boxes
            # (ever/nodes/objects.py):
            # those variants walk home to frame 0 itself, as configs/ablation/objcrop*.yaml do
            "walk": {
                "home_shift": 0
                if nodes.get("segmenter") == "kmeans" or nodes["kind"] == "object_crop"
                else args.home_shift
            },
            "gcn": {"enabled": gcn},
            "train": {"batch_size": args.batch, "precision": precision},
        },
        "bench/train.py",
    )


MODES = ("default", "channels_last", "compile")
GEMM_N = 2048  # the matrix product the steps' GFLOP/s are read against: (GEMM_N x GEMM_N) @ (GEMM_N x GEMM_N)


def bench_variant(
    name: str,
    args,
    clips_u8: torch.Tensor,
    device: torch.device,
    stage: str = "layer4",
    precision: str = "fp32",
    mode: str = "default",
) -> dict:
    nodes, gcn = VARIANTS[name]
    cfg = make_cfg(args, nodes, gcn, stage, precision)
    torch.manual_seed(0)
    crw = CRW(cfg).to(device)
    cuda = device.type == "cuda"
    if mode == "channels_last" or cuda:  # ever.train: channels_last on CUDA (train.channels_last), compiled or not
        crw = crw.to(memory_format=torch.channels_last)
    if mode == "compile":
        torch.compiler.reset()  # a fresh compile for each row: no recompile limit reached, no cache of other rows
        crw.encode = torch.compile(crw.model.dense)  # as ever.train does with train.compile
    opt = torch.optim.Adam(crw.parameters(), lr=1e-4)
    amp = autocast(device, precision)
    B = clips_u8.shape[0]
    obj = cfg.nodes.kind.startswith("object")
    row: dict = {
        "variant": name,
        "stage": stage,
        "precision": precision,
        "mode": mode,
        "nodes": cfg.nodes.kind,
        "segmenter": cfg.nodes.segmenter if obj else None,
        "k": cfg.nodes.k if obj else None,
        "gcn": gcn,
        "encoder_params": sum(p.numel() for p in crw.model.encoder.parameters()),
    }

    segments = None
    if crw.nodes.needs_segments:  # as in a DataLoader worker: CPU, one clip at a time
        segment_frames(clips_u8[0, :1], cfg.nodes)  # import / first-call cost
        per, segs = [], []
        for c in clips_u8:
            t0 = time.perf_counter()
            segs.append(segment_frames(c, cfg.nodes))
            per.append(time.perf_counter() - t0)
        segments = torch.from_numpy(np.stack(segs)).to(device)
        row["seg_ms_per_clip"] = 1e3 * statistics.median(per)
    frames = clips_u8.to(device).float().div_(255)
    gen = torch.Generator().manual_seed(0)

    def fwd_bwd():
        with amp:
            out = crw(frames, segments, gen)
        out.loss.backward()
        return out

    def step():
        fwd_bwd()
        torch.nn.utils.clip_grad_norm_(crw.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    step()  # first step (optimizer state, allocator; compiling) before the peak-memory window: steady state is measured
    sync(device)
    row["first_step_s"] = time.perf_counter() - t0
    if cuda:
        reset_peak(device)
    elif not _cpu_peak_reset():
        row["peak_note"] = "process peak RSS since start (could not reset)"
    cpu_times: list[float] = []  # process CPU seconds of each call (all threads; robust to a loaded machine)

    def timed_step():
        c0 = time.process_time()
        step()
        cpu_times.append(time.process_time() - c0)

    st = time_stats(timed_step, device, reps=args.steps, warmup=args.warmup)
    row["cpu_ms"] = 1e3 * statistics.median(cpu_times[args.warmup :])
    row["peak_mb"] = (peak_memory(device) if cuda else _cpu_peak()) / 2**20
    row["step_ms"] = 1e3 * st["median_s"]
    row["step_ms_std"] = 1e3 * st["std_s"]
    row["clips_per_s"] = B / st["median_s"]
    gcn_runs = []
    hook = crw.gcn.register_forward_hook(lambda *_: gcn_runs.append(1)) if crw.gcn is not None else None
    encode, crw.encode = crw.encode, crw.model.dense  # FLOPs counted on the eager encoder (the same FLOPs)
    by_module = flops_by_module(fwd_bwd)
    crw.encode = encode
    row["gflops_per_clip"] = by_module["Global"] / 1e9 / B
    if hook is not None:
        hook.remove()
        row["gcn_runs_per_step"] = len(gcn_runs)
        row["gcn_flop_share"] = by_module.get("CRW.gcn", 0) / by_module["Global"]
    opt.zero_grad(set_to_none=True)

    # the walk's own cost on this step's embeddings (and the GCN's)
    with torch.no_grad(), amp:
        feats, valid = crw.nodes(crw.model.dense, frames, segments, None)  # eager: no_grad would recompile
        head = crw.model.head(feats)
        emb = F.normalize((crw.gcn(head, valid) if crw.gcn is not None else head).float(), dim=-1)
    row["nodes_per_frame"] = float(valid.float().sum(-1).mean())
    row["n_max"] = int(valid.shape[-1])
    e = emb.detach().requires_grad_(True)

    def walk_call():
        walk_loss(e, valid, cfg.walk.temperature, cfg.walk.edge_dropout).loss.backward()

    row["walk_ms"] = 1e3 * time_stats(walk_call, device, reps=max(3, args.steps), warmup=1)["median_s"]
    row["walk_share"] = row["walk_ms"] / row["step_ms"]
    if crw.gcn is not None:
        hd = head.detach().float().requires_grad_(True)

        def gcn_call():
            with amp:
                y = crw.gcn(hd, valid)
            y.float().sum().backward()

        row["gcn_ms"] = (
            row["gcn_runs_per_step"] * 1e3 * time_stats(gcn_call, device, reps=max(3, args.steps), warmup=1)["median_s"]
        )
        row["gcn_share"] = row["gcn_ms"] / row["step_ms"]
        row["gcn_params"] = sum(p.numel() for p in crw.gcn.parameters())
    if "seg_ms_per_clip" in row:
        row["seg_share_1worker"] = row["seg_ms_per_clip"] * B / row["step_ms"]
    sync(device)
    return row  # the model and optimiser go with this frame; the caller empties the CUDA cache


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(rows: list[dict], ref: dict | None) -> None:
    hdr = (
        f"{'variant stage precision mode':38} {'N':>5} {'step ms':>9} {'CPU ms':>9} {'first s':>7} {'clips/s':>8} "
        f"{'GFLOP/clip':>10} "
        f"{'peak MB':>8} {'walk %':>7} {'gcn %':>6} {'gcn %F':>6} {'seg ms/clip':>11} {'seg %(1w)':>9} {'x speed':>8} "
        f"{'x FLOPs':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        sp = ref["step_ms"] / r["step_ms"] if ref else None
        fl = r["gflops_per_clip"] / ref["gflops_per_clip"] if ref else None
        print(
            f"{label(r):38} {r['nodes_per_frame']:5.1f} {r['step_ms']:9.1f} {r['cpu_ms']:9.1f} "
            f"{r['first_step_s']:7.1f} "
            f"{r['clips_per_s']:8.2f} {r['gflops_per_clip']:10.3f} {r['peak_mb']:8.0f} {100 * r['walk_share']:6.1f}% "
            f"{_fmt(100 * r['gcn_share'] if 'gcn_share' in r else None, '5.1f'):>5}% "
            f"{_fmt(100 * r['gcn_flop_share'] if 'gcn_flop_share' in r else None, '5.2f'):>5}% "
            f"{_fmt(r.get('seg_ms_per_clip'), '11.1f'):>11} "
            f"{_fmt(100 * r['seg_share_1worker'] if 'seg_share_1worker' in r else None, '8.1f'):>8}% "
            f"{_fmt(sp, '8.2f'):>8} {_fmt(fl, '8.3f'):>8}"
        )
    print(
        f"N = mean valid nodes per frame; CPU ms = process CPU time of a step (all threads, median); "
        f"first s = the first step (compiling, for compile); "
        f"walk/gcn % = share of the step time (the GCN's time x the times it ran); "
        f"gcn %F = the GCN's share of the step's FLOPs; seg %(1w) = segmentation of a batch by one worker / step time; "
        f"x speed = {label(ref) if ref else '-'} step time / this; x FLOPs = this / {label(ref) if ref else '-'}."
    )


def bench_videowalk(args, clips: Path, stage: str) -> dict | None:
    """ajabri/videowalk's training step on the clips saved at ``clips``, through ``stage`` (see the module
    docstring), in a subprocess; None (and a line saying why) when it fails."""
    import json
    import subprocess

    out = clips.with_name(f"videowalk-{stage}.json")
    cmd = [
        args.videowalk_python,
        str(Path(__file__).resolve().parent / "videowalk_step.py"),
        args.videowalk,
        str(clips),
        str(out),
        "--stage",
        stage,
        "--patch",
        str(args.size // 4),
        "--stride",
        str(args.size // 8),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(torch.get_num_threads()),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"  videowalk {stage}: failed ({done.stderr.strip().splitlines()[-1:]})")
        return None
    row = json.loads(out.read_text())
    print(f"  videowalk {stage}: {row['step_ms']:.1f} ms/step", flush=True)
    return row


def print_videowalk(vw: list[dict], rows: list[dict], gemm: dict) -> None:
    """videowalk's step beside EVER's reference walk (patch_crop, fp32, default mode) at the same stage
    (``ever.analysis.speed.videowalk_pairs``, the pairing the README and the book read), with both steps' GFLOP/s
    as a share of the fp32 matrix product's (``gemm``) and the share a step twice as fast as videowalk's needs."""
    if not vw:
        return
    print(f"\najabri/videowalk ({vw[0]['commit']}, torch {vw[0]['torch']}, {vw[0]['threads']} threads), same clips:")
    print(
        f"{'stage':8} {'videowalk ms':>12} {'GFLOP/clip':>10} {'EVER patch_crop ms':>18} {'GFLOP/clip':>10} "
        f"{'x speed (vw / EVER)':>19} {'vw % gemm':>9} {'EVER % gemm':>11} {'2x vw needs':>11}"
    )
    for p in videowalk_pairs({"rows": rows, "videowalk": vw, "gemm_gflops": gemm}):
        print(
            f"{p['stage']:8} {p['videowalk_ms']:12.1f} {p['videowalk_gflop']:10.3f} {p['ever_ms']:18.1f} "
            f"{p['ever_gflop']:10.3f} {p['speedup']:19.2f} {p['videowalk_of_gemm']:9.0%} "
            f"{p['ever_of_gemm']:11.0%} {p['twice_of_gemm']:11.0%}"
        )
    print(f"% gemm: GFLOP/s of the step (counted FLOPs / wall time) over the fp32 {gemm['n']}^3 matrix product's")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--proj-dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--clip-len", type=int, default=4)
    ap.add_argument("--k", type=int, default=8, help="object nodes per frame")
    ap.add_argument("--seg-scale", type=float, default=40.0, help="felzenszwalb scale at 128 px (scaled by area)")
    ap.add_argument(
        "--home-shift",
        type=int,
        default=32,
        help="walk.home_shift in px, as the CPU configs (0: walk home to frame 0 itself)",
    )
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--stages", default="layer4", help="comma list of model.train_stage (layer3, layer4)")
    ap.add_argument(
        "--precisions",
        default="fp32",
        help="comma list of train.precision (fp32, bf16, auto); bf16 on a CPU needs native bf16",
    )
    ap.add_argument(
        "--modes",
        default="default",
        help=f"comma list of {', '.join(MODES)} (default: as ever.train runs; compile: torch.compile the encoder)",
    )
    ap.add_argument("--videowalk", default=None, help="a checkout of ajabri/videowalk: time its training step too")
    ap.add_argument("--videowalk-python", default=sys.executable, help="an interpreter with torchvision for it")
    ap.add_argument("--random", action="store_true", help="uniform random frames instead of ever-synth")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    prov = provenance("train.py", sys.argv[1:] if argv is None else list(argv), device)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        ap.error(f"unknown variant(s) {bad}; known: {list(VARIANTS)}")
    stages = [v.strip() for v in args.stages.split(",") if v.strip()]
    precisions = [v.strip() for v in args.precisions.split(",") if v.strip()]
    modes = [v.strip() for v in args.modes.split(",") if v.strip()]
    if not modes or not set(modes) <= set(MODES):
        ap.error(f"--modes takes {','.join(MODES)}")
    if (
        not set(stages) <= {"layer3", "layer4"}
        or not set(precisions) <= {"fp32", "bf16", "auto"}
        or not stages
        or not precisions
    ):
        ap.error("--stages takes layer3,layer4 and --precisions fp32,bf16,auto")
    if device.type == "cpu" and "bf16" in precisions and not cpu_has_bf16():
        ap.error("--precisions bf16: this CPU has no native bf16 (AVX512-BF16 or AMX)")
    clips, source = load_clips(args.batch, args.clip_len, args.size, args.random)
    info = device_info(device)
    print(
        f"device {info['device']} ({info['gpu'] or info['cpu_model']}, {torch.get_num_threads()} threads), "
        f"frames: {source}; B={args.batch} T={args.clip_len} {args.size}px width={args.width} "
        f"D={args.proj_dim} K={args.k}; patches {args.size // 4}/{args.size // 8}"
    )
    gemm = {"n": GEMM_N, "fp32": gemm_gflops(device, torch.float32, GEMM_N)}  # the roof of the steps' GFLOP/s
    if "bf16" in precisions:
        gemm["bf16"] = gemm_gflops(device, torch.bfloat16, GEMM_N)
    print(f"matrix product {GEMM_N}^3: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items() if k != "n"))
    rows, vw, tried = [], [], set()
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "clips.pt"  # videowalk's subprocess reads the very clips
        if args.videowalk:
            torch.save(clips, saved)
        for n in names:
            for stage in stages:
                for precision in precisions:
                    for mode in modes:
                        rows.append(bench_variant(n, args, clips, device, stage, precision, mode))
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                        print(f"  {label(rows[-1])}: {rows[-1]['step_ms']:.1f} ms/step", flush=True)
                        if args.videowalk and (n, precision, mode) == ("patch_crop", "fp32", "default"):
                            vw.append(bench_videowalk(args, saved, stage))  # right after its pair: same load
                            tried.add(stage)
        for stage in [s for s in stages if s not in tried] if args.videowalk else []:  # no pair: timed at the end
            vw.append(bench_videowalk(args, saved, stage))
    vw = [v for v in vw if v]
    ref = rows[0] if rows else None
    for r in rows:
        if ref:
            r["speedup_vs_first"] = ref["step_ms"] / r["step_ms"]
            r["flops_ratio_vs_first"] = r["gflops_per_clip"] / ref["gflops_per_clip"]
    print()
    print_table(rows, ref)
    print_videowalk(vw, rows, gemm)
    result = {
        "bench": "train",
        **prov,
        "load_after": list(os.getloadavg()),
        "info": info,
        "frames": source,
        "args": vars(args),
        "gemm_gflops": gemm,
        "rows": rows,
        "videowalk": vw,
    }
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
