"""Training by the contrastive random walk: ``ever train CONFIG.yaml [--set k=v] [--resume]``.

One loop for CPU, one GPU, or many GPUs (``torchrun --nproc_per_node=G -m ever.cli train ...``,
PyTorch DDP; gloo on CPU, nccl on CUDA). Everything random is a function of (seed, step, sample):

- sample ``i = step * global_batch + rank * local_batch + b`` is always the same clip
  (``ClipDataset`` draws its crop and offset from ``(seed, i)``);
- edge-dropout noise for step s is drawn for the *global* batch from ``(seed, s)`` and sliced by rank,

so a resumed run continues bit-for-bit and a DDP run matches single-process training with the same
global batch (except the reference patch extractor's crop jitter, which is drawn per rank).

A run folder ``runs/<name>/`` holds ``config.yaml``, ``env.json``, ``metrics.jsonl``,
``checkpoint.pt`` (atomic: temp file + rename; model, optimiser, scheduler, step, RNG states, config)
and ``ledger.json`` (cost); with ``train.snapshot_every`` also ``snapshots/step-NNNNNN.pt`` (weights and
config only, loadable like a checkpoint) for accuracy-against-compute curves (``ever report``).

What stops a run, and what it leaves: a non-finite loss or an update that makes a weight non-finite
stops it at once (a checkpoint never holds non-finite weights; the message names the last checkpoint,
which is finite, or says there is none); training clips whose video fails to read are replaced by
another video's, counted (``read_failures`` in ``metrics.jsonl``) and stop the run past
``data.max_fail_frac`` of the reads; a gradient norm that stays at zero is warned about in the log,
``metrics.jsonl`` and the ledger (the run learns nothing). Temp files of checkpoints torn by a kill are
removed when the run starts again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from ever.config import NEUTRAL_KEYS, Config, flatten, save_config, snapshot_path, with_defaults
from ever.errors import CheckpointError, DataError, EverError, one_line_errors
from ever.models.crw import CRW, StepDraws
from ever.runs import RunDir
from ever.utils import (
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    environment,
    finite_state,
    hold_lock,
    json_text,
    seed_everything,
    select_device,
    writable_dir,
)

CHECKPOINT = "checkpoint.pt"
LOCK = ".train.lock"  # held while a run trains (one writer per run folder)


# ----------------------------------------------------------------------------- distributed


def _dist_setup(cfg: Config) -> tuple[int, int, torch.device]:
    """(rank, world_size, device). DDP when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = select_device(cfg.train.device)
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return dist.get_rank(), world, device
    return 0, 1, select_device(cfg.train.device)


# ----------------------------------------------------------------------------- data


class _StepBatches(torch.utils.data.Sampler):
    """Yields, for each step from ``start`` to ``steps``, this rank's list of global sample indices."""

    def __init__(self, start: int, steps: int, global_batch: int, rank: int, world: int):
        self.start, self.steps, self.gb, self.rank, self.lb = start, steps, global_batch, rank, global_batch // world

    def __iter__(self):
        for s in range(self.start, self.steps):
            base = s * self.gb + self.rank * self.lb
            yield list(range(base, base + self.lb))

    def __len__(self) -> int:
        return self.steps - self.start


class _CountedReads(torch.utils.data.Dataset):
    """Wraps the training dataset: ``ds[i]`` -> ``(*item, failed reads, first failure message or "")``,
    so the training process learns of the reads that failed in its data workers."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        before = self.dataset.read_failures
        item = self.dataset[i]
        failed = self.dataset.read_failures - before
        item = item if isinstance(item, tuple) else (item,)
        return (*item, failed, self.dataset.last_failure if failed else "")


def build_loader(cfg: Config, start: int, rank: int, world: int, device: torch.device, extractor):
    from ever.data.clips import ClipDataset, clip_loader

    d = cfg.data
    ds = ClipDataset(
        d.roots,
        d.clip_len,
        d.frame_stride,
        d.fps,
        d.size,
        seed=cfg.seed,
        max_fail_frac=d.max_fail_frac,
        crop_scale=d.crop_scale,
        root_weights=d.root_weights,
        groups=d.groups,
        cache_mb=d.cache_mb / max(1, d.num_workers),  # each loading process keeps its own frames
    )
    if extractor.needs_segments:
        from ever.nodes.objects import SegmentedClips

        ds = SegmentedClips(ds, cfg.nodes)
    ds = _CountedReads(ds)
    sampler = _StepBatches(start, cfg.train.steps, cfg.train.batch_size, rank, world)
    # a worker silent for 10 minutes is an error, not a hang: the run resumes from its last checkpoint
    return clip_loader(
        ds, sampler, d.num_workers, pin_memory=device.type == "cuda", timeout=600 if d.num_workers > 0 else 0
    )


# ----------------------------------------------------------------------------- optimisation


def build_optimizer(cfg: Config, model: torch.nn.Module):
    """Adam/AdamW; weight decay on weight matrices and kernels only (not norms or biases)."""
    o = cfg.optim
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    opt_cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    opt = opt_cls(groups, lr=o.lr)
    total, warm = cfg.train.steps, o.warmup_steps

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if o.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _edge_noise(cfg: Config, step: int, shape: tuple[int, ...], rank: int, world: int) -> torch.Tensor:
    """Uniform noise (local B, T-1, 2, N, N) for edge dropout, drawn for the global batch from (seed, step)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    B, T, N = shape
    full = torch.rand((B * world, T - 1, 2, N, N), generator=g)
    return full[rank * B : (rank + 1) * B]


