"""Space-time-separable GCN: shapes, masking of padded nodes, permutation behaviour, cost."""

import pytest
import torch

from ever.config import ConfigError, GCNConfig, config_from_dict
from ever.gcn import build_gcn, gcn_cost, graph_size

B, T, N, D = 2, 4, 6, 8
COMBOS = [("attention", "affinity"), ("attention", "learned"), ("learned", "affinity"), ("learned", "learned")]


def _gcn(spatial="attention", temporal="affinity", layers=2, seed=0):
    torch.manual_seed(seed)
    return build_gcn(
        GCNConfig(enabled=True, layers=layers, spatial=spatial, temporal=temporal), D, 0.1, num_frames=T, num_nodes=N
    )


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, N, D, generator=g)
    valid = torch.rand(B, T, N, generator=g) > 0.3
    valid[:, :, 0] = True
    valid[1, 2] = False  # a frame with no valid node at all
    return x, valid


@pytest.mark.parametrize("spatial,temporal", COMBOS)
def test_shapes_and_gradients(spatial, temporal):
    gcn = _gcn(spatial, temporal)
    x, valid = _inputs()
    x.requires_grad_(True)
    y = gcn(x, valid)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y[valid].sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in gcn.parameters())
    assert gcn(x.detach()).shape == x.shape  # valid=None: all valid


@pytest.mark.parametrize("spatial,temporal", COMBOS)
def test_padded_nodes_neither_send_nor_receive(spatial, temporal):
    gcn = _gcn(spatial, temporal)
    x, valid = _inputs()
    y = gcn(x, valid)
    x2 = x.clone()
    x2[~valid] = torch.randn(int((~valid).sum()), D) * 100  # junk in the padding
    x2[0, 1, ~valid[0, 1]] = float("nan")
    y2 = gcn(x2, valid)
    assert torch.allclose(y[valid], y2[valid], atol=1e-5)  # valid outputs unchanged
    assert torch.equal(y2[~valid].nan_to_num(7.0), x2[~valid].nan_to_num(7.0))  # padding passes through


@pytest.mark.parametrize("spatial,temporal", [("attention", "affinity")])
def test_attention_affinity_is_permutation_equivariant(spatial, temporal):
    gcn = _gcn(spatial, temporal)
    x, valid = _inputs()
    y = gcn(x, valid)
    g = torch.Generator().manual_seed(3)
    perm = torch.stack([torch.randperm(N, generator=g) for _ in range(B * T)]).view(B, T, N)  # per frame
    xp = torch.gather(x, 2, perm[..., None].expand(-1, -1, -1, D))
    vp = torch.gather(valid, 2, perm)
    yp = gcn(xp, vp)
    assert torch.allclose(yp, torch.gather(y, 2, perm[..., None].expand(-1, -1, -1, D)), atol=1e-5)


@pytest.mark.parametrize("spatial,temporal", [("learned", "affinity"), ("attention", "learned")])
def test_learned_adjacency_is_not_equivariant(spatial, temporal):
    # A learned adjacency weights node *positions* (node n = the same joint / grid cell in every clip),
    # so reordering the nodes of a frame changes which weights they get: no equivariance, by design.
    gcn = _gcn(spatial, temporal)
    x, _ = _inputs()
    valid = torch.ones(B, T, N, dtype=torch.bool)
    y = gcn(x, valid)
    perm = torch.roll(torch.arange(N), 1)
    yp = gcn(x[:, :, perm], valid)
    assert not torch.allclose(yp, y[:, :, perm], atol=1e-3)


def test_learned_needs_sizes_and_checks_them():
    with pytest.raises(ConfigError):
        build_gcn(GCNConfig(enabled=True, spatial="learned"), D, 0.1)
    gcn = _gcn("learned", "learned")
    with pytest.raises(ValueError):
        gcn(torch.randn(B, T, N + 1, D))
    build_gcn(GCNConfig(enabled=True), D, 0.1)  # attention/affinity: no sizes needed


