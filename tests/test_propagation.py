"""Label propagation (CRW protocol): exactness against a brute-force reference, bounded memory, baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.color import rgb2lab
from test_davis import make_davis, moving_squares

from ever.data.davis import DavisDataset
from ever.errors import DataError
from ever.evaluate import keypoints as KP
from ever.evaluate import propagation as P
from ever.evaluate.metrics import j_measure


class ArraySequence:
    """In-memory stand-in for ever.data.davis.Sequence that counts frame reads."""

    def __init__(self, frames, first_mask):
        self.frames, self._first = frames, first_mask
        self.reads = 0

    def __len__(self):
        return len(self.frames)

    @property
    def size(self):
        return self._first.shape

    @property
    def object_ids(self):
        return [int(i) for i in np.unique(self._first) if i != 0]

    def first_mask(self):
        return self._first

    def frame(self, i):
        self.reads += 1
        return self.frames[i]

    def mask(self, i):
        return None


def cell_noise(seed=0, dim=32):
    """Feature fn: a fixed random vector per 8x8 cell position (identical for every frame)."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(dim, 64, 64, generator=gen)

    def fn(frames):
        h, w = frames.shape[-2] // 8, frames.shape[-1] // 8
        return table[:, :h, :w].expand(frames.shape[0], -1, -1, -1)

    return fn


def reference_predict(query, first_feat, first_labels, prev_feats, prev_labels, topk, radius, temperature):
    """Brute force: all context affinities at once, out-of-radius keys of preceding frames masked."""
    C, h, w = query.shape
    K = first_labels.shape[0]
    q = query.reshape(C, -1).T
    keys = torch.cat([first_feat[None], prev_feats]).permute(1, 0, 2, 3).reshape(C, -1)
    labels = torch.cat([first_labels[None], prev_labels]).permute(0, 2, 3, 1).reshape(-1, K)
    aff = (q @ keys).view(h * w, -1, h * w)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1).float()
    far = torch.cdist(pos, pos) >= radius
    aff[:, 1:][far[:, None].expand(-1, prev_feats.shape[0], -1)] = float("-inf")
    v, idx = aff.reshape(h * w, -1).topk(topk, dim=1)
    out = torch.einsum("nk,nkc->nc", torch.softmax(v / temperature, 1), labels[idx])
    return out.T.reshape(K, h, w)


def test_rgb_to_lab_matches_skimage():
    rgb = np.random.default_rng(0).random((5, 7, 3))
    ours = P.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, rgb2lab(rgb), atol=0.05)


def test_lab_features_shape_odd_sizes():
    assert P.lab_features(torch.rand(2, 3, 37, 50)).shape == (2, 3, 5, 7)


def _lab_out_of_place(x):
    """rgb_to_lab as written out of place before session 27 (a new tensor every op, a clip at once)."""
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = x.new_tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    xyz = torch.einsum("ij,tjhw->tihw", m, lin) / x.new_tensor([0.95047, 1.0, 1.08883])[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_lab_in_place_and_frame_by_frame_keeps_the_bits(threads):
    """The Lab encoder (in place, a frame at a time) gives the out-of-place clip-at-once formula's bits: for 2^18
    random 8-bit colours, blacks, whites and greys, and for frames whose sides are multiples of 8 (as
    CellGrid.frames pads them; large enough for torch to split each op between 2 threads), in its layout
    (channels last) and contiguous, scaled (lab) and not (lab-dist's cells). At other sizes a frame's last
    pixels may differ in the last bit (torch computes the last values of a tensor that fill no whole vector by
    another routine), as the clip-at-once formula's own did with the clip's length. (All 2^24 colours and 9
    frames of each of the 30 development sequences at 480p and 427 px gave the same bits on 1 and 2 threads:
    session 27.)"""

    def bits(t):
        return t.contiguous().view(torch.int32)

    gen = torch.Generator().manual_seed(0)
    colours = torch.randint(0, 256, (3, 2**18), generator=gen, dtype=torch.uint8)
    colours[:, :256] = torch.arange(256, dtype=torch.uint8)  # greys, black and white
    clip = torch.randint(0, 256, (2, 240, 432, 3), generator=gen, dtype=torch.uint8)  # a frame: 311,040 values
    was = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = colours.float().div_(255).view(1, 3, 512, 512)
        assert torch.equal(bits(P.rgb_to_lab(x)), bits(_lab_out_of_place(x)))
        for frames in (clip.permute(0, 3, 1, 2).float().div_(255), clip.permute(0, 3, 1, 2).contiguous() / 255):
            lab = _lab_out_of_place(frames)
            scaled = lab / lab.new_tensor([100.0, 128.0, 128.0])[None, :, None, None]
            feats = P.lab_features(frames)
            assert feats.shape == (2, 3, 30, 54) and feats.dtype == torch.float32 and feats.is_contiguous()
            assert torch.equal(bits(feats), bits(F.avg_pool2d(scaled, 8, ceil_mode=True)))
            assert torch.equal(bits(P.lab_cells(frames)), bits(F.avg_pool2d(lab, 8, ceil_mode=True)))
            odd = frames[:, :, :37, :50]  # a partial cell: the same within rounding
            ref = F.avg_pool2d(_lab_out_of_place(odd) / 128.0, 8, ceil_mode=True)
            assert torch.allclose(P.lab_cells(odd, (128.0,) * 3), ref, rtol=0, atol=1e-6)
    finally:
        torch.set_num_threads(was)


@pytest.mark.parametrize(
    "size,long_side,cells", [((37, 50), 0, (5, 7)), ((480, 854), 0, (60, 107)), ((480, 854), 427, (30, 54))]
)
def test_grid_shapes(size, long_side, cells):
    g = P.CellGrid(size, long_side)
    assert g.cells == cells and g.padded == (cells[0] * 8, cells[1] * 8)
    x = g.frames([np.zeros((*size, 3), np.uint8)])
    assert x.shape == (1, 3, *g.padded)
    down = g.down(torch.ones(2, *size))
    assert down.shape == (2, *cells) and torch.allclose(down, torch.ones_like(down))
    assert g.up(down).shape == (2, *size)


@pytest.mark.parametrize("long_side", [0, 45])
def test_grid_frames_pad_by_repeating_the_edge(long_side):
    """Frames are padded to whole cells by repeating the last row and column (at native size the bytes, else the
    resized floats): the values of torch's replicate padding of the frames in [0, 1], laid out channels last."""
    rgb = [np.random.default_rng(i).integers(0, 256, (37, 50, 3), dtype=np.uint8) for i in range(2)]
    g = P.CellGrid((37, 50), long_side)
    x = g.frames(rgb)
    frames = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255
    if long_side:
        frames = F.interpolate(frames, size=g.resized, mode="bilinear", antialias=True).clamp(0, 1)
    ph, pw = g.padded[0] - g.resized[0], g.padded[1] - g.resized[1]
    assert ph > 0 and pw > 0 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, F.pad(frames, (0, pw, 0, ph), mode="replicate"))


