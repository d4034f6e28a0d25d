"""Space-time-separable graph convolution on walk nodes, after STS-GCN (Sofianos et al., ICCV 2021).

Node embeddings ``x`` (B, T, N, D) with validity ``valid`` (B, T, N). One layer is

    h = x * valid                         invalid (padded) nodes send nothing
    h = A_time  h                          temporal mixing, per node, across frames
    h = A_space h                          spatial mixing, per frame, across nodes
    y = x + g PReLU(LayerNorm(h W + b))    channel mixing, normalisation, nonlinearity, residual
                                           (g = 1, or a learned scalar starting at 0 with ``gate``)
    y = where(valid, y, x)                 invalid nodes receive nothing (keep their input)

The two mixings are applied one after the other (separable): cost O(T N^2 D + T^2 N D) per clip, not
the O((T N)^2 D) of a full space-time graph. The nonlinearity sits inside the residual branch so the
output (L2-normalised next) is not forced to be non-negative.

Adjacencies (``GCNConfig``):

- ``learned`` (as in STS-GCN): free parameters, temporal ``(N, T, T)`` (one T x T matrix per node)
  and spatial ``(T, N, N)`` (one N x N matrix per frame), init uniform(+-1/sqrt(size)). They assume
  that node n is the *same* entity in every clip and frame (a skeleton joint, a fixed patch-grid cell),
  so they need T and N when built (:func:`build_gcn` ``num_frames``/``num_nodes``; :func:`graph_size`
  computes them from a full :class:`~ever.config.Config`) and are not permutation-equivariant.
- ``attention`` (spatial): ``softmax(q q^T / sqrt(D))`` among the valid nodes of a frame, with
  ``q = LayerNorm(h)`` (parameter-free). Self-loops included. Equivariant to node permutations.
- ``affinity`` (temporal): features flow along the walk's own soft tracks. Node i of frame t averages
  itself with ``sum_j softmax_j(x_t,i . x_s,j / tau) h_s,j`` for each neighbouring frame s = t-1, t+1
  (L2-normalised x, the walk's temperature tau, invalid targets masked; a neighbouring frame without
  valid nodes is skipped). The weights are **detached**: the graph is read
  off the current embeddings like a fixed input, so the walk loss cannot be lowered by sharpening the
  GCN's own affinities (a shortcut around the encoder), and the backward pass is cheaper. Equivariant.

- ``none`` (temporal): no mixing across frames, spatial mixing only. Temporal mixing lets a node of
  frame t+1 carry frame t's features, which can close the walk's cycle without learning appearance;
  this variant tests that explanation.

Segments have no identity across frames, so object nodes should use attention/affinity (the default);
``learned`` fits patch grids.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ever.config import Config, ConfigError, GCNConfig
from ever.walk import NEG


def _masked_softmax(logits: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim with invalid keys removed; logits (..., N, M), key_valid (..., M)."""
    logits = logits.float().masked_fill(~key_valid[..., None, :], NEG)
    return torch.softmax(logits, dim=-1)