def _home_picks(cfg: Config, step: int, B: int, n: int, rank: int, world: int) -> torch.Tensor:
    """(local B,) indices in [0, n) choosing each clip's home-view shift, drawn for the global batch."""
    g = torch.Generator().manual_seed(cfg.seed * 999_983 + step)
    return torch.randint(n, (B * world,), generator=g)[rank * B : (rank + 1) * B]


def _mean_count(world: int):
    """``count_fn`` for :func:`ever.walk.walk_loss` under DDP: this rank's walker count -> the mean count
    per rank, so that DDP's gradient average equals the gradient of the mean loss over all walkers."""
    if world == 1:
        return None

    def count(n: torch.Tensor) -> torch.Tensor:
        n = n.detach().to(torch.float32).clone()
        dist.all_reduce(n)
        return n.clamp_min(1) / world

    return count


# ----------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, crw: CRW, opt, sched, step: int, cfg: Config) -> None:
    bad = finite_state(crw.state_dict())
    if bad:  # the loop stops before this can happen; never write such weights
        raise CheckpointError(f"{path}: not saved, {bad} weight tensors are not finite at step {step}")
    state = {
        "model": crw.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "step": step,
        "rng": _rng_state(),
        "config": cfg.to_dict(),
    }
    atomic_torch_save(state, path)