def test_affinity_weights_are_detached_but_values_flow():
    gcn = _gcn("attention", "affinity", layers=1)
    x = torch.randn(1, 2, 3, D, requires_grad=True)
    gcn(x)[0, 0].sum().backward()
    assert x.grad[0, 1].abs().sum() > 0  # frame 0 reads frame 1's values


def test_graph_size_and_cost():
    cfg = config_from_dict({"data": {"size": 128, "clip_len": 4}, "nodes": {"patch_size": 32, "patch_stride": 16}})
    assert graph_size(cfg) == (4, 49)
    cfg = config_from_dict({"nodes": {"kind": "object", "k": 8}})
    assert graph_size(cfg) == (4, 8)
    small = gcn_cost(build_gcn(GCNConfig(enabled=True), 64, 0.07), 2, 4, 8, 64)
    big = gcn_cost(build_gcn(GCNConfig(enabled=True), 64, 0.07), 2, 4, 49, 64)
    assert small["params"] == big["params"] == 64 * 64 + 64 + 2 * 64 + 1
    assert 0 < small["flops_fwd"] < small["flops_fwd_bwd"]
    assert big["flops_fwd"] > 5 * small["flops_fwd"]
    learned = gcn_cost(_gcn("learned", "learned", layers=1), B, T, N, D)
    assert learned["params"] == D * D + D + 2 * D + 1 + N * T * T + T * N * N


def test_spatial_only_variant_never_mixes_frames_and_gate_starts_as_identity():
    from ever.config import GCNConfig
    from ever.gcn import build_gcn

    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 8)
    valid = torch.ones(2, 4, 5, dtype=torch.bool)
    spatial = build_gcn(GCNConfig(enabled=True, temporal="none"), 8, 0.07)
    y = spatial(x, valid)
    x2 = x.clone()
    x2[:, 1:] = torch.randn_like(x2[:, 1:])  # other frames changed: frame 0's output must not move
    assert torch.allclose(spatial(x2, valid)[:, 0], y[:, 0])
    affinity = build_gcn(GCNConfig(enabled=True), 8, 0.07)
    assert not torch.allclose(affinity(x2, valid)[:, 0], affinity(x, valid)[:, 0])  # the default mixes time

    gated = build_gcn(GCNConfig(enabled=True, gate=True), 8, 0.07)
    assert torch.equal(gated(x, valid), x)  # gate 0: identity at initialisation
    gated(x, valid).square().sum().backward()
    g = gated.layers[0].gate
    assert g.grad is not None and g.grad.abs() > 0  # but the gate learns
    with torch.no_grad():
        g.fill_(0.5)
    assert not torch.equal(gated(x, valid), x)


@pytest.mark.parametrize("home_shift,runs", [(0, 1), (32, 2)])
def test_the_ledger_counts_the_gcn_as_often_as_it_runs(tmp_path, tiny_videos, home_shift, runs):
    """A step runs the GCN on the clip, and with walk.home_shift once more on the home view: the ledger's
    GCN FLOPs are the module's fwd+bwd FLOPs that many times, and its share is of the whole step."""
    import json

    from conftest import tiny_cfg

    from ever.train import train

    cfg = tiny_cfg(tmp_path, tiny_videos, "train.steps=1", "gcn.enabled=true", f"walk.home_shift={home_shift}")
    tot = json.loads((train(cfg) / "ledger.json").read_text())["phases"]["train"]["totals"]
    one = gcn_cost(
        build_gcn(cfg.gcn, cfg.model.proj_dim, cfg.walk.temperature),
        cfg.train.batch_size,
        *graph_size(cfg),
        cfg.model.proj_dim,
    )["flops_fwd_bwd"]
    assert tot["metrics"]["gcn_flops_per_step"] == runs * one
    assert tot["metrics"]["gcn_flop_share"] == pytest.approx(runs * one / tot["flops"])
