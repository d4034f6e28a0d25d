"""Object nodes: segmentation to at most K segments, mask pooling, padding, the walk and CRW on objects."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ever.config import ConfigError, NodeConfig, config_from_dict
from ever.models.crw import CRW
from ever.nodes import build_extractor
from ever.nodes.objects import ObjectNodes, SegmentedClips, mask_pool, merge_to_k, segment_frames, segment_mass
from ever.walk import walk_loss


def _frames(T=3, S=64, seed=0):
    """uint8 (T, S, S, 3): a few moving coloured rectangles on a gradient, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S]
    out = []
    for t in range(T):
        img = np.stack([xx * 2, yy * 2, np.full_like(xx, 60)], -1).astype(np.float64)
        for j, col in enumerate([(250, 20, 20), (20, 250, 20), (20, 20, 250), (240, 240, 30)]):
            y0, x0 = 6 + 12 * j + t, 4 + 10 * j + 2 * t
            img[y0 : y0 + 14, x0 : x0 + 18] = col
        img += rng.normal(0, 4, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def _encode_pool(x):
    """A fake encoder: 8x8 average pooling of the pixels (C = 3), so features are known."""
    return F.avg_pool2d(x, 8)


# ----------------------------------------------------------------------------- merging / segmentation


@pytest.mark.parametrize("k", [1, 2, 4, 8, 32])
def test_merge_to_k_yields_at_most_k_consecutive_labels_by_area(k):
    rng = np.random.default_rng(k)
    # 60 Voronoi regions on a 48 x 48 grid
    pts = rng.uniform(0, 48, (60, 2))
    yy, xx = np.mgrid[0:48, 0:48]
    lab = ((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2).argmin(-1) * 7 + 3  # sparse ids
    img = rng.uniform(0, 1, (48, 48, 3))
    out = merge_to_k(lab, img, k, min_px=10)
    u = np.unique(out)
    assert out.dtype == np.int64 and out.shape == lab.shape
    assert len(u) <= k and np.array_equal(u, np.arange(len(u)))
    areas = np.bincount(out.ravel())
    assert (np.diff(areas) <= 0).all()  # numbered by decreasing area
    if len(u) > 1:
        assert areas.min() >= 10
    for v in np.unique(lab):  # merging never splits an input region
        assert len(np.unique(out[lab == v])) == 1


def test_merge_prefers_the_similar_neighbour():
    # three stripes: dark | dark-ish (tiny) | bright -> the tiny one joins the dark one
    lab = np.zeros((10, 21), int)
    lab[:, 10] = 1
    lab[:, 11:] = 2
    img = np.zeros((10, 21, 3))
    img[:, 10] = 0.1
    img[:, 11:] = 1.0
    out = merge_to_k(lab, img, 2)
    assert (out[:, :11] == out[0, 0]).all() and (out[:, 11:] != out[0, 0]).all()


@pytest.mark.parametrize("segmenter", ["felzenszwalb", "slic"])
@pytest.mark.parametrize("k", [4, 16])
def test_segment_frames_layouts_and_range(segmenter, k):
    cfg = NodeConfig(kind="object", segmenter=segmenter, k=k, seg_scale=40)
    f = _frames(T=2, S=64)
    a = segment_frames(f, cfg)
    b = segment_frames(torch.from_numpy(f).permute(0, 3, 1, 2), cfg)
    assert a.shape == (2, 64, 64) and a.dtype == np.int64
    assert np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < k
    assert all(len(np.unique(x)) >= 2 for x in a)


def test_segment_frames_rejects_bad_input():
    cfg = NodeConfig(kind="object", k=4)
    with pytest.raises(ValueError):
        segment_frames(np.zeros((2, 32, 32, 3), np.float32), cfg)
    with pytest.raises(ValueError):
        segment_frames(np.zeros((32, 32, 3), np.uint8), cfg)
    with pytest.raises(ConfigError):
        segment_frames(np.zeros((1, 32, 32, 3), np.uint8), NodeConfig(kind="object", segmenter="kmeans"))


def test_segmented_clips_wraps_a_dataset():
    cfg = NodeConfig(kind="object", k=4)
    clips = [torch.from_numpy(_frames(T=3, S=64, seed=i)).permute(0, 3, 1, 2).contiguous() for i in range(2)]
    ds = SegmentedClips(clips, cfg)
    assert len(ds) == 2
    clip, seg = ds[1]
    assert clip.shape == (3, 3, 64, 64) and clip.dtype == torch.uint8
    assert seg.shape == (3, 64, 64) and seg.dtype == torch.int64 and int(seg.max()) < 4
    frames, segs = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert frames.shape == (2, 3, 3, 64, 64) and segs.shape == (2, 3, 64, 64)


# ----------------------------------------------------------------------------- pooling


def test_mask_pool_matches_hand_computed_mean_two_segments():
    # one 16 x 16 frame -> 2 x 2 feature cells with known features; segment 0 = the 4 left columns
    fmap = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]])[None]  # (1, C=2, 2, 2)
    seg = torch.ones(1, 16, 16, dtype=torch.long)
    seg[:, :, :4] = 0
    mass = segment_mass(seg, 2, 2, 2)
    assert torch.allclose(mass[0], torch.tensor([[0.5, 0.0, 0.5, 0.0], [0.5, 1.0, 0.5, 1.0]]))
    feats, valid = mask_pool(fmap, mass)
    # segment 0 covers half of cells (0,0) and (1,0): mean of 1, 3 and of 10, 30
    assert torch.allclose(feats[0, 0], torch.tensor([2.0, 20.0]))
    # segment 1: 32 px of (0,0), 64 of (0,1), 32 of (1,0), 64 of (1,1)
    w = np.array([32, 64, 32, 64]) / 192
    assert torch.allclose(feats[0, 1], torch.tensor([w @ [1, 2, 3, 4], w @ [10, 20, 30, 40]], dtype=torch.float32))
    assert valid.all()