class STSLayer(nn.Module):
    """One space-time-separable graph convolution layer (see module docstring)."""

    def __init__(
        self,
        dim: int,
        spatial: str = "attention",
        temporal: str = "affinity",
        temperature: float = 0.07,
        num_frames: int | None = None,
        num_nodes: int | None = None,
        gate: bool = False,
    ):
        super().__init__()
        if spatial not in ("attention", "learned") or temporal not in ("affinity", "learned", "none"):
            raise ConfigError(f"gcn: unknown adjacency spatial={spatial!r} temporal={temporal!r}")
        if (spatial == "learned" or temporal == "learned") and not (num_frames and num_nodes):
            raise ConfigError(
                "gcn: a 'learned' adjacency needs the number of frames and nodes at build time "
                "(build_gcn(..., num_frames=T, num_nodes=N), see ever.gcn.graph_size)"
            )
        self.spatial, self.temporal = spatial, temporal
        self.temperature = temperature
        self.T, self.N = num_frames, num_nodes
        if temporal == "learned":
            self.adj_t = nn.Parameter(torch.empty(num_nodes, num_frames, num_frames))
            nn.init.uniform_(self.adj_t, -1 / math.sqrt(num_frames), 1 / math.sqrt(num_frames))
        if spatial == "learned":
            self.adj_s = nn.Parameter(torch.empty(num_frames, num_nodes, num_nodes))
            nn.init.uniform_(self.adj_s, -1 / math.sqrt(num_nodes), 1 / math.sqrt(num_nodes))
        self.lin = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.PReLU()
        self.gate = nn.Parameter(torch.zeros(())) if gate else None

    def _check_size(self, T: int, N: int) -> None:
        if (self.spatial == "learned" or self.temporal == "learned") and (T, N) != (self.T, self.N):
            raise ValueError(f"gcn: learned adjacency built for T={self.T}, N={self.N}, got T={T}, N={N}")

    def mix_time(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.temporal == "none":
            return h
        if self.temporal == "learned":
            return torch.einsum("nts,bsnd->btnd", self.adj_t.to(h.dtype), h)
        B, T, N, D = h.shape
        if T < 2:
            return h
        x = F.normalize(h.float(), dim=-1).detach()  # the graph is read off the embeddings, not trained through
        sim = torch.einsum("btnd,btmd->btnm", x[:, :-1], x[:, 1:]) / self.temperature  # (B, T-1, N, N)
        w_next = _masked_softmax(sim, valid[:, 1:]).to(h.dtype)  # frame t reads frame t+1
        w_prev = _masked_softmax(sim.transpose(-1, -2), valid[:, :-1]).to(h.dtype)  # t+1 reads t
        has_next = valid[:, 1:].any(-1).to(h.dtype)[..., None, None]  # (B, T-1, 1, 1)
        has_prev = valid[:, :-1].any(-1).to(h.dtype)[..., None, None]
        msg_next = torch.matmul(w_next, h[:, 1:]) * has_next  # for frames 0..T-2
        msg_prev = torch.matmul(w_prev, h[:, :-1]) * has_prev  # for frames 1..T-1
        total = h + F.pad(msg_next, (0, 0, 0, 0, 0, 1)) + F.pad(msg_prev, (0, 0, 0, 0, 1, 0))
        count = 1 + F.pad(has_next, (0, 0, 0, 0, 0, 1)) + F.pad(has_prev, (0, 0, 0, 0, 1, 0))
        return total / count

    def mix_space(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.spatial == "learned":
            return torch.einsum("tnm,btmd->btnd", self.adj_s.to(h.dtype), h)
        q = F.layer_norm(h.float(), h.shape[-1:])
        att = _masked_softmax(q @ q.transpose(-1, -2) / math.sqrt(h.shape[-1]), valid)  # (B, T, N, N)
        return att.to(h.dtype) @ h

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, T, N, D = x.shape
        self._check_size(T, N)
        h = torch.where(valid[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        h = self.mix_space(self.mix_time(h, valid), valid)
        branch = self.act(self.norm(self.lin(h)))
        y = x + (branch if self.gate is None else self.gate.to(branch.dtype) * branch)
        return torch.where(valid[..., None], y, x)


class STSGCN(nn.Module):
    """A stack of :class:`STSLayer`. ``forward(emb (B, T, N, D), valid (B, T, N) or None) -> (B, T, N, D)``."""

    def __init__(self, layers: list[STSLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, emb: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if valid is None:
            valid = torch.ones(emb.shape[:3], dtype=torch.bool, device=emb.device)
        for layer in self.layers:
            emb = layer(emb, valid)
        return emb


def build_gcn(
    cfg: GCNConfig,
    dim: int,
    temperature: float,
    num_frames: int | None = None,
    num_nodes: int | None = None,
) -> STSGCN:
    """``cfg.layers`` STS layers of width ``dim``; ``temperature`` = the walk's (affinity adjacency).

    ``num_frames``/``num_nodes`` are required only by ``learned`` adjacencies (see :func:`graph_size`)."""
    return STSGCN(
        [
            STSLayer(dim, cfg.spatial, cfg.temporal, temperature, num_frames, num_nodes, gate=cfg.gate)
            for _ in range(cfg.layers)
        ]
    )


def graph_size(cfg: Config) -> tuple[int, int]:
    """(T, N) of the training graph of a run: clip length and nodes per frame (patch grid or K)."""
    return cfg.data.clip_len, cfg.nodes_per_frame


def gcn_cost(module: nn.Module, B: int, T: int, N: int, D: int) -> dict:
    """Parameters and FLOPs (``torch.utils.flop_counter``: matmuls/einsums/linears only) of one call
    on (B, T, N, D) all-valid nodes; forward and forward+backward."""
    from ever.utils import count_flops

    p = next(module.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    g = torch.Generator(device=dev).manual_seed(0)  # leaves the global RNG alone (exact resume)
    x = torch.randn(B, T, N, D, device=dev, generator=g, requires_grad=True)
    valid = torch.ones(B, T, N, dtype=torch.bool, device=dev)
    fwd = count_flops(module, x, valid)
    fwd_bwd = count_flops(lambda: module(x, valid).square().sum().backward())
    module.zero_grad(set_to_none=True)
    return {
        "params": sum(q.numel() for q in module.parameters()),
        "flops_fwd": fwd,
        "flops_fwd_bwd": fwd_bwd,
        "shape": [B, T, N, D],
    }
