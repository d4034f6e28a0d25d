"""The contrastive random walk on a palindrome (Jabri, Owens & Efros, NeurIPS 2020).

Nodes of frame t are embeddings ``x_t`` (N, D), L2-normalised. Between neighbouring frames the walker
moves with row-stochastic transitions

    A_t = softmax(x_t x_{t+1}^T / tau)      (forward, t -> t+1)
    B_t = softmax(x_{t+1} x_t^T / tau)      (backward, t+1 -> t)

For every cycle length k = 1 .. T-1 hops each way, the round trip over the palindrome
x_0 .. x_k .. x_0 is ``P_k = A_0 ... A_{k-1} B_{k-1} ... B_0`` and the loss asks each walk to come
home: cross-entropy of ``P_k`` against the identity, averaged over valid start nodes, then over the
lengths k = ``min_cycle`` .. T-1 (``walk.min_cycle``: 1 in EVER's configs; the reference,
ajabri/videowalk ``code/model.py``, starts at 2 hops). Every length is still reported.
Edge dropout (rate p) removes random edges *before* the softmax, never a whole row. Padded nodes
(``valid == False``) can neither be visited nor start a walk, so they do not change the loss.

The shifted home (``walk.home_shift``). When the nodes are pooled from one dense feature map, an
encoder with zero padding can tell *where* a node is, and "every walker stays at its place" is a
perfectly cycle-consistent walk that learns nothing about appearance. With ``home`` given, the last
hop goes from frame 1 not to frame 0 but to ``home``, a copy of frame 0 rolled by a known shift, and
walker ``i`` must land on ``home.target[i]``, the node of the home view showing its start region: a
walk by position ends one shift away from it. Walkers with no counterpart (``home.target == -1``,
regions rolled out of the grid) do not count (:class:`Home`).

The walk is computed in float32 even under bf16/fp16 autocast: its cost is tiny next to the encoder
and products of stochastic matrices need the range. Only batched matmuls; the one Python loop runs
over time (T is small).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NEG = -1e9  # logit of a removed edge (finite: a row of -inf would give NaN)


@dataclass
class Home:
    """The shifted view of frame 0 that walks come home to (``walk.home_shift``; see the module doc)."""

    emb: torch.Tensor  # (B, N, D) embeddings of the rolled frame 0 (B_0 leads here instead of frame 0)
    target: torch.Tensor  # (B, N) long: the home node walker i must reach; -1: none (left out)
    valid: torch.Tensor | None = None  # (B, N) bool, or None (all valid)


@dataclass
class WalkOutput:
    loss: torch.Tensor  # scalar
    loss_by_len: torch.Tensor  # (T-1,) cross-entropy of each cycle length (detached)
    acc_by_len: torch.Tensor  # (T-1,) fraction of walks whose most likely end is their start


def affinity_logits(x: torch.Tensor, y: torch.Tensor, y_valid: torch.Tensor | None, temperature: float) -> torch.Tensor:
    """(B, N, D) x (B, M, D) -> (B, N, M) affinity logits; invalid targets removed."""
    a = torch.bmm(x, y.transpose(1, 2)) / temperature
    if y_valid is not None:
        a = a.masked_fill(~y_valid[:, None, :], NEG)
    return a


def drop_edges(logits: torch.Tensor, rate: float, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Edge dropout on logits (B, N, M): each edge removed with probability ``rate``.

    A row whose every remaining edge would be dropped keeps its edges (a walker is never stranded).
    ``noise`` (uniform in [0, 1), same shape) makes the choice reproducible across DDP splits.
    """
    if rate <= 0:
        return logits
    if noise is None:
        noise = torch.rand_like(logits)
    drop = (noise < rate) & (logits > NEG / 2)
    alive = (logits > NEG / 2) & ~drop
    stranded = ~alive.any(dim=-1, keepdim=True)
    drop = drop & ~stranded
    return logits.masked_fill(drop, NEG)


