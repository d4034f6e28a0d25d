"""Object nodes: unsupervised segments of each frame, mask-pooled from the dense 1/8 feature map.

The proposal's "green" idea: a frame has far fewer objects than patches, and the walk costs
O(N^2) per frame pair, so K object nodes instead of 49 patches cut the walk (and any GCN on the
nodes) by ~(49/K)^2. Segments are computed *without labels*:

- ``felzenszwalb``: Felzenszwalb-Huttenlocher graph segmentation (``skimage.segmentation.felzenszwalb``,
  the segmenter DetCon uses), over-segmenting, then merged down to K (below).
- ``slic``: SLIC superpixels (``skimage.segmentation.slic``) asked for K segments (SLIC may return a
  few more; they are merged the same way).
- ``kmeans``: segments from the network's own features: a few Lloyd iterations of k-means on the
  (detached, L2-normalised) 1/8 feature map plus cell position, run in torch inside
  :meth:`ObjectNodes.__call__` (no DataLoader work; it follows the encoder as it learns).

**Reaching K** (felzenszwalb/slic, :func:`merge_to_k`): the over-segmentation is turned into a region
adjacency graph (4-neighbourhood) with each region's area and mean colour; then, repeatedly, the
*smallest* region is merged into its *most similar adjacent* region (closest mean RGB), until at most K
regions remain and none is smaller than ``min_px``. Regions are relabelled ``0..K'-1`` by decreasing
area (K' <= K; a frame with fewer segments is padded: labels K'..K-1 are absent and their nodes
invalid). Small-first merging keeps the large, meaningful regions intact and removes slivers that
would vanish at the 1/8 feature resolution anyway.

**Speed**: segmentation runs in the DataLoader worker (:class:`SegmentedClips`) at a working
resolution whose short side is about :data:`SEG_SIDE` px (64: frames of 128 px are block-averaged 2x2;
the nodes are pooled from 1/8 cells, so finer boundaries would be lost anyway), then the labels are
upsampled (nearest). ``nodes.seg_scale`` is in *native-resolution* pixels (Felzenszwalb's threshold
is scale/|C|, and areas shrink by f^2 at 1/f resolution, so scale/f^2 is passed). About 4-5 ms per
128 px frame on one CPU core (see ``bench/train.py``).

**Pooling** (:func:`mask_pool`): the frame is encoded once; for every segment, the fraction of each
1/8 feature cell it covers is counted (one ``bincount`` over (frame, label, cell), no loop over
segments or frames); a node's feature is the area-weighted mean of the cells = the exact average of
the nearest-upsampled feature map over the segment's pixels. A segment covering less than
:data:`MIN_CELLS` of a feature cell in total is marked invalid (it would be a near copy of its
neighbour), as are the padding labels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ever.config import ConfigError, NodeConfig
from ever.nodes.base import NodeExtractor

SEG_SIDE = 64  # segment at ~this short side (integer block-average downsampling), then upsample labels
FELZ_MIN_PX = 32  # felzenszwalb min_size, in native pixels (half an 8x8 feature cell)
MERGE_MIN_PX = 32  # regions smaller than this (native px, half a feature cell) are always merged
SLIC_ITERS = 5  # Lloyd iterations of SLIC (skimage default 10; 5 is ~30% faster, same segments here)
MIN_CELLS = 0.25  # a node covering less than this many 1/8 feature cells in total is invalid
KMEANS_ITERS = 5
KMEANS_POS_WEIGHT = 1.0  # weight of the (y, x) in [0, 1] coordinates next to unit-norm features


# ----------------------------------------------------------------------------- segmentation (numpy)


def merge_to_k(labels: np.ndarray, image: np.ndarray, k: int, min_px: int = 0) -> np.ndarray:
    """Merge the regions of ``labels`` (h, w) int until at most ``k`` remain, none below ``min_px``.

    ``image`` (h, w, C) gives each region's mean colour. Repeatedly the smallest region is merged into
    the adjacent region of closest mean colour (any region when it has no neighbour). Returns labels
    (h, w) int64 in ``[0, k')``, k' <= k, numbered by decreasing area (ties: first occurrence).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    labels = np.asarray(labels, dtype=np.int64)
    area = np.bincount(labels.ravel()) if labels.min() >= 0 else np.zeros(0)
    if area.size and (area > 0).all():  # already 0..n-1 (felzenszwalb, slic with start_label=0)
        inv = labels
    else:
        inv = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
        area = np.bincount(inv.ravel())
    area = area.astype(np.float64)
    n = len(area)
    flat = inv.ravel()
    img = image.reshape(-1, image.shape[-1]).astype(np.float64)
    colour = np.stack([np.bincount(flat, img[:, c], minlength=n) for c in range(img.shape[1])], 1) / area[:, None]
    adj = np.zeros((n, n), dtype=bool)
    for a, b in ((inv[:, :-1], inv[:, 1:]), (inv[:-1, :], inv[1:, :])):
        d = a != b
        adj[a[d], b[d]] = True
        adj[b[d], a[d]] = True
    parent = np.arange(n)
    alive = np.ones(n, dtype=bool)
    size = np.where(alive, area, np.inf)
    count = n
    while count > 1:
        s = int(size.argmin())
        if count <= k and size[s] >= min_px:
            break
        nb = np.flatnonzero(adj[s])
        if nb.size == 0:  # isolated (cannot happen for a connected image grid, kept for safety)
            nb = np.flatnonzero(alive & (np.arange(n) != s))
        t = int(nb[np.argmin(((colour[nb] - colour[s]) ** 2).sum(1))])
        colour[t] = (colour[t] * area[t] + colour[s] * area[s]) / (area[t] + area[s])
        area[t] += area[s]
        size[t] = area[t]
        adj[t] |= adj[s]
        adj[:, t] |= adj[:, s]
        adj[s, :] = False
        adj[:, s] = False
        adj[t, t] = False
        alive[s] = False
        size[s] = np.inf
        parent[s] = t
        count -= 1
    while True:  # resolve chains of merges
        p2 = parent[parent]
        if np.array_equal(p2, parent):
            break
        parent = p2
    roots = np.flatnonzero(alive)
    order = roots[np.argsort(-area[roots], kind="stable")]
    lut = np.empty(n, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(len(order))
    lut[:] = rank[parent]
    return lut[inv]


def _to_thwc(frames) -> np.ndarray:
    if torch.is_tensor(frames):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must be (T, H, W, 3) or (T, 3, H, W), got shape {frames.shape}")
    if frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3) or (T, 3, H, W), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frames.dtype}")
    return frames


