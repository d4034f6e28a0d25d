"""Training: config handling, learning on tiny data, exact resume after SIGKILL, DDP on CPU."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_cfg, tiny_settings

from ever.config import ConfigError, load_config
from ever.errors import EverError
from ever.models import load_checkpoint
from ever.train import train

REPO = Path(__file__).resolve().parents[1]


_cfg = tiny_cfg


def _params(path):
    model, _ = load_checkpoint(path)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_unknown_and_bad_keys_are_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  widht: 16\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: model: unknown key 'widht'"):
        load_config(bad)
    with pytest.raises(ConfigError, match="walk.temperature must be > 0"):
        load_config(None, ["walk.temperature=0"])
    with pytest.raises(ConfigError, match="train.steps: expected int"):
        load_config(None, ["train.steps=many"])


def test_training_writes_run_and_loss_falls(tmp_path, tiny_videos):
    cfg = _cfg(tmp_path, tiny_videos, "train.steps=30", "name=learn", "optim.lr=0.003", "walk.edge_dropout=0")
    run = train(cfg)
    for f in ("config.yaml", "env.json", "metrics.jsonl", "checkpoint.pt"):
        assert (run / f).exists(), f
    import json

    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    first, last = sum(r["loss"] for r in rows[:5]) / 5, sum(r["loss"] for r in rows[-5:]) / 5
    assert last < first - 0.05, (first, last)
    # The ledger (energy off here) still counts a step's FLOPs and the walk's share of them.
    from ever.walk import walk_flops

    totals = json.loads((run / "ledger.json").read_text())["phases"]["train"]["totals"]
    walk = walk_flops(4, 4, 9, 16)  # batch 4, clip 4, 3x3 patches of a 64 px frame, 16 dims
    assert totals["metrics"]["walk_flops_per_step"] == walk
    assert totals["metrics"]["walk_flop_share"] == pytest.approx(walk / (totals["flops"] / 30))
    assert 0 < totals["metrics"]["walk_flop_share"] < 0.5
    model, saved = load_checkpoint(run / "checkpoint.pt")
    assert saved.model.width == 8
    # read at layer3, the CPU default's stage (issue 32): 4 x width channels at 1/8 resolution
    assert saved.model.eval_stage == "layer3" and model.features(torch.rand(1, 3, 64, 64)).shape == (1, 32, 8, 8)
    with pytest.raises(EverError, match="pass --resume"):
        train(cfg)


def test_resume_after_sigkill_is_bit_exact(tmp_path, tiny_videos):
    steps = 12
    args = [f"train.steps={steps}", "walk.edge_dropout=0.2", "walk.home_shift=32"]  # random drops and shifts too
    ref = train(_cfg(tmp_path / "a", tiny_videos, *args, "name=ref"))
    overrides = [f"--set={a}" for a in (*args, "name=killed", "data.roots=[" + str(tiny_videos) + "]")]
    base = tiny_settings(tmp_path / "b")
    cmd = [sys.executable, "-m", "ever.cli", "train", str(REPO / "configs" / "crw-patch-cpu.yaml")]
    cmd += [f"--set={b}" for b in base] + overrides
    ckpt = tmp_path / "b" / "killed" / "checkpoint.pt"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), "no checkpoint before the kill"
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert killed_at < steps, "the run finished before it could be killed"
    done = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert torch.equal(_params(ref / "checkpoint.pt"), _params(ckpt))
    # resuming with a config that changes what is computed is refused, naming the key
    changed = subprocess.run(cmd + ["--resume", "--set=train.batch_size=2"], cwd=REPO, capture_output=True, text=True)
    assert changed.returncode == 2 and "train.batch_size was 4 and is now 2" in changed.stderr
    steps_logged = [
        int(ln.split('"step": ')[1].split(",")[0]) for ln in (ckpt.parent / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps_logged == list(range(1, steps + 1))


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_videos, monkeypatch):
    cfg = _cfg(tmp_path, tiny_videos, "train.steps=6", "name=nan")
    import ever.walk as walk

    real = walk.walk_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        out = real(*a, **k)
        calls["n"] += 1
        if calls["n"] > 4:  # one FLOP-counting call, then steps 1-3 fine, step 4 NaN
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr("ever.models.crw.walk_loss", poisoned)
    with pytest.raises(EverError, match="non-finite loss .* at step 4"):
        train(cfg)
    assert torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=False)["step"] == 2


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_cpu_processes_match_single_process(tmp_path, tiny_videos):
    # a shifted home leaves a different number of walkers on each rank: the loss is normalised by the
    # global count (walk_loss count_fn), so DDP still matches one process
    args = ["train.steps=4", "walk.edge_dropout=0.1", "walk.home_shift=32"]
    single = train(_cfg(tmp_path / "single", tiny_videos, *args, "name=single"))
    base = [f"data.roots=[{tiny_videos}]", *tiny_settings(tmp_path / "ddp"), "name=ddp", *args]
    import socket

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        "-m",
        "ever.cli",
        "train",
        str(REPO / "configs" / "crw-patch-cpu.yaml"),
    ] + [f"--set={b}" for b in base]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ranks hold identical parameters" in (tmp_path / "ddp" / "ddp" / "ddp_check.txt").read_text()
    a, b = _params(single / "checkpoint.pt"), _params(tmp_path / "ddp" / "ddp" / "checkpoint.pt")
    diff = (a - b).abs()
    # Same samples, same dropout noise, gradients averaged over ranks: only float summation order differs
    # (Adam's first steps turn that into at most a few % of one lr-sized update on a few near-zero-gradient
    # weights). A wrong split (ranks seeing the same clips, or unsynchronised gradients) moves ~all
    # weights by O(lr) per step.
    lr = 1e-3
    print("ddp vs single: max", diff.max().item(), "mean", diff.mean().item())
    assert diff.max() < 0.2 * lr and diff.mean() < 1e-3 * lr, (diff.max(), diff.mean())
    # the logged loss is the global batch's mean under DDP too, step by step
    logged = [
        [json.loads(ln)["loss"] for ln in (d / "metrics.jsonl").read_text().splitlines()]
        for d in (single, tmp_path / "ddp" / "ddp")
    ]
    assert len(logged[0]) == 4 and np.allclose(logged[0], logged[1], atol=2e-4), logged


def test_adamw_decays_weights_not_norms_and_the_mlp_head_trains(tmp_path, tiny_videos):
    from ever.models.crw import CRW
    from ever.train import build_optimizer

    cfg = _cfg(tmp_path, tiny_videos, "optim.name=adamw", "optim.weight_decay=0.05", "model.proj=mlp")
    crw = CRW(cfg)
    opt, _ = build_optimizer(cfg, crw)
    assert isinstance(opt, torch.optim.AdamW)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    assert decayed and all(p.ndim >= 2 for p in crw.parameters() if id(p) in decayed)
    assert len([m for m in crw.model.head.modules() if isinstance(m, torch.nn.Linear)]) == 2
    run = train(
        _cfg(
            tmp_path,
            tiny_videos,
            "name=adamw",
            "train.steps=2",
            "optim.name=adamw",
            "optim.weight_decay=0.05",
            "model.proj=mlp",
        )
    )
    assert torch.isfinite(_params(run / "checkpoint.pt")).all()
