"""Time ajabri/videowalk's own training step on given clips (run by ``bench/train.py --videowalk``).

    python bench/videowalk_step.py VIDEOWALK_DIR CLIPS.pt OUT.json [--stage layer4|layer3] [--patch 64]
        [--stride 32] [--steps 5] [--warmup 2] [--threads 2]

``VIDEOWALK_DIR`` is a checkout of https://github.com/ajabri/videowalk, kept outside this repository (its code
is imported from there, never copied); the interpreter needs torch and torchvision. ``CLIPS.pt`` holds uint8
clips (B, T, 3, S, S). The step is its ``train.py``'s: ``CRW(args)`` (``utils.make_encoder``: ResNet-18,
strides of layer3/4 at 1, reflect padding; layer4 removed with ``--stage layer3``, its ``--remove-layers``),
its input of B x T x N*3 x p x p patch crops (the grid ``p``/``stride`` of its ``--frame-aug grid``, without
jitter), edge dropout 0.1, temperature 0.05, linear head, then ``loss.backward()`` and an Adam step (lr 1e-4),
in fp32 on the CPU. Writes median step ms, FLOPs per clip (torch's ``FlopCounterMode`` over forward +
backward, the counter bench/train.py uses) and what it ran on to ``OUT.json``.

Its visualisation imports (visdom, wandb, cv2, scikit-learn, scikit-image, matplotlib, imageio), which a
training step never calls, are stood in for by empty modules when they are not installed.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VISUAL_ONLY = (
    "visdom",
    "wandb",
    "cv2",
    "imageio",
    "sklearn",
    "sklearn.decomposition",
    "skimage",
    "matplotlib",
    "matplotlib.pyplot",
)


def _stand_ins() -> None:
    for name in VISUAL_ONLY:
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
            mod.__getattr__ = lambda attr: None  # PEP 562: any name it is asked for
            sys.modules[name] = mod


def patches(clips_u8: torch.Tensor, p: int, stride: int) -> torch.Tensor:
    """(B, T, 3, S, S) uint8 -> (B, T, N*3, p, p) normalised crops of the patch grid, videowalk's input."""
    B, T = clips_u8.shape[:2]
    x = clips_u8.float().div(255).flatten(0, 1)
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    cols = F.unfold(x, p, stride=stride)  # (B*T, 3*p*p, N)
    n = cols.shape[-1]
    crops = cols.transpose(1, 2).reshape(B * T, n, 3, p, p)
    return crops.reshape(B, T, n * 3, p, p).contiguous()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videowalk")
    ap.add_argument("clips")
    ap.add_argument("out")
    ap.add_argument("--stage", default="layer4", choices=("layer3", "layer4"))
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    code = Path(args.videowalk) / "code"
    _stand_ins()
    sys.path.insert(0, str(code))
    from model import CRW  # noqa: E402 - videowalk's, from its checkout

    torch.manual_seed(0)
    vw_args = argparse.Namespace(
        model_type="scratch",
        remove_layers=[] if args.stage == "layer4" else ["layer4"],
        dropout=0.1,
        temp=0.05,
        featdrop=0.0,
        head_depth=0,
        device="cpu",
        flip=False,
        sk_targets=False,
    )
    model = CRW(vw_args, vis=None).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    clips = torch.load(args.clips)
    video = patches(clips, args.patch, args.stride)
    B = video.shape[0]

    def fwd_bwd():
        _, loss, _ = model(video)
        loss.mean().backward()

    def step():
        fwd_bwd()
        opt.step()
        opt.zero_grad()

    for _ in range(args.warmup + 1):
        step()
    times = []
    for _ in range(max(1, args.steps)):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fwd_bwd()
    opt.zero_grad()
    commit = (
        subprocess.run(
            ["git", "-C", args.videowalk, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown commit"
    )
    row = {
        "variant": "videowalk",
        "stage": args.stage,
        "precision": "fp32",
        "step_ms": 1e3 * statistics.median(times),
        "step_ms_std": 1e3 * statistics.pstdev(times),
        "clips_per_s": B / statistics.median(times),
        "gflops_per_clip": counter.get_total_flops() / 1e9 / B,
        "nodes_per_frame": video.shape[2] // 3,
        "encoder_params": sum(p.numel() for p in model.encoder.parameters()),
        "commit": commit,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    Path(args.out).write_text(json.dumps(row, indent=2))
    return row


if __name__ == "__main__":
    main()
