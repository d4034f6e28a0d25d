"""A trained encoder's palindrome walk on the first frames of an evaluation sequence, for chapter 3 of the
book (``book/03_walk.ipynb``): :func:`walk_example` reads the transition matrices from a checkpoint,
:func:`walk_window` picks the nodes around the annotated object and :func:`walk_round_trip` follows the
walker's distribution there and back. The interactive counterpart is :mod:`ever.explore`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def walk_example(
    model: str | Path,
    data_root: str | Path,
    split: str,
    seq_index: int = 0,
    num_frames: int = 4,
    stride: int = 1,
    long_side: int = 0,
) -> dict[str, Any]:
    """Transition matrices of a trained encoder on the first frames of an evaluation sequence.

    ``model``: a shipped model's name (``ever models``) or a ``checkpoint.pt``
    (:func:`ever.models.pretrained.resolve_model`); ``long_side`` > 0 resizes the frames (and the first mask,
    nearest) so that their long side is that many px, as the evaluation reads real video (427 px: half of
    DAVIS's 480p); 0 keeps the native size.

    Nodes are grid cells average-pooled from the encoder's dense map (``PatchPoolNodes`` with the
    run's patch size and stride), embedded by its projection head and L2-normalised; the GCN (if any)
    is not applied. Returns ``{"frames" (T, H, W, 3) uint8, "mask0" (H, W), "centers" (N, 2) as
    (x, y) px, "grid" (gh, gw), "fwd" / "bwd" lists of (N, N) arrays, "temperature", "sequence"}``.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    from ever.data.davis import DavisDataset
    from ever.models.pretrained import resolve_model
    from ever.nodes import PatchPoolNodes, grid_centers
    from ever.walk import transition_matrices

    net, cfg = resolve_model(str(model))
    ds = DavisDataset(str(data_root), split=split)
    name = ds.sequences[seq_index % len(ds.sequences)]
    seq = ds.sequence(name)
    idx = [min(i * stride, len(seq) - 1) for i in range(num_frames)]
    frames = np.stack([seq.frame(i) for i in idx])
    mask0 = np.asarray(seq.first_mask())
    if long_side > 0 and max(frames.shape[1:3]) != long_side:
        from PIL import Image

        scale = long_side / max(frames.shape[1:3])
        size = (round(frames.shape[2] * scale), round(frames.shape[1] * scale))  # (W, H) for PIL
        frames = np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])
        mask0 = np.asarray(Image.fromarray(mask0.astype(np.uint8)).resize(size, Image.NEAREST)).astype(mask0.dtype)
    H, W = (frames.shape[1] // 8) * 8, (frames.shape[2] // 8) * 8
    frames, mask0 = frames[:, :H, :W], mask0[:H, :W]
    p = max(8, (cfg.nodes.patch_size // 8) * 8)
    s = max(8, (cfg.nodes.patch_stride // 8) * 8)
    p = min(p, (min(H, W) // 8) * 8)
    extractor = PatchPoolNodes(p, s)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)[None]  # (1, T, 3, H, W)
    with torch.no_grad():
        feats, valid = extractor(net.dense, x)
        emb = F.normalize(net.head(feats).float(), dim=-1)
        fwd, bwd = transition_matrices(emb, valid, temperature=cfg.walk.temperature)
    centers, grid = grid_centers(H, W, p, s)
    return {
        "frames": frames,
        "mask0": mask0,
        "centers": centers,
        "grid": grid,
        "fwd": [a[0].numpy() for a in fwd],
        "bwd": [b[0].numpy() for b in bwd],
        "temperature": cfg.walk.temperature,
        "sequence": name,
        "patch": p,
        "stride": s,
    }


def walk_window(walk: dict[str, Any], size: int = 7) -> tuple[int, np.ndarray]:
    """The node at the centre of the annotated object of :func:`walk_example` ``walk`` (the frame's centre
    without one) and the indices of the ``size`` x ``size`` window of nodes around it, clipped to the grid."""
    gh, gw = walk["grid"]
    ys, xs = np.nonzero(walk["mask0"] > 0)
    target = np.array([xs.mean(), ys.mean()]) if len(xs) else np.array(walk["frames"].shape[2:0:-1]) / 2
    start = int(np.argmin(((walk["centers"] - target) ** 2).sum(1)))
    r0, c0 = divmod(start, gw)
    h = size // 2
    rows = np.arange(max(0, min(r0 - h, gh - size)), min(gh, max(r0 - h, 0) + size))
    cols = np.arange(max(0, min(c0 - h, gw - size)), min(gw, max(c0 - h, 0) + size))
    return start, (rows[:, None] * gw + cols[None, :]).ravel()


def walk_round_trip(walk: dict[str, Any], start: int) -> tuple[list[int], list[np.ndarray]]:
    """The walker's distribution over nodes at each position of the palindrome of :func:`walk_example`
    ``walk``, starting on node ``start``: ``(frame index of each position, (N,) distribution of each)``."""
    from ever.walk import palindrome_distributions

    trip = palindrome_distributions(
        [torch.from_numpy(a) for a in walk["fwd"]], [torch.from_numpy(b) for b in walk["bwd"]], start
    )
    return [t for t, _ in trip], [d.numpy() for _, d in trip]