@pytest.mark.parametrize("n,radius", [(0, 3.5), (1, 3.5), (4, 3.5), (3, 2.0), (2, 0.5), (3, 40.0)])
def test_predict_matches_brute_force(n, radius):
    """Random features (no ties); radii between cells, on a cell distance (excluded), below one cell
    (the query's own cell) and beyond the grid."""
    torch.manual_seed(0)
    h, w, C, K = 13, 17, 6, 3
    norm = lambda x: F.normalize(x, dim=-3)  # noqa: E731
    args = (
        norm(torch.randn(C, h, w)),
        norm(torch.randn(C, h, w)),
        torch.rand(K, h, w),
        norm(torch.randn(n, C, h, w)),
        torch.rand(n, K, h, w),
    )
    ours = P.predict(*args, topk=7, radius=radius, temperature=0.1, max_elements=500)
    ref = reference_predict(*args, topk=7, radius=radius, temperature=0.1)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def padded_reference(feats, labels0, n, topk, radius, temperature):
    """ajabri/videowalk code/test.py written out, unbounded: the video (T, C, h, w) padded in front with n
    copies of frame 0 (vos.py make_paths); target t (padded index n + t) has the keys of padded frame 0
    (long memory, no radius) and of padded frames t .. t+n-1 (radius-limited by adding -1e10); the
    copies and frame 0 carry its labels (K, h, w), later frames their predicted soft labels.
    Returns the soft labels of frames 1 .. T-1."""
    T, C, h, w = feats.shape
    K = labels0.shape[0]
    pf = torch.cat([feats[:1].expand(n, -1, -1, -1), feats])  # (n + T, C, h, w)
    pl = torch.zeros(n + T, K, h, w)
    pl[: n + 1] = labels0
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pos = torch.stack([yy.flatten(), xx.flatten()], 1).float()
    mask = torch.where(torch.cdist(pos, pos) < radius, 0.0, -1e10)  # (hw keys, hw queries)
    out = []
    for t in range(1, T):
        idx = [0] + list(range(t, t + n))
        keys = pf[idx].flatten(2)  # (1 + n, C, hw)
        aff = torch.einsum("fcm,cq->fmq", keys, pf[n + t].flatten(1))  # (1 + n, hw, hw)
        aff[1:] += mask
        v, i = (aff.reshape(-1, h * w) / temperature).topk(topk, dim=0)  # (k, hw)
        ctx = pl[idx].permute(1, 0, 2, 3).reshape(K, -1)  # (K, (1 + n) hw)
        pl[n + t] = (ctx[:, i] * torch.softmax(v, 0)[None]).sum(1).reshape(K, h, w)
        out.append(pl[n + t].clone())
    return out


def indexed_features(feats):
    """Frames carry their index in pixel (0, 0); the feature fn returns feats[index]."""

    def fn(frames):
        return feats[(frames[:, 0, 0, 0] * 255).round().long()]

    frames = [np.full((feats.shape[-2] * 8, feats.shape[-1] * 8, 3), i, np.uint8) for i in range(len(feats))]
    return frames, fn


@pytest.mark.parametrize("n,T", [(4, 11), (3, 4), (1, 5), (0, 3)])
def test_reference_context_matches_padded_video(n, T):
    """context='reference' (ring pre-filled with frame 0) = the reference's padded video, frame by frame."""
    torch.manual_seed(n)
    h, w, C, K = 7, 9, 5, 3
    feats = F.normalize(torch.randn(T, C, h, w), dim=1)
    labels0 = torch.softmax(torch.randn(K, h, w) * 3, 0)
    frames, fn = indexed_features(feats)
    grid = P.CellGrid((h * 8, w * 8))
    ours = list(
        P.propagate(frames, labels0, grid, fn, n_context=n, topk=6, radius=2.5, temperature=0.1, context="reference")
    )
    ref = padded_reference(feats, labels0, n, topk=6, radius=2.5, temperature=0.1)
    assert len(ours) == len(ref) == T - 1
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # first_once differs as soon as a copy of frame 0 enters the top-k (n > 1), and equals with n = 0
    old = list(
        P.propagate(frames, labels0, grid, fn, n_context=n, topk=6, radius=2.5, temperature=0.1, context="first_once")
    )
    assert all(torch.allclose(a, b) for a, b in zip(old, ours)) == (n == 0)


def test_first_once_context_matches_brute_force_per_frame():
    """context='first_once' (EVER before issue 12): frame 0 once plus frames max(1, t-n) .. t-1."""
    torch.manual_seed(1)
    T, n, h, w, C, K = 7, 3, 6, 8, 4, 2
    feats = F.normalize(torch.randn(T, C, h, w), dim=1)
    labels0 = torch.softmax(torch.randn(K, h, w), 0)
    frames, fn = indexed_features(feats)
    ours = list(
        P.propagate(
            frames,
            labels0,
            P.CellGrid((h * 8, w * 8)),
            fn,
            n_context=n,
            topk=5,
            radius=3,
            temperature=0.1,
            context="first_once",
        )
    )
    soft = [labels0]
    for t in range(1, T):
        prev = list(range(max(1, t - n), t))
        soft.append(
            reference_predict(
                feats[t],
                feats[0],
                labels0,
                feats[prev].reshape(-1, C, h, w),
                torch.stack([soft[i] for i in prev]) if prev else torch.zeros(0, K, h, w),
                topk=5,
                radius=3,
                temperature=0.1,
            )
        )
        torch.testing.assert_close(ours[t - 1], soft[t], rtol=1e-5, atol=1e-6)


