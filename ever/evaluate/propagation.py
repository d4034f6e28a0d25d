"""Label propagation by feature affinities: the evaluation protocol of the contrastive random walk (CRW).

Given the ground-truth labels of the first frame, the labels of every later frame ``t`` are predicted
from a *context*: frame 0 (its ground-truth labels) and ``n_context`` preceding frames (their
predicted *soft* labels). With L2-normalised features (over C) of the target frame as queries and those
of the context as keys:

1. affinity = dot product of a query cell with a key cell; keys of the preceding frames count only
   within ``radius`` feature cells of the query (Euclidean distance < radius); all cells of frame 0 count;
2. each query keeps its ``topk`` strongest keys over the whole context, weights = softmax(aff / temperature);
3. the query's soft label (K,) = weighted sum of the keys' soft labels.

The context (``context``):

- ``"reference"`` (the default; the DAVIS protocol of CRW, ajabri/videowalk ``code/test.py``): the
  reference pads the video with ``n_context`` copies of frame 0 in front, so the preceding frames of
  frame ``t`` are always ``n_context`` frames: frames ``max(1, t - n_context) .. t - 1`` and, for
  ``t <= n_context``, ``n_context - t + 1`` copies of frame 0 with its ground-truth labels. An early
  frame thus sees frame 0 once without the radius limit and several times within it, and each copy
  can take a place in the top-k. Here the ring buffer of preceding frames starts filled with frame 0,
  which is the same context without materialising the padded video;
- ``"first_once"`` (EVER before issue 12): frame 0 once (unrestricted) and the preceding frames
  ``max(1, t - n_context) .. t - 1`` only, so early frames have a smaller context.

First-frame labels (``label_resize``): the one-hot label maps (K, H, W) go to feature resolution by
``"bilinear"`` (the default, as the reference's ``cv2.resize(..., INTER_LINEAR)`` in ``data/vos.py``:
each cell takes the bilinear interpolation of the labels at its centre, no antialiasing) or ``"area"``
(the mean of the cell's 8x8 pixels, EVER before issue 12). The void label 255 of DAVIS-2017 masks is
never an object: its first-frame pixels count as background (as the official evaluator reads void).

Soft labels live at feature resolution (stride 8); predictions are upsampled (bilinear) to the
frame's native resolution and arg-maxed. Frames are optionally resized so that their long side is
``long_side`` and are always padded (edge replication, bottom/right) to a multiple of 8, so a feature
function must map (t, 3, Hp, Wp) to (t, C, Hp/8, Wp/8) exactly; odd sizes are handled by the padding.

Memory is bounded whatever the length of the video: frames are read and encoded ``chunk`` frames at a
time, and only the features and soft labels of frame 0 and of ``n_context`` preceding frames are kept
(a ring buffer: features (n_context, Hk, Wk, C) channels-last, padded by the radius; labels
(1 + n_context, h*w, K)). Temporaries are bounded too (:func:`context_topk`): affinities to frame 0 are
computed for chunks of query cells, those to the preceding frames for chunks of 8x8-cell query tiles
against the windows the radius allows, each chunk at most ``max_elements`` floats (default 2**25) for
the copied key windows and as many for its affinities.

Speed (issue 32): the affinities of a chunk of tiles are one batched GEMM over strided views of the key
buffer; the top-k is found from block maxima (:func:`_block_topk`) rather than by a top-k over every
candidate; the reference context's copies of frame 0 are computed once. Affinity values are those of
the loop this replaced (the same float32 dot products); among exactly equal affinities (frequent with
3-channel Lab features, whose affinities crowd at 1.0 in float32) the keys kept may differ, which moves
scores by about 1e-4 on a sequence.

    for t, pred in enumerate(propagate_masks(seq, lab_features)):   # pred (H, W) int64 object ids
        ...
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ever.data.davis import VOID

FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (t, 3, H, W) in [0, 1] -> (t, C, H/8, W/8)
STRIDE = 8
CONTEXTS = ("reference", "first_once")  # see the module docstring
LABEL_RESIZES = ("bilinear", "area")


# ----------------------------------------------------------------------------- feature functions

def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB (t, 3, H, W) in [0, 1] -> CIE Lab (D65): L in [0, 100], a and b in about [-128, 127]."""
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = x.new_tensor([[0.412453, 0.357580, 0.180423],
                      [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]])
    white = x.new_tensor([0.95047, 1.0, 1.08883])
    xyz = torch.einsum("ij,tjhw->tihw", m, lin) / white[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], 1)


