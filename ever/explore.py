"""Interactive exploration of the contrastive random walk: look inside the walk of one video.

The logic behind the notebook ``book/explore.ipynb`` (which only wires widgets and plots). An
:class:`Explorer` holds one video and one model; it encodes a frame the first time it is needed and
keeps the dense 1/8 feature maps in a memory-bounded LRU cache, so moving a point or a node costs a
few small matrix products, not an encoder pass.

    ex = Explorer("data/ever-synth/JPEGImages/480p/val000", checkpoint="runs/x/checkpoint.pt", mode="patches")
    node = ex.node_at(frame=0, x=200, y=120)
    heat = ex.heatmap(0, node)                     # (H, W): transition probabilities to frame 1
    w = ex.walk(0, node, length=4)                 # most likely palindrome walk, return probability
    prop = ex.propagate(0, node=node, steps=3)     # propagated point/mask, top-k matches per frame
    fig = overview(ex, 0, node)                    # the three views as one matplotlib figure

Node modes (:data:`MODES`):

- ``cells``: every 1/8 feature cell is a node (dense; 6420 nodes at 854x480);
- ``patches``: the grid of ``patch_size``/``patch_stride`` patches the walk was trained on, average-
  pooled from the dense map (``PatchPoolNodes``);
- ``objects``: unsupervised segments (``ever.objects``), mask-pooled from the dense map.

Node embeddings are the walk's: encoder (``layer4``) -> projection head -> L2 norm, with the run's
temperature, so the transition row of a node is exactly the row of ``ever.walk.transition_matrices``.

The functions behind the views work on plain tensors and are tested without a display:
:func:`transition_probs`, :func:`topk_matches`, :func:`palindrome_walk`, :func:`propagate_labels`.
For many nodes (dense cells at 480p) the walk keeps a beam of the ``beam`` most likely nodes per frame
(rows of the transition matrices are computed for those only); it is exact when ``beam >= N`` and the
mass left out is reported (``WalkResult.lost_mass``).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

STRIDE = 8
MODES = ("cells", "patches", "objects")
EXACT_NODES = 2500  # Explorer.walk is exact up to this many nodes per frame ...
BEAM = 256  # ... else keeps a beam of this many nodes per frame
_NEG = -1e9  # logit of an invalid target node (as in ever.walk)
FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (t, 3, H, W) in [0, 1] -> (t, C, H/8, W/8)


# ----------------------------------------------------------------------------- pure functions (tested)

def _row_logp(src: torch.Tensor, dst: torch.Tensor, temperature: float,
              dst_valid: torch.Tensor | None = None) -> torch.Tensor:
    """log of the transition rows: (S, D) x (M, D) -> (S, M) log-softmax of similarity / temperature."""
    logits = src.float() @ dst.float().T / temperature
    if dst_valid is not None and not bool(dst_valid.all()):
        logits = logits.masked_fill(~dst_valid[None, :], _NEG)
    return torch.log_softmax(logits, dim=-1)


def transition_probs(src: torch.Tensor, dst: torch.Tensor, node: int, temperature: float,
                     dst_valid: torch.Tensor | None = None) -> torch.Tensor:
    """Transition probabilities (M,) of node ``node`` of a frame (src (N, D), unit-norm) to the nodes
    of the next frame (dst (M, D)): row ``node`` of ``softmax(src dst^T / temperature)``; sums to 1."""
    return _row_logp(src[node: node + 1], dst, temperature, dst_valid)[0].exp()


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


def palindrome_walk(embs: Sequence[torch.Tensor], node: int, temperature: float,
                    valids: Sequence[torch.Tensor | None] | None = None, beam: int | None = None,
                    frames: Sequence[int] | None = None) -> WalkResult:
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
    return WalkResult(frames=[int(frames[i]) if frames is not None else i for i in seq], start=int(node), path=path,
                      path_prob=float(math.exp(float(last[end]))), step_probs=steps, home_path=home,
                      home_path_prob=float(math.exp(float(last[node]))) if math.isfinite(float(last[node])) else 0.0,
                      return_prob=min(1.0, max(0.0, ret)),
                      end_probs={int(sup[i]): float(v) for v, i in zip(ev, ei)}, lost_mass=lost)


def propagate_labels(src_emb: torch.Tensor, src_labels: torch.Tensor, targets: Sequence[torch.Tensor],
                     temperature: float = 0.05, topk: int = 10, src_valid: torch.Tensor | None = None,
                     target_valids: Sequence[torch.Tensor | None] | None = None, use_previous: bool = True,
                     chunk: int = 2048) -> list[torch.Tensor]:
    """Label propagation in node space (the CRW protocol, context = source frame + previous frame).

    src_emb (N, D) and src_labels (N, K) soft labels of the source frame; targets: list of (M_t, D).
    Each target node takes the softmax(aff / temperature)-weighted labels of its ``topk`` most similar
    context nodes. Returns one (M_t, K) soft-label tensor per target frame.
    """
    keys_f = src_emb.float() if src_valid is None else src_emb.float()[src_valid]
    keys_l = src_labels.float() if src_valid is None else src_labels.float()[src_valid]
    tv = list(target_valids) if target_valids is not None else [None] * len(targets)
    out, prev = [], None
    for q, qv in zip(targets, tv):
        kf, kl = keys_f, keys_l
        if use_previous and prev is not None:
            kf, kl = torch.cat([kf, prev[0]]), torch.cat([kl, prev[1]])
        k = min(topk, kf.shape[0])
        lab = []
        for i in range(0, q.shape[0], chunk):
            v, idx = (q[i:i + chunk].float() @ kf.T).topk(k, dim=1)
            w = torch.softmax(v / temperature, dim=1)
            lab.append(torch.einsum("nk,nkc->nc", w, kl[idx]))
        soft = torch.cat(lab)
        if qv is not None:
            soft = soft * qv[:, None]
        out.append(soft)
        good = slice(None) if qv is None else qv
        prev = (q.float()[good], soft[good])
    return out


# ----------------------------------------------------------------------------- videos, models

class FrameSource:
    """Frames of a video (file, JPEG folder, DAVIS sequence) or of an array, with DAVIS masks when present."""

    def __init__(self, spec, name: str | None = None, folder_fps: float = 24.0):
        self.path: Path | None = None
        self._array: np.ndarray | None = None
        self._video = None
        self.mask_dir: Path | None = None
        if isinstance(spec, np.ndarray):
            if spec.ndim != 4 or spec.shape[-1] != 3:
                raise ValueError(f"frames array must be (T, H, W, 3) uint8, got {spec.shape}")
            self._array = spec.astype(np.uint8, copy=False)
            self.name = name or "array"
        else:
            from ever.data.video import open_video

            self.path = Path(spec)
            self._video = open_video(self.path, folder_fps)
            self.name = name or self.path.stem
            if self.path.is_dir() and self.path.parent.parent.name == "JPEGImages":
                md = self.path.parent.parent.parent / "Annotations" / self.path.parent.name / self.path.name
                self.mask_dir = md if md.is_dir() else None

    def __len__(self) -> int:
        return len(self._array) if self._array is not None else len(self._video)

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: frame {i} requested, the video has {len(self)} frames")
        if self._array is not None:
            return self._array[i]
        return self._video.get([i])[0]

    def mask(self, i: int) -> np.ndarray | None:
        """DAVIS annotation (H, W) int64 of frame ``i`` (0 = background), or None."""
        if self.mask_dir is None or not isinstance(getattr(self._video, "files", None), list):
            return None
        path = self.mask_dir / f"{self._video.files[i].stem}.png"
        if not path.is_file():
            return None
        from PIL import Image

        with Image.open(path) as im:
            mode, arr = im.mode, np.asarray(im).astype(np.int64)
        if mode == "1" or (mode == "L" and np.isin(arr, (0, 255)).all()):
            arr = (arr > 0).astype(np.int64)
        return arr

    def __repr__(self) -> str:
        return f"FrameSource({self.name!r}, frames={len(self)})"


def default_roots(repo: str | Path | None = None) -> dict[str, Path]:
    """Where videos are looked for: the embedded ever-synth data and the development DAVIS sequences."""
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[1]
    return {"ever-synth": repo / "data" / "ever-synth",
            "davis2016-dev": (repo.parent / "shared" / "data" / "davis2016-dev")}


def list_videos(roots: dict[str, str | Path] | None = None) -> dict[str, str]:
    """``{label: path}`` of the DAVIS-layout sequences (JPEGImages/480p/*) and video files (videos/**)
    under each root that exists (missing roots are skipped)."""
    from ever.data.video import VIDEO_EXTS

    out: dict[str, str] = {}
    for label, root in (roots or default_roots()).items():
        root = Path(root)
        jpeg = root / "JPEGImages" / "480p"
        if jpeg.is_dir():
            for d in sorted(p for p in jpeg.iterdir() if p.is_dir()):
                out[f"{label}/{d.name}"] = str(d)
        vids = root / "videos"
        if vids.is_dir():
            for f in sorted(vids.rglob("*")):
                if f.suffix.lower() in VIDEO_EXTS:
                    out[f"{label}/videos/{f.relative_to(vids)}"] = str(f)
    return out


def find_checkpoints(roots: Sequence[str | Path] = ("runs", "/tmp/runs")) -> list[str]:
    """``checkpoint.pt`` files one level below each root (run folders)."""
    found = []
    for r in roots:
        r = Path(r)
        if r.is_dir():
            found += sorted(str(p) for p in r.glob("*/checkpoint.pt"))
    return found


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` or, when None/'auto', CUDA if available else CPU (chosen once per Explorer)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_model(checkpoint: str | Path | None = None, width: int = 8, proj_dim: int = 32, seed: int = 0):
    """(model in eval mode, Config) from a checkpoint, or a random-init tiny model when ``checkpoint``
    is None or empty (for a dry run without a trained run)."""
    from ever.config import Config
    from ever.models import EverModel, load_checkpoint

    if checkpoint:
        return load_checkpoint(checkpoint)
    cfg = Config()
    cfg.model.width, cfg.model.proj_dim = width, proj_dim
    cfg.nodes.patch_size, cfg.nodes.patch_stride = 32, 16
    torch.manual_seed(seed)
    return EverModel(cfg.model).eval(), cfg


# ----------------------------------------------------------------------------- nodes of one frame

@dataclass
class NodeSet:
    """The nodes of one frame: embeddings, validity, centres, and how to paint them."""

    kind: str
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

    def _pixel_index(self) -> np.ndarray:
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
        n = int(self._pixel_index()[yi, xi])
        if not bool(self.valid[n]):
            d = ((self.centers - [x, y]) ** 2).sum(1)
            d[~self.valid.cpu().numpy()] = np.inf
            n = int(d.argmin())
        return n

    def paint(self, values) -> np.ndarray:
        """Node values (N,) -> (H, W) image (each pixel takes the value of its node)."""
        v = np.asarray(values.detach().cpu() if torch.is_tensor(values) else values, dtype=np.float32)
        return v[self._pixel_index()]


# ----------------------------------------------------------------------------- the explorer

class _LRU:
    """A dict bounded in bytes (tensors / arrays); the least recently used entries are evicted."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes, self.d = max_bytes, 0, OrderedDict()

    @staticmethod
    def _size(v) -> int:
        if torch.is_tensor(v):
            return v.numel() * v.element_size()
        if isinstance(v, np.ndarray):
            return v.nbytes
        if isinstance(v, NodeSet):
            return v.emb.numel() * 4 + v.centers.nbytes + (v.labels.nbytes if v.labels is not None else 0)
        return 1024

    def get(self, key):
        if key in self.d:
            self.d.move_to_end(key)
            return self.d[key]
        return None

    def put(self, key, value) -> None:
        if key in self.d:
            self.bytes -= self._size(self.d.pop(key))
        self.d[key] = value
        self.bytes += self._size(value)
        while self.bytes > self.max_bytes and len(self.d) > 1:
            _, old = self.d.popitem(last=False)
            self.bytes -= self._size(old)


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
    topk_probs: np.ndarray
    topk_xy: np.ndarray  # (k, 2) their centres


class Explorer:
    """One video + one model: cached features, nodes of each frame, and the views of the walk.

    source: a path (video file, JPEG folder, DAVIS sequence folder), an array (T, H, W, 3) uint8 or a
    :class:`FrameSource`. model/cfg: an ``EverModel`` and its ``Config`` (or ``checkpoint=``; neither:
    a random tiny model). ``feature_fn`` replaces the encoder ((t, 3, H, W) in [0, 1] -> (t, C, H/8, W/8),
    used without head; e.g. a colour feature for tests). ``long_side``: resize frames so that their long
    side is this (0 = native). Features are cached up to ``max_cache_mb``.
    """

    def __init__(self, source, model=None, cfg=None, *, checkpoint: str | Path | None = None, mode: str = "patches",
                 feature_fn: FeatureFn | None = None, temperature: float | None = None, patch_size: int | None = None,
                 patch_stride: int | None = None, objects_k: int | None = None, long_side: int = 0,
                 device: str | torch.device | None = None, max_cache_mb: float = 1024, use_head: bool = True):
        self.source = source if isinstance(source, FrameSource) else FrameSource(source)
        self.device = pick_device(device)
        if feature_fn is None and model is None:
            model, cfg = load_model(checkpoint)
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
        self.long_side = int(long_side)
        self._feats = _LRU(int(max_cache_mb * 2**20))
        self._nodes = _LRU(int(max(16, max_cache_mb / 8) * 2**20))
        self._frames = _LRU(int(max(16, max_cache_mb / 8) * 2**20))
        self.mode = "patches"
        self.set_mode(mode)

    # --- frames and features
    def __len__(self) -> int:
        return len(self.source)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "objects":
            try:
                import ever.objects  # noqa: F401
            except ImportError as e:
                raise RuntimeError(f"object nodes need ever.objects (segment_frames, ObjectNodes): {e}") from None
        self.mode = mode

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` (H, W, 3) uint8 at the working resolution."""
        f = self._frames.get(i)
        if f is None:
            f = self.source.frame(i)
            if self.long_side and max(f.shape[:2]) != self.long_side:
                s = self.long_side / max(f.shape[:2])
                size = (max(1, round(f.shape[0] * s)), max(1, round(f.shape[1] * s)))
                x = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None].float()
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
                f = x[0].permute(1, 2, 0).clamp(0, 255).round().to(torch.uint8).numpy()
            self._frames.put(i, f)
        return f

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.frame(0).shape[:2])

    def mask(self, i: int) -> np.ndarray | None:
        """DAVIS annotation of frame ``i`` at the working resolution, or None."""
        m = self.source.mask(i)
        if m is None:
            return None
        H, W = self.size
        if m.shape != (H, W):
            yy = (np.arange(H) * m.shape[0] / H).astype(int)
            xx = (np.arange(W) * m.shape[1] / W).astype(int)
            m = m[yy[:, None], xx[None, :]]
        return m

    def _tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, Hp, Wp) in [0, 1], padded (edge) to multiples of 8."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None].float() / 255
        H, W = rgb.shape[:2]
        ph, pw = -H % STRIDE, -W % STRIDE
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def features(self, i: int) -> torch.Tensor:
        """Dense features (C, Hp/8, Wp/8) of frame ``i`` (computed once, cached)."""
        f = self._feats.get(i)
        if f is None:
            x = self._tensor(self.frame(i))
            with torch.inference_mode():
                f = (self.feature_fn(x) if self.feature_fn is not None else self.model.dense(x))[0].float()
            exp = (x.shape[-2] // STRIDE, x.shape[-1] // STRIDE)
            if tuple(f.shape[-2:]) != exp:
                raise ValueError(f"feature function returned {tuple(f.shape)} for a frame of {tuple(x.shape[-2:])}; "
                                 f"expected (C, {exp[0]}, {exp[1]})")
            self._feats.put(i, f)
        return f

    def prefetch(self, indices: Sequence[int]) -> None:
        """Encode these frames now (e.g. the clip of the current frame)."""
        for i in indices:
            self.features(i)

    def _embed(self, feats: torch.Tensor) -> torch.Tensor:
        """(N, C) pooled features -> (N, D) unit-norm walk embeddings."""
        with torch.inference_mode():
            if self.use_head:
                feats = self.model.head(feats)
            return F.normalize(feats.float(), dim=-1)

    def nodes(self, i: int, mode: str | None = None) -> NodeSet:
        """The nodes of frame ``i`` in ``mode`` (default: the current mode)."""
        mode = mode or self.mode
        key = (mode, i, self.patch, self.stride, self.objects_k)
        ns = self._nodes.get(key)
        if ns is not None:
            return ns
        fmap = self.features(i)  # (C, h, w)
        C, h, w = fmap.shape
        H, W = self.size
        if mode == "cells":
            emb = self._embed(fmap.flatten(1).T)
            ys, xs = np.meshgrid(np.arange(h) * STRIDE + STRIDE / 2, np.arange(w) * STRIDE + STRIDE / 2, indexing="ij")
            ns = NodeSet("cells", emb, torch.ones(h * w, dtype=torch.bool, device=emb.device),
                         np.stack([xs.ravel(), ys.ravel()], 1), (H, W), (h, w), STRIDE, STRIDE)
        elif mode == "patches":
            p = min(self.patch, h * STRIDE, w * STRIDE)
            cells = F.avg_pool2d(fmap[None], p // STRIDE, self.stride // STRIDE)[0]  # (C, gh, gw)
            gh, gw = cells.shape[-2:]
            emb = self._embed(cells.flatten(1).T)
            ys, xs = np.meshgrid(np.arange(gh) * self.stride + p / 2, np.arange(gw) * self.stride + p / 2, indexing="ij")
            ns = NodeSet("patches", emb, torch.ones(gh * gw, dtype=torch.bool, device=emb.device),
                         np.stack([xs.ravel(), ys.ravel()], 1), (H, W), (gh, gw), p, self.stride)
        else:
            ns = self._object_nodes(i, fmap)
        self._nodes.put(key, ns)
        return ns

    def _object_nodes(self, i: int, fmap: torch.Tensor) -> NodeSet:
        try:
            from ever.objects import mask_pool, segment_frames, segment_mass
        except ImportError as e:
            raise RuntimeError(f"object nodes need ever.objects (segment_frames, segment_mass, mask_pool): {e}") from None
        import dataclasses

        ncfg = dataclasses.replace(self.cfg.nodes, k=self.objects_k)
        if ncfg.segmenter not in ("felzenszwalb", "slic"):
            ncfg = dataclasses.replace(ncfg, segmenter="felzenszwalb")
        rgb = self.frame(i)
        H, W = rgb.shape[:2]
        K = self.objects_k
        seg = segment_frames(rgb[None], ncfg)[0]  # (H, W) in [0, K)
        h, w = fmap.shape[-2:]
        padded = np.pad(seg, ((0, h * STRIDE - H), (0, w * STRIDE - W)), mode="edge")
        mass = segment_mass(torch.from_numpy(padded)[None].to(fmap.device), K, h, w)
        feats, valid = mask_pool(fmap[None], mass)
        emb = self._embed(feats[0])
        cnt = np.bincount(seg.ravel(), minlength=K).astype(np.float64)
        yy, xx = np.mgrid[:H, :W]
        cx = np.bincount(seg.ravel(), xx.ravel(), K) / np.maximum(cnt, 1)
        cy = np.bincount(seg.ravel(), yy.ravel(), K) / np.maximum(cnt, 1)
        return NodeSet("objects", emb, valid[0].to(emb.device), np.stack([cx, cy], 1), (H, W), labels=seg)

    # --- views
    def clip(self, frame: int, length: int = 4, stride: int = 1) -> list[int]:
        """Frame indices of the walk's clip starting at ``frame`` (truncated at the end of the video)."""
        idx = [frame + t * stride for t in range(length)]
        idx = [i for i in idx if i < len(self)]
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

    def topk(self, frame: int, node: int, k: int = 5, to: int | None = None):
        """Top-k matches of ``node`` in frame ``to`` (default next): (indices, probabilities, centres (k, 2))."""
        to = frame + 1 if to is None else to
        idx, p = topk_matches(self.transition(frame, node, to), k, self.nodes(to).valid)
        return idx, p, self.nodes(to).centers[idx]

    def source_labels(self, frame: int, node: int | None = None, mask: np.ndarray | None = None) -> torch.Tensor:
        """Soft labels (N, K) of the nodes of ``frame``: one-hot of ``node`` (K=1: the point / object), or a
        label map (H, W) of ids 0..K-1 (fraction of each node's pixels with each id)."""
        ns = self.nodes(frame)
        if mask is None:
            lab = torch.zeros(len(ns), 1, device=ns.emb.device)
            lab[node, 0] = 1
            return lab
        mask = np.asarray(mask).astype(np.int64)
        K = int(mask.max()) + 1
        idx = ns._pixel_index() if ns.kind != "cells" else None
        if ns.kind == "cells":
            h, w = ns.grid
            m = np.pad(mask, ((0, h * STRIDE - mask.shape[0]), (0, w * STRIDE - mask.shape[1])), mode="edge")
            oh = torch.from_numpy(np.eye(K, dtype=np.float32)[m]).permute(2, 0, 1)[None]
            lab = F.avg_pool2d(oh, STRIDE)[0].flatten(1).T
        else:
            N = len(ns)
            cnt = np.zeros((N, K), np.float32)
            np.add.at(cnt, (idx.ravel(), mask.ravel()), 1)
            lab = torch.from_numpy(cnt / np.maximum(cnt.sum(1, keepdims=True), 1))
        return lab.to(ns.emb.device)

    def propagate(self, frame: int, node: int, steps: int = 3, k: int = 5, mask: np.ndarray | None = None,
                  topk_labels: int = 10, temperature: float | None = None) -> list[PropStep]:
        """Propagate the point/node (or a label map ``mask``) to the next ``steps`` frames.

        Labels: node-space label propagation (:func:`propagate_labels`). Top-k: the chain of most likely
        transitions from ``node`` (each frame shows the k best matches of the node tracked so far).
        """
        targets = [i for i in range(frame + 1, frame + 1 + steps) if i < len(self)]
        src = self.nodes(frame)
        lab = self.source_labels(frame, node, mask)
        tn = [self.nodes(i) for i in targets]
        tau = temperature if temperature is not None else self.cfg.eval.temperature
        # context: the source frame and the previous frame (the source frame only for dense 480p cells: speed)
        soft = propagate_labels(src.emb, lab, [n.emb for n in tn], tau, topk_labels, src.valid, [n.valid for n in tn],
                                use_previous=len(src) <= EXACT_NODES)
        out, cur, prev = [], node, frame
        for i, ns, s in zip(targets, tn, soft):
            idx, p, xy = self.topk(prev, cur, k, to=i)
            col = 1 if mask is not None and s.shape[1] > 1 else 0
            heat = ns.paint(s[:, col])
            labels = ns.paint(s.argmax(1).float()).astype(np.int64) if mask is not None else (heat > 0.5).astype(np.int64)
            point = None
            if mask is None:
                j = int(s[:, 0].argmax())
                point = (float(ns.centers[j, 0]), float(ns.centers[j, 1]))
            out.append(PropStep(i, s.cpu().numpy(), heat, labels, point, int(idx[0]) if len(idx) else cur, idx, p, xy))
            cur, prev = (int(idx[0]) if len(idx) else cur), i
        return out

    def cache_info(self) -> dict:
        return {"frames_encoded": len(self._feats.d), "feature_mb": self._feats.bytes / 2**20,
                "max_feature_mb": self._feats.max_bytes / 2**20, "node_sets": len(self._nodes.d), "device": str(self.device)}


# ----------------------------------------------------------------------------- figures (matplotlib)

def _show(ax, img: np.ndarray, max_side: int = 320, **kw):
    """imshow subsampled to at most ``max_side`` px (fast to draw), in the frame's pixel coordinates."""
    H, W = img.shape[:2]
    f = max(1, math.ceil(max(H, W) / max_side))
    return ax.imshow(img[::f, ::f], extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="nearest", **kw)


def _sub(a: np.ndarray, max_side: int = 320):
    """(x, y, a) subsampled for contour plots, in pixel coordinates."""
    f = max(1, math.ceil(max(a.shape) / max_side))
    return np.arange(0, a.shape[1], f), np.arange(0, a.shape[0], f), a[::f, ::f].astype(np.float32)


def _outline(ax, ns: NodeSet, node: int, color: str = "cyan") -> None:
    """Draw the outline of a node (cell/patch square, or the segment's contour)."""
    import matplotlib.patches as mp

    if ns.labels is not None:
        ax.contour(*_sub(ns.labels == node), levels=[0.5], colors=[color], linewidths=1.5)
    else:
        x, y = ns.centers[node]
        half = ns.patch / 2
        ax.add_patch(mp.Rectangle((x - half, y - half), ns.patch, ns.patch, fill=False, ec=color, lw=1.5))


def _segments(ax, ns: NodeSet) -> None:
    if ns.labels is not None:
        ax.contour(*_sub(ns.labels), levels=np.arange(ns.labels.max()) + 0.5, colors=["white"], linewidths=0.5, alpha=0.7)


def plot_transition(ex: Explorer, frame: int, node: int, axes=None):
    """(1) The node on its frame and its transition probabilities to the next frame as a heat map."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    a, b = ex.nodes(frame), ex.nodes(frame + 1)
    _show(axes[0], ex.frame(frame), 480)
    _segments(axes[0], a)
    _outline(axes[0], a, node)
    axes[0].set_title(f"frame {frame}, node {node} ({a.kind}, {len(a)} nodes)", fontsize=9)
    probs = ex.transition(frame, node)
    _show(axes[1], ex.frame(frame + 1), 480)
    im = _show(axes[1], b.paint(probs), 480, cmap="magma", alpha=0.65, vmin=0)
    _segments(axes[1], b)
    idx, p, xy = ex.topk(frame, node, 5)
    axes[1].scatter(xy[:, 0], xy[:, 1], s=30, facecolors="none", edgecolors="cyan")
    axes[1].set_title(f"P(node → frame {frame + 1}); max {float(probs.max()):.2f}", fontsize=9)
    plt.colorbar(im, ax=axes[1], fraction=0.03)
    for ax in axes:
        ax.axis("off")
    return axes[0].figure


def plot_walk(ex: Explorer, w: WalkResult, axes=None):
    """(2) The most likely palindrome walk, one panel per position, with the return probability."""
    import matplotlib.pyplot as plt

    n = len(w.frames)
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.3 * n, 2.3), squeeze=False)
        axes = axes[0]
    for j, (f, v) in enumerate(zip(w.frames, w.path)):
        ns = ex.nodes(f)
        _show(axes[j], ex.frame(f), 240)
        _outline(axes[j], ns, v, "lime" if v == w.start else "orange")
        if j == 0 or j == n - 1:
            _outline(axes[j], ns, w.start, "cyan")
        title = f"t={f}" + ("" if j == 0 else f"  p={w.step_probs[j - 1]:.2f}")
        axes[j].set_title(title, fontsize=8)
        axes[j].axis("off")
    home = "returns home" if w.returns_home else f"ends at node {w.path[-1]}"
    axes[0].figure.suptitle(f"most likely walk (p={w.path_prob:.3g}, {home}); "
                            f"P(return to node {w.start}) = {w.return_prob:.3f}", fontsize=10)
    return axes[0].figure


def plot_propagation(ex: Explorer, frame: int, steps: list[PropStep], axes=None, point=None):
    """(3) The propagated point/mask over the next frames, with the top-k matches drawn."""
    import matplotlib.pyplot as plt

    n = len(steps) + 1
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(2.8 * n, 2.4), squeeze=False)
        axes = axes[0]
    _show(axes[0], ex.frame(frame))
    if point is not None:
        axes[0].scatter([point[0]], [point[1]], marker="+", s=80, c="cyan")
    axes[0].set_title(f"source frame {frame}", fontsize=8)
    for ax, s in zip(axes[1:], steps):
        _show(ax, ex.frame(s.frame))
        _show(ax, np.ma.masked_less(s.heat, 0.05), cmap="viridis", alpha=0.55, vmin=0, vmax=1)
        ax.scatter(s.topk_xy[:, 0], s.topk_xy[:, 1], s=40 * (1 + 4 * s.topk_probs), facecolors="none",
                   edgecolors="orange")
        if s.point is not None:
            ax.scatter([s.point[0]], [s.point[1]], marker="+", s=80, c="cyan")
        ax.set_title(f"frame {s.frame}: top-{len(s.topk)} p={s.topk_probs[0]:.2f}" if len(s.topk) else f"frame {s.frame}",
                     fontsize=8)
    for ax in axes:
        ax.axis("off")
    return axes[0].figure


def overview(ex: Explorer, frame: int, node: int, length: int = 4, steps: int = 3, k: int = 5,
             mask: np.ndarray | None = None):
    """The three views of one choice, as three matplotlib figures (transition, walk, propagation)."""
    f1 = plot_transition(ex, frame, node)
    f2 = plot_walk(ex, ex.walk(frame, node, length))
    f3 = plot_propagation(ex, frame, ex.propagate(frame, node, steps, k, mask=mask), point=tuple(ex.nodes(frame).centers[node]))
    return f1, f2, f3