def test_label_resize_bilinear_is_the_cell_centre():
    """'bilinear' = cv2.resize(onehot, (w, h), INTER_LINEAR) of the reference when H, W are multiples of
    8: the value at pixel 8j + 3.5, i.e. the mean of each cell's 4 central pixels; 'area' = the cell mean."""
    x = torch.rand(3, 40, 56)
    grid = P.CellGrid((40, 56))
    centre = (x[:, 3::8, 3::8] + x[:, 4::8, 3::8] + x[:, 3::8, 4::8] + x[:, 4::8, 4::8]) / 4
    torch.testing.assert_close(grid.down(x, "bilinear"), centre)
    torch.testing.assert_close(grid.down(x, "area"), x.reshape(3, 5, 8, 7, 8).mean((2, 4)))
    odd = P.CellGrid((37, 50), long_side=25)
    assert odd.down(torch.ones(2, 37, 50), "bilinear").shape == (2, *odd.cells)
    with pytest.raises(ValueError, match="label resize"):
        grid.down(x, "nearest")


def test_void_is_propagated_as_background():
    frames, labels = moving_squares(4, 48, 64, n_objects=1, step=0)
    first = labels[0].copy()
    first[30:, :] = 255  # void (DAVIS-2017) over part of the background
    seq = ArraySequence(frames, first)
    seq_ids = [int(i) for i in np.unique(first) if i not in (0, 255)]
    seq.__class__ = type("VoidSeq", (ArraySequence,), {"object_ids": property(lambda self: seq_ids)})
    plain = ArraySequence(frames, labels[0])  # the same first mask with void as background
    for method in ("copy", cell_noise()):
        preds = list(P.propagate_masks(seq, method, n_context=2))
        assert all(set(np.unique(p)) <= {0, 1} for p in preds)
        for p, q in zip(preds, P.propagate_masks(plain, method, n_context=2)):
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("context,label_resize", [("first_once", "area"), ("reference", "bilinear")])
def test_static_video_is_exact_multi_object(context, label_resize):
    """Identical frames: every frame gets frame 0's labels as stride 8 represents them."""
    frames, labels = moving_squares(6, 48, 63, n_objects=2, step=0)
    seq = ArraySequence(frames, labels[0])
    grid = P.CellGrid(labels[0].shape)
    onehot = torch.from_numpy(labels[0][None] == np.arange(3)[:, None, None]).float()
    expected = grid.up(grid.down(onehot, label_resize)).argmax(0).numpy()  # corners rounded by the stride
    preds = list(P.propagate_masks(seq, cell_noise(), n_context=3, context=context, label_resize=label_resize))
    assert len(preds) == 6
    np.testing.assert_array_equal(preds[0], labels[0])
    for pred in preds[1:]:
        np.testing.assert_array_equal(pred, expected)
    assert j_measure(expected == 1, labels[0] == 1) > 0.5 and j_measure(expected == 2, labels[0] == 2) > 0.5


def test_lab_tracks_moving_square_odd_size():
    frames, labels = moving_squares(12, 69, 99, n_objects=1, step=3, size=32)
    seq = ArraySequence(frames, labels[0])
    for t, pred in enumerate(P.propagate_masks(seq, P.lab_features, n_context=4, topk=5, radius=4)):
        assert pred.shape == (69, 99)
        assert j_measure(pred == 1, labels[t] == 1) > 0.7, t


def test_copy_baseline():
    frames, labels = moving_squares(5, 32, 32, step=2)
    seq = ArraySequence(frames, labels[0])
    preds = list(P.propagate_masks(seq, "copy"))
    assert len(preds) == 5 and all((p == labels[0]).all() for p in preds)
    assert seq.reads == 0


def test_long_video_is_incremental():
    """500 frames: features are computed `chunk` frames at a time and frames are read just in time."""
    T, chunk = 500, 8
    frames, labels = moving_squares(1, 48, 48, step=0)
    frames = np.broadcast_to(frames, (T, 48, 48, 3))  # one frame in memory, seen T times
    seq = ArraySequence(frames, labels[0])
    calls = []

    def fn(x):
        calls.append(x.shape[0])
        return P.lab_features(x)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest
    try:
        for t, _ in enumerate(P.propagate_masks(seq, fn, n_context=5, chunk=chunk)):
            assert seq.reads <= t + chunk + 1  # never more than one chunk ahead of the output
    finally:
        torch.set_num_threads(threads)
    assert t == T - 1 and max(calls) == chunk and sum(calls) == T


def test_feature_fn_wrong_stride():
    frames, labels = moving_squares(2, 32, 32)
    with pytest.raises(ValueError, match="stride 8"):
        list(P.propagate_masks(ArraySequence(frames, labels[0]), lambda x: torch.rand(x.shape[0], 4, 8, 8)))


def test_model_features_contract():
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)

        def features(self, x, stage):
            assert stage == "layer3"
            return self.conv(x)

    fn = P.model_features(Tiny(), "layer3")
    frames, labels = moving_squares(4, 40, 56, step=0)
    preds = list(P.propagate_masks(ArraySequence(frames, labels[0]), fn))
    assert len(preds) == 4 and preds[-1].shape == (40, 56)


# ------------------------------------------------------------------------------------------- keypoints


