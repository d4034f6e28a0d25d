"""Look inside the contrastive random walk of one video: transition rows, palindrome walks, propagation.

The logic behind the notebook ``book/08_explore.ipynb``; its figures are drawn by
:mod:`ever.explore_plots`, its interactive controls by :mod:`ever.explore_widgets`, and its video and
model are found by :mod:`ever.explore_io`. An :class:`Explorer` holds one video and one model; it encodes
a frame the first time it is needed and keeps the dense 1/8 feature maps in a memory-bounded LRU cache,
so moving a point or a node costs a few small matrix products, not an encoder pass.

    ex = Explorer("data/ever-synth/JPEGImages/480p/val000", checkpoint="runs/x/checkpoint.pt", mode="patches")
    node = ex.node_at(frame=0, x=200, y=120)
    heat = ex.heatmap(0, node)                     # (H, W): transition probabilities to frame 1
    w = ex.walk(0, node, length=4)                 # most likely palindrome walk, return probability
    prop = ex.propagate(0, node=node, steps=3)     # propagated point/mask, top-k matches per frame

Node modes (:data:`MODES`), each made by the extractor that trains on it, run on the cached dense map:

- ``cells``: every 1/8 feature cell is a node (``PatchPoolNodes(8, 8)``; 6420 nodes at 854x480);
- ``patches``: the grid of ``patch_size``/``patch_stride`` patches the walk was trained on
  (``ever.nodes.PatchPoolNodes``);
- ``objects``: unsupervised segments of the displayed frame (``ever.nodes.objects.segment_frames``),
  mask-pooled by ``ever.nodes.objects.ObjectNodes``.

Node embeddings are the walk's: encoder (``layer4``) -> projection head -> L2 norm, with the run's
temperature, and transitions are ``ever.walk``'s logits under a softmax, so a node's transition row is
exactly the row of ``ever.walk.transition_matrices`` (tested). Not shown: a GCN (``gcn.enabled``) mixes
the nodes of a whole clip, so the explorer uses the embeddings before it; the walk ends at frame 0
itself, not at a shifted home view (``walk.home_shift``).

The functions behind the views work on plain tensors and are tested without a display:
:func:`transition_probs`, :func:`topk_matches`, :func:`palindrome_walk`, :func:`propagate_labels`.
For many nodes (dense cells at 480p) the walk keeps a beam of the ``beam`` most likely nodes per frame
(rows of the transition matrices are computed for those only); it is exact when ``beam >= N`` and the
mass left out is reported (``WalkResult.lost_mass``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ever.evaluate.propagation import STRIDE, CellGrid, FeatureFn, topk_first
from ever.explore_io import FrameSource, ModelChoice, choose_model
from ever.nodes import PatchPoolNodes, grid_centers
from ever.utils import LRU, nbytes
from ever.walk import affinity_logits

MODES = ("cells", "patches", "objects")
EXACT_NODES = 2500  # Explorer.walk is exact up to this many nodes per frame ...
BEAM = 256  # ... else keeps a beam of this many nodes per frame


# ----------------------------------------------------------------------------- transitions, walks, propagation


def _row_logp(
    src: torch.Tensor, dst: torch.Tensor, temperature: float, dst_valid: torch.Tensor | None = None
) -> torch.Tensor:
    """log of transition rows: src (S, D), dst (M, D), dst_valid (M,) -> (S, M), the log-softmax of
    ``ever.walk``'s logits (similarity / temperature, invalid targets removed), in float32 as the walk."""
    v = None if dst_valid is None else dst_valid[None]
    return torch.log_softmax(affinity_logits(src.float()[None], dst.float()[None], v, temperature)[0], dim=-1)