def _segment_one(img: np.ndarray, cfg: NodeConfig, f: int) -> np.ndarray:
    """One frame (H, W, 3) uint8 -> labels (H, W) int64 in [0, k)."""
    from skimage.segmentation import felzenszwalb, slic

    H, W, _ = img.shape
    h, w = H // f, W // f
    small = img[: h * f, : w * f].astype(np.float32)
    if f > 1:
        small = small.reshape(h, f, w, f, 3).mean((1, 3))
    small /= 255.0
    if cfg.segmenter == "felzenszwalb":
        lab = felzenszwalb(
            small, scale=cfg.seg_scale / (f * f), sigma=cfg.seg_sigma, min_size=max(1, FELZ_MIN_PX // (f * f))
        )
    elif cfg.segmenter == "slic":
        lab = slic(
            small,
            n_segments=cfg.k,
            compactness=cfg.seg_compactness,
            sigma=cfg.seg_sigma,
            start_label=0,
            max_num_iter=SLIC_ITERS,
            channel_axis=-1,
        )
    else:
        raise ConfigError(f"nodes.segmenter={cfg.segmenter!r} does not segment pixels (only felzenszwalb|slic)")
    lab = merge_to_k(lab, small, cfg.k, max(1, MERGE_MIN_PX // (f * f)))
    if h * f == H and w * f == W:  # nearest upsampling back to (H, W)
        lab = lab.repeat(f, 0).repeat(f, 1) if f > 1 else lab
    else:
        lab = lab[np.minimum(np.arange(H) // f, h - 1)[:, None], np.minimum(np.arange(W) // f, w - 1)[None, :]]
    return lab


def segment_frames(frames, cfg: NodeConfig, side: int = SEG_SIDE) -> np.ndarray:
    """Segment each frame without labels: uint8 (T, H, W, 3) or (T, 3, H, W) -> (T, H, W) int64 in [0, k).

    Uses ``cfg.segmenter`` (felzenszwalb | slic), ``cfg.k``, ``seg_scale``, ``seg_sigma``,
    ``seg_compactness``; frames are segmented at a short side of about ``side`` px.
    """
    x = _to_thwc(frames)
    f = max(1, min(x.shape[1], x.shape[2]) // side)
    return np.stack([_segment_one(img, cfg, f) for img in x]).astype(np.int64)


class SegmentedClips(torch.utils.data.Dataset):
    """Wraps a clip dataset: ``ds[i]`` -> ``(clip (T, 3, S, S) uint8, segments (T, S, S) int64)``.

    The segmentation runs in ``__getitem__``, i.e. in the DataLoader workers, in parallel with the
    training step.
    """

    def __init__(self, dataset, cfg: NodeConfig):
        self.dataset, self.cfg = dataset, cfg

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        clip = self.dataset[i]
        clip = torch.as_tensor(clip)
        return clip, torch.from_numpy(segment_frames(clip, self.cfg))

    def __getattr__(self, name):  # forward e.g. ``videos`` of the wrapped dataset
        if name in ("dataset", "cfg") or name.startswith("__"):  # never the pickling protocol
            raise AttributeError(name)
        return getattr(self.dataset, name)


# ----------------------------------------------------------------------------- pooling (torch)


def segment_mass(segments: torch.Tensor, k: int, h: int, w: int) -> torch.Tensor:
    """segments (M, H, W) int in [0, k) -> (M, k, h*w): area of each segment in each of the h x w cells,
    in units of one cell (H*W/(h*w) pixels). Cell of pixel (y, x) = (y*h//H, x*w//W)."""
    M, H, W = segments.shape
    dev = segments.device
    cy = torch.arange(H, device=dev) * h // H
    cx = torch.arange(W, device=dev) * w // W
    cell = (cy[:, None] * w + cx[None, :]).expand(M, H, W)
    m = torch.arange(M, device=dev)[:, None, None]
    idx = (m * k + segments.long()) * (h * w) + cell
    counts = torch.bincount(idx.reshape(-1), minlength=M * k * h * w)
    return counts.view(M, k, h * w).float() * (h * w / (H * W))


def mask_pool(
    fmap: torch.Tensor, mass: torch.Tensor, min_cells: float = MIN_CELLS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Area-normalised mask averages. fmap (M, C, h, w), mass (M, K, h*w) >= 0 -> (feats (M, K, C), valid (M, K)).

    Nodes with total mass below ``min_cells`` are invalid (their feature is 0)."""
    total = mass.sum(-1)  # (M, K)
    valid = total >= min_cells
    wts = mass / total.clamp_min(1e-6)[..., None] * valid[..., None]
    feats = torch.bmm(wts.to(fmap.dtype), fmap.flatten(2).transpose(1, 2))  # (M, K, C)
    return feats, valid


def kmeans_mass(
    fmap: torch.Tensor, k: int, iters: int = KMEANS_ITERS, pos_weight: float = KMEANS_POS_WEIGHT
) -> torch.Tensor:
    """k-means on the cells of a dense map (detached): (M, C, h, w) -> one-hot mass (M, k, h*w).

    Points: L2-normalised features concatenated with ``pos_weight`` * (y, x) in [0, 1]. Centroids start
    at the cells nearest to a near-square grid of k points (deterministic); ``iters`` Lloyd steps;
    an empty cluster keeps its centroid (and becomes an invalid node)."""
    M, C, h, w = fmap.shape
    with torch.no_grad(), torch.autocast(fmap.device.type, enabled=False):
        dev = fmap.device
        f = F.normalize(fmap.detach().float().flatten(2).transpose(1, 2), dim=-1)  # (M, hw, C)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, h, device=dev), torch.linspace(0, 1, w, device=dev), indexing="ij")
        pos = torch.stack([yy, xx], -1).view(1, h * w, 2).expand(M, -1, -1)
        pts = torch.cat([f, pos_weight * pos], -1)  # (M, hw, C+2)
        gy = max(1, round(math.sqrt(k * h / w)))
        gx = math.ceil(k / gy)
        iy = ((torch.arange(gy, device=dev) + 0.5) * h / gy).long().clamp_max(h - 1)
        ix = ((torch.arange(gx, device=dev) + 0.5) * w / gx).long().clamp_max(w - 1)
        init = (iy[:, None] * w + ix[None, :]).reshape(-1)[:k]
        if init.numel() < k:  # k larger than the grid allows: fill with evenly spaced cells
            init = torch.cat([init, torch.linspace(0, h * w - 1, k - init.numel(), device=dev).long()])
        cent = pts[:, init]  # (M, k, C+2)
        for _ in range(iters):
            assign = torch.cdist(pts, cent).argmin(-1)  # (M, hw)
            onehot = F.one_hot(assign, k).float()  # (M, hw, k)
            cnt = onehot.sum(1)  # (M, k)
            new = torch.bmm(onehot.transpose(1, 2), pts) / cnt.clamp_min(1)[..., None]
            cent = torch.where(cnt[..., None] > 0, new, cent)
        assign = torch.cdist(pts, cent).argmin(-1)
        return F.one_hot(assign, k).float().transpose(1, 2)  # (M, k, hw)


class ObjectNodes(NodeExtractor):
    """Object nodes: at most K segments per frame, mask-pooled from the dense map (see module doc).

    ``__call__(encode, frames (B, T, 3, H, W) in [0, 1], segments (B, T, H, W) int in [0, K) or None)``
    -> (feats (B, T, K, C), valid (B, T, K)). The frames are encoded once. With ``segments=None`` the
    felzenszwalb/slic segments are computed here on the CPU (for evaluation and notebooks).
    """

    def __init__(self, cfg: NodeConfig):
        if cfg.segmenter not in ("felzenszwalb", "slic", "kmeans"):
            raise ConfigError(f"nodes.segmenter must be felzenszwalb|slic|kmeans, got {cfg.segmenter!r}")
        self.cfg = cfg
        self.k = cfg.k
        self.needs_segments = cfg.segmenter in ("felzenszwalb", "slic")

    def home_target(self, dy, dx, H, W):
        """A rolled frame with its rolled segment map keeps every label: node i shows the same segment."""
        return torch.arange(self.k)

    def segment(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, T, 3, H, W) float in [0, 1] -> segments (B, T, H, W) int64 (CPU segmenters)."""
        u8 = (frames.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        segs = np.stack([segment_frames(clip, self.cfg) for clip in u8])
        return torch.from_numpy(segs).to(frames.device)

    def __call__(self, encode, frames, segments=None, generator=None):
        B, T, _, H, W = frames.shape
        K = self.k
        if self.needs_segments and segments is None:
            segments = self.segment(frames)
        fmap = encode(frames.flatten(0, 1))  # (B*T, C, h, w)
        h, w = fmap.shape[-2:]
        if self.needs_segments:
            if tuple(segments.shape) != (B, T, H, W):
                raise ValueError(f"segments must be (B, T, H, W) = {(B, T, H, W)}, got {tuple(segments.shape)}")
            lo, hi = int(segments.min()), int(segments.max())
            if lo < 0 or hi >= K:
                raise ValueError(f"segment labels must be in [0, {K}), got [{lo}, {hi}]")
            mass = segment_mass(segments.flatten(0, 1), K, h, w)
        else:
            mass = kmeans_mass(fmap, K)
        feats, valid = mask_pool(fmap, mass.to(fmap.device))
        return feats.unflatten(0, (B, T)), valid.unflatten(0, (B, T))


# ----------------------------------------------------------------------------- object crops


def segment_boxes(segments: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding boxes of the labels of segment maps: (M, H, W) int in [0, k) -> (boxes (M, k, 4) float
    as (y0, x0, y1, x1) in pixels, end exclusive; present (M, k) bool). Absent labels get an empty box."""
    M, H, W = segments.shape
    dev = segments.device
    onehot = F.one_hot(segments.long(), k).bool()  # (M, H, W, k)
    rows, cols = onehot.any(2), onehot.any(1)  # (M, H, k), (M, W, k)
    present = rows.any(1)  # (M, k)
    ys = torch.arange(H, device=dev)[None, :, None]
    xs = torch.arange(W, device=dev)[None, :, None]
    y0 = torch.where(rows, ys, H).amin(1)
    y1 = torch.where(rows, ys + 1, 0).amax(1)
    x0 = torch.where(cols, xs, W).amin(1)
    x1 = torch.where(cols, xs + 1, 0).amax(1)
    return torch.stack([y0, x0, y1, x1], -1).float(), present


def centre_windows(segments: torch.Tensor, k: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Square windows of ``size`` px centred on each label's centre of mass (its corner rounded to the nearest
    pixel, halves to even, then moved inside the frame): (M, H, W) int in [0, k) -> (boxes (M, k, 4) float as
    (y0, x0, y1, x1), present (M, k)). Cropped with :func:`crop_boxes` at ``size``, each window is sampled at
    its own pixel centres: the frame's pixels at their native scale, not resized."""
    M, H, W = segments.shape
    if size > min(H, W):
        raise ValueError(f"a {size}-px window does not fit frames of {H}x{W}")
    onehot = F.one_hot(segments.long(), k).float()  # (M, H, W, k)
    area = onehot.sum((1, 2))  # (M, k)
    ys = torch.arange(H, device=segments.device, dtype=torch.float32) + 0.5
    xs = torch.arange(W, device=segments.device, dtype=torch.float32) + 0.5
    cy = torch.einsum("mhwk,h->mk", onehot, ys) / area.clamp_min(1)
    cx = torch.einsum("mhwk,w->mk", onehot, xs) / area.clamp_min(1)
    y0 = (cy - size / 2).round().clamp(0, H - size)  # halves to even (torch.round), as the runs of results/ used
    x0 = (cx - size / 2).round().clamp(0, W - size)
    return torch.stack([y0, x0, y0 + size, x0 + size], -1), area > 0


def crop_boxes(images: torch.Tensor, boxes: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Crop-and-resize: images (M, C, H, W), boxes (M, k, 4) as (y0, x0, y1, x1) px -> (M, k, C, size, size).

    Sampling points are the centres of a size x size grid laid over each box (``F.grid_sample``,
    ``align_corners=False``), clamped to the box's outer pixel centres: the same as cropping the box's
    pixels and resizing them (``F.interpolate``, bilinear); a box equal to the whole image is a resize."""
    M, C, H, W = images.shape
    k = boxes.shape[1]
    t = (torch.arange(size, device=images.device, dtype=images.dtype) + 0.5) / size  # (size,)
    y0, x0, y1, x1 = boxes.to(images.dtype).unbind(-1)  # (M, k) each
    # pixel coordinates, kept within the box's own pixel centres (a crop, then a resize: no bleeding)
    py = torch.minimum(
        torch.maximum(y0[..., None] + (y1 - y0)[..., None] * t, y0[..., None] + 0.5), y1[..., None] - 0.5
    )
    px = torch.minimum(
        torch.maximum(x0[..., None] + (x1 - x0)[..., None] * t, x0[..., None] + 0.5), x1[..., None] - 0.5
    )
    gy = (2 * py / H - 1)[..., :, None].expand(M, k, size, size)  # normalised, align_corners=False
    gx = (2 * px / W - 1)[..., None, :].expand(M, k, size, size)
    grid = torch.stack([gx, gy], -1).flatten(1, 2)  # (M, k*size, size, 2)
    out = F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)
    return out.view(M, C, k, size, size).transpose(1, 2)


class ObjectCropNodes(ObjectNodes):
    """Object nodes encoded one by one, as CRW encodes each patch: every segment's bounding box is cropped
    from the frame, resized to ``patch_size`` x ``patch_size``, encoded alone and average-pooled.

    ``nodes.crop_window``: the segment's bounding ``"box"``, resized (a large segment's box is shrunk, a
    thin one's stretched), or a ``patch_size`` window ``"centre"``d on the segment's centre of mass
    (:func:`centre_windows`): pixels at their native scale, as the patch crops see them; the two then
    differ in where the windows lie, how many there are (K' <= K against 49) and the patch crops' jitter.
    Windows keep the other segments' pixels (``crop_background: mask`` is for boxes: a centre of mass can
    fall outside a curved segment, and its window would then hold none of it).

    ``nodes.crop_background``: ``"keep"`` the pixels of other segments inside the box, or ``"mask"`` them
    (set to 0; the pooling then averages over the segment's own cells). Only present segments are
    encoded, so the encoder's cost grows with the number of objects, K' <= K per frame, exactly as the
    reference patch walk's grows with its 49 patches: patch crops and object crops differ only in where
    the crops come from. (B, T, 3, H, W) -> (feats (B, T, K, C), valid (B, T, K)).

    No shifted home (``walk.home_shift``, refused by the config): frame 0 rolled wraps every segment that
    touches the frame's edge round to the other side, and its box then spans the frame (three boxes in
    four span a side at 128 px, against one in six unrolled), so the home view's crop ``i`` no longer
    shows segment ``i`` and most home nodes look alike. Walks that had to come home there often stayed at
    chance for whole runs (5 of 9 object-crop runs, issue 14). A crop encoded alone holds no position, so
    there is no shortcut to deny.
    """

    home_target = NodeExtractor.home_target  # not supported: see above

    def __init__(self, cfg: NodeConfig):
        if cfg.segmenter not in ("felzenszwalb", "slic"):
            raise ConfigError(f"nodes.kind=object_crop needs pixel segments (felzenszwalb|slic), got {cfg.segmenter!r}")
        super().__init__(cfg)
        self.size, self.mask, self.centre = cfg.patch_size, cfg.crop_background == "mask", cfg.crop_window == "centre"

    def __call__(self, encode, frames, segments=None, generator=None):
        B, T, _, H, W = frames.shape
        K, S = self.k, self.size
        if segments is None:
            segments = self.segment(frames)
        if tuple(segments.shape) != (B, T, H, W):
            raise ValueError(f"segments must be (B, T, H, W) = {(B, T, H, W)}, got {tuple(segments.shape)}")
        segs = segments.flatten(0, 1)  # (M, H, W)
        boxes, present = centre_windows(segs, K, S) if self.centre else segment_boxes(segs, K)  # (M, K, 4), (M, K)
        crops = crop_boxes(frames.flatten(0, 1), boxes, S)[present]  # (P, 3, S, S), P present segments
        if self.mask:
            own = F.one_hot(segs.long(), K).permute(0, 3, 1, 2).float()  # (M, K, H, W)
            m = crop_boxes(own.flatten(0, 1)[:, None], boxes.flatten(0, 1)[:, None], S, "nearest")
            m = m.view(*present.shape, 1, S, S)[present]  # (P, 1, S, S)
            crops = crops * m
        fmap = encode(crops.contiguous())  # (P, C, S/8, S/8)
        if self.mask:
            cell = F.adaptive_avg_pool2d(m, fmap.shape[-2:])  # (P, 1, S/8, S/8) share of each cell
            feat = (fmap * cell).sum((2, 3)) / cell.sum((2, 3)).clamp_min(1e-6)
        else:
            feat = fmap.mean((2, 3))  # (P, C)
        feats = feat.new_zeros(*present.shape, feat.shape[-1])
        feats[present] = feat
        return feats.unflatten(0, (B, T)), present.unflatten(0, (B, T))
