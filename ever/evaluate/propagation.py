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

On CPU the selections are compiled where the rows allow it (``_compiled_plan``: with the default settings, every
frame): :mod:`ever.evaluate.select_cpu` (numba) takes torch's matrix products with select's very bits (for raw
colour it computes frame 0's in its scan; the windows' keys are read in place from strips), then keeps the keys
``topk`` would, bit for bit, without its copies of every row. Other devices (CUDA) use torch throughout
(:func:`select`).

Memory is bounded whatever the length of the video: frames are read and encoded ``chunk`` frames at a
time, and only the features and soft labels of frame 0 and of ``n_context`` preceding frames are kept
(a ring buffer). Temporaries are bounded too: affinities to frame 0 are computed for chunks of query
cells (at most ``max_elements`` floats), those to the preceding frames for tiles of 8x8 query cells
against the window the radius allows; on CPU their outputs are kept from frame to frame of one video, and the
preceding frames are kept laid out in strips that the windows' products read (about 4 times their features, at
most 1 GiB; beyond, each tile copies its window), where each frame only the frame written to the ring is laid
out again.

    for t, pred in enumerate(propagate_masks(seq, lab_features)):   # pred (H, W) int64 object ids
        ...
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ever.data.davis import VOID

FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (t, 3, H, W) in [0, 1] -> (t, C, H/8, W/8)
STRIDE = 8
TILE = 8  # queries are taken in tiles of TILE x TILE cells against the window the radius allows (_tiles)
CONTEXTS = ("reference", "first_once")  # see the module docstring
LABEL_RESIZES = ("bilinear", "area")


# ----------------------------------------------------------------------------- feature functions


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB (t, 3, H, W) in [0, 1] -> CIE Lab (D65): L in [0, 100], a and b in about [-128, 127].

    Each step is one elementwise op written in place where its input is not needed again: a fresh tensor of
    a frame's size costs as much as the op that fills it (its pages are mapped anew), and the bits are the
    same as out of place. For features, not for autograd (``out=`` and in-place ops do not differentiate)."""
    lin = x.add(0.055).div_(1.055).pow_(2.4)
    torch.where(x > 0.04045, lin, x / 12.92, out=lin)
    m = x.new_tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
    white = x.new_tensor([0.95047, 1.0, 1.08883])
    xyz = torch.einsum("ij,tjhw->tihw", m, lin).div_(white[None, :, None, None])
    cube = xyz > 0.008856
    f = xyz.clamp_min(1e-12).pow_(1 / 3)
    torch.where(cube, f, xyz.mul_(7.787).add_(16 / 116), out=f)
    L = f[:, 1].mul(116).sub_(16)
    a = (f[:, 0] - f[:, 1]).mul_(500)
    b = (f[:, 1] - f[:, 2]).mul_(200)
    return torch.stack([L, a, b], 1)


def lab_cells(frames: torch.Tensor, scale: tuple[float, float, float] | None = None) -> torch.Tensor:
    """(t, 3, H, W) sRGB in [0, 1] -> each 8x8 cell's mean Lab (divided by ``scale`` before the mean), float32
    (t, 3, ceil(H/8), ceil(W/8)).

    A frame at a time: a clip's Lab at once is several arrays of tens of MB, each mapped anew and larger than
    the cache (about 2.5x the time at 480p). The bits are the clip-at-once formula's where torch's elementwise
    loops fill whole vectors, as for frames padded to whole cells on 1 and 2 threads (tested); at other sizes
    or thread counts the last bit of a few pixels may differ, as the clip-at-once formula's own did with the
    clip's length."""
    t, _, H, W = frames.shape
    out = frames.new_empty(t, 3, math.ceil(H / STRIDE), math.ceil(W / STRIDE), dtype=torch.float32)
    s = None if scale is None else frames.new_tensor(scale, dtype=torch.float32)[None, :, None, None]
    for i in range(t):
        lab = rgb_to_lab(frames[i : i + 1].float())
        out[i : i + 1] = F.avg_pool2d(lab if s is None else lab.div_(s), STRIDE, ceil_mode=True)
    return out


