"""The trainable whole: encoder -> nodes -> head -> (GCN) -> L2 norm -> palindrome walk loss."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ever.config import Config
from ever.models import EverModel
from ever.nodes import build_extractor
from ever.walk import WalkOutput, walk_loss


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

    def embed(
        self, frames: torch.Tensor, segments: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) in [0, 1] -> (embeddings (B, T, N, D) unit-norm, valid (B, T, N))."""
        feats, valid = self.nodes(self.encode, frames, segments, generator)
        emb = self.model.head(feats)
        if self.gcn is not None:
            emb = self.gcn(emb, valid)
        return F.normalize(emb.float(), dim=-1), valid

    def forward(
        self,
        frames: torch.Tensor,
        segments: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise_fn=None,
    ) -> WalkOutput:
        """``noise_fn((B, T, N)) -> (B, T-1, 2, N, N)`` uniforms makes edge dropout reproducible."""
        emb, valid = self.embed(frames, segments, generator)
        dropout = self.edge_dropout if self.training else 0.0
        noise = None
        if dropout > 0 and noise_fn is not None:
            noise = noise_fn(tuple(emb.shape[:3])).to(emb.device)
        return walk_loss(emb, valid, self.temperature, dropout, noise)
