"""Object crops (``nodes.kind=object_crop``): each segment's box cropped, resized and encoded on its own."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ever.config import ConfigError, NodeConfig, load_config
from ever.models.crw import CRW
from ever.nodes.objects import ObjectCropNodes, centre_windows, crop_boxes, segment_boxes
from ever.utils import count_flops

ABLATION = Path(__file__).resolve().parents[1] / "configs" / "ablation"


def _cfg(**kw):
    return NodeConfig(kind="object_crop", segmenter="felzenszwalb", patch_size=16, **kw)


def _blocks(T: int, H: int, W: int, n: int) -> torch.Tensor:
    """(T, H, W) segment maps made of n vertical stripes labelled 0..n-1."""
    return (torch.arange(W) * n // W).expand(T, H, W).clone()


def test_segment_boxes_are_tight_and_absent_labels_flagged():
    seg = torch.zeros(1, 6, 8, dtype=torch.long)
    seg[0, 1:3, 2:5] = 1
    seg[0, 5, 7] = 2
    boxes, present = segment_boxes(seg, 4)
    assert present.tolist() == [[True, True, True, False]]
    assert boxes[0, 0].tolist() == [0, 0, 6, 8] and boxes[0, 1].tolist() == [1, 2, 3, 5]
    assert boxes[0, 2].tolist() == [5, 7, 6, 8]


def test_crop_of_the_whole_frame_is_a_resize_and_a_box_is_its_pixels():
    img = torch.rand(2, 3, 16, 24)
    whole = torch.tensor([[0.0, 0.0, 16.0, 24.0]]).expand(2, 1, 4)
    out = crop_boxes(img, whole, 8)
    ref = F.interpolate(img, size=(8, 8), mode="bilinear", align_corners=False)
    assert out.shape == (2, 1, 3, 8, 8) and torch.allclose(out[:, 0], ref, atol=1e-6)
    box = torch.tensor([[[4.0, 8.0, 8.0, 12.0]]]).expand(2, 1, 4)  # a 4x4 box cropped at its own size
    assert torch.allclose(crop_boxes(img, box, 4)[:, 0], img[:, :, 4:8, 8:12], atol=1e-6)


def test_shapes_validity_and_masking():
    B, T, H, W, K = 2, 3, 32, 48, 6
    frames = torch.rand(B, T, 3, H, W)
    segs = _blocks(B * T, H, W, 4).view(B, T, H, W)  # 4 of K=6 labels present
    seen = []

    def encode(x):  # records what the encoder sees; 1/8 map of the per-crop mean colour
        seen.append(x)
        return F.avg_pool2d(x, 8)

    feats, valid = ObjectCropNodes(_cfg(k=K))(encode, frames, segs)
    assert feats.shape == (B, T, K, 3) and valid.shape == (B, T, K)
    assert valid[..., :4].all() and not valid[..., 4:].any() and (feats[..., 4:, :] == 0).all()
    assert seen[0].shape == (B * T * 4, 3, 16, 16)  # only present segments are encoded
    # stripe 0 spans columns 0..11: its crop is exactly those pixels, resized
    ref = F.interpolate(frames.flatten(0, 1)[:, :, :, :12], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(seen[0].view(B * T, 4, 3, 16, 16)[:, 0], ref, atol=1e-5)

    # masking: a segment whose box holds another segment's pixels sees zeros there, and pools its own only
    segs2 = torch.zeros(1, 1, H, W, dtype=torch.long)
    segs2[..., :16, :24] = 1  # segment 0 is an L around segment 1: its box is the whole frame
    frames2 = torch.ones(1, 1, 3, H, W)
    frames2[..., :16, :24] = 5.0
    seen.clear()
    feats_m, _ = ObjectCropNodes(_cfg(k=2, crop_background="mask"))(encode, frames2, segs2)
    crop0 = seen[0][0]
    assert crop0.max() <= 1.0 + 1e-6 and (crop0 == 0).any()  # segment 1's bright pixels masked out
    # pooled over its own cells: masked-out cells weigh less than in a plain mean of the masked crop
    # (segment 1 is exactly the top-left feature cell of the 16x16 crop: the pooled feature is 1, not 0.75)
    assert crop0.mean() == 0.75 and torch.allclose(feats_m[0, 0, 0], torch.ones(3))
    feats_k, _ = ObjectCropNodes(_cfg(k=2, crop_background="keep"))(encode, frames2, segs2)
    assert feats_k[0, 0, 0, 0] > 1.5  # kept: the box's mean includes segment 1's bright pixels


def test_centre_windows_are_native_pixels_round_each_segment():
    seg = torch.zeros(1, 32, 48, dtype=torch.long)
    seg[0, 10:14, 20:24] = 1  # a 4x4 square centred at (12, 22)
    seg[0, 30:, 46:] = 2  # a corner segment: its window is moved inside the frame
    seg[0, 0:1, 0:3] = 3  # top-left, centre of mass (0.5, 1.5): a half-pixel centre, moved inside as well
    boxes, present = centre_windows(seg, 4, 8)
    assert present.tolist() == [[True, True, True, True]]
    assert boxes[0, 1].tolist() == [8, 18, 16, 26]  # centred on the square
    assert boxes[0, 2].tolist() == [24, 40, 32, 48]  # clamped to the bottom-right corner
    assert boxes[0, 3].tolist() == [0, 0, 8, 8]  # clamped to the top-left corner
    odd = torch.zeros(1, 9, 9, dtype=torch.long)
    odd[0, 3:6, 3:5] = 1  # centre of mass (4.5, 4.0): the 4-px window's corner (2.5, 2.0) rounds half to even, (2, 2)
    assert centre_windows(odd, 2, 4)[0][0, 1].tolist() == [2, 2, 6, 6]
    seg[0, 0:1, 0:3] = 0
    assert ((boxes[..., 2] - boxes[..., 0]) == 8).all() and ((boxes[..., 3] - boxes[..., 1]) == 8).all()
    with pytest.raises(ValueError, match="does not fit"):
        centre_windows(seg, 4, 40)

    frames = torch.rand(1, 1, 3, 32, 48)
    seen = []

    def encode(x):
        seen.append(x)
        return F.avg_pool2d(x, 8)

    feats, valid = ObjectCropNodes(NodeConfig(kind="object_crop", k=4, crop_window="centre", patch_size=8))(
        encode, frames, seg[None]
    )
    assert valid[0, 0].tolist() == [True, True, True, False] and seen[0].shape == (3, 3, 8, 8)
    # the window's own pixels, not resized: what a patch crop of the same place would see (sampled at the
    # pixel centres, exact up to float rounding)
    assert torch.allclose(seen[0][1], frames[0, 0, :, 8:16, 18:26], atol=1e-5)
    assert torch.allclose(seen[0][2], frames[0, 0, :, 24:, 40:], atol=1e-5)
    assert torch.allclose(feats[0, 0, 1], frames[0, 0, :, 8:16, 18:26].mean((1, 2)))


def test_centre_windows_must_fit_the_clip():
    with pytest.raises(ConfigError, match="nodes.patch_size=160 is larger than data.size=128"):
        load_config(
            None, ["nodes.kind=object_crop", "nodes.crop_window=centre", "nodes.patch_size=160", "data.size=128"]
        )
    with pytest.raises(ConfigError, match=re.escape("nodes.crop_window must be box|centre")):
        load_config(None, ["nodes.kind=object_crop", "nodes.crop_window=middle"])
    with pytest.raises(ConfigError, match=re.escape("nodes.crop_background=mask needs nodes.crop_window=box")):
        load_config(None, ["nodes.kind=object_crop", "nodes.crop_window=centre", "nodes.crop_background=mask"])


def test_encoder_cost_grows_with_the_number_of_objects():
    from ever.models import EverModel

    cfg = load_config(None, ["model.width=8", "model.proj_dim=16"])
    model = EverModel(cfg.model)
    frames = torch.rand(1, 2, 3, 64, 64)
    flops = {}
    for k in (4, 8, 16):
        nodes = ObjectCropNodes(_cfg(k=k))
        segs = _blocks(2, 64, 64, k).view(1, 2, 64, 64)
        flops[k] = count_flops(nodes, model.dense, frames, segs)
    assert flops[8] == 2 * flops[4] and flops[16] == 4 * flops[4]


def test_object_crop_trains_end_to_end(tmp_path):
    from ever.data.synth import SynthConfig, generate
    from ever.train import train

    generate(tmp_path / "d", SynthConfig(num_train=2, num_eval=1, frames_train=10, frames_eval=4, height=64, width=96))
    cfg = load_config(
        None,
        [
            f"data.roots=[{tmp_path / 'd' / 'videos' / 'train'}]",
            "data.size=64",
            "data.clip_len=3",
            "data.num_workers=0",
            "model.width=8",
            "model.proj_dim=16",
            "nodes.kind=object_crop",
            "nodes.k=4",
            "nodes.patch_size=32",
            "nodes.seg_scale=20",
            "train.steps=2",
            "train.batch_size=2",
            f"out_dir={tmp_path}",
            "ledger.enabled=false",
            "name=oc",
        ],
    )
    run = train(cfg)
    assert (run / "checkpoint.pt").is_file()


def test_no_shifted_home_for_object_crops():
    """A rolled frame 0 wraps an edge segment round the frame: its box would span the whole width, so the home
    view's crop would no longer show that segment. The config and the extractor refuse the shifted home."""
    seg = torch.zeros(1, 32, 48, dtype=torch.long)
    seg[:, :, 40:] = 1  # a segment along the right edge, 8 px wide
    assert segment_boxes(seg, 2)[0][0, 1].tolist() == [0, 40, 32, 48]
    rolled = torch.roll(seg, 4, dims=-1)  # what walk.home_shift does to frame 0 and its segments
    assert segment_boxes(rolled, 2)[0][0, 1].tolist() == [0, 0, 32, 48]  # now the whole frame
    with pytest.raises(ConfigError, match="walk.home_shift does not apply to nodes.kind=object_crop"):
        load_config(None, ["nodes.kind=object_crop", "walk.home_shift=32"])
    for name in ("objcrop4", "objcrop8", "objcrop8-mask", "objcrop16"):  # the shipped cells come home to frame 0
        assert load_config(ABLATION / f"{name}.yaml").walk.home_shift == 0
    crw = CRW(load_config(None, ["nodes.kind=object_crop", "model.width=8", "model.proj_dim=16"]))
    with pytest.raises(NotImplementedError, match="ObjectCropNodes does not support walk.home_shift"):
        crw.nodes.home_target(16, 16, 64, 64)