def _load_for_resume(path: Path, cfg: Config) -> dict:
    """Load a checkpoint to resume (on the CPU: RNG states must stay CPU tensors) and check it fits ``cfg``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        saved = flatten(with_defaults(ckpt["config"]))  # fields added since it was saved: at their default
    except Exception as e:  # noqa: BLE001 - any failure here means an unusable checkpoint
        raise CheckpointError(f"{path}: cannot resume from this checkpoint ({type(e).__name__})") from None
    now = flatten(cfg.to_dict())
    for key in sorted(set(saved) | set(now)):
        if key not in NEUTRAL_KEYS and saved.get(key) != now.get(key):
            why = (
                " (the learning-rate schedule is laid out over train.steps: train a new run with more steps)"
                if key == "train.steps"
                else ""
            )
            raise CheckpointError(
                f"{path}: cannot resume, {key} was {saved.get(key)!r} and is now {now.get(key)!r}{why}"
            )
    return ckpt


def _last_checkpoint(path: Path, step: int | None) -> str:
    """The end of a stop message: which checkpoint is left to resume from."""
    if step is None:
        return "No checkpoint was saved before it (none is ever written with non-finite weights)."
    return f"The last checkpoint, step {step}, is finite and kept: {path}"


class _ZeroGradWatch:
    """Warns once when the gradient norm was (numerically) zero, below ``TINY``, in at least 80 % of
    ``window`` consecutive steps: the walk is saturated (e.g. walk.temperature far too low, or optim.lr so high that
    the weights
    blew up) and the run learns nothing, whatever its loss says."""

    TINY = 1e-6

    def __init__(self, window: int = 10):
        self.norms: deque[float] = deque(maxlen=window)
        self.warning = ""

    def add(self, grad_norm: float, step: int) -> bool:
        """Count one step; True the first time the window is mostly zeros."""
        self.norms.append(grad_norm)
        zeros = sum(g < self.TINY for g in self.norms)
        if self.warning or len(self.norms) < self.norms.maxlen or zeros < 0.8 * self.norms.maxlen:
            return False
        self.warning = (
            f"warning: the gradient norm was < {self.TINY:g} in {zeros} of steps {step - len(self.norms) + 1}-{step}: "
            "this run is not learning"
        )
        return True


def _remove_torn_checkpoints(run_dir: Path) -> None:
    """Delete the temp files of checkpoint writes that a kill interrupted (``.checkpoint.pt.*.tmp``)."""
    for tmp in run_dir.glob(f".{CHECKPOINT}.*.tmp"):
        tmp.unlink(missing_ok=True)


class _ReadFailures:
    """Training reads that failed (a clip replaced by another video's): counted across data workers and
    DDP ranks, reported, and fatal past ``max_fail_frac`` of the reads once ``min_reads`` were made
    (start-up skips unusable videos; this catches videos that fail later, e.g. a corrupt frame)."""

    def __init__(self, max_fail_frac: float, min_reads: int):
        self.max_frac, self.min_reads = max_fail_frac, min_reads
        self.reads, self.failed, self.first = 0, 0, ""

    def add(self, failed: int, reads: int, messages: list[str], step: int) -> str | None:
        """Count one global batch (``failed`` of ``reads``, summed over ranks); a warning line when it had
        failures. Every rank gets the same counts, so every rank stops together."""
        self.reads += reads
        if not failed:
            return None
        self.failed += failed
        here = next((m for m in messages if m), "on another DDP rank")
        self.first = self.first or here
        if self.reads >= self.min_reads and self.failed / self.reads > self.max_frac:
            raise DataError(
                f"{self.failed} of {self.reads} training reads failed by step {step} (> "
                f"data.max_fail_frac={self.max_frac}); first: {self.first}"
            )
        return (
            f"warning: step {step}: {failed} clip read(s) failed and were replaced by another video's "
            f"({self.failed} of {self.reads} so far): {here}"
        )


def _global_reads(failed: torch.Tensor, world: int) -> tuple[int, int]:
    """(failed reads, reads) of this step's global batch: each sample is one good read plus its failures."""
    counts = torch.tensor([int(failed.sum()), int(failed.numel() + failed.sum())], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(counts)
    return int(counts[0]), int(counts[1])


def _trim_metrics(path: Path, upto: int) -> None:
    """Keep only the metric lines of steps <= upto (a resumed run rewrites what came after; a line torn
    by a kill is dropped)."""
    if not path.exists():
        return
    keep = []
    for ln in path.read_text().splitlines():
        try:
            if json.loads(ln)["step"] <= upto:
                keep.append(ln)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(ln + "\n" for ln in keep))


def flops_by_module(fn) -> dict[str, int]:
    """FLOPs of one ``fn()`` call by module, as ``FlopCounterMode`` attributes them (forward and backward):
    ``{"Global": total, "CRW": ..., "CRW.gcn": ...}``, a module counted each time it ran."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return {k: int(sum(v.values())) for k, v in counter.get_flop_counts().items()}


def _count_step_flops(ledger, cfg: Config, crw: CRW, run_step, batch: int) -> None:
    """FLOPs of one training step (``run_step`` runs it), and the parts the ablation asks about: the walk
    (:func:`ever.walk.walk_flops` on this step's graph size) and the GCN, each with its share of the step.
    The GCN's FLOPs are those its module ran in the counted step, forward and backward, as often as it ran
    (twice with ``walk.home_shift``: on the clip and on the home view with the clip as context)."""
    from ever.gcn import graph_size
    from ever.walk import walk_flops

    by_module: dict[str, int] = {}
    total = max(1, ledger.count_flops(lambda: by_module.update(flops_by_module(run_step))))
    T, N = graph_size(cfg)
    walk = walk_flops(batch, T, N, cfg.model.proj_dim)
    ledger.set_metric("walk_flops_per_step", walk)
    ledger.set_metric("walk_flop_share", walk / total)
    if crw.gcn is not None:
        gcn = by_module.get(f"{type(crw).__name__}.gcn", 0)
        ledger.set_metric("gcn_flops_per_step", gcn)
        ledger.set_metric("gcn_flop_share", gcn / total)


# ----------------------------------------------------------------------------- precision


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX, as oneDNN reports it); without it bf16
    is emulated and slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, precision: str):
    """The autocast context of a training step for ``train.precision`` on ``device`` (the one rule; the
    bench scripts use it too): bf16 autocast for "bf16" on either device and for "auto" on CUDA, none for
    "fp32" and for "auto" on a CPU. The walk loss is computed in fp32 under it (ever/walk.py).
    "bf16" on a CPU without native bf16 raises a one-line ``EverError``."""
    on = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    if on and device.type == "cpu" and not cpu_has_bf16():
        raise EverError(
            "train.precision=bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), where bf16 is "
            "emulated and slower than fp32; use train.precision=fp32 (or auto)"
        )
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


# ----------------------------------------------------------------------------- the loop


def train(cfg: Config, resume: bool = False) -> Path:
    """Train ``cfg``; returns the run folder. With ``resume`` continue from its checkpoint. The run folder
    is locked while it trains (``.train.lock``, :func:`ever.utils.hold_lock`): a second ``ever train`` into
    it is refused in one line, before it writes anything."""
    rank, world, device = _dist_setup(cfg)
    writable_dir(cfg.run_dir, "the run folder")  # every rank: none may go on into DDP's collectives alone
    lock = hold_lock(cfg.run_dir / LOCK, "another `ever train`") if rank == 0 else contextlib.nullcontext()
    with lock:
        return _train(cfg, resume, rank, world, device)


def _train(cfg: Config, resume: bool, rank: int, world: int, device: torch.device) -> Path:
    if cfg.train.batch_size % world:
        raise EverError(f"train.batch_size={cfg.train.batch_size} is not divisible by the {world} DDP processes")
    run_dir = cfg.run_dir
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise EverError(f"{ckpt_path}: a checkpoint exists; pass --resume to continue or choose another name")
    if rank == 0:
        _remove_torn_checkpoints(run_dir)
    amp = autocast(device, cfg.train.precision)  # before anything is written: a CPU without bf16 stops here
    seed_everything(cfg.seed)
    crw = CRW(cfg).to(device)
    cuda = device.type == "cuda"
    if cuda and cfg.train.channels_last:
        crw = crw.to(memory_format=torch.channels_last)
    opt, sched = build_optimizer(cfg, crw)
    start = 0
    if resume and ckpt_path.exists():
        ckpt = _load_for_resume(ckpt_path, cfg)
        crw.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        _set_rng_state(ckpt["rng"])
        start = ckpt["step"]
        bad = finite_state(ckpt["model"])
        if bad:
            raise CheckpointError(f"{ckpt_path}: cannot resume, {bad} weight tensors are not finite")
    rd = RunDir(run_dir)  # the run folder's layout: ever.runs
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, rd.config_path)
        atomic_write_json(rd.env_path, environment())
        _trim_metrics(rd.metrics_path, start)
    if start >= cfg.train.steps:
        return run_dir

    if cfg.train.compile:
        crw.encode = torch.compile(crw.model.dense)
    net = crw
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(crw, device_ids=[device.index] if cuda else None)
    loader = build_loader(cfg, start, rank, world, device, crw.nodes)
    count_fn = _mean_count(world)

    from ever.ledger import Ledger

    with Ledger(
        run_dir, phase="train", country=cfg.ledger.country, device=device, enabled=cfg.ledger.enabled and rank == 0
    ) as ledger:
        bar = tqdm(total=cfg.train.steps, initial=start, disable=rank != 0, desc=cfg.name, dynamic_ncols=True)
        metrics = open(rd.metrics_path, "a") if rank == 0 else None
        t0, last_t, step = time.perf_counter(), time.perf_counter(), start
        last_step = start
        saved = start if start > 0 else None  # step of the checkpoint on disk (always finite)
        reads = _ReadFailures(cfg.data.max_fail_frac, min_reads=2 * cfg.train.batch_size)
        zero_grad = _ZeroGradWatch(min(10, cfg.train.steps))
        try:
            for batch in one_line_errors(loader):
                *data, failed, messages = batch
                frames, segments = data[0], (data[1] if len(data) > 1 else None)
                warning = reads.add(*_global_reads(failed, world), messages, step + 1)
                if warning and rank == 0:
                    tqdm.write(warning, file=sys.stderr)
                frames = frames.to(device, non_blocking=True).float().div_(255)
                if segments is not None:
                    segments = segments.to(device, non_blocking=True)

                def step_fn(module, count=None):
                    gen = torch.Generator().manual_seed(cfg.seed * 7_919 + step * world + rank)
                    draws = StepDraws(
                        noise=lambda shape: _edge_noise(cfg, step, shape, rank, world),
                        home=lambda b, n: _home_picks(cfg, step, b, n, rank, world),
                        count=count,
                    )
                    with amp:
                        out = module(frames, segments, gen, draws)
                    out.loss.backward()
                    return out

                if step == start and rank == 0:  # FLOPs of one step, counted once (no DDP sync)
                    _count_step_flops(
                        ledger, cfg, crw, lambda: (step_fn(crw), opt.zero_grad(set_to_none=True)), frames.shape[0]
                    )
                out = step_fn(net, count_fn)
                loss = out.loss.detach()
                if world > 1:  # the global batch's mean loss; a NaN on any rank stops every rank together
                    loss = loss.clone()
                    dist.all_reduce(loss)
                    loss /= world
                if not torch.isfinite(loss):
                    raise EverError(
                        f"non-finite loss ({loss.item()}) at step {step + 1}; stopped. "
                        + _last_checkpoint(ckpt_path, saved)
                    )
                gnorm = torch.nn.utils.clip_grad_norm_(crw.parameters(), cfg.optim.grad_clip or float("inf"))
                opt.step()
                opt.zero_grad(set_to_none=True)
                sched.step()
                step += 1
                bad = finite_state(crw.state_dict())
                if bad:  # the update broke the weights: stop before anything saves them
                    raise EverError(
                        f"{bad} weight tensors became non-finite in the update of step {step} "
                        f"(optim.lr={cfg.optim.lr:g}); stopped. " + _last_checkpoint(ckpt_path, saved)
                    )
                if zero_grad.add(float(gnorm), step) and rank == 0:  # once, when the streak is long enough
                    tqdm.write(zero_grad.warning, file=sys.stderr)
                    ledger.set_metric("warning", zero_grad.warning)
                ledger.add(steps=1, clips=cfg.train.batch_size, frames=cfg.train.batch_size * frames.shape[1])
                bar.update(1)
                if rank == 0 and (step % cfg.train.log_every == 0 or step == cfg.train.steps):
                    now = time.perf_counter()
                    clips_s = (step - last_step) * cfg.train.batch_size / max(now - last_t, 1e-9)
                    last_t, last_step = now, step
                    rec = {
                        "step": step,
                        "loss": round(loss.item(), 5),
                        "acc": round(out.acc_by_len.mean().item(), 4),
                        "loss_by_len": [round(v, 4) for v in out.loss_by_len.tolist()],
                        "lr": sched.get_last_lr()[0],
                        "grad_norm": round(float(gnorm), 6),
                        "read_failures": reads.failed,
                        "clips_per_s": round(clips_s, 3),
                        "elapsed_s": round(now - t0, 2),
                    }
                    if zero_grad.warning:
                        rec["warning"] = zero_grad.warning
                    try:
                        metrics.write(json_text(rec, indent=None) + "\n")
                        metrics.flush()
                    except OSError as e:  # a full disk: name the file
                        raise OSError(e.errno, e.strerror, str(run_dir / "metrics.jsonl")) from None
                    bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['acc']:.2f}", clips_s=f"{clips_s:.1f}")
                if rank == 0 and (step % cfg.train.ckpt_every == 0 or step == cfg.train.steps):
                    save_checkpoint(ckpt_path, crw, opt, sched, step, cfg)
                    saved = step
                    ledger.flush()  # the cost so far survives a kill; a resume appends a new segment
                if (
                    rank == 0
                    and cfg.train.snapshot_every
                    and step % cfg.train.snapshot_every == 0
                    and step < cfg.train.steps
                ):  # the last step's weights are checkpoint.pt
                    atomic_torch_save(
                        {"model": crw.state_dict(), "config": cfg.to_dict(), "step": step}, snapshot_path(run_dir, step)
                    )
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
    if world > 1:
        _check_ranks_agree(crw, run_dir, rank, world)
    return run_dir


def _check_ranks_agree(crw: CRW, run_dir: Path, rank: int, world: int) -> None:
    """DDP sanity check at the end of a run: every rank must hold the same parameters."""
    flat = torch.cat([p.detach().float().flatten() for p in crw.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    diff = max((g - gathered[0]).abs().max().item() for g in gathered)
    if rank == 0:
        atomic_write_text(
            run_dir / "ddp_check.txt",
            f"world={world}: ranks hold identical parameters (max |diff| = {diff:.3g})\n"
            if diff == 0
            else f"world={world}: ranks DIFFER (max |diff| = {diff:.3g})\n",
        )
    dist.barrier()
    if diff != 0:
        raise EverError(f"DDP ranks ended with different parameters (max |diff| = {diff:.3g}); see {run_dir}")
