"""The trainable whole: encoder -> nodes -> head -> (GCN) -> L2 norm -> palindrome walk loss
(optionally coming home to a shifted view of frame 0, ``walk.home_shift``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ever.config import Config
from ever.models import EverModel
from ever.nodes import build_extractor
from ever.walk import Home, WalkOutput, walk_loss


@dataclass
class StepDraws:
    """What a training step draws for its whole global batch, so that DDP splits agree with one process
    (:mod:`ever.train` builds them from the step number); None: drawn locally / no DDP normalisation."""

    noise: Callable[[tuple[int, int, int]], torch.Tensor] | None = (
        None  # (B, T, N) -> (B, T-1, 2, N, N) uniforms: edge dropout
    )
    home: Callable[[int, int], torch.Tensor] | None = None  # (B, n) -> (B,) indices in [0, n): the home views' shifts
    count: Callable[[torch.Tensor], torch.Tensor] | None = (
        None  # walker count -> loss divisor (ever.walk.walk_loss count_fn)
    )


class CRW(nn.Module):
    """Contrastive random walk model. ``forward(frames) -> WalkOutput`` (loss and per-length stats)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.model = EverModel(cfg.model)
        self.nodes = build_extractor(cfg.nodes)
        self.gcn = None
        if cfg.gcn.enabled:
            from ever.gcn import build_gcn, graph_size

            self.gcn = build_gcn(cfg.gcn, cfg.model.proj_dim, cfg.walk.temperature, *graph_size(cfg))
        self.encode = self.model.dense  # replaced by a torch.compile'd version when train.compile
        self.temperature = cfg.walk.temperature
        self.edge_dropout = cfg.walk.edge_dropout
        self.home_shift = cfg.walk.home_shift
        self.min_cycle = cfg.walk.min_cycle

    def embed(
        self, frames: torch.Tensor, segments: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) in [0, 1] -> (embeddings (B, T, N, D) unit-norm, valid (B, T, N))."""
        emb, valid = self._project(frames, segments, generator)
        if self.gcn is not None:
            emb = self.gcn(emb, valid)
        return F.normalize(emb.float(), dim=-1), valid

    def _project(self, frames, segments, generator):
        feats, valid = self.nodes(self.encode, frames, segments, generator)
        return self.model.head(feats), valid

    def forward(
        self,
        frames: torch.Tensor,
        segments: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        draws: StepDraws | None = None,
    ) -> WalkOutput:
        """frames (B, T, 3, H, W) in [0, 1], segments (B, T, H, W) or None -> the walk's loss and stats."""
        draws = draws or StepDraws()
        home = None
        if self.training and self.home_shift:
            emb, valid, home = self._embed_with_home(frames, segments, generator, draws.home)
        else:
            emb, valid = self.embed(frames, segments, generator)
        dropout = self.edge_dropout if self.training else 0.0
        noise = None
        if dropout > 0 and draws.noise is not None:
            noise = draws.noise(tuple(emb.shape[:3])).to(emb.device)
        return walk_loss(emb, valid, self.temperature, dropout, noise, home, draws.count, self.min_cycle)

    def home_view(
        self,
        frame0: torch.Tensor,
        seg0: torch.Tensor | None,
        generator: torch.Generator | None = None,
        home_fn=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """frame0 (B, 3, H, W), seg0 (B, H, W) or None -> each clip's frame 0 (and segment map) rolled by
        a random non-zero multiple of the node step, at most ``walk.home_shift`` px each way, and the
        target (B, N): the rolled node showing each original node (-1: none). The shifts are drawn by
        ``home_fn(B, n)`` (training draws them for the global batch, so DDP splits agree) or ``generator``."""
        B, _, H, W = frame0.shape
        step = self.nodes.step
        m = self.home_shift // step
        shifts = [(a * step, b * step) for a in range(-m, m + 1) for b in range(-m, m + 1) if a or b]
        if home_fn is not None:
            pick = home_fn(B, len(shifts)).tolist()
        else:
            pick = torch.randint(len(shifts), (B,), generator=generator).tolist()
        views, segs, targets = [], [], []
        for b, i in enumerate(pick):
            dy, dx = shifts[i]
            views.append(torch.roll(frame0[b], (dy, dx), dims=(-2, -1)))
            if seg0 is not None:
                segs.append(torch.roll(seg0[b], (dy, dx), dims=(-2, -1)))
            targets.append(self.nodes.home_target(dy, dx, H, W))
        seg = torch.stack(segs) if seg0 is not None else None
        return torch.stack(views), seg, torch.stack(targets).to(frame0.device)

    def _embed_with_home(self, frames, segments, generator, home_fn):
        """Embed the clip and the home view of its frame 0 in one pass; the GCN sees the home view in
        frame 0's place, with the clip's other frames as its context."""
        T = frames.shape[1]
        seg0 = None if segments is None else segments[:, 0]
        home, home_seg, target = self.home_view(frames[:, 0], seg0, generator, home_fn)
        if segments is not None:
            segments = torch.cat([segments, home_seg[:, None]], 1)
        emb, valid = self._project(torch.cat([frames, home[:, None]], 1), segments, generator)
        if self.gcn is not None:
            order = [T, *range(1, T)]
            home_emb = self.gcn(emb[:, order], valid[:, order])[:, 0]
            emb = torch.cat([self.gcn(emb[:, :T], valid[:, :T]), home_emb[:, None]], 1)
        emb = F.normalize(emb.float(), dim=-1)
        return emb[:, :T], valid[:, :T], Home(emb[:, T], target, valid[:, T])