def transition_probs(
    src: torch.Tensor, dst: torch.Tensor, node: int, temperature: float, dst_valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Transition probabilities (M,) of node ``node`` of a frame (src (N, D), unit-norm) to the nodes
    of the next frame (dst (M, D)): row ``node`` of ``softmax(src dst^T / temperature)``; sums to 1."""
    return _row_logp(src[node : node + 1], dst, temperature, dst_valid)[0].exp()


def topk_matches(probs: torch.Tensor, k: int, valid: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most likely nodes of a probability vector (M,): (indices (k,), probabilities (k,)),
    sorted by decreasing probability (k is clipped to the number of valid nodes)."""
    p = probs.detach().float().cpu()
    if valid is not None:
        p = p.masked_fill(~valid.cpu(), float("-inf"))
    k = max(0, min(int(k), int(torch.isfinite(p).sum())))
    v, i = p.topk(k)
    return i.numpy(), v.numpy()


@dataclass
class WalkResult:
    """A palindrome walk from one node: frames t0 .. t_{T-1} .. t0 (2T-1 entries)."""

    frames: list[int]  # frame index of each position of the palindrome
    start: int  # the start node
    path: list[int]  # most likely walk (any end), one node per palindrome position
    path_prob: float  # its probability (product of its transitions)
    step_probs: list[float]  # probability of each of its 2T-2 transitions
    home_path: list[int]  # most likely walk that ends at the start node
    home_path_prob: float
    return_prob: float  # P(walk ends at the start) = (A_0 .. A_{T-2} B_{T-2} .. B_0)[start, start]
    end_probs: dict[int, float] = field(default_factory=dict)  # the most likely end nodes and their probabilities
    lost_mass: float = 0.0  # probability mass dropped by the beam (0 when exact)

    @property
    def returns_home(self) -> bool:
        return self.path[-1] == self.start

    def away_note(self) -> str:
        """A sentence for the reader when the most likely walk does not end where it started, else "": the
        return probability sums every walk that ends at the start, and the most likely of those is another."""
        if self.returns_home:
            return ""
        best = " → ".join(map(str, self.home_path))
        p = self.home_path_prob
        home = f"; the most likely of them is {best} (probability {p:.3g})" if p else ""
        return (
            f"The single most likely walk ends at node {self.path[-1]}, not at its start {self.start}: P(return home) "
            f"is the sum over every walk that ends at node {self.start}, not the probability of one{home}."
        )


def palindrome_walk(
    embs: Sequence[torch.Tensor],
    node: int,
    temperature: float,
    valids: Sequence[torch.Tensor | None] | None = None,
    beam: int | None = None,
    frames: Sequence[int] | None = None,
) -> WalkResult:
    """Walk from node ``node`` of the first frame forward through the clip and back (the palindrome).

    embs: T >= 2 tensors (N_t, D), unit-norm; valids: matching (N_t,) bool or None. Transitions are
    ``softmax(x_a x_b^T / temperature)`` over valid targets (the rows of ``ever.walk.transition_matrices``).
    Returns the return probability (sum over all walks: the diagonal entry of the product of the
    transition matrices), the most likely walk (max-product / Viterbi) and the most likely walk that
    comes home. ``beam``: keep only the ``beam`` most likely nodes per frame (None = all: exact).
    """
    T = len(embs)
    if T < 2:
        raise ValueError(f"a walk needs at least 2 frames, got {T}")
    valids = list(valids) if valids is not None else [None] * T
    seq = list(range(T)) + list(range(T - 2, -1, -1))  # 0 .. T-1 .. 0
    dev = embs[0].device
    if valids[0] is not None and not bool(valids[0][node]):
        raise ValueError(f"node {node} is not a valid node of the first frame")
    sup = torch.tensor([node], device=dev)  # support of the walker's distribution
    p = torch.ones(1, device=dev)
    vsup = sup.clone()  # Viterbi beam: nodes and log-scores of the best walk to each
    vscore = torch.zeros(1, device=dev)
    back, best_full = [], []
    lost = 0.0
    for a, b in zip(seq[:-1], seq[1:]):
        xb, vb = embs[b], valids[b]
        # sum-product: distribution of the walker
        logp = _row_logp(embs[a][sup], xb, temperature, vb)  # (S, Nb)
        dist = p @ logp.exp()
        # max-product: best walk ending at each node of frame b
        lv = logp if torch.equal(vsup, sup) else _row_logp(embs[a][vsup], xb, temperature, vb)
        cand = vscore[:, None] + lv  # (Sv, Nb)
        best, arg = cand.max(0)
        if vb is not None and not bool(vb.all()):
            best = best.masked_fill(~vb, float("-inf"))
        back.append(vsup[arg])
        best_full.append(best)
        if beam is not None and beam < dist.numel():
            keep = dist.topk(beam).indices
            lost += float(dist.sum() - dist[keep].sum())
            sup, p = keep, dist[keep]
            vkeep = best.topk(beam).indices
            vsup, vscore = vkeep, best[vkeep]
        else:
            ok = torch.ones_like(dist, dtype=torch.bool) if vb is None else vb
            sup = torch.nonzero(ok).squeeze(1)
            p, vsup, vscore = dist[sup], sup, best[sup]

    def trace(end: int) -> tuple[list[int], list[float]]:
        nodes = [end]
        for bp in reversed(back):
            nodes.append(int(bp[nodes[-1]]))
        nodes.reverse()
        scores = [0.0] + [float(best_full[i][nodes[i + 1]]) for i in range(len(back))]
        steps = [math.exp(scores[i + 1] - scores[i]) for i in range(len(back))]
        return nodes, steps

    last = best_full[-1]
    end = int(last.argmax())
    path, steps = trace(end)
    home, _ = trace(node)
    ret = float(p[sup == node].sum()) if (sup == node).any() else 0.0
    ev, ei = p.topk(min(5, p.numel()))
    return WalkResult(
        frames=[int(frames[i]) if frames is not None else i for i in seq],
        start=int(node),
        path=path,
        path_prob=float(math.exp(float(last[end]))),
        step_probs=steps,
        home_path=home,
        home_path_prob=float(math.exp(float(last[node]))) if math.isfinite(float(last[node])) else 0.0,
        return_prob=min(1.0, max(0.0, ret)),
        end_probs={int(sup[i]): float(v) for v, i in zip(ev, ei)},
        lost_mass=lost,
    )


def propagate_labels(
    src_emb: torch.Tensor,
    src_labels: torch.Tensor,
    targets: Sequence[torch.Tensor],
    temperature: float = 0.05,
    topk: int = 10,
    src_valid: torch.Tensor | None = None,
    target_valids: Sequence[torch.Tensor | None] | None = None,
    use_previous: bool = True,
    max_elements: int = 2**25,
) -> list[torch.Tensor]:
    """Label propagation in node space: the steps of :func:`ever.evaluate.propagation.predict` on nodes.

    src_emb (N, D) and src_labels (N, K) soft labels of the source frame; targets: list of (M_t, D);
    src_valid (N,) / target_valids (M_t,) bool or None. Each target node takes the
    softmax(affinity / temperature)-weighted labels of its ``topk`` most similar context nodes (the
    same top-k helper as the evaluation). Returns one (M_t, K) soft-label tensor per target frame
    (invalid nodes: 0).

    Not the evaluation protocol itself, on purpose: nodes may be patches or segments, which have no
    cell grid, so there is no ``radius`` (every context node counts), and the context is the source
    frame and the previous target frame (``use_previous``) instead of ``n_context`` frames. With dense
    cells and the source frame only it equals ``predict`` without preceding frames (tested).
    """
    keys_f = src_emb.float() if src_valid is None else src_emb.float()[src_valid]
    keys_l = src_labels.float() if src_valid is None else src_labels.float()[src_valid]
    tv = list(target_valids) if target_valids is not None else [None] * len(targets)
    out, prev = [], None
    for q, qv in zip(targets, tv):
        kf, kl = keys_f, keys_l
        if use_previous and prev is not None:
            kf, kl = torch.cat([kf, prev[0]]), torch.cat([kl, prev[1]])
        vals, labs = topk_first(q.float(), kf.T, kl, topk, max_elements)  # (M, k), (M, k, K)
        soft = torch.einsum("nk,nkc->nc", torch.softmax(vals / temperature, dim=1), labs)
        if qv is not None:
            soft = soft * qv[:, None]
        out.append(soft)
        good = slice(None) if qv is None else qv
        prev = (q.float()[good], soft[good])
    return out


# ----------------------------------------------------------------------------- nodes of one frame


@dataclass
class NodeSet:
    """The nodes of one frame: embeddings, validity, centres, and how to paint them."""

    kind: str  # one of MODES
    emb: torch.Tensor  # (N, D) unit-norm
    valid: torch.Tensor  # (N,) bool
    centers: np.ndarray  # (N, 2) (x, y) pixels
    size: tuple[int, int]  # (H, W) of the (working-resolution) frame
    grid: tuple[int, int] | None = None  # (gh, gw) for cells and patches
    patch: int = STRIDE
    stride: int = STRIDE
    labels: np.ndarray | None = None  # (H, W) segment id per pixel (objects)

    def __len__(self) -> int:
        return self.emb.shape[0]

    def pixel_index(self) -> np.ndarray:
        """(H, W) node id of each pixel (nearest patch centre; the segment for objects)."""
        if self.labels is not None:
            return self.labels
        H, W = self.size
        gh, gw = self.grid
        iy = np.clip(np.round((np.arange(H) + 0.5 - self.patch / 2) / self.stride), 0, gh - 1).astype(int)
        ix = np.clip(np.round((np.arange(W) + 0.5 - self.patch / 2) / self.stride), 0, gw - 1).astype(int)
        return iy[:, None] * gw + ix[None, :]

    def node_at(self, x: float, y: float) -> int:
        """The node under pixel (x, y) (clipped into the frame); for objects an invalid segment
        falls back to the valid node with the nearest centre."""
        H, W = self.size
        xi, yi = int(np.clip(round(x), 0, W - 1)), int(np.clip(round(y), 0, H - 1))
        n = int(self.pixel_index()[yi, xi])
        if not bool(self.valid[n]):
            d = ((self.centers - [x, y]) ** 2).sum(1)
            d[~self.valid.cpu().numpy()] = np.inf
            n = int(d.argmin())
        return n

    def paint(self, values) -> np.ndarray:
        """Node values (N,) -> (H, W) image (each pixel takes the value of its node)."""
        v = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values, dtype=np.float32)
        return v[self.pixel_index()]

    def fractions(self, mask: np.ndarray) -> torch.Tensor:
        """A label map (H, W) of ids 0..K-1 -> (N, K): the fraction of each node's pixels with each id."""
        mask = np.asarray(mask).astype(np.int64)
        N, K = len(self), int(mask.max()) + 1
        cnt = np.bincount((self.pixel_index() * K + mask).ravel(), minlength=N * K).reshape(N, K)
        return torch.from_numpy((cnt / np.maximum(cnt.sum(1, keepdims=True), 1)).astype(np.float32))


