"""Node extractors: frames -> one feature vector per node per frame.

Every extractor maps frames ``(B, T, 3, H, W)`` (float in [0, 1]) through an encoder to node features
``(B, T, N, C)`` and a validity mask ``(B, T, N)`` (False = padding). The projection head, the
optional GCN and the L2 normalisation come after, in :class:`ever.models.crw.CRW`, so a new node type
only has to say *which pixels form a node*.

- :class:`PatchCropNodes` (reference CRW): each grid patch is cropped (with jitter) and encoded on its
  own, then average-pooled. Costly: every patch pays a full encoder pass.
- :class:`PatchPoolNodes` (efficient): the frame is encoded once and the same grid cells are
  average-pooled from the dense 1/8 map.
- Object nodes (unsupervised segments) are added by :func:`build_extractor`: mask-pooled from the
  dense map for ``nodes.kind == "object"``, or each segment's box cropped and encoded on its own
  (as the reference encodes each patch) for ``"object_crop"``.

To add an extractor: subclass :class:`NodeExtractor`, implement ``__call__``, register it in
:func:`build_extractor`, and add its name to ``NodeConfig.kind``.
"""
from __future__ import annotations

import abc

import numpy as np
import torch
import torch.nn.functional as F

from ever.config import NodeConfig


class NodeExtractor(abc.ABC):
    """frames (B, T, 3, H, W) -> (features (B, T, N, C), valid (B, T, N) bool)."""

    #: True when the extractor needs per-frame segment maps (B, T, H, W) int from the data pipeline.
    needs_segments: bool = False

    @abc.abstractmethod
    def __call__(
        self,
        encode,
        frames: torch.Tensor,
        segments: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``encode``: (M, 3, h, w) -> dense (M, C, h/8, w/8), e.g. ``EverModel.dense``."""

    #: Pixels between neighbouring node positions: shifts of the home view are multiples of it.
    step: int = 8

    def home_target(self, dy: int, dx: int, H: int, W: int) -> torch.Tensor:
        """For a frame rolled by (dy, dx) px (multiples of ``step``): (N,) long, the node of the rolled
        frame that shows node ``i`` of the original, or -1 where it left the frame (``walk.home_shift``)."""
        raise NotImplementedError(f"{type(self).__name__} does not support walk.home_shift")


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


def build_extractor(cfg: NodeConfig) -> NodeExtractor:
    if cfg.kind == "patch_pool":
        return PatchPoolNodes(cfg.patch_size, cfg.patch_stride)
    if cfg.kind == "patch_crop":
        return PatchCropNodes(cfg.patch_size, cfg.patch_stride, cfg.jitter)
    if cfg.kind == "object":
        from ever.objects import ObjectNodes

        return ObjectNodes(cfg)
    if cfg.kind == "object_crop":
        from ever.objects import ObjectCropNodes

        return ObjectCropNodes(cfg)
    raise ValueError(f"unknown node kind {cfg.kind!r}")