def transition_matrices(
    emb: torch.Tensor,
    valid: torch.Tensor | None = None,
    temperature: float = 0.07,
    edge_dropout: float = 0.0,
    noise: torch.Tensor | None = None,
    home: Home | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Forward and backward transitions of a clip.

    emb: (B, T, N, D) L2-normalised; valid: (B, T, N) bool; noise: (B, T-1, 2, N, N) uniform or None;
    home: the view of frame 0 that B_0 leads to instead of frame 0 (its ``target`` is not used here).
    Returns ([A_0 .. A_{T-2}], [B_0 .. B_{T-2}]), each (B, N, N), rows summing to 1.
    """
    emb = emb.float()
    T = emb.shape[1]
    fwd, bwd = [], []
    for t in range(T - 1):
        back, vt = emb[:, t], None if valid is None else valid[:, t]
        if t == 0 and home is not None:
            back, vt = home.emb.float(), home.valid
        vn = None if valid is None else valid[:, t + 1]
        lf = affinity_logits(emb[:, t], emb[:, t + 1], vn, temperature)
        lb = affinity_logits(emb[:, t + 1], back, vt, temperature)
        nf = None if noise is None else noise[:, t, 0]
        nb = None if noise is None else noise[:, t, 1]
        fwd.append(F.softmax(drop_edges(lf, edge_dropout, nf), dim=-1))
        bwd.append(F.softmax(drop_edges(lb, edge_dropout, nb), dim=-1))
    return fwd, bwd


def walk_loss(
    emb: torch.Tensor,
    valid: torch.Tensor | None = None,
    temperature: float = 0.07,
    edge_dropout: float = 0.0,
    noise: torch.Tensor | None = None,
    home: Home | None = None,
    count_fn=None,
    min_cycle: int = 1,
) -> WalkOutput:
    """Cycle-consistency loss of palindrome walks of every length.

    emb: (B, T, N, D) node embeddings (L2-normalised); valid: (B, T, N) bool or None (all valid);
    noise: optional (B, T-1, 2, N, N) uniforms for edge dropout (see :func:`drop_edges`).
    home: optional shifted view of frame 0 where walks end, and the node each walker must reach there.
    count_fn: optional map from this process's number of starting walkers (0-dim tensor) to the
    divisor of the summed losses. Under DDP, whose gradients are averaged over W ranks, pass
    ``max(global count, 1) / W`` so the loss is the mean over *all* walkers of the global batch even
    when ranks hold different numbers of them (padded object nodes, walkers without a home
    counterpart). The accuracies stay fractions of this process's walkers.
    min_cycle: the shortest cycle (hops each way) in the loss; ``loss_by_len`` and ``acc_by_len`` still
    hold every length 1 .. T-1.
    """
    B, T, N, _ = emb.shape
    if T < 2:
        raise ValueError(f"a walk needs at least 2 frames, got T={T}")
    if not 1 <= min_cycle <= T - 1:
        raise ValueError(f"min_cycle={min_cycle} needs 1 <= min_cycle <= T-1 = {T - 1} (clip of T={T} frames)")
    with torch.autocast(device_type=emb.device.type, enabled=False):
        fwd, bwd = transition_matrices(emb, valid, temperature, edge_dropout, noise, home)
        start = torch.ones(B, N, dtype=torch.bool, device=emb.device) if valid is None else valid[:, 0]
        target = torch.arange(N, device=emb.device).expand(B, N)
        if home is not None:
            start = start & (home.target >= 0)
            target = home.target.clamp_min(0)
            if home.valid is not None:
                start = start & home.valid.gather(1, target)
        n_walkers = start.sum()
        n_local = n_walkers.clamp_min(1)
        n_start = n_local if count_fn is None else count_fn(n_walkers)
        chain_f = chain_b = None
        losses, accs = [], []
        for k in range(T - 1):
            chain_f = fwd[k] if chain_f is None else torch.bmm(chain_f, fwd[k])  # A_0 .. A_k
            chain_b = bwd[k] if chain_b is None else torch.bmm(bwd[k], chain_b)  # B_k .. B_0
            cycle = torch.bmm(chain_f, chain_b)  # (B, N, N), rows sum to 1
            logp = torch.log(cycle.clamp_min(1e-20))
            ce = F.nll_loss(logp.reshape(B * N, N), target.reshape(-1), reduction="none").view(B, N)
            losses.append((ce * start).sum() / n_start)
            hit = (cycle.argmax(dim=-1) == target) & start
            accs.append(hit.sum() / n_local)  # of this process's walkers
        loss_by_len = torch.stack(losses)
    return WalkOutput(loss_by_len[min_cycle - 1 :].mean(), loss_by_len.detach(), torch.stack(accs).detach())


def palindrome_distributions(
    fwd: list[torch.Tensor], bwd: list[torch.Tensor], start: int
) -> list[tuple[int, torch.Tensor]]:
    """Where one walker is along the palindrome 0 -> T-1 -> 0, started on node ``start`` of frame 0: the
    list of (frame, distribution (N,)) after each hop, 2(T-1)+1 entries, from the transitions of one clip
    (``fwd``/``bwd`` lists of (N, N), as :func:`transition_matrices` returns them for one batch item).
    The last distribution's ``start`` entry is the round trip's return probability, P_{T-1}[start, start]."""
    p = torch.zeros(fwd[0].shape[0], dtype=fwd[0].dtype, device=fwd[0].device)
    p[start] = 1.0
    out = [(0, p)]
    for t, A in enumerate(fwd):
        p = p @ A
        out.append((t + 1, p))
    for t in range(len(bwd) - 1, -1, -1):
        p = p @ bwd[t]
        out.append((t, p))
    return out


def walk_flops(batch: int, frames: int, nodes: int, dim: int, backward: bool = True) -> int:
    """FLOPs of one :func:`walk_loss` over embeddings (batch, frames, nodes, dim), forward and (by default)
    backward, counted by PyTorch's ``FlopCounterMode`` on random unit vectors. Padding masks and edge
    dropout do not change the count (the matmuls keep their size), so this is what a training step spends
    in the walk."""
    from ever.utils import count_flops

    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(batch, frames, nodes, dim, generator=g), dim=-1).requires_grad_(backward)

    def run() -> None:
        out = walk_loss(emb)
        if backward:
            out.loss.backward()

    return count_flops(run)