def test_mask_pool_equals_mean_of_upsampled_map_over_pixels():
    g = torch.Generator().manual_seed(0)
    fmap = torch.randn(3, 5, 4, 4, generator=g)
    seg = torch.randint(0, 6, (3, 32, 32), generator=g)
    feats, valid = mask_pool(fmap, segment_mass(seg, 6, 4, 4))
    up = fmap.repeat_interleave(8, 2).repeat_interleave(8, 3)  # nearest upsampling to pixels
    for m in range(3):
        for s in range(6):
            mask = seg[m] == s
            assert valid[m, s]
            assert torch.allclose(feats[m, s], up[m][:, mask].mean(1), atol=1e-5)


def test_extractor_shapes_validity_and_padding():
    B, T, S, K = 2, 3, 32, 6
    frames = torch.rand(B, T, 3, S, S)
    seg = torch.zeros(B, T, S, S, dtype=torch.long)
    seg[..., 16:, :] = 1
    seg[..., :16, 16:] = 2
    seg[1, 2, :2, :2] = 5  # 4 px: 1/16 of a feature cell -> too small, invalid
    ext = build_extractor(NodeConfig(kind="object", k=K))
    assert isinstance(ext, ObjectNodes) and ext.needs_segments
    feats, valid = ext(_encode_pool, frames, seg)
    assert feats.shape == (B, T, K, 3) and valid.shape == (B, T, K) and valid.dtype == torch.bool
    assert valid[..., :3].all() and not valid[..., 3:].any()  # labels 3, 4, 5(tiny) padded / invalid
    assert (feats[~valid] == 0).all() and torch.isfinite(feats).all()
    # node 1 (bottom half) = mean of the bottom half's pixels
    assert torch.allclose(feats[0, 1, 1], frames[0, 1, :, 16:, :].mean((1, 2)), atol=1e-6)
    with pytest.raises(ValueError):
        ext(_encode_pool, frames, seg + K)