def lab_features(frames: torch.Tensor) -> torch.Tensor:
    """Raw-colour baseline: (t, 3, H, W) -> Lab averaged over 8x8 cells, (t, 3, ceil(H/8), ceil(W/8)).

    Channels are scaled to similar ranges (L / 100, a / 128, b / 128); after the L2 normalisation of
    the protocol only the direction remains. (Tried on davis2016-dev: centring L on mid-grey is worse.)
    """
    lab = rgb_to_lab(frames.float())
    lab = lab / lab.new_tensor([100.0, 128.0, 128.0])[None, :, None, None]
    return F.avg_pool2d(lab, STRIDE, ceil_mode=True)


def model_features(model: torch.nn.Module, stage: str) -> FeatureFn:
    """Feature function of an encoder with ``.features(x, stage) -> (B, C, H/8, W/8)`` (ever.models)."""
    device = next(model.parameters()).device

    def fn(frames: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.features(frames.to(device), stage).float()

    return fn


# ----------------------------------------------------------------------------- geometry

class CellGrid:
    """Native frame (H, W) -> resized (Hr, Wr) -> padded (Hp, Wp), multiples of 8 -> cells (h, w)."""

    def __init__(self, size: tuple[int, int], long_side: int = 0):
        self.size = (int(size[0]), int(size[1]))
        H, W = self.size
        self.scale = long_side / max(H, W) if long_side > 0 else 1.0
        self.resized = (max(1, round(H * self.scale)), max(1, round(W * self.scale)))
        self.cells = tuple(math.ceil(s / STRIDE) for s in self.resized)
        self.padded = tuple(c * STRIDE for c in self.cells)

    def frames(self, rgb: list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
        """List of (H, W, 3) uint8 -> (t, 3, Hp, Wp) float in [0, 1]."""
        x = torch.from_numpy(np.stack(rgb)).to(device).permute(0, 3, 1, 2).float() / 255
        if self.resized != self.size:
            x = F.interpolate(x, size=self.resized, mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp(0, 1)
        return self._pad(x)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padded[0] - x.shape[-2], self.padded[1] - x.shape[-1]
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def down(self, labels: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
        """(K, H, W) float label maps at native resolution -> (K, h, w).

        ``"area"``: the mean over each cell's 8x8 pixels (after an antialiased resize to ``resized``);
        ``"bilinear"``: the bilinear interpolation at each cell's centre (pixel 8j + 3.5 of the padded
        frame, i.e. the mean of its 4 central pixels), no antialiasing at any step, as
        ``cv2.resize(onehot, (w, h), INTER_LINEAR)`` does in the reference when H, W are multiples of 8.
        """
        if mode not in LABEL_RESIZES:
            raise ValueError(f"label resize must be one of {LABEL_RESIZES}, got {mode!r}")
        x = labels[None].float()
        area = mode == "area"
        if self.resized != self.size:
            x = F.interpolate(x, size=self.resized, mode="bilinear", align_corners=False, antialias=area)
        x = self._pad(x)
        if area:
            return F.avg_pool2d(x, STRIDE)[0]
        return F.interpolate(x, size=self.cells, mode="bilinear", align_corners=False)[0]

    def up(self, soft: torch.Tensor) -> torch.Tensor:
        """(K, h, w) soft labels -> (K, H, W) at native resolution (bilinear)."""
        x = F.interpolate(soft[None], size=self.padded, mode="bilinear", align_corners=False)
        x = x[..., : self.resized[0], : self.resized[1]]
        if self.resized != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x[0]


# ----------------------------------------------------------------------------- propagation

def encode(frames: Iterable[np.ndarray], grid: CellGrid, feature_fn: FeatureFn, device: str | torch.device = "cpu",
           chunk: int = 8) -> Iterator[torch.Tensor]:
    """Yield L2-normalised features (C, h, w) frame by frame, encoding ``chunk`` frames at a time."""
    buf: list[np.ndarray] = []
    for rgb in frames:
        buf.append(rgb)
        if len(buf) == chunk:
            yield from _encode_chunk(buf, grid, feature_fn, device)
            buf = []
    if buf:
        yield from _encode_chunk(buf, grid, feature_fn, device)


def _encode_chunk(rgb: list[np.ndarray], grid: CellGrid, feature_fn: FeatureFn, device) -> Iterator[torch.Tensor]:
    x = grid.frames(rgb, device)
    with torch.inference_mode():
        feats = feature_fn(x)
    if feats.dim() != 4 or feats.shape[0] != len(rgb) or tuple(feats.shape[-2:]) != grid.cells:
        raise ValueError(f"feature function returned {tuple(feats.shape)} for frames {tuple(x.shape)}; expected "
                         f"({len(rgb)}, C, {grid.cells[0]}, {grid.cells[1]}) (stride {STRIDE})")
    feats = F.normalize(feats.float().to(device), dim=1)
    yield from feats.unbind(0)


def topk_first(q: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, k: int,
                max_elements: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k affinities of queries q (N, C) to all keys (C, M) -> values (N, k), their labels (N, k, K)."""
    k = min(k, keys.shape[1])
    step = max(1, max_elements // keys.shape[1])
    vals, labs = [], []
    for i in range(0, q.shape[0], step):
        v, idx = (q[i:i + step] @ keys).topk(k, dim=1)
        vals.append(v)
        labs.append(labels[idx])
    return torch.cat(vals), torch.cat(labs)


def _block_topk(aff: torch.Tensor, k: int, blocks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k over the last two dims of aff (..., B, S), B blocks of S values -> values (..., k'), flat
    indices block * S + position (..., k'), k' = min(k, B' * S); values may be -inf.

    ``blocks`` (B',) long lists the blocks to search, repeats allowed: a block listed m times counts m
    times, as m copies of a frame would (None: every block once). The k largest values lie in the k blocks
    with the largest maxima (a value outside them has k block maxima at least as large above it), so one
    max over every value and a top-k over k * S values replace a top-k over B' * S values. Among equal
    values the choice may differ from a top-k over all of them; the values are the same."""
    S = aff.shape[-1]
    bmax = aff.amax(-1)  # (..., B)
    if blocks is not None:
        bmax = bmax[..., blocks]
    _, blk = bmax.topk(min(k, bmax.shape[-1]), dim=-1)  # (..., kb)
    if blocks is not None:
        blk = blocks[blk]
    rows = aff.gather(-2, blk[..., None].expand(*blk.shape, S))  # (..., kb, S)
    v, i = rows.flatten(-2).topk(min(k, rows.shape[-2] * S), dim=-1)
    return v, blk.gather(-1, torch.div(i, S, rounding_mode="floor")) * S + i % S


class LocalGeometry:
    """The tiles of a (h, w) cell grid for radius-limited affinities (see :func:`context_topk`).

    Queries are taken in tiles of T x T cells (the grid zero-padded to ty*T x tx*T cells); the keys of a
    tile are its window of W x W cells, W = T + 2 * reach, reach = ceil(radius) - 1 (a key at distance
    < radius has |dy|, |dx| <= reach). Keys live channels-last in a zero-padded buffer of ``padded`` =
    (ty*T + 2 reach, tx*T + 2 reach) cells, frame cell (y, x) at (reach + y, reach + x), so that the
    windows of all tiles are one strided view of it. Tensors: ``valid`` (ty*tx, T*T, W*W) bool, the key
    is inside the frame and within the radius of the query; ``key_cell`` (ty*tx, W*W) long, the key's
    frame cell y * w + x (clamped into the frame where it is outside).
    """

    def __init__(self, h: int, w: int, radius: float, tile: int = 8, device: str | torch.device = "cpu"):
        self.h, self.w, self.tile = h, w, tile
        self.reach = R = max(0, math.ceil(radius) - 1)
        self.ty, self.tx = math.ceil(h / tile), math.ceil(w / tile)
        self.W = W = tile + 2 * R
        self.padded = (self.ty * tile + 2 * R, self.tx * tile + 2 * R)
        a, u = torch.arange(tile), torch.arange(W) - R  # query offset in its tile, key offset
        qa, qb = torch.meshgrid(a, a, indexing="ij")
        ku, kv = torch.meshgrid(u, u, indexing="ij")
        d2 = (ku.reshape(1, -1) - qa.reshape(-1, 1)) ** 2 + (kv.reshape(1, -1) - qb.reshape(-1, 1)) ** 2
        disc = d2 < radius ** 2  # (T*T, W*W), the same in every tile
        ky = (torch.arange(self.ty) * tile)[:, None, None, None] + u[None, None, :, None]  # (ty, 1, W, 1)
        kx = (torch.arange(self.tx) * tile)[None, :, None, None] + u[None, None, None, :]  # (1, tx, 1, W)
        inside = ((ky >= 0) & (ky < h) & (kx >= 0) & (kx < w)).reshape(self.ty * self.tx, 1, W * W)
        self.valid = (disc[None] & inside).to(device)
        self.key_cell = (ky.clamp(0, h - 1) * w + kx.clamp(0, w - 1)).reshape(self.ty * self.tx, W * W).to(device)

    def query_tiles(self, feat: torch.Tensor) -> torch.Tensor:
        """(C, h, w) -> (ty, tx, T*T, C)."""
        C, T = feat.shape[0], self.tile
        q = feat.new_zeros(self.ty * T, self.tx * T, C)
        q[: self.h, : self.w] = feat.permute(1, 2, 0)
        return q.view(self.ty, T, self.tx, T, C).permute(0, 2, 1, 3, 4).reshape(self.ty, self.tx, T * T, C)

    def untile(self, x: torch.Tensor) -> torch.Tensor:
        """(ty*tx, T*T, k) -> (h*w, k)."""
        T, k = self.tile, x.shape[-1]
        x = x.view(self.ty, self.tx, T, T, k).permute(0, 2, 1, 3, 4).reshape(self.ty * T, self.tx * T, k)
        return x[: self.h, : self.w].reshape(self.h * self.w, k)

    def put(self, keys: torch.Tensor, slot: int, feat: torch.Tensor) -> None:
        """Write features (C, h, w) into slot ``slot`` of a key buffer (n, *padded, C)."""
        R = self.reach
        keys[slot, R:R + self.h, R:R + self.w] = feat.permute(1, 2, 0)

    def windows(self, keys: torch.Tensor) -> torch.Tensor:
        """Contiguous key buffer (n, *padded, C) -> the windows of all tiles, a view (ty, tx, n, W, W, C)."""
        n, Hp, Wp, C = keys.shape
        T, W = self.tile, self.W
        return keys.as_strided((self.ty, self.tx, n, W, W, C), (T * Wp * C, T * C, Hp * Wp * C, Wp * C, C, 1),
                               keys.storage_offset())


@functools.lru_cache(maxsize=4)
def local_geometry(h: int, w: int, radius: float, tile: int, device: str) -> LocalGeometry:
    return LocalGeometry(h, w, radius, tile, device)


def context_topk(query: torch.Tensor, first_feat: torch.Tensor, keys: torch.Tensor, geo: LocalGeometry, k: int,
                 slots: torch.Tensor | None = None, max_elements: int = 2**25) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k affinities of every query cell over the context: all cells of frame 0 and the cells within
    the radius of the query in each preceding frame. -> values (N, k'), key ids (N, k') long, N = h*w.

    query, first_feat: (C, h, w) normalised features; keys (nd, *geo.padded, C): the distinct preceding
    frames, channels-last and padded (:meth:`LocalGeometry.put`); ``slots`` (n,) long: the distinct frame
    in each of the n context places (a frame listed m times counts m times; None: each once). Key id
    ``i * h*w + y * w + x`` is cell (y, x) of frame 0 for i = 0, of distinct preceding frame i - 1 else,
    so labels (1 + nd, h*w, K) flattened to (-1, K) and indexed by the ids are the keys' labels. Values of
    keys beyond the radius are -inf (when the context has fewer than k keys within it).

    Each query's top-k is that of the union of the top-k of frame 0 and of the preceding frames; both are
    found by :func:`_block_topk` (blocks: rows of frame 0; rows of a preceding frame's window). Memory
    beyond the inputs: the affinities to frame 0 in chunks of at most ``max_elements`` floats; the local
    ones in chunks of tiles of at most ``max_elements`` floats for the copied key windows
    (tiles x nd*W*W x C) and for the affinities (tiles x T*T x nd*W*W); the results (N, 2k).
    """
    C, h, w = query.shape
    N, nd = h * w, keys.shape[0]
    q = query.reshape(C, N).T
    f0 = first_feat.reshape(C, N)
    step = max(1, max_elements // N)
    vals, ids = [], []
    for i in range(0, N, step):
        v, idx = _block_topk((q[i:i + step] @ f0).view(-1, h, w), k)
        vals.append(v)
        ids.append(idx)
    v_first, i_first = torch.cat(vals), torch.cat(ids)
    if nd == 0:
        return v_first, i_first
    T2, W = geo.tile ** 2, geo.W
    blocks = None if slots is None else (slots[:, None] * W + torch.arange(W, device=slots.device)).flatten()
    qt = geo.query_tiles(query)  # (ty, tx, T*T, C)
    win = geo.windows(keys)  # (ty, tx, nd, W, W, C)
    per_tile = nd * W * W * max(C, T2)
    span = max(1, max_elements // per_tile)  # tiles a chunk
    kk = min(k, (nd if slots is None else slots.shape[0]) * W * W)
    out_v = query.new_empty(geo.ty * geo.tx, T2, kk)
    out_i = torch.empty(geo.ty * geo.tx, T2, kk, dtype=torch.long, device=query.device)
    rows = max(1, span // geo.tx)
    cols = geo.tx if span >= geo.tx else span
    for y0 in range(0, geo.ty, rows):
        for x0 in range(0, geo.tx, cols):
            y1, x1 = min(geo.ty, y0 + rows), min(geo.tx, x0 + cols)
            t = (torch.arange(y0, y1)[:, None] * geo.tx + torch.arange(x0, x1)[None]).flatten().to(query.device)
            kw = win[y0:y1, x0:x1].reshape(len(t), nd * W * W, C)  # the one copy of the keys
            aff = torch.bmm(qt[y0:y1, x0:x1].reshape(len(t), T2, C), kw.transpose(1, 2))  # (L, T*T, nd*W*W)
            aff = aff.view(len(t), T2, nd, W * W).masked_fill_(~geo.valid[t][:, :, None], float("-inf"))
            v, idx = _block_topk(aff.view(len(t), T2, nd * W, W), kk, blocks)  # idx = (frame * W + u) * W + v
            frame = torch.div(idx, W * W, rounding_mode="floor")
            cell = geo.key_cell[t][:, None, :].expand(-1, T2, -1).gather(2, idx % (W * W))
            out_v[t], out_i[t] = v, (frame + 1) * N + cell
    return torch.cat([v_first, geo.untile(out_v)], 1), torch.cat([i_first, geo.untile(out_i)], 1)


def weigh(vals: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor, topk: int, temperature: float,
          size: tuple[int, int]) -> torch.Tensor:
    """Soft labels (K, h, w) from the context's top candidates vals, ids (N, m) (:func:`context_topk`) and
    the key labels (1 + nd, N, K): softmax(top-k values / temperature)-weighted sum of their labels."""
    v, j = vals.topk(min(topk, vals.shape[1]), dim=1)
    weights = torch.softmax(v / temperature, dim=1)  # (N, k); -inf keys get weight 0
    labs = labels.reshape(-1, labels.shape[-1])[ids.gather(1, j)]  # (N, k, K)
    return torch.einsum("nk,nkc->nc", weights, labs).T.reshape(-1, *size)


def predict(query: torch.Tensor, first_feat: torch.Tensor, first_labels: torch.Tensor, prev_feats: torch.Tensor,
            prev_labels: torch.Tensor, topk: int = 10, radius: float = 12.0, temperature: float = 0.05,
            max_elements: int = 2**25, tile: int = 8) -> torch.Tensor:
    """Soft labels (K, h, w) of one frame.

    query, first_feat: (C, h, w) normalised features; first_labels: (K, h, w); prev_feats: (n, C, h, w)
    and prev_labels: (n, K, h, w) of the preceding frames (n may be 0). The top-k over the whole context
    is the top-k of the union of the top-k of frame 0 (all cells) and of the preceding frames (local):
    :func:`context_topk`, then :func:`weigh`. (:func:`propagate` keeps its buffers between frames instead.)
    """
    C, h, w = query.shape
    K = first_labels.shape[0]
    geo = local_geometry(h, w, float(radius), tile, str(query.device))
    keys = query.new_zeros(prev_feats.shape[0], *geo.padded, C)
    for i, f in enumerate(prev_feats):
        geo.put(keys, i, f)
    labels = torch.cat([first_labels[None], prev_labels]).permute(0, 2, 3, 1).reshape(-1, h * w, K)
    vals, ids = context_topk(query, first_feat, keys, geo, topk, max_elements=max_elements)
    return weigh(vals, ids, labels, topk, temperature, (h, w))


def propagate(frames: Iterable[np.ndarray], first_labels: torch.Tensor, grid: CellGrid, feature_fn: FeatureFn,
              n_context: int = 20, topk: int = 10, radius: float = 12.0, temperature: float = 0.05,
              device: str | torch.device = "cpu", chunk: int = 8, context: str = "reference",
              max_elements: int = 2**25) -> Iterator[torch.Tensor]:
    """Yield soft labels (K, h, w) for each frame after the first.

    frames: iterable of (H, W, 3) uint8, the first one being the annotated frame; first_labels: (K, h, w)
    soft labels of that frame at feature resolution (see :meth:`CellGrid.down`); context: see the module doc.
    The labels' K channels are propagated together by one top-k a frame (masks and keypoint heat maps can
    share it: :func:`ever.evaluate.keypoints.propagate_masks_keypoints`).

    Memory: the buffers (n_context, Hk, Wk, C) of the preceding frames' features (channels-last, padded by
    the radius: Hk, Wk = (h, w) rounded up to 8 plus 2 * (ceil(radius) - 1)) and (1 + n_context, h*w, K)
    of the labels (frame 0 first), the chunk of encoded frames, and :func:`context_topk`'s temporaries
    (bounded by ``max_elements`` floats each).
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    feats = encode(frames, grid, feature_fn, device, chunk)
    first_feat = next(feats)
    first_labels = first_labels.to(device).float()
    C, (h, w), K = first_feat.shape[0], grid.cells, first_labels.shape[0]
    geo = local_geometry(h, w, float(radius), 8, str(first_feat.device))
    # Ring buffer of n_context preceding frames: frame t goes to slot (t - 1) % n_context. The order of
    # keys does not matter. "reference" starts it full of copies of frame 0 (the reference's padding):
    # while count < n_context, slots count .. n-1 are still those copies, so slot `count` stands for
    # all of them (listed n - count times) and their affinities are computed once.
    reference = context == "reference"
    keys = first_feat.new_zeros(n_context, *geo.padded, C)
    labels = first_feat.new_zeros(1 + n_context, h * w, K)  # frame 0, then the ring's slots
    labels[:] = first_labels.permute(1, 2, 0).reshape(h * w, K)
    if reference:
        for i in range(n_context):
            geo.put(keys, i, first_feat)
    count = 0
    for feat in feats:
        slots = None
        if reference and count < n_context:
            nd = count + 1
            slots = torch.arange(n_context, device=first_feat.device).clamp_max(count)
        else:
            nd = n_context if reference else min(count, n_context)
        vals, ids = context_topk(feat, first_feat, keys[:nd], geo, topk, slots, max_elements)
        soft = weigh(vals, ids, labels[:1 + nd], topk, temperature, (h, w))
        yield soft
        if n_context > 0:
            geo.put(keys, count % n_context, feat)
            labels[1 + count % n_context] = soft.permute(1, 2, 0).reshape(h * w, K)
        count += 1


def first_mask(seq) -> np.ndarray:
    """The (H, W) int64 first mask of ``seq`` with void pixels as background (void is never an object)."""
    first = seq.first_mask()
    return np.where(first == VOID, 0, first)


def mask_labels(first: np.ndarray, object_ids, grid: CellGrid, label_resize: str) -> tuple[torch.Tensor, torch.Tensor]:
    """First mask (H, W) -> ids (K,) (background 0, then ``object_ids``) and one-hot labels (K, h, w) at
    feature resolution (:meth:`CellGrid.down`); a predicted (K, H, W) soft map's object is ``ids[argmax]``."""
    ids = torch.tensor([0] + list(object_ids))
    onehot = (torch.from_numpy(first)[None] == ids[:, None, None]).float()  # (K, H, W)
    return ids, grid.down(onehot, label_resize)


def propagate_masks(seq, feature_fn: FeatureFn | str, n_context: int = 20, topk: int = 10, radius: float = 12.0,
                    temperature: float = 0.05, long_side: int = 0, device: str | torch.device = "cpu",
                    chunk: int = 8, context: str = "reference", label_resize: str = "bilinear") -> Iterator[np.ndarray]:
    """Yield the predicted (H, W) int64 label map of every frame of ``seq`` (frame 0 = its ground truth,
    void pixels as background).

    ``seq`` is an :class:`ever.data.davis.Sequence` (anything with ``len``, ``frame(i)``, ``first_mask()``,
    ``object_ids``, ``size``). ``feature_fn='copy'`` is the copy baseline: the first mask for every frame.
    ``context`` and ``label_resize``: see the module docstring.
    """
    first = first_mask(seq)
    yield first
    if isinstance(feature_fn, str):
        if feature_fn != "copy":
            raise ValueError(f"unknown feature function {feature_fn!r} (a callable or 'copy')")
        for _ in range(1, len(seq)):
            yield first
        return
    grid = CellGrid(seq.size, long_side)
    ids, first_labels = mask_labels(first, seq.object_ids, grid, label_resize)
    frames = (seq.frame(i) for i in range(len(seq)))
    for soft in propagate(frames, first_labels, grid, feature_fn, n_context, topk, radius, temperature, device, chunk,
                          context):
        yield ids[grid.up(soft.cpu()).argmax(0)].numpy()