def test_keypoints_static_video_and_reader(tmp_path):
    make_davis(tmp_path, {"a": (6, 48, 64, 1)})
    seq = DavisDataset(tmp_path, "val").sequence("a")
    ann = {
        "annotated_frames": [
            {"frame": "00001", "joints_xy_480p": [[11.5, 19.5], [0, 0]], "visible": [True, False]},
            {"frame": "00004", "joints_xy_480p": [[13.5, 19.5], [5, 5]], "visible": [True, True]},
        ]
    }
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(ann))
    kp = KP.read_keypoints(path, [seq.frame_stem(i) for i in range(len(seq))])
    assert kp.frames == [1, 4] and kp.xy.shape == (2, 2, 2) and kp.visible.tolist() == [[True, False], [True, True]]
    # copy: joint 0 given at x=11.5, target at x=13.5, object 16 px -> error 2 px: within 3.2 but not 1.6
    res = KP.score_keypoints(seq, kp, "copy")
    assert res["joints"] == 1 and res["PCK@0.1"] == 0.0 and res["PCK@0.2"] == 1.0
    preds = list(KP.propagate_keypoints(seq, kp.xy[0], kp.visible[0], cell_noise(), start=1))
    assert len(preds) == 5 and np.isnan(preds[0][1]).all()
    for p in preds[1:]:  # identical features every frame -> the joint stays within its 8x8 cell
        assert abs(p[0, 0] - 11.5) < 8 and abs(p[0, 1] - 19.5) < 8 and np.isnan(p[1]).all()


def test_keypoints_reader_errors(tmp_path):
    path = tmp_path / "kp.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="kp.json: unreadable"):
        KP.read_keypoints(path, ["00000"])
    path.write_text(json.dumps({"annotated_frames": [{"frame": "00009", "joints_xy": [[1, 2]], "visible": [1]}]}))
    with pytest.raises(DataError, match="00009"):
        KP.read_keypoints(path, ["00000"])


# ------------------------------------------------------------------- the vectorised top-k against the loop


def loop_predict(query, first_feat, first_labels, prev_feats, prev_labels, topk, radius, temperature, tile=8):
    """EVER's propagation step before issue 32 (4965e1d), written out: frame 0's top-k over all its cells,
    then query tiles of tile x tile cells against their window grown by ceil(radius) - 1, keys at distance
    >= radius masked, one top-k over the window of all preceding frames, and the top-k of the union."""
    C, h, w = query.shape
    K, n = first_labels.shape[0], prev_feats.shape[0]
    q = query.reshape(C, h * w).T
    vals, idx = (q @ first_feat.reshape(C, -1)).topk(min(topk, h * w), dim=1)
    labs = first_labels.reshape(K, -1).T[idx]
    if n:
        reach = max(0, math.ceil(radius) - 1)
        lv = query.new_full((h, w, topk), float("-inf"))
        ll = query.new_zeros(h, w, topk, K)
        for y0 in range(0, h, tile):
            for x0 in range(0, w, tile):
                y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
                ky0, ky1, kx0, kx1 = max(0, y0 - reach), min(h, y1 + reach), max(0, x0 - reach), min(w, x1 + reach)
                qy, qx = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
                ky, kx = torch.meshgrid(torch.arange(ky0, ky1), torch.arange(kx0, kx1), indexing="ij")
                far = (qy.reshape(-1, 1) - ky.reshape(1, -1)) ** 2 + (
                    qx.reshape(-1, 1) - kx.reshape(1, -1)
                ) ** 2 >= radius**2
                tq = query[:, y0:y1, x0:x1].reshape(C, -1).T
                kf = prev_feats[:, :, ky0:ky1, kx0:kx1].permute(1, 0, 2, 3).reshape(C, -1)
                kl = prev_labels[:, :, ky0:ky1, kx0:kx1].permute(0, 2, 3, 1).reshape(-1, K)
                aff = (tq @ kf).view(tq.shape[0], n, -1).masked_fill(far[:, None], float("-inf")).flatten(1)
                kk = min(topk, aff.shape[1])
                v, i = aff.topk(kk, dim=1)
                lv[y0:y1, x0:x1, :kk] = v.view(y1 - y0, x1 - x0, kk)
                ll[y0:y1, x0:x1, :kk] = kl[i].view(y1 - y0, x1 - x0, kk, K)
        vals, labs = torch.cat([vals, lv.reshape(h * w, -1)], 1), torch.cat([labs, ll.reshape(h * w, -1, K)], 1)
    v, i = vals.topk(min(topk, vals.shape[1]), dim=1)
    out = torch.einsum("nk,nkc->nc", torch.softmax(v / temperature, 1), labs.gather(1, i[..., None].expand(-1, -1, K)))
    return out.T.reshape(K, h, w)


def random_context(seed, n, h, w, C=6, K=3, levels=0):
    """Normalised random features (levels > 0: drawn from `levels` vectors, so affinities tie exactly)."""
    gen = torch.Generator().manual_seed(seed)
    if levels:
        table = F.normalize(torch.randn(levels, C, generator=gen), dim=1)
        feats = table[torch.randint(levels, (n + 2, h, w), generator=gen)].permute(0, 3, 1, 2)
    else:
        feats = F.normalize(torch.randn(n + 2, C, h, w, generator=gen), dim=1)
    labels = torch.rand(n + 1, K, h, w, generator=gen)
    return feats[0], feats[1], labels[0], feats[2:], labels[1:]


@pytest.mark.parametrize(
    "n,h,w,radius,topk",
    [
        (0, 9, 11, 3.0, 5),
        (1, 5, 7, 1.0, 4),
        (3, 13, 17, 3.5, 7),
        (4, 17, 23, 12.0, 10),
        (2, 9, 10, 1.5, 40),
        (3, 19, 8, 0.5, 6),
        (20, 16, 24, 5.0, 10),
    ],
)
def test_predict_matches_the_loop_it_replaces(n, h, w, radius, topk):
    """Random features, grids that tiles do not divide, radii beyond the grid and below one cell, top-k
    larger than the window: the same soft labels as the pre-issue-32 loop, any chunking."""
    args = random_context(n * 100 + h, n, h, w)
    ref = loop_predict(*args, topk=topk, radius=radius, temperature=0.1)
    for max_elements in (2**25, 700):
        ours = P.predict(*args, topk=topk, radius=radius, temperature=0.1, max_elements=max_elements)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "n,h,w,radius,topk,levels",
    [
        (20, 30, 37, 12.0, 10, 5),  # the protocol: interior tiles scan their near keys only
        (20, 16, 24, 12.0, 10, 3),  # windows clipped by the grid on every side
        (4, 12, 12, 12.0, 10, 2),  # rows shorter than 64k in full (n*R*S = 576): full rows
        (8, 20, 20, 4.0, 10, 3),  # near rows shorter than 64k (n*P < 640 <= n*R*S): padded with -inf
        (5, 17, 19, 1.0, 3, 2),  # radius 1: a query's own cell only
        (3, 9, 9, 2.0, 10, 4),  # integer radius: keys at distance exactly 2 excluded
    ],
)
def test_ties_resolve_as_the_loop(n, h, w, radius, topk, levels):
    """Features drawn from a few vectors (most affinities tie exactly) and labels unrelated to them, so a
    tie resolved otherwise changes the soft labels: bit for bit those of the pre-issue-32 loop (CPU topk)."""
    args = random_context(n + h + levels, n, h, w, C=3, levels=levels)
    ref = loop_predict(*args, topk=topk, radius=radius, temperature=0.1)
    assert torch.equal(P.predict(*args, topk=topk, radius=radius, temperature=0.1), ref)


