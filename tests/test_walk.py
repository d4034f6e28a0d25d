"""The palindrome walk loss: hand-computed values, limits, dropout, masking, gradients."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ever.config import load_config
from ever.models.crw import CRW
from ever.walk import drop_edges, palindrome_distributions, transition_matrices, walk_flops, walk_loss


def _softmax_rows(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_hand_computed_three_nodes_three_frames():
    # 3 nodes in 2-D, 3 frames; loss written out with plain numpy, node by node.
    x = np.array(
        [
            [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]],
            [[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]],
            [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]],
        ]
    )
    tau = 0.5
    A = [_softmax_rows(x[t] @ x[t + 1].T / tau) for t in range(2)]
    Bk = [_softmax_rows(x[t + 1] @ x[t].T / tau) for t in range(2)]
    cyc1 = A[0] @ Bk[0]
    cyc2 = A[0] @ A[1] @ Bk[1] @ Bk[0]
    expect = np.mean([-np.mean([np.log(c[i, i]) for i in range(3)]) for c in (cyc1, cyc2)])
    out = walk_loss(torch.tensor(x[None], dtype=torch.float32), temperature=tau)
    assert out.loss.item() == pytest.approx(expect, rel=1e-5)
    assert out.loss_by_len.shape == (2,)
    assert out.loss_by_len[0].item() == pytest.approx(-np.mean(np.log(np.diag(cyc1))), rel=1e-5)


def test_min_cycle_drops_the_short_cycles_from_the_loss_only():
    """walk.min_cycle=2 (the reference) averages the cycles of 2 .. T-1 hops; 1 (default) is unchanged."""
    torch.manual_seed(0)
    emb = F.normalize(torch.randn(2, 5, 7, 8), dim=-1)
    one = walk_loss(emb, temperature=0.1)
    assert torch.equal(one.loss, one.loss_by_len.mean())  # bit-identical to the loss before the option
    assert torch.equal(walk_loss(emb, temperature=0.1, min_cycle=1).loss, one.loss)
    two = walk_loss(emb, temperature=0.1, min_cycle=2)
    assert torch.equal(two.loss_by_len, one.loss_by_len) and two.loss_by_len.shape == (4,)
    assert two.loss.item() == pytest.approx(one.loss_by_len[1:].mean().item(), rel=1e-6)
    with pytest.raises(ValueError, match="min_cycle"):
        walk_loss(emb[:, :2], min_cycle=2)  # 2 frames: only the 1-hop cycle exists


def test_reference_config_is_the_papers_setting():
    cfg = load_config("configs/crw-reference.yaml")
    assert cfg.walk.min_cycle == 2 and cfg.model.eval_stage == "layer3"
    assert cfg.walk.temperature == cfg.eval.temperature == 0.05
    assert (cfg.eval.n_context, cfg.eval.topk, cfg.eval.radius) == (20, 10, 12.0)
    assert (cfg.eval.context, cfg.eval.label_resize) == ("reference", "bilinear")
    assert load_config("configs/crw-patch-cpu.yaml").walk.min_cycle == 1


def test_identical_tracks_give_zero_loss_and_uninformative_give_log_n():
    N, T, D = 6, 5, 8
    base = F.normalize(torch.eye(N, D), dim=-1)  # orthogonal node embeddings
    perm = [torch.randperm(N) for _ in range(T)]
    tracks = torch.stack([base[p] for p in perm])[None]  # same nodes, shuffled order per frame
    assert walk_loss(tracks, temperature=0.01).loss.item() < 1e-4
    same = F.normalize(torch.ones(1, T, N, D), dim=-1)  # every node identical: walk is uniform
    assert walk_loss(same, temperature=0.07).loss.item() == pytest.approx(math.log(N), rel=1e-5)


def test_transitions_are_row_stochastic():
    emb = F.normalize(torch.randn(2, 4, 7, 5), dim=-1)
    fwd, bwd = transition_matrices(emb, temperature=0.1, edge_dropout=0.5)
    for a in fwd + bwd:
        assert torch.allclose(a.sum(-1), torch.ones(2, 7), atol=1e-5)


def test_edge_dropout_never_drops_a_whole_row():
    logits = torch.randn(3, 5, 5)
    noise = torch.rand(3, 5, 5)
    noise[0, 2] = 0.0  # this row would lose every edge
    out = drop_edges(logits, 0.5, noise)
    alive = out > -1e8
    assert alive.any(-1).all()
    assert torch.equal(out[0, 2], logits[0, 2])  # the stranded row keeps its edges
    dropped = ~alive
    assert dropped[noise >= 0.5].sum() == 0 and dropped.sum() > 0
    # rate ~ p on average
    big = drop_edges(torch.zeros(1, 200, 200), 0.3)
    assert abs((big < -1e8).float().mean().item() - 0.3) < 0.02


def test_padded_nodes_do_not_change_the_loss():
    torch.manual_seed(0)
    emb = F.normalize(torch.randn(2, 4, 5, 8), dim=-1)
    ref = walk_loss(emb, temperature=0.1).loss
    pad = F.normalize(torch.randn(2, 4, 3, 8), dim=-1)
    padded = torch.cat([emb, pad], dim=2)
    valid = torch.zeros(2, 4, 8, dtype=torch.bool)
    valid[:, :, :5] = True
    got = walk_loss(padded, valid, temperature=0.1).loss
    assert got.item() == pytest.approx(ref.item(), rel=1e-5)
    # and padding in the middle, at a different place in every frame
    idx = torch.stack([torch.randperm(8) for _ in range(4)])
    shuf = torch.stack([padded[:, t, idx[t]] for t in range(4)], 1)
    vshuf = torch.stack([valid[:, t, idx[t]] for t in range(4)], 1)
    assert walk_loss(shuf, vshuf, temperature=0.1).loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_count_fn_makes_split_batches_average_to_the_whole_batch():
    # Two "ranks" holding different numbers of valid start nodes: DDP averages their losses
    # (gradients); with count_fn = global count / 2 that average is the whole batch's mean loss.
    g = torch.Generator().manual_seed(3)
    emb = F.normalize(torch.randn(4, 3, 6, 8, generator=g), dim=-1).requires_grad_(True)
    valid = torch.ones(4, 3, 6, dtype=torch.bool)
    valid[0, :, 4:] = False
    valid[1, :, 1:] = False  # rank 0 holds 4 + 1 walkers, rank 1 holds 6 + 6
    whole = walk_loss(emb, valid).loss
    (g_whole,) = torch.autograd.grad(whole, emb)
    total = valid[:, 0].sum().float()
    parts = [walk_loss(emb[r], valid[r], count_fn=lambda n: total / 2).loss for r in (slice(0, 2), slice(2, 4))]
    split = (parts[0] + parts[1]) / 2
    (g_split,) = torch.autograd.grad(split, emb)
    assert torch.allclose(split, whole, atol=1e-6) and torch.allclose(g_split, g_whole, atol=1e-7)
    naive = (walk_loss(emb[:2], valid[:2]).loss + walk_loss(emb[2:], valid[2:]).loss) / 2
    assert not torch.allclose(naive, whole, atol=1e-3)  # per-rank means weight rank 0's walkers 2x


def test_bf16_autocast_matches_float32():
    emb = F.normalize(torch.randn(2, 6, 49, 16), dim=-1)
    noise = torch.rand(2, 5, 2, 49, 49)
    ref = walk_loss(emb.bfloat16().float(), temperature=0.01, edge_dropout=0.1, noise=noise).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = walk_loss(emb.bfloat16(), temperature=0.01, edge_dropout=0.1, noise=noise)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize("kind", ["patch_pool", "patch_crop"])
def test_gradient_reaches_the_encoder(kind):
    cfg = load_config(None, ["model.width=8", "nodes.patch_size=32", "nodes.patch_stride=16", f"nodes.kind={kind}"])
    crw = CRW(cfg)
    out = crw(torch.rand(2, 3, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    g = crw.model.encoder.stem[0].weight.grad
    assert g is not None and g.abs().sum() > 0
    assert crw.model.head.weight.grad.abs().sum() > 0


def test_patch_extractors_agree_on_grid_and_shapes():
    cfg = load_config(None, ["model.width=8", "nodes.patch_size=32", "nodes.patch_stride=16"])
    crw = CRW(cfg)
    frames = torch.rand(2, 3, 3, 64, 96)
    emb, valid = crw.embed(frames)
    assert emb.shape == (2, 3, 3 * 5, cfg.model.proj_dim) and valid.all()
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2, 3, 15), atol=1e-5)
    cfg.nodes.kind = "patch_crop"
    # With an "encoder" that is an 8x8 average pool, cropping patches and pooling cells of the dense map
    # must give exactly the same nodes in the same (row-major) order.
    from ever.nodes import PatchCropNodes, PatchPoolNodes

    pool8 = lambda x: F.avg_pool2d(x, 8)  # noqa: E731
    a, _ = PatchPoolNodes(32, 16)(pool8, frames)
    b, _ = PatchCropNodes(32, 16, 0.0)(pool8, frames)
    assert a.shape == b.shape == (2, 3, 15, 3)
    assert torch.allclose(a, b, atol=1e-6)


def test_circular_padding_removes_absolute_position():
    """With circular padding, shifting the frame by whole feature cells shifts the features exactly:
    a pooled node cannot know where it is, so the positional shortcut of the dense walk is closed."""
    from ever.models.encoder import ResNetEncoder

    x = torch.rand(1, 3, 64, 64)
    shifted = torch.roll(x, (16, 8), (2, 3))
    circ = ResNetEncoder(8, padding="circular").eval()
    assert torch.allclose(torch.roll(circ(x), (2, 1), (2, 3)), circ(shifted), atol=1e-4)
    zeros = ResNetEncoder(8, padding="zeros").eval()
    assert not torch.allclose(torch.roll(zeros(x), (2, 1), (2, 3)), zeros(shifted), atol=1e-2)


def test_walk_flops_count_the_matmuls_of_every_cycle_length():
    # One clip of T frames, N nodes, D dims, forward: 2(T-1) affinities x_t x_{t+1}^T (2 N^2 D FLOPs each);
    # per cycle length k one round-trip product, and from k=2 on one more product on each chain
    # (N x N times N x N: 2 N^3 FLOPs each).
    B, T, N, D = 2, 4, 8, 16
    affinities = 2 * (T - 1) * 2 * N * N * D
    products = ((T - 1) + 2 * (T - 2)) * 2 * N**3
    assert walk_flops(B, T, N, D, backward=False) == B * (affinities + products)
    both = walk_flops(B, T, N, D)
    assert 2 * B * (affinities + products) <= both <= 3 * B * (affinities + products)  # bwd: 2 matmuls each
    # Quadratic in nodes for the affinities, cubic for the products: doubling N multiplies by 4..8.
    assert 4 < walk_flops(1, T, 2 * N, D) / walk_flops(1, T, N, D) < 8


def test_palindrome_distributions_end_on_the_cycle_matrix_diagonal():
    g = torch.Generator().manual_seed(3)
    emb = F.normalize(torch.randn(1, 4, 6, 8, generator=g), dim=-1)
    fwd, bwd = transition_matrices(emb, temperature=0.2)
    fwd, bwd = [a[0] for a in fwd], [b[0] for b in bwd]
    cycle = torch.linalg.multi_dot(fwd + bwd[::-1])  # A_0 A_1 A_2 B_2 B_1 B_0
    for start in range(6):
        dists = palindrome_distributions(fwd, bwd, start)
        assert [t for t, _ in dists] == [0, 1, 2, 3, 2, 1, 0]
        assert all(torch.isclose(d.sum(), torch.tensor(1.0)) for _, d in dists)
        torch.testing.assert_close(dists[-1][1], cycle[start])
