"""Projection heads: pooled encoder features (..., C) -> walk embeddings (..., D).

The head is used only by the walk; label propagation drops it and reads encoder features.
L2 normalisation happens after the (optional) GCN, in :class:`ever.models.crw.CRW`.
"""

from __future__ import annotations

import torch.nn as nn


def projection_head(cin: int, dim: int, kind: str = "linear") -> nn.Module:
    if kind == "linear":
        return nn.Linear(cin, dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, dim))
    raise ValueError(f"unknown projection head {kind!r} (linear | mlp)")
