"""The shifted home view (walk.home_shift): targets, the walk against a positional shortcut, CRW, config."""

import pytest
import torch
import torch.nn.functional as F

from ever.config import ConfigError, NodeConfig, load_config
from ever.models.crw import CRW
from ever.nodes import PatchCropNodes, PatchPoolNodes
from ever.nodes.objects import ObjectNodes
from ever.walk import Home, walk_loss

CPU_CFG = "configs/crw-patch-cpu.yaml"


def _encode_pool(x):
    """A fake encoder: 8x8 average pooling of the pixels, so node features are known exactly."""
    return F.avg_pool2d(x, 8)


@pytest.mark.parametrize("shift", [(16, 0), (0, -32), (-16, 48), (32, 32)])
@pytest.mark.parametrize("kind", ["pool", "crop"])
def test_home_target_points_at_the_same_pixels(shift, kind):
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(1, 1, 3, 96, 128, generator=g)
    ext = PatchPoolNodes(32, 16) if kind == "pool" else PatchCropNodes(32, 16, jitter=0.0)
    rolled = torch.roll(frame, shift, dims=(-2, -1))
    f0, _ = ext(_encode_pool, frame)
    f1, _ = ext(_encode_pool, rolled)
    target = ext.home_target(*shift, 96, 128)
    ok = target >= 0
    assert ok.sum() == (5 - abs(shift[0]) // 16) * (7 - abs(shift[1]) // 16)  # the nodes still in the grid
    torch.testing.assert_close(f1[0, 0, target[ok]], f0[0, 0, ok])
    # ...and a walk by position would land elsewhere: the rolled grid at the same index differs.
    assert not torch.allclose(f1[0, 0, ok], f0[0, 0, ok])


def test_object_home_target_keeps_segment_identity():
    g = torch.Generator().manual_seed(1)
    frame = torch.rand(1, 1, 3, 64, 64, generator=g)
    seg = (torch.arange(64)[:, None] // 16 + 4 * (torch.arange(64)[None, :] // 32)).clamp_max(7)[None, None]
    ext = ObjectNodes(NodeConfig(kind="object", k=8))
    f0, v0 = ext(_encode_pool, frame, seg)
    shift = (8, -24)
    f1, v1 = ext(_encode_pool, torch.roll(frame, shift, dims=(-2, -1)), torch.roll(seg, shift, dims=(-2, -1)))
    target = ext.home_target(*shift, 64, 64)
    assert torch.equal(target, torch.arange(8)) and torch.equal(v0, v1)
    torch.testing.assert_close(f1[0, 0, target], f0[0, 0])  # shifts are multiples of 8: pooling is exact


def test_home_walk_rewards_appearance_and_punishes_position():
    B, T, N, D = 2, 4, 9, 9
    perm = torch.stack([torch.randperm(N, generator=torch.Generator().manual_seed(s)) for s in range(B)])
    emb = torch.eye(N).expand(B, T, N, D).clone()  # node i looks the same in every frame
    home = torch.zeros(B, N, D)
    home.scatter_(1, perm[..., None].expand(B, N, D), emb[:, 0])  # home[perm[i]] = frame 0's node i
    by_look = walk_loss(emb, temperature=0.05, home=Home(home, perm))
    assert by_look.loss < 0.01 and torch.all(by_look.acc_by_len == 1)
    # Embeddings that only encode *position* match index to index: home[i] = node i of frame 0.
    by_place = walk_loss(emb, temperature=0.05, home=Home(emb[:, 0].clone(), perm))
    moved = (perm != torch.arange(N)).float().mean()
    assert by_place.loss > 5 and torch.allclose(by_place.acc_by_len, 1 - moved)
    # Walkers without a counterpart (-1) and invalid home nodes are left out, like padded starts.
    cut = perm.clone()
    cut[:, :3] = -1
    part = walk_loss(emb, temperature=0.05, home=Home(home, cut))
    assert part.loss < 0.01


@pytest.mark.parametrize("extra", [[], ["nodes.kind=object", "nodes.k=8", "gcn.enabled=true"]])
def test_crw_trains_a_step_coming_home(extra):
    cfg = load_config(
        CPU_CFG,
        [
            "walk.home_shift=32",
            "model.width=8",
            "model.proj_dim=16",
            "data.size=64",
            "nodes.patch_size=32",
            "nodes.patch_stride=16",
            *extra,
        ],
    )
    torch.manual_seed(0)
    crw = CRW(cfg).train()
    x = torch.rand(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    seg = crw.nodes.segment(x) if cfg.nodes.kind == "object" else None
    out = crw(x, seg, torch.Generator().manual_seed(3))
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss_by_len.shape == (3,)
    assert crw.model.encoder.stem[0].weight.grad.abs().sum() > 0
    plain = crw.eval()(x, seg)  # evaluation mode: the plain palindrome, no home view
    assert not torch.isclose(plain.loss, out.loss)
    view, view_seg, target = crw.home_view(x[:, 0], None if seg is None else seg[:, 0], torch.Generator())
    assert view.shape == x[:, 0].shape and target.shape == (2, 9 if seg is None else 8)
    assert not torch.equal(view, x[:, 0])  # never the zero shift


def test_home_shift_config_errors():
    with pytest.raises(ConfigError, match=r"walk.home_shift=8 must be >= the node step \(16 px\)"):
        load_config(CPU_CFG, ["walk.home_shift=8"])  # patch stride is 16 px
    with pytest.raises(ConfigError, match="k-means clusters"):
        load_config(CPU_CFG, ["walk.home_shift=16", "nodes.kind=object", "nodes.segmenter=kmeans"])
    with pytest.raises(ConfigError, match="walk.home_shift must be >= 0"):
        load_config(CPU_CFG, ["walk.home_shift=-16"])