# ----------------------------------------------------------------------------- the explorer


def _size(v) -> int:
    """Bytes held by a cached value of the explorer (node sets besides tensors and arrays)."""
    if isinstance(v, NodeSet):
        return v.emb.numel() * 4 + v.centers.nbytes + (v.labels.nbytes if v.labels is not None else 0)
    return nbytes(v)


@dataclass
class PropStep:
    """One frame of a propagation from the source frame."""

    frame: int
    soft: np.ndarray  # (N_t, K) soft labels of the nodes
    heat: np.ndarray  # (H, W) propagated probability of the tracked label (point / object / mask id 1)
    labels: np.ndarray  # (H, W) arg-max label map (0 = background when K > 1)
    point: tuple[float, float] | None  # (x, y) of the propagated point (point mode)
    track_node: int  # node followed by the chain of most likely transitions
    topk: np.ndarray  # (k,) top-k matches of the previous tracked node in this frame
    topk_probs: np.ndarray  # (k,)
    topk_xy: np.ndarray  # (k, 2) their centres


class Explorer:
    """One video + one model: cached features, nodes of each frame, and the views of the walk.

    source: a path (video file, JPEG folder, DAVIS sequence folder), an array (T, H, W, 3) uint8 or a
    :class:`~ever.explore_io.FrameSource`. model/cfg: an ``EverModel`` and its ``Config``, or a
    :class:`~ever.explore_io.ModelChoice` (kept as ``model_choice``, which says which model it is); without
    a model, ``checkpoint`` as :func:`ever.explore_io.choose_model` takes it (None: the shipped default
    model; ``"random"``: a random-init tiny model, warned about). ``feature_fn`` replaces the encoder
    ((t, 3, H, W) in [0, 1] -> (t, C, H/8, W/8), used without head; e.g. a colour feature for tests).
    ``long_side``: resize frames so that their long side is this (0 = native), as the evaluation does
    (:class:`ever.evaluate.propagation.CellGrid`). Features are cached up to ``max_cache_mb``.
    """

    def __init__(
        self,
        source,
        model=None,
        cfg=None,
        *,
        checkpoint: str | Path | None = None,
        mode: str = "patches",
        feature_fn: FeatureFn | None = None,
        temperature: float | None = None,
        patch_size: int | None = None,
        patch_stride: int | None = None,
        objects_k: int | None = None,
        long_side: int = 0,
        device: str | torch.device | None = None,
        max_cache_mb: float = 1024,
        use_head: bool = True,
    ):
        from ever.utils import select_device

        self.source = source if isinstance(source, FrameSource) else FrameSource(source)
        self.device = select_device(str(device or "auto"))
        if feature_fn is None and model is None:
            model = choose_model(checkpoint)
        self.model_choice = model if isinstance(model, ModelChoice) else None  # what the reader is told
        if self.model_choice is not None:
            model, cfg = model.model, model.cfg
        if cfg is None:
            from ever.config import Config

            cfg = Config()
        self.cfg = cfg
        self.model = model.to(self.device).eval() if model is not None else None
        self.feature_fn = feature_fn
        self.use_head = use_head and model is not None and feature_fn is None
        self.temperature = float(temperature if temperature is not None else cfg.walk.temperature)
        self.patch = max(STRIDE, (patch_size or cfg.nodes.patch_size) // STRIDE * STRIDE)
        self.stride = max(STRIDE, (patch_stride or cfg.nodes.patch_stride) // STRIDE * STRIDE)
        self.objects_k = int(objects_k or cfg.nodes.k)
        self._resize = CellGrid(self.source.frame(0).shape[:2], long_side)  # native -> working resolution
        self.size: tuple[int, int] = self._resize.resized  # (H, W) of the frames shown and encoded
        self._pad = CellGrid(self.size)  # working resolution -> encoder input, edge-padded to multiples of 8
        self._feats = LRU(int(max_cache_mb * 2**20), _size)
        self._nodes = LRU(int(max(16, max_cache_mb / 8) * 2**20), _size)
        self._frames = LRU(int(max(16, max_cache_mb / 8) * 2**20), _size)
        self.mode = "patches"
        self.set_mode(mode)

    def __len__(self) -> int:
        return len(self.source)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    # --- frames and features
    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (H, W, 3) uint8 at the working resolution (resized as the evaluation resizes)."""
        f = self._frames.get(i)
        if f is None:
            f = self.source.frame(i)
            if self._resize.resized != self._resize.size:
                x = self._resize.frames([f])[0, :, : self.size[0], : self.size[1]]
                f = (x * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            self._frames.put(i, f)
        return f

    def mask(self, i: int) -> np.ndarray | None:
        """DAVIS annotation (H, W) int64 of frame ``i`` at the working resolution (nearest), or None."""
        m = self.source.mask(i)
        if m is None:
            return None
        H, W = self.size
        if m.shape != (H, W):
            yy = (np.arange(H) * m.shape[0] / H).astype(int)
            xx = (np.arange(W) * m.shape[1] / W).astype(int)
            m = m[yy[:, None], xx[None, :]]
        return m

    def features(self, i: int) -> torch.Tensor:
        """Dense features (C, Hp/8, Wp/8) of frame ``i`` (computed once, cached)."""
        f = self._feats.get(i)
        if f is None:
            x = self._pad.frames([self.frame(i)], self.device)  # (1, 3, Hp, Wp) in [0, 1]
            with torch.inference_mode():
                f = (self.feature_fn(x) if self.feature_fn is not None else self.model.dense(x))[0].float()
            if tuple(f.shape[-2:]) != self._pad.cells:
                raise ValueError(
                    f"feature function returned {tuple(f.shape)} for a frame of {tuple(x.shape[-2:])}; "
                    f"expected (C, {self._pad.cells[0]}, {self._pad.cells[1]})"
                )
            self._feats.put(i, f)
        return f

    def prefetch(self, indices: Sequence[int]) -> None:
        """Encode these frames now (e.g. the clip of the current frame)."""
        for i in indices:
            self.features(i)

    # --- nodes
    def nodes(self, i: int, mode: str | None = None) -> NodeSet:
        """The nodes of frame ``i`` in ``mode`` (default: the current mode)."""
        mode = mode or self.mode
        key = (mode, i, self.patch, self.stride, self.objects_k)
        ns = self._nodes.get(key)
        if ns is None:
            ns = self._object_nodes(i) if mode == "objects" else self._grid_nodes(i, mode)
            self._nodes.put(key, ns)
        return ns

    def _pool(self, extractor, fmap: torch.Tensor, segments: torch.Tensor | None = None):
        """One frame's nodes by a real extractor (``ever.nodes`` / ``ever.nodes.objects``) on the cached dense map
        fmap (C, h, w): its ``encode`` returns the cache, and of the frames it reads only the shape.
        Returns (node features (N, C), valid (N,))."""
        h, w = fmap.shape[-2:]
        frames = fmap.new_zeros(()).expand(1, 1, 3, h * STRIDE, w * STRIDE)  # (B=1, T=1, 3, Hp, Wp), no memory
        with torch.inference_mode():
            feats, valid = extractor(lambda _: fmap[None], frames, segments)
        return feats[0, 0], valid[0, 0]

    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(N, C) pooled features -> (N, D) unit-norm walk embeddings (projection head, as ``CRW.embed``)."""
        with torch.inference_mode():
            if self.use_head:
                feats = self.model.head(feats)
            return F.normalize(feats.float(), dim=-1)

    def _grid_nodes(self, i: int, mode: str) -> NodeSet:
        """Cells (8 px patches every 8 px) or the run's patch grid, by ``PatchPoolNodes``."""
        fmap = self.features(i)
        Hp, Wp = (s * STRIDE for s in fmap.shape[-2:])
        p, s = (STRIDE, STRIDE) if mode == "cells" else (min(self.patch, Hp, Wp), self.stride)
        feats, valid = self._pool(PatchPoolNodes(p, s), fmap)
        centers, grid = grid_centers(Hp, Wp, p, s)
        return NodeSet(mode, self._embed(feats), valid, centers, self.size, grid, p, s)

    def _object_nodes(self, i: int) -> NodeSet:
        """Segments of the displayed frame (felzenszwalb / slic; a ``kmeans`` config falls back to
        felzenszwalb, whose segments can be painted), mask-pooled by ``ObjectNodes``."""
        from ever.nodes.objects import ObjectNodes, segment_frames

        ncfg = dataclasses.replace(self.cfg.nodes, kind="object", k=self.objects_k)
        if ncfg.segmenter not in ("felzenszwalb", "slic"):
            ncfg = dataclasses.replace(ncfg, segmenter="felzenszwalb")
        rgb = self.frame(i)
        H, W = rgb.shape[:2]
        seg = segment_frames(rgb[None], ncfg)[0]  # (H, W) in [0, K)
        fmap = self.features(i)
        h, w = fmap.shape[-2:]
        padded = np.pad(seg, ((0, h * STRIDE - H), (0, w * STRIDE - W)), mode="edge")  # as the frame is padded
        feats, valid = self._pool(ObjectNodes(ncfg), fmap, torch.from_numpy(padded)[None, None].to(fmap.device))
        K = self.objects_k
        cnt = np.maximum(np.bincount(seg.ravel(), minlength=K), 1)  # pixels per segment
        yy, xx = np.mgrid[:H, :W]
        flat = seg.ravel()
        centers = np.stack([np.bincount(flat, xx.ravel(), K) / cnt, np.bincount(flat, yy.ravel(), K) / cnt], 1)
        return NodeSet("objects", self._embed(feats), valid, centers, (H, W), labels=seg)

    def object_point(self, i: int) -> tuple[float, float]:
        """(x, y) of frame ``i`` where book chapter 3 starts its walker: the centroid of the annotated
        objects' pixels (all ids > 0) at the working resolution, or the frame's centre when the frame has
        no annotation (or an empty one)."""
        m = self.mask(i)
        ys, xs = np.nonzero(m > 0) if m is not None else ((), ())
        if len(xs):
            return float(np.mean(xs)), float(np.mean(ys))
        H, W = self.size
        return W / 2, H / 2

    # --- views
    def clip(self, frame: int, length: int = 4, stride: int = 1) -> list[int]:
        """Frame indices of the walk's clip starting at ``frame`` (truncated at the end of the video)."""
        idx = [i for i in (frame + t * stride for t in range(length)) if i < len(self)]
        if len(idx) < 2:
            raise ValueError(f"frame {frame}: a walk needs a next frame (the video has {len(self)} frames)")
        return idx

    def node_at(self, frame: int, x: float, y: float) -> int:
        return self.nodes(frame).node_at(x, y)

    def transition(self, frame: int, node: int, to: int | None = None) -> torch.Tensor:
        """Transition probabilities (M,) of ``node`` of ``frame`` to the nodes of frame ``to`` (default next)."""
        to = frame + 1 if to is None else to
        a, b = self.nodes(frame), self.nodes(to)
        return transition_probs(a.emb, b.emb, node, self.temperature, b.valid)

    def heatmap(self, frame: int, node: int, to: int | None = None) -> np.ndarray:
        """(H, W) transition probabilities painted on frame ``to``'s nodes."""
        to = frame + 1 if to is None else to
        return self.nodes(to).paint(self.transition(frame, node, to))

    def walk(self, frame: int, node: int, length: int = 4, stride: int = 1, beam: int | None = None) -> WalkResult:
        """The palindrome walk from ``node`` of ``frame`` over ``length`` frames (every ``stride``-th).

        ``beam`` (None = automatic): exact for up to :data:`EXACT_NODES` nodes per frame, else a beam of
        :data:`BEAM` nodes (dense cells at 480p: the mass left out is ``WalkResult.lost_mass``)."""
        idx = self.clip(frame, length, stride)
        ns = [self.nodes(i) for i in idx]
        n_max = max(len(n) for n in ns)
        if beam is None and n_max > EXACT_NODES:
            beam = BEAM
        if beam is not None and beam >= n_max:
            beam = None
        return palindrome_walk([n.emb for n in ns], node, self.temperature, [n.valid for n in ns], beam, idx)

    def stays_in_place(self, w: WalkResult) -> bool:
        """True when the most likely walk ``w`` never moves: every node of it has the start node's centre
        (within one feature cell, 8 px), in every frame of the palindrome."""
        c = np.array([self.nodes(f).centers[v] for f, v in zip(w.frames, w.path)], dtype=float)
        return bool(np.all(np.hypot(*(c - c[0]).T) < STRIDE))

    def shortcut_note(self, w: WalkResult, still: float = 10.0) -> str:
        """A Markdown paragraph for the reader when the most likely walk ``w`` stays in place
        (:meth:`stays_in_place`), else "". When the pixels under the start node change between the first and
        the last frame of the clip (mean absolute difference of at least ``still`` grey levels of 255), it is
        the positional shortcut (nodes pooled from one zero-padded feature map can encode where they are, and
        staying put is a perfectly cycle-consistent walk): the note says so, how far the annotated objects
        move meanwhile (their centre, when the frames are annotated) and whether this model was trained with
        ``walk.home_shift``, which exists to deny it (:mod:`ever.walk`); otherwise staying may be right."""
        if not self.stays_in_place(w):
            return ""
        clip = sorted(set(w.frames))
        region = self.nodes(clip[0]).pixel_index() == w.start
        change = float(np.abs(self.frame(clip[-1]).astype(float) - self.frame(clip[0]).astype(float))[region].mean())
        text = (
            f"**The walker does not move.** Its most likely walk stays on node {w.start}, at the same place "
            f"in every frame {clip[0]} to {clip[-1]}"
        )
        if change < still:
            return text + (
                f", and the pixels under it hardly change (by {change:.0f} of 255 grey levels on average "
                f"from frame {clip[0]} to frame {clip[-1]}): here staying may be right."
            )
        text += f", while the pixels under it change by {change:.0f} of 255 grey levels on average"
        if all(self.mask(f) is not None and (self.mask(f) > 0).any() for f in clip):
            c = np.array([self.object_point(f) for f in clip])
            text += (
                f" and the centre of the annotated objects moves by up to {float(np.hypot(*(c - c[0]).T).max()):.0f} px"
            )
        text += (
            ". That is the **positional shortcut**: nodes pooled from one zero-padded feature map can encode "
            "*where* they are, and a walker that stays in place comes home every time without matching any "
            "appearance. `walk.home_shift` exists to deny it in training: the walk must come home to a copy of "
            "frame 0 rolled by a known shift, where staying in place misses (`ever/walk.py`). "
        )
        shift = int(getattr(getattr(self.cfg, "walk", None), "home_shift", 0) or 0)
        if self.model_choice is not None and self.model_choice.untrained:
            text += "This model is untrained (random weights): it has learned nothing else to follow."
        elif self.model is None:
            text += "These are fixed features (no trained walk), so nothing denied the shortcut."
        elif shift:
            text += (
                f"This model was trained with `walk.home_shift` = {shift} px, and its most likely walk from "
                "this node still follows position."
            )
        else:
            text += "This model was trained without it (`walk.home_shift` = 0)."
        return text

    def topk(self, frame: int, node: int, k: int = 5, to: int | None = None):
        """Top-k matches of ``node`` in frame ``to`` (default next): (indices (k,), probabilities (k,),
        centres (k, 2))."""
        to = frame + 1 if to is None else to
        idx, p = topk_matches(self.transition(frame, node, to), k, self.nodes(to).valid)
        return idx, p, self.nodes(to).centers[idx]

    def source_labels(self, frame: int, node: int | None = None, mask: np.ndarray | None = None) -> torch.Tensor:
        """Soft labels (N, K) of the nodes of ``frame``: one-hot of ``node`` (K=1: the point / object), or of
        a label map ``mask`` (H, W) of ids 0..K-1 (the fraction of each node's pixels with each id)."""
        ns = self.nodes(frame)
        if mask is not None:
            return ns.fractions(mask).to(ns.emb.device)
        lab = torch.zeros(len(ns), 1, device=ns.emb.device)
        lab[node, 0] = 1
        return lab

    def propagate(
        self,
        frame: int,
        node: int,
        steps: int = 3,
        k: int = 5,
        mask: np.ndarray | None = None,
        topk_labels: int = 10,
        temperature: float | None = None,
    ) -> list[PropStep]:
        """Propagate the point/node (or a label map ``mask`` (H, W)) to the next ``steps`` frames.

        Labels: node-space label propagation (:func:`propagate_labels`, temperature ``eval.temperature``).
        Top-k: the chain of most likely transitions from ``node`` (each frame shows the k best matches of
        the node tracked so far).
        """
        targets = [i for i in range(frame + 1, frame + 1 + steps) if i < len(self)]
        src = self.nodes(frame)
        lab = self.source_labels(frame, node, mask)
        tn = [self.nodes(i) for i in targets]
        tau = temperature if temperature is not None else self.cfg.eval.temperature
        # context: the source frame and the previous frame (the source frame only for dense 480p cells: speed)
        soft = propagate_labels(
            src.emb,
            lab,
            [n.emb for n in tn],
            tau,
            topk_labels,
            src.valid,
            [n.valid for n in tn],
            use_previous=len(src) <= EXACT_NODES,
        )
        out, cur, prev = [], node, frame
        for i, ns, s in zip(targets, tn, soft):
            idx, p, xy = self.topk(prev, cur, k, to=i)
            col = 1 if mask is not None and s.shape[1] > 1 else 0
            heat = ns.paint(s[:, col])
            labels = (ns.paint(s.argmax(1).float()) if mask is not None else heat > 0.5).astype(np.int64)
            point = None
            if mask is None:
                j = int(s[:, 0].argmax())
                point = (float(ns.centers[j, 0]), float(ns.centers[j, 1]))
            track = int(idx[0]) if len(idx) else cur
            out.append(PropStep(i, s.cpu().numpy(), heat, labels, point, track, idx, p, xy))
            cur, prev = track, i
        return out

    def cache_info(self) -> dict:
        return {
            "frames_encoded": len(self._feats.d),
            "feature_mb": self._feats.bytes / 2**20,
            "max_feature_mb": self._feats.max_bytes / 2**20,
            "node_sets": len(self._nodes.d),
            "device": str(self.device),
        }
