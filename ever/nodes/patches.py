"""Patch nodes on a regular grid: cropped and encoded one by one (the reference walk) or pooled from one
dense encoding of the frame (the efficient walk); and the grid's geometry."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ever.nodes.base import NodeExtractor


def _grid(size: int, patch: int, stride: int) -> list[int]:
    if patch > size:
        raise ValueError(f"patch size {patch} is larger than the frame side {size}")
    return list(range(0, size - patch + 1, stride))


def grid_centers(H: int, W: int, patch: int, stride: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Centres (N, 2) as (x, y) px of the patch grid on a (H, W) frame, row-major as the patch
    extractors' nodes, and the grid shape (gh, gw)."""
    ys, xs = _grid(H, patch, stride), _grid(W, patch, stride)
    cy, cx = np.meshgrid(np.asarray(ys) + patch / 2, np.asarray(xs) + patch / 2, indexing="ij")
    return np.stack([cx.ravel(), cy.ravel()], 1), (len(ys), len(xs))


class PatchPoolNodes(NodeExtractor):
    """Encode each frame once; nodes = grid cells average-pooled from the dense map.

    Patch size and stride are in pixels and must be multiples of 8 (the feature stride).
    """

    def __init__(self, patch_size: int = 64, stride: int = 32):
        if patch_size % 8 or stride % 8:
            raise ValueError(f"patch_pool needs patch_size and stride multiple of 8, got {patch_size}, {stride}")
        self.patch, self.stride = patch_size, stride
        self.step = stride

    def home_target(self, dy, dx, H, W):
        ys, xs = _grid(H, self.patch, self.stride), _grid(W, self.patch, self.stride)
        r = torch.arange(len(ys)).repeat_interleave(len(xs)) + dy // self.stride
        c = torch.arange(len(xs)).repeat(len(ys)) + dx // self.stride
        inside = (r >= 0) & (r < len(ys)) & (c >= 0) & (c < len(xs))
        return torch.where(inside, r * len(xs) + c, torch.full_like(r, -1))

    def __call__(self, encode, frames, segments=None, generator=None):
        B, T, _, H, W = frames.shape
        fmap = encode(frames.flatten(0, 1))  # (B*T, C, H/8, W/8)
        cells = F.avg_pool2d(fmap, self.patch // 8, self.stride // 8)  # (B*T, C, gh, gw)
        feats = cells.flatten(2).transpose(1, 2).unflatten(0, (B, T))  # (B, T, N, C)
        return feats, torch.ones(feats.shape[:3], dtype=torch.bool, device=feats.device)


class PatchCropNodes(NodeExtractor):
    """Reference CRW nodes: crop every grid patch (jittered), encode it alone, average-pool.

    Jitter shifts each crop by up to ``jitter * patch_size`` px (clamped inside the frame); it is
    drawn from ``generator`` in training and off when ``generator`` is None.
    """

    def __init__(self, patch_size: int = 64, stride: int = 32, jitter: float = 0.1):
        self.patch, self.stride, self.jitter = patch_size, stride, jitter
        self.step = stride

    home_target = PatchPoolNodes.home_target

    def __call__(self, encode, frames, segments=None, generator=None):
        B, T, C, H, W = frames.shape
        p = self.patch
        ys, xs = _grid(H, p, self.stride), _grid(W, p, self.stride)
        oy = torch.tensor(ys).repeat_interleave(len(xs))  # (N,)
        ox = torch.tensor(xs).repeat(len(ys))
        N, M = oy.numel(), B * T
        oy, ox = oy.expand(M, N).clone(), ox.expand(M, N).clone()
        if generator is not None and self.jitter > 0:
            j = int(self.jitter * p)
            oy += torch.randint(-j, j + 1, (M, N), generator=generator)
            ox += torch.randint(-j, j + 1, (M, N), generator=generator)
            oy, ox = oy.clamp(0, H - p), ox.clamp(0, W - p)
        ar = torch.arange(p)
        rows = (oy[..., None] + ar).to(frames.device)  # (M, N, p)
        cols = (ox[..., None] + ar).to(frames.device)
        flat = frames.flatten(0, 1)  # (M, 3, H, W)
        m = torch.arange(M, device=frames.device)[:, None, None, None]
        patches = flat.permute(0, 2, 3, 1)[m, rows[..., :, None], cols[..., None, :]]  # (M, N, p, p, 3)
        patches = patches.flatten(0, 1).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        feats = encode(patches).mean(dim=(2, 3)).view(B, T, N, -1)  # (B, T, N, C)
        return feats, torch.ones(B, T, N, dtype=torch.bool, device=frames.device)