def lab_features(frames: torch.Tensor) -> torch.Tensor:
    """Raw-colour baseline: (t, 3, H, W) -> Lab averaged over 8x8 cells, (t, 3, ceil(H/8), ceil(W/8)).

    Channels are scaled to similar ranges (L / 100, a / 128, b / 128); after the L2 normalisation of
    the protocol only the direction remains. (Tried on davis2016-dev: centring L on mid-grey is worse.)
    """
    return lab_cells(frames, (100.0, 128.0, 128.0))


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
        """List of (H, W, 3) uint8 -> (t, 3, Hp, Wp) float in [0, 1].

        At native size the bytes are padded (edge pixels repeated, as ``_pad`` repeats the floats'), a quarter
        of the data: the values of ``_pad``, and on CPU its channels-last layout, at 480p in about a tenth of
        the time (on CUDA, where torch's padding returns NCHW, native frames stay channels last)."""
        clip = np.stack(rgb)  # (t, H, W, 3)
        if self.resized == self.size:
            ph, pw = self.padded[0] - self.size[0], self.padded[1] - self.size[1]
            clip = np.pad(clip, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else clip
        x = torch.from_numpy(clip).to(device).permute(0, 3, 1, 2).float().div_(255)
        if self.resized != self.size:
            x = F.interpolate(x, size=self.resized, mode="bilinear", align_corners=False, antialias=True)
            x = self._pad(x.clamp(0, 1))
        return x

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


def encode(
    frames: Iterable[np.ndarray],
    grid: CellGrid,
    feature_fn: FeatureFn,
    device: str | torch.device = "cpu",
    chunk: int = 8,
) -> Iterator[torch.Tensor]:
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
        raise ValueError(
            f"feature function returned {tuple(feats.shape)} for frames {tuple(x.shape)}; expected "
            f"({len(rgb)}, C, {grid.cells[0]}, {grid.cells[1]}) (stride {STRIDE})"
        )
    feats = F.normalize(feats.float().to(device), dim=1)
    yield from feats.unbind(0)


def topk_first(
    q: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, k: int, max_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k affinities of queries q (N, C) to all keys (C, M) -> values (N, k), their labels (N, k, K)."""
    k = min(k, keys.shape[1])
    step = _step(max_elements, keys.shape[1])
    vals, labs = [], []
    for i in range(0, q.shape[0], step):
        v, idx = (q[i : i + step] @ keys).topk(k, dim=1)
        vals.append(v)
        labs.append(labels[idx])
    return torch.cat(vals), torch.cat(labs)


class Tile(NamedTuple):
    """A tile of T query cells, its key window of R x S cells (the tile grown by the radius, clipped to the
    grid) and the window keys each query scans (:func:`_topk_local`)."""

    qy: slice  # query rows
    qx: slice  # query columns
    ky: slice  # key window rows
    kx: slice  # key window columns
    far: torch.Tensor  # (T, R*S) bool: the key is at distance >= radius of the query
    near: torch.Tensor  # (T, P) int64: window positions r * S + s scanned, ascending: the first k, then in-radius
    skip: torch.Tensor  # (T, P) float: -inf where the entry is far or padding (scanned as -inf), else 0
    runs: torch.Tensor  # (T, R, 2) int64: each window row's in-radius positions [start, stop) (a disc's chord)


@functools.lru_cache(maxsize=8)
def _tiles(h: int, w: int, radius: float, tile: int, k: int, device: str) -> list[Tile]:
    """The query tiles of a (h, w) grid and, for each, its key window and which window keys each query scans."""
    reach = max(0, math.ceil(radius) - 1)  # |dy|, |dx| <= reach for every key at distance < radius
    plan = []
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(h, y0 + tile), min(w, x0 + tile)
            ky0, ky1, kx0, kx1 = max(0, y0 - reach), min(h, y1 + reach), max(0, x0 - reach), min(w, x1 + reach)
            qy, qx = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
            ky, kx = torch.meshgrid(torch.arange(ky0, ky1), torch.arange(kx0, kx1), indexing="ij")
            d2 = (qy.reshape(-1, 1) - ky.reshape(1, -1)) ** 2 + (qx.reshape(-1, 1) - kx.reshape(1, -1)) ** 2
            far = d2 >= radius**2  # (T, R*S)
            pos = torch.arange(far.shape[1])
            scanned = ~far | (pos < k)  # the window's first k keys stay, near or far (see _topk_local)
            near = torch.where(scanned, pos, far.shape[1]).sort(1).values  # ascending, R*S = none
            near = near[:, : int(scanned.sum(1).max())]
            skip = (near == far.shape[1]) | far.gather(1, near.clamp_max(far.shape[1] - 1))
            skip = torch.zeros(skip.shape).masked_fill_(skip, float("-inf"))  # added: x + 0 = x, x - inf = -inf
            near = near.clamp_max(far.shape[1] - 1)
            inside = ~far.view(len(far), ky1 - ky0, kx1 - kx0)  # (T, R, S); a row's in-radius keys are contiguous
            start = (torch.arange(ky1 - ky0) * (kx1 - kx0))[None] + inside.int().argmax(2)  # argmax: the first
            runs = torch.stack([start, start + inside.sum(2)], 2)  # none in the row: an empty run
            plan.append(
                Tile(
                    slice(y0, y1),
                    slice(x0, x1),
                    slice(ky0, ky1),
                    slice(kx0, kx1),
                    *(t.to(device) for t in (far, near, skip, runs)),
                )
            )
    return plan


def _topk_local(
    query: torch.Tensor, feats: torch.Tensor, labels: torch.Tensor, k: int, radius: float, tile: int = TILE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k affinities of each query cell to the cells of ``feats`` within ``radius`` (distance < radius).

    query (C, h, w); feats (n, C, h, w); labels (n, K, h, w) -> values (h*w, k), labels (h*w, k, K).
    Queries are taken in tiles of tile x tile cells (T queries); their affinities to the tile's key
    window (R x S cells of each of the n frames) are one matrix product (T, C) x (C, n*R*S), the window's
    keys copied from the features laid out (n, h, w, C), so the copy moves runs of S*C floats (laid out
    (C, n, h, w) it moved runs of S floats, most of the time for 64 channels; the products are the same).

    Ties are resolved as in a scan of the whole window, frame by frame in window order with the keys
    beyond the radius at -inf (the code before issue 32), at a fraction of its cost: on CPU, ``topk`` of
    k out of at least 64k entries is a heap selection that starts with the row's first k entries and
    lets a later entry in only when it beats the heap's worst, so later -inf entries change nothing.
    Each query's row is thus cut to the window's first k keys (far ones at -inf) and its in-radius keys
    after them (:class:`Tile`'s ``near``): (T, n*P), P about half of R*S, padded with -inf to at least
    64k entries so that ``topk`` takes the same heap path; rows shorter than 64k in full stay full.
    The skipped entries are set to -inf by adding ``skip`` (0 or -inf): a vectorised add costs less than a
    ``masked_fill_`` with a broadcast mask, and leaves every finite affinity as it is (-0.0 becomes +0.0,
    which compares and weighs the same).
    The soft labels are bit for bit those of the full scan on CPU (tested, ties included); elsewhere
    (CUDA) values and untied keys are the same, tied keys may be others, as they may be in a full scan.
    """
    C, h, w = query.shape
    n, K = feats.shape[0], labels.shape[1]
    keys = feats.permute(0, 2, 3, 1).contiguous()  # (n, h, w, C): a window's copy reads runs of S * C floats
    key_labels = labels.permute(0, 2, 3, 1).contiguous()  # (n, h, w, K)
    vals = query.new_full((h, w, k), float("-inf"))
    labs = query.new_zeros(h, w, k, K)
    for t in _tiles(h, w, float(radius), tile, k, str(query.device)):
        T, RS = t.far.shape
        q = query[:, t.qy, t.qx].reshape(C, T).T  # (T, C)
        aff = (q @ keys[:, t.ky, t.kx].reshape(n * RS, C).T).view(T, n, RS)
        if n * RS >= 64 * k and RS >= k:  # the heap algorithm: scan the near keys only
            P = t.near.shape[1]
            cand = aff.gather(2, t.near[:, None].expand(T, n, P)).add_(t.skip[:, None])  # (T, n, P)
            cand = cand.view(T, n * P)
            if n * P < 64 * k:
                cand = F.pad(cand, (0, 64 * k - n * P), value=float("-inf"))
            kk = k
            v, idx = cand.topk(k, dim=1)  # (T, k)
            idx = idx.clamp_max(n * P - 1)  # padding is picked only after every finite key (weight 0)
            key = idx // P * RS + t.near.gather(1, idx % P)  # (T, k) index into the n windows
        else:
            kk = min(k, n * RS)
            v, key = aff.masked_fill_(t.far[:, None], float("-inf")).view(T, n * RS).topk(kk, dim=1)
        ty, tx = t.qy.stop - t.qy.start, t.qx.stop - t.qx.start
        vals[t.qy, t.qx, :kk] = v.view(ty, tx, kk)
        labs[t.qy, t.qx, :kk] = key_labels[:, t.ky, t.kx].reshape(n * RS, K)[key].view(ty, tx, kk, K)
    return vals.reshape(h * w, k), labs.reshape(h * w, k, K)


def predict(
    query: torch.Tensor,
    first_feat: torch.Tensor,
    first_labels: torch.Tensor,
    prev_feats: torch.Tensor,
    prev_labels: torch.Tensor,
    topk: int = 10,
    radius: float = 12.0,
    temperature: float = 0.05,
    max_elements: int = 2**25,
    work: dict | None = None,
) -> torch.Tensor:
    """Soft labels (K, h, w) of one frame.

    query, first_feat: (C, h, w) normalised features; first_labels: (K, h, w); prev_feats: (n, C, h, w)
    and prev_labels: (n, K, h, w) of the preceding frames (n may be 0). The top-k over the whole context
    is the top-k of the union of the top-k of frame 0 (all cells) and of the preceding frames (local).
    On CPU (where :func:`_compiled_plan` gives a plan) the keys are selected by :mod:`ever.evaluate.select_cpu`
    (the same keys, bit for bit), elsewhere by torch (:func:`select`). ``work``: a dict in which the CPU
    selection keeps its products' outputs and the preceding frames' strips for the next frame (:func:`propagate`
    passes one per video, and sets its ``"slot"``: see :func:`ever.evaluate.select_cpu._strips`; no other caller
    may).
    """
    C, h, w = query.shape
    K = first_labels.shape[0]
    tiles = _compiled_plan(query, prev_feats.shape[0], topk, radius)
    if tiles:
        from ever.evaluate import select_cpu  # numba: imported and compiled at the first call

        v, keys = select_cpu.topk(query, first_feat, prev_feats, topk, tiles, _step(max_elements, h * w), work)
        table = torch.cat([first_labels.reshape(K, -1).T, prev_labels.permute(0, 2, 3, 1).reshape(-1, K)])
        labs = table[keys]  # (N, k, K)
    else:
        v, labs = select(query, first_feat, first_labels, prev_feats, prev_labels, topk, radius, max_elements)
    weights = torch.softmax(v / temperature, dim=1)  # (N, k); -inf keys get weight 0
    return torch.einsum("nk,nkc->nc", weights, labs).T.reshape(K, h, w)


def _compiled_plan(query: torch.Tensor, n: int, k: int, radius: float) -> list[Tile] | None:
    """The tile plan (:func:`_tiles`) that the compiled CPU kernels scan when :func:`predict` takes them, else
    None. They are taken for float32 features on CPU, every row long enough for ``torch.topk``'s heap path
    (frame 0 has at least 64k cells, each tile window k and n windows 64k), the path the kernels write out, and
    k <= 17 (``topk`` sorts its merged k - 1 first entries by insertion, as libstdc++'s ``std::sort`` does up to
    16 entries; beyond, an introsort orders ties otherwise). Early frames of the ``first_once`` context (n
    small) and small grids take torch's path."""
    C, h, w = query.shape
    if query.device.type != "cpu" or query.dtype != torch.float32 or n == 0 or not 0 < k <= 17 or h * w < 64 * k:
        return None
    plan = _tiles(h, w, float(radius), TILE, k, "cpu")
    smallest = min(t.far.shape[1] for t in plan)
    return plan if smallest >= k and n * smallest >= 64 * k else None


def _step(max_elements: int, cells: int) -> int:
    """Frame 0's queries a matrix product: at most ``max_elements`` affinities to its ``cells`` cells. Both
    selections chunk so, making the very same products (a product's bits may depend on its shape)."""
    return max(1, max_elements // cells)


def select(
    query: torch.Tensor,
    first_feat: torch.Tensor,
    first_labels: torch.Tensor,
    prev_feats: torch.Tensor,
    prev_labels: torch.Tensor,
    topk: int = 10,
    radius: float = 12.0,
    max_elements: int = 2**25,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's top-k keys by torch: values (N, k) descending and their labels (N, k, K); arguments as
    :func:`predict`'s."""
    C, h, w = query.shape
    K = first_labels.shape[0]
    q = query.reshape(C, h * w).T  # (N, C)
    vals, labs = topk_first(q, first_feat.reshape(C, -1), first_labels.reshape(K, -1).T, topk, max_elements)
    if prev_feats.shape[0] > 0:
        v, lab = _topk_local(query, prev_feats, prev_labels, topk, radius, TILE)
        vals, labs = torch.cat([vals, v], 1), torch.cat([labs, lab], 1)  # (N, 2k), (N, 2k, K)
    v, idx = vals.topk(min(topk, vals.shape[1]), dim=1)
    return v, labs.gather(1, idx[..., None].expand(-1, -1, K))  # (N, k), (N, k, K)


def propagate(
    frames: Iterable[np.ndarray],
    first_labels: torch.Tensor,
    grid: CellGrid,
    feature_fn: FeatureFn,
    n_context: int = 20,
    topk: int = 10,
    radius: float = 12.0,
    temperature: float = 0.05,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    context: str = "reference",
) -> Iterator[torch.Tensor]:
    """Yield soft labels (K, h, w) for each frame after the first.

    frames: iterable of (H, W, 3) uint8, the first one being the annotated frame; first_labels: (K, h, w)
    soft labels of that frame at feature resolution (see :meth:`CellGrid.down`); context: see the module doc.
    The K channels share one top-k a frame (masks and keypoint heat maps do:
    :func:`ever.evaluate.keypoints.propagate_masks_keypoints`).
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    feats = encode(frames, grid, feature_fn, device, chunk)
    first_feat = next(feats)
    first_labels = first_labels.to(device).float()
    # Ring buffer of n_context preceding frames: frame t goes to slot (t - 1) % n_context. The order of
    # keys does not matter. "reference" starts it full of copies of frame 0 (the reference's padding).
    reference = context == "reference"
    C, h, w = first_feat.shape
    # (n, C, h, w), laid out (n, h, w, C): a window's keys are runs of S * C floats in it (select's copies)
    ring_f = first_feat.new_zeros(n_context, h, w, C).permute(0, 3, 1, 2)
    ring_l = first_feat.new_zeros(n_context, *first_labels.shape)  # (n, K, h, w)
    if reference:
        ring_f[:], ring_l[:] = first_feat, first_labels
    count, work = 0, {}  # work: the CPU selection's products' outputs and strips, kept for the next frame
    for feat in feats:
        n = n_context if reference else min(count, n_context)
        soft = predict(feat, first_feat, first_labels, ring_f[:n], ring_l[:n], topk, radius, temperature, work=work)
        yield soft
        if n_context > 0:
            ring_f[count % n_context] = feat
            ring_l[count % n_context] = soft
            work["slot"] = count % n_context  # the one frame of the ring written: its strips are laid out anew
        count += 1


def label_map(soft: torch.Tensor) -> torch.Tensor:
    """(K, H, W) NaN-free soft labels -> (H, W) int64, the channel of each pixel's largest value, the first of
    tied ones: ``soft.argmax(0)``, which on CPU reduces over the strided channel axis about ten times slower
    than these K - 1 comparisons of whole maps."""
    idx = torch.zeros(soft.shape[1:], dtype=torch.int64, device=soft.device)
    best = soft[0].clone()
    for c in range(1, soft.shape[0]):
        idx.masked_fill_(soft[c] > best, c)
        torch.maximum(best, soft[c], out=best)
    return idx


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


def propagate_masks(
    seq,
    feature_fn: FeatureFn | str,
    n_context: int = 20,
    topk: int = 10,
    radius: float = 12.0,
    temperature: float = 0.05,
    long_side: int = 0,
    device: str | torch.device = "cpu",
    chunk: int = 8,
    context: str = "reference",
    label_resize: str = "bilinear",
) -> Iterator[np.ndarray]:
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
    for soft in propagate(
        frames, first_labels, grid, feature_fn, n_context, topk, radius, temperature, device, chunk, context
    ):
        yield ids[label_map(grid.up(soft.cpu()))].numpy()