def test_extractor_encodes_once_and_segments_on_the_fly():
    calls = []

    def encode(x):
        calls.append(x.shape[0])
        return _encode_pool(x)

    f = torch.from_numpy(_frames(T=3, S=64)).permute(0, 3, 1, 2)[None].float() / 255
    ext = ObjectNodes(NodeConfig(kind="object", k=8, seg_scale=40))
    feats, valid = ext(encode, f)  # segments=None -> computed here
    assert calls == [3]
    assert feats.shape == (1, 3, 8, 3) and valid[:, :, 0].all()
    seg = torch.from_numpy(segment_frames((f[0] * 255).round().to(torch.uint8), ext.cfg))[None]
    feats2, valid2 = ext(_encode_pool, f, seg)
    assert torch.equal(valid, valid2) and torch.allclose(feats, feats2)


def test_kmeans_nodes_from_features():
    ext = build_extractor(NodeConfig(kind="object", segmenter="kmeans", k=4))
    assert not ext.needs_segments
    f = torch.from_numpy(_frames(T=2, S=64)).permute(0, 3, 1, 2)[None].float() / 255
    feats, valid = ext(_encode_pool, f.repeat(2, 1, 1, 1, 1))
    assert feats.shape == (2, 2, 4, 3) and valid.any(-1).all()
    assert torch.isfinite(feats).all()


# ----------------------------------------------------------------------------- walk and model


def test_walk_over_padded_objects_matches_unpadded_loss():
    g = torch.Generator().manual_seed(1)
    B, T, n, K, D = 2, 4, 5, 8, 16
    emb = F.normalize(torch.randn(B, T, n, D, generator=g), dim=-1)
    ref = walk_loss(emb, None, 0.1)
    padded = torch.zeros(B, T, K, D)
    valid = torch.zeros(B, T, K, dtype=torch.bool)
    for b in range(B):
        for t in range(T):
            pos = torch.randperm(K, generator=g)[:n]
            if t == 0:
                pos = pos.sort().values  # start nodes in the same order as the reference
            padded[b, t, pos] = emb[b, t]
            valid[b, t, pos] = True
    padded[~valid] = F.normalize(torch.randn(int((~valid).sum()), D, generator=g), dim=-1)  # junk padding
    out = walk_loss(padded, valid, 0.1)
    assert torch.allclose(out.loss, ref.loss, atol=1e-5)
    assert torch.allclose(out.acc_by_len, ref.acc_by_len)


@pytest.mark.parametrize("segmenter,gcn", [("felzenszwalb", True), ("slic", False), ("kmeans", True)])
def test_crw_on_objects_trains_one_step(segmenter, gcn):
    torch.manual_seed(0)
    cfg = config_from_dict(
        {
            "data": {"size": 64, "clip_len": 3},
            "model": {"width": 8, "proj_dim": 16},
            "nodes": {"kind": "object", "segmenter": segmenter, "k": 6, "seg_scale": 40},
            "gcn": {"enabled": gcn},
        }
    )
    crw = CRW(cfg)
    clips = np.stack([_frames(T=3, S=64, seed=s) for s in range(2)])  # (B, T, S, S, 3)
    frames = torch.from_numpy(clips).permute(0, 1, 4, 2, 3).float() / 255
    segments = None
    if crw.nodes.needs_segments:
        segments = torch.from_numpy(np.stack([segment_frames(c, cfg.nodes) for c in clips]))
    opt = torch.optim.Adam(crw.parameters(), lr=1e-3)
    out = crw(frames, segments, torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss) and out.loss_by_len.shape == (2,)
    out.loss.backward()
    g = crw.model.encoder.stem[0].weight.grad
    assert g is not None and g.abs().sum() > 0
    if gcn:
        assert crw.gcn.layers[0].lin.weight.grad.abs().sum() > 0
    opt.step()