def test_ties_give_the_same_labels_where_tied_keys_agree():
    """Features drawn from 4 vectors: most affinities tie exactly; with labels a function of the feature
    (tied keys carry equal labels) the soft labels equal those of the loop."""
    q, f0, l0, pf, pl = random_context(7, 5, 14, 18, C=3, levels=4)
    code = lambda f: (f * torch.tensor([1.0, 10.0, 100.0])[:, None, None]).sum(0)  # noqa: E731
    lab = lambda f: torch.stack([torch.sin(code(f)), torch.cos(code(f))])  # noqa: E731 (K=2) from the feature
    l0, pl = lab(f0), torch.stack([lab(f) for f in pf])
    ref = loop_predict(q, f0, l0, pf, pl, topk=10, radius=4.0, temperature=0.1)
    torch.testing.assert_close(
        P.predict(q, f0, l0, pf, pl, topk=10, radius=4.0, temperature=0.1), ref, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("context", ["reference", "first_once"])
def test_one_propagation_serves_masks_and_keypoints(context):
    """propagate_masks_keypoints = propagate_masks and propagate_keypoints(start=0), frame by frame."""
    frames, labels = moving_squares(9, 48, 72, n_objects=2, step=3)
    seq = ArraySequence(frames, labels[0])
    xy, vis = np.array([[12.0, 20.0], [40.0, 30.0], [0.0, 0.0]]), np.array([True, True, False])
    opts = dict(n_context=3, topk=5, radius=4, context=context)
    both = list(KP.propagate_masks_keypoints(seq, xy, vis, P.lab_features, **opts))
    masks = list(P.propagate_masks(seq, P.lab_features, **opts))
    joints = list(KP.propagate_keypoints(seq, xy, vis, P.lab_features, **opts))
    assert len(both) == len(masks) == len(joints) == 9
    for (m, j), m2, j2 in zip(both, masks, joints):
        np.testing.assert_array_equal(m, m2)
        np.testing.assert_array_equal(j, j2)
    none = list(KP.propagate_masks_keypoints(seq, xy, np.zeros(3, bool), P.lab_features, **opts))
    assert all(np.isnan(j).all() for _, j in none) and all((m == m2).all() for (m, _), m2 in zip(none, masks))


def test_bench_eval_pieces(tmp_path):
    """bench/eval.py: videowalk's functions are read from its files without its imports; today's
    propagation runs on saved features and its soft labels are those of propagate on them."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_eval", Path(__file__).parents[1] / "bench" / "eval.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    utils = tmp_path / "code" / "utils"
    utils.mkdir(parents=True)
    (utils / "test_utils.py").write_text(
        "import cv2\n\ndef context_index_bank(n, m, N):\n    return n\n\n"
        "def mem_efficient_batched_affinity(*a):\n    return torch.zeros(1)\n"
    )
    (utils / "__init__.py").write_text("import imageio\n\nclass MaskedAttention(nn.Module):\n    pass\n")
    ns = bench._load_videowalk(tmp_path)
    assert ns["context_index_bank"](3, 0, 0) == 3 and issubclass(ns["MaskedAttention"], torch.nn.Module)
    feats, labels = F.normalize(torch.randn(4, 5, 6, 7), dim=1), torch.rand(2, 6, 7)
    torch.save({"feats": feats, "labels": labels}, tmp_path / "f.pt")
    assert bench.time_propagation(tmp_path / "f.pt", "cpu", tmp_path / "soft.pt") > 0
    grid = P.CellGrid((48, 56))
    ref = list(P.propagate([np.zeros((48, 56, 3), np.uint8)] * 4, labels, grid, lambda x: feats[: len(x)], 20, 10))
    assert torch.equal(torch.load(tmp_path / "soft.pt"), torch.stack(ref))


# ------------------------------------------------------------------- frame 0's top-k and the reference padding


@pytest.mark.parametrize("M,levels,same_labels", [(300, 0, False), (301, 4, False), (299, 4, True), (90, 3, False)])
def test_topk_first_is_the_full_rows_topk(M, levels, same_labels):
    """topk_first = (q @ keys).topk(k) bit for bit, labels included: random or few-valued features (ties
    everywhere), labels a function of the key or not, blocks of 20 queries (max_elements), rows of 90 < 64k
    keys (topk's other algorithm)."""
    gen = torch.Generator().manual_seed(M)
    C, N, k = 3, 40, 10
    if levels:
        table = F.normalize(torch.randn(levels, C, generator=gen), dim=1)
        q, keys = table[torch.randint(levels, (N,), generator=gen)], table[torch.randint(levels, (M,), generator=gen)].T
    else:
        q, keys = (
            F.normalize(torch.randn(N, C, generator=gen), dim=1),
            F.normalize(torch.randn(C, M, generator=gen), dim=0),
        )
    labels = (keys.T @ torch.ones(C, 2)).sin() if same_labels else torch.rand(M, 2, generator=gen)
    v, lab = P.topk_first(q, keys, labels, k, max_elements=20 * M)
    ref_v, idx = (q @ keys).topk(k, dim=1)
    assert torch.equal(v, ref_v) and torch.equal(lab, labels[idx])


@pytest.mark.parametrize("radius", [12.0, 3.0, 1.0])
def test_reference_padding_ties_resolve_as_the_loop(radius):
    """The reference context's first frames: the preceding frames are copies of frame 0 with its labels
    (every window affinity tied n-fold, and with frame 0's own), few-valued features: bit for bit the loop."""
    q, f0, l0, _, _ = random_context(3, 0, 20, 26, C=3, levels=4)
    n = 20
    pf, pl = f0.expand(n, -1, -1, -1).contiguous(), l0.expand(n, -1, -1, -1).contiguous()
    ref = loop_predict(q, f0, l0, pf, pl, topk=10, radius=radius, temperature=0.05)
    assert torch.equal(P.predict(q, f0, l0, pf, pl, topk=10, radius=radius, temperature=0.05), ref)


def test_zero_features_resolve_as_the_loop():
    """Cells whose features are zero (a black region after L2 normalisation) give affinities of 0 that tie
    with every key, and zero queries whole rows of ties: skipped entries made -inf by adding -inf to them
    (:func:`_topk_local`) resolve these ties as the loop does, bit for bit."""
    q, f0, l0, pf, pl = random_context(11, 20, 20, 26, C=3, levels=3)
    zero = torch.rand(22, 20, 26, generator=torch.Generator().manual_seed(1)) < 0.3  # (frames, h, w)
    q, f0 = q.masked_fill(zero[0], 0.0), f0.masked_fill(zero[1], 0.0)
    pf = pf.masked_fill(zero[2:, None], 0.0)
    ref = loop_predict(q, f0, l0, pf, pl, topk=10, radius=12.0, temperature=0.05)
    assert torch.equal(P.predict(q, f0, l0, pf, pl, topk=10, radius=12.0, temperature=0.05), ref)


# ------------------------------------------------------------------- the compiled CPU selections (select_cpu)


def _copies_of_first(args, slots):
    """The context of ``args`` with the preceding frames ``slots`` replaced by frame 0 and its labels."""
    q, f0, l0, pf, pl = args
    pf, pl = pf.clone(), pl.clone()
    pf[slots], pl[slots] = f0, l0
    return q, f0, l0, pf, pl


def _torchs_selection(args, radius=12.0, max_elements=2**25):
    """torch's selection: values (N, k), labels (N, k, K), and the key table that select_cpu's keys index."""
    q, f0, l0, pf, pl = args
    v, labs = P.select(*args, topk=10, radius=radius, max_elements=max_elements)
    table = torch.cat([l0.reshape(l0.shape[0], -1).T, pl.permute(0, 2, 3, 1).reshape(-1, l0.shape[0])])
    return v, labs, table


@pytest.mark.parametrize(
    "n,h,w,radius,C,levels,copies,zeros",
    [
        (20, 30, 37, 12.0, 3, 5, [], False),  # the protocol's window, few-valued features: ties everywhere
        (20, 27, 31, 12.0, 3, 0, [], False),  # grid that tiles do not divide, no ties
        (20, 26, 30, 12.0, 3, 4, list(range(6, 20)), False),  # the reference padding: slots 6.. are frame 0
        (20, 26, 30, 12.0, 3, 4, list(range(20)), False),  # frame 1: every slot is frame 0
        (20, 26, 30, 12.0, 3, 3, [3, 4], True),  # zero features: whole rows of ties at 0
        (20, 24, 32, 3.0, 3, 4, [10], False),  # small radius: most of a tile window beyond it
        (20, 24, 30, 1.0, 3, 3, [], False),  # radius 1: a query's own cell only, the heap starts with -inf
        (2, 40, 40, 12.0, 3, 5, [], False),  # two preceding frames (first_once's early frames)
        (20, 30, 37, 12.0, 64, 6, [], False),  # an encoder's width
        (20, 26, 30, 12.0, 16, 4, list(range(6, 20)), True),
        (20, 24, 30, 1.0, 64, 3, [2], False),
        (2, 40, 40, 12.0, 64, 0, [], False),
        (8, 32, 32, 12.0000001, 3, 4, [], False),  # radius**2 rounds in float32 as _tiles compares it
        (8, 32, 32, 11.9999999, 8, 4, [], False),
    ],
)
def test_compiled_selection_is_torchs(n, h, w, radius, C, levels, copies, zeros):
    """Features on CPU take select_cpu.topk; its keys, values and soft labels are bit for bit those of the
    torch selection and of the pre-issue-32 loop, ties, copies of frame 0 and zeros included."""
    args = random_context(n + h + w + levels, n, h, w, C=C, levels=levels)
    if zeros:
        zero = torch.rand(n + 2, h, w, generator=torch.Generator().manual_seed(1)) < 0.3
        q, f0, l0, pf, pl = args
        args = (q.masked_fill(zero[0], 0.0), f0.masked_fill(zero[1], 0.0), l0, pf.masked_fill(zero[2:, None], 0.0), pl)
    args = _copies_of_first(args, copies)
    q, f0, l0, pf, pl = args
    assert P._compiled_plan(q, n, 10, radius)
    from ever.evaluate import select_cpu

    tiles = P._tiles(h, w, radius, P.TILE, 10, "cpu")
    v, keys = select_cpu.topk(q, f0, pf, 10, tiles, P._step(2**25, h * w))
    ref_v, ref_labs, table = _torchs_selection(args, radius)
    assert torch.equal(v, ref_v) and torch.equal(table[keys], ref_labs)
    ours = P.predict(*args, topk=10, radius=radius, temperature=0.05)
    assert torch.equal(ours, loop_predict(*args, topk=10, radius=radius, temperature=0.05))


@pytest.mark.parametrize("k", [1, 17])
def test_compiled_selection_is_torchs_at_other_k(k):
    """k = 17, the largest whose merged k - 1 first entries libstdc++ sorts by insertion alone, and k = 1."""
    args = random_context(k, 20, 36, 36, C=3, levels=4)
    q, f0, l0, pf, pl = args
    assert P._compiled_plan(q, 20, k, 12.0)
    ours = P.predict(*args, topk=k, radius=12.0, temperature=0.05)
    assert torch.equal(ours, loop_predict(*args, topk=k, radius=12.0, temperature=0.05))


@pytest.mark.parametrize("C", [1, 3, 8])
@pytest.mark.parametrize("max_elements", [2**25, 36 * 40, 1439 * 36 * 40])  # one chunk; chunks of 1 row; a last of 1
def test_raw_colour_affinities_computed_in_the_scan_are_torchs(monkeypatch, C, max_elements):
    """Up to FUSED_CHANNELS channels, frame 0's affinities are computed inside the scan (scan_rows_fused) where
    that chain gives torch's products bit for bit at select's shapes (one-row products take another BLAS path):
    either way the values and keys are torch's selection's (few-valued features: ties, zero features too), and
    the fused scan is taken exactly where the check passes (on this machine, for Lab's 3 channels in whole chunks;
    1 channel is a product without additions, whose -0 the chain from +0 does not keep)."""
    from ever.evaluate import select_cpu

    args = random_context(C, 20, 36, 40, C=C, levels=4)
    q, f0, l0, pf, pl = args
    args = (q, f0.masked_fill(torch.rand(36, 40, generator=torch.Generator().manual_seed(C)) < 0.2, 0.0), l0, pf, pl)
    step = P._step(max_elements, 36 * 40)
    exact = select_cpu._chain_is_torchs(args[0].reshape(C, -1).T, step)
    assert exact or C != 3 or step < 36 * 40  # raw Lab in whole chunks: the chain is torch's here
    calls = []
    fused = select_cpu.scan_rows_fused
    monkeypatch.setattr(select_cpu, "scan_rows_fused", lambda *a: calls.append(1) or fused(*a))
    v, keys = select_cpu.topk(args[0], args[1], pf, 10, P._tiles(36, 40, 12.0, P.TILE, 10, "cpu"), step)
    assert calls == ([1] if exact else [])
    ref_v, ref_labs, table = _torchs_selection(args, 12.0, max_elements)
    assert torch.equal(v.view(torch.int32), ref_v.view(torch.int32)) and torch.equal(table[keys], ref_labs)


@pytest.mark.parametrize("C,kernel", [(3, "scan_window_serial"), (64, "scan_window_serial"), (3, "scan_window")])
def test_windows_are_read_from_strips_where_their_products_are_selects(monkeypatch, C, kernel):
    """The preceding frames are laid out in strips, one per window column range (h, n, S, C), so that a tile's
    product reads its window where it lies: a strip holds the frames' features in its columns; where the check
    (random features, the same layouts and alignments) takes them, each tile's product from its strip is
    select's product of the copied window bit for bit (the columns in another order); beyond STRIP_FLOATS, or
    where the check fails for one tile, the windows are copied and ``work`` keeps no strips. Either way the keys
    are torch's selection's (few-valued features: ties everywhere), by the serial kernel and by the parallel one."""
    from ever.evaluate import select_cpu

    monkeypatch.setattr(select_cpu, "scan_window", getattr(select_cpu, kernel))
    monkeypatch.setattr(select_cpu, "scan_window_serial", getattr(select_cpu, kernel))
    args = random_context(C, 20, 30, 37, C=C, levels=5)
    q, f0, l0, pf, pl = args
    tiles = P._tiles(30, 37, 12.0, P.TILE, 10, "cpu")
    work, queries = {}, select_cpu.tile_queries(q, tiles)  # as topk takes them
    strips = select_cpu._strips(queries, pf, tiles, work)
    if strips is not None:  # (on this machine the products of either layout are the same: taken)
        assert sorted(strips) == sorted({(t.kx.start, t.kx.stop) for t in tiles})
        for (a, b), strip in strips.items():
            assert torch.equal(strip, pf[:, :, :, a:b].permute(2, 0, 3, 1))  # (h, n, S, C)
        for t, qt in zip(tiles, queries):
            T, (R, S) = t.far.shape[0], (t.ky.stop - t.ky.start, t.kx.stop - t.kx.start)
            selects = qt @ pf.permute(0, 2, 3, 1)[:, t.ky, t.kx].reshape(-1, C).T  # (T, n*R*S)
            ours = (qt @ strips[t.kx.start, t.kx.stop][t.ky].view(-1, C).T).view(T, R, 20, S).transpose(1, 2)
            assert torch.equal(ours.reshape(T, -1).view(torch.int32), selects.view(torch.int32))
    ref_v, ref_labs, table = _torchs_selection(args)
    taken, make = [], select_cpu._strips

    def spy(*a):
        strips = make(*a)
        taken.append(strips is not None)
        return strips

    monkeypatch.setattr(select_cpu, "_strips", spy)
    size = 30 * 20 * C * sum(b - a for a, b in {(t.kx.start, t.kx.stop) for t in tiles})  # the strips' floats
    for floats, exact in (
        (2**28, select_cpu._strip_exact),
        (size - 1, select_cpu._strip_exact),
        (2**28, lambda *a: a[0] < 64),
    ):
        monkeypatch.setattr(select_cpu, "STRIP_FLOATS", floats)
        monkeypatch.setattr(select_cpu, "_strip_exact", exact)  # the last: a full tile's products differ
        v, keys = select_cpu.topk(q, f0, pf, 10, tiles, P._step(2**25, 30 * 37), work)
        assert torch.equal(v, ref_v) and torch.equal(table[keys], ref_labs)
        assert ("strips" in work) == taken[-1]
    assert taken == [strips is not None, False, False]


def test_strips_lay_out_again_only_the_frame_propagate_wrote(monkeypatch):
    """Frame to frame ``propagate`` overwrites one slot of its ring and says which (``work["slot"]``): only that
    frame's strips are laid out again, and only when the features are the very tensor of the last layout (the
    same storage and view, the same strips buffer) written once since (torch's version counter). Written twice,
    not written, not said, said of a slot outside the ring, another tensor at the version expected, another
    buffer, a shorter view, an inference tensor: all frames are laid out again. The strips are spoiled (NaN)
    before each call to see which frames were laid out; the keys of a propagation's sequence of writes stay torch's
    selection's (with this machine's own check of the strips)."""
    from ever.evaluate import select_cpu

    monkeypatch.setattr(select_cpu, "_strip_exact", lambda *a: True)  # the layouts, whatever this BLAS does
    n, h, w, C = 6, 30, 37, 16
    q, f0, l0, pf, pl = random_context(3, n + 4, h, w, C=C, levels=5)
    ring = torch.zeros(n, h, w, C).permute(0, 3, 1, 2)  # (n, C, h, w) laid out (n, h, w, C), as propagate's
    ring[:] = pf[:n]
    tiles = P._tiles(h, w, 12.0, P.TILE, 10, "cpu")
    queries = select_cpu.tile_queries(q, tiles)
    ranges = {(t.kx.start, t.kx.stop) for t in tiles}

    def laid_out(write, slot, feats=ring):  # -> the frames whose strips hold feats after the call
        work["strips"].fill_(float("nan"))
        write()
        if slot is not None:
            work["slot"] = slot
        strips = select_cpu._strips(queries, feats, tiles, work)
        layout = [f.permute(1, 2, 0) for f in feats]  # (h, w, C)
        return [i for i, f in enumerate(layout) if all(torch.equal(strips[a, b][:, i], f[:, a:b]) for a, b in ranges)]

    everything = list(range(n))
    work = {}
    assert select_cpu._strips(queries, ring, tiles, work) is not None and "strips_of" in work
    assert laid_out(lambda: ring.__setitem__(2, pf[n]), 2) == [2]
    assert laid_out(lambda: ring.__setitem__(4, pf[n + 1]), 4) == [4]
    assert laid_out(lambda: None, None) == everything  # nothing said
    assert laid_out(lambda: (ring.__setitem__(0, pf[n + 2]), ring.__setitem__(1, pf[n + 3])), 1) == everything
    assert laid_out(lambda: ring.__setitem__(3, pf[0]), n) == everything  # a slot beyond the ring
    assert laid_out(lambda: ring.__setitem__(3, pf[1]), -1) == everything  # and before it
    assert laid_out(lambda: None, 0) == everything  # said, but not written: the version is the same
    twin = ring.clone()  # the same values in another tensor, at the version the next write would give the ring
    for _ in range(work["strips_of"][1] + 1 - twin._version):
        twin.mul_(1.0)
    assert laid_out(lambda: None, 0, twin) == everything
    assert laid_out(lambda: ring.__setitem__(5, pf[2]), 5) == everything  # back to the ring: another tensor
    work["strips"] = work["strips"].clone()  # another buffer
    assert laid_out(lambda: ring.__setitem__(5, pf[3]), 5) == everything
    assert laid_out(lambda: ring.__setitem__(2, pf[4]), 2, ring[: n - 1]) == everything[:-1]  # a shorter view
    with torch.inference_mode():
        frozen = ring.clone()
    assert laid_out(lambda: None, 0, frozen) == everything and "strips_of" not in work  # no version to read
    assert laid_out(lambda: ring.__setitem__(1, pf[5]), 1) == everything

    monkeypatch.undo()  # this machine's check: strips where its products of them are select's, else copies
    work = {}  # a propagation's writes: each frame's keys are torch's selection's
    for t in range(4):
        v, keys = select_cpu.topk(q, f0, ring, 10, tiles, P._step(2**25, h * w), work)
        ref_v, ref_labs, table = _torchs_selection((q, f0, l0, ring, pl[:n]))
        assert torch.equal(v, ref_v) and torch.equal(table[keys], ref_labs)
        ring[t % n] = pf[n + t]
        work["slot"] = t % n


def test_compiled_selection_needs_heap_rows_on_cpu():
    """Rows too short for torch.topk's heap path, an empty context, k beyond 17 (libstdc++'s std::sort then
    orders ties otherwise) and other dtypes stay with torch."""
    q, _, _, _, _ = random_context(0, 0, 30, 40, C=3)
    big = torch.zeros(3, 40, 40)
    assert not P._compiled_plan(big, 20, 18, 12.0) and P._compiled_plan(big, 20, 17, 12.0)
    assert P._compiled_plan(q, 20, 10, 12.0) and P._compiled_plan(torch.zeros(64, 30, 40), 20, 10, 12.0)
    assert not P._compiled_plan(q.double(), 20, 10, 12.0)
    assert not P._compiled_plan(q[:, :20, :30], 20, 10, 12.0)  # 600 cells < 64k: frame 0's row is not a heap
    assert not P._compiled_plan(q, 1, 10, 12.0)  # one window of at most 19 x 19 cells: 361 < 64k
    assert not P._compiled_plan(q, 0, 10, 12.0)


DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-dev"


@pytest.mark.skipif(not (DEV / "ImageSets").is_dir(), reason="davis2016-dev not available")
@pytest.mark.parametrize("features", ["lab", "shipped"])
def test_compiled_selection_propagates_real_video_as_torch(monkeypatch, features):
    """Raw Lab colour and the shipped model's 64 channels through 12 frames of a real sequence at 427 px,
    where flat regions tie: the soft labels carried frame by frame are bit for bit those of torch's."""
    from ever.models.pretrained import DEFAULT, resolve_model

    seq = DavisDataset(DEV, "train").sequence("bear")
    grid = P.CellGrid(seq.size, 427)
    _, labels = P.mask_labels(P.first_mask(seq), seq.object_ids, grid, "bilinear")
    frames = [seq.frame(i) for i in range(12)]
    fn = P.lab_features if features == "lab" else P.model_features(resolve_model(DEFAULT)[0].eval(), "layer3")
    ours = list(P.propagate(frames, labels, grid, fn))
    monkeypatch.setattr(P, "_compiled_plan", lambda *a: None)
    ref = list(P.propagate(frames, labels, grid, fn))
    assert all(torch.equal(a, b) for a, b in zip(ours, ref, strict=True))


@pytest.mark.parametrize("K", [1, 2, 3, 22])
def test_label_map_is_argmax_over_channels(K):
    """label_map = argmax(0), the first of tied maxima: few-valued maps (most pixels tie), signed zeros."""
    gen = torch.Generator().manual_seed(K)
    soft = torch.randint(0, 3, (K, 37, 53), generator=gen).float() / 2
    soft[:, :5] = torch.tensor(-0.0)
    soft[-1, :2, :3] = 0.0
    assert torch.equal(P.label_map(soft), soft.argmax(0))
    soft = torch.rand(K, 37, 53, generator=gen)
    assert torch.equal(P.label_map(soft), soft.argmax(0))
