"""``ever-synth``: a small, deterministic, labelled video dataset generated from real photographs.

Every sequence is a virtual camera panning and zooming over a photograph (larger than the frame)
with 2-5 irregular objects moving over it. The objects are textured from crops of the *same* photo
as the background or of another photo colour-matched to it, so colour alone does not separate them.
They translate, rotate and change scale along smooth paths, occlude each other (fixed depth order;
the masks of occluded objects are cut), partly leave the frame, and are lit by a light that changes
over time; Gaussian sensor noise and JPEG / H.264 compression are added last. Train and eval use
disjoint photo pools and different random streams.

On disk (DAVIS layout, so the evaluation code reads it like DAVIS 2017)::

    root/JPEGImages/480p/<seq>/00000.jpg ...   eval frames (H, W, 3)
    root/Annotations/480p/<seq>/00000.png ...  eval masks: palette PNG (mode "P"), 0 = bg, 1..n objects
    root/ImageSets/2017/val.txt, train.txt     sequence names, one per line
    root/videos/train/<seq>.mp4                unlabelled training video (H.264)
    root/checksums.sha256                      "<sha256>  <relative path>" for every file above
    root/synth_config.yaml                     the SynthConfig that made them (written last)

    info = generate(Path("data/ever-synth"), SynthConfig())
    frames, labels = render_sequence(SynthConfig(), "val", 0)   # (T,H,W,3) uint8, (T,H,W) uint8

Same config -> byte-identical files (on the same software stack).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from ever.data.davis import davis_palette
from ever.errors import DataError
from ever.utils import sha256_file

GENERATOR_VERSION = 1

# Disjoint photo pools (all shipped inside scikit-image, no download).
TRAIN_IMAGES = ("astronaut", "rocket", "hubble_deep_field", "camera", "brick", "grass", "moon", "clock")
EVAL_IMAGES = ("coffee", "chelsea", "immunohistochemistry", "retina", "gravel", "coins", "cell", "page")
_SPLIT_ID = {"train": 0, "val": 1}


@dataclass
class SynthConfig:
    seed: int = 0
    num_train: int = 24  # unlabelled mp4 training sequences
    num_eval: int = 6  # labelled eval sequences (split "val")
    frames_train: int = 48
    frames_eval: int = 40
    height: int = 240
    width: int = 432
    min_objects: int = 2
    max_objects: int = 5
    jpeg_quality: int = 85
    noise: float = 3.0  # std of Gaussian sensor noise, in 8-bit grey levels
    fps: int = 24  # of the mp4 files
    crf: int = 23  # H.264 quality of the mp4 files (lower = better)

    def validate(self) -> None:
        ok = (
            self.num_train >= 0
            and self.num_eval >= 0
            and self.frames_train >= 2
            and self.frames_eval >= 2
            and self.height >= 32
            and self.width >= 32
            and self.height % 2 == 0
            and self.width % 2 == 0
            and 1 <= self.min_objects <= self.max_objects <= 20
            and 1 <= self.jpeg_quality <= 100
            and self.noise >= 0
            and self.fps >= 1
            and 0 <= self.crf <= 51
        )
        if not ok:
            raise DataError(
                f"invalid SynthConfig {asdict(self)} (sizes must be even and >= 32, counts >= 0, "
                "1 <= min_objects <= max_objects, 1 <= jpeg_quality <= 100)"
            )


def seq_names(cfg: SynthConfig, split: str) -> list[str]:
    n = cfg.num_train if split == "train" else cfg.num_eval
    return [f"{split}{i:03d}" for i in range(n)]


# ----------------------------------------------------------------------------------------- photos


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as float32 (h, w, 3) in [0, 1] (grey images repeated)."""
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3].astype(np.float32) / 255.0


def _tinted(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey photos get a random two-colour tint; colour photos a mild random channel gain."""
    if np.allclose(img[..., 0], img[..., 1]):
        c0, c1 = rng.uniform(0.0, 0.5, 3), rng.uniform(0.5, 1.0, 3)
        return (c0 + (c1 - c0) * img[..., :1]).astype(np.float32)
    return np.clip(img * rng.uniform(0.85, 1.15, 3), 0, 1).astype(np.float32)


def _colour_match(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Match per-channel mean and std of ``src`` to ``ref`` (both (h, w, 3) float)."""
    s_mu, s_sd = src.reshape(-1, 3).mean(0), src.reshape(-1, 3).std(0) + 1e-3
    r_mu, r_sd = ref.reshape(-1, 3).mean(0), ref.reshape(-1, 3).std(0)
    return np.clip((src - s_mu) / s_sd * r_sd + r_mu, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------- a sequence


def _smooth(rng: np.random.Generator, tau: np.ndarray, amp: float, n: int = 2) -> np.ndarray:
    """A smooth random 1-D signal over tau in [0, 1]: sum of ``n`` low-frequency sines, |x| <= amp."""
    out = np.zeros_like(tau)
    for _ in range(n):
        f, ph = rng.uniform(0.3, 1.5), rng.uniform(0, 2 * math.pi)
        out += np.sin(2 * math.pi * f * tau + ph)
    return amp * out / n


def _plan(cfg: SynthConfig, split: str, rng: np.random.Generator, T: int) -> dict[str, Any]:
    """Draw every random choice of one sequence (photos, camera path, objects, light)."""
    H, W = cfg.height, cfg.width
    pool = TRAIN_IMAGES if split == "train" else EVAL_IMAGES
    tau = np.linspace(0.0, 1.0, T)
    bg_name = pool[rng.integers(len(pool))]
    bg = _tinted(_photo(bg_name), rng)
    # World coordinates are frame pixels at zoom 1; the photo covers 1.6x the frame.
    s_base = max(1.6 * W / bg.shape[1], 1.6 * H / bg.shape[0])
    world = np.array([bg.shape[1] * s_base, bg.shape[0] * s_base])
    zoom = 1.1 + _smooth(rng, tau, 0.1)
    margin = world / 2 - np.array([W, H]) / 2 / zoom.min()
    centre = world / 2 + np.stack([_smooth(rng, tau, 0.3 * margin[0]), _smooth(rng, tau, 0.3 * margin[1])], 1)
    cam = {"zoom": zoom, "centre": centre}

    objects = []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        if rng.random() < 0.6:  # texture from another part of the background photo
            tex = bg
        else:  # another photo of the pool, colour-matched to the background
            tex = _colour_match(_tinted(_photo(pool[rng.integers(len(pool))]), rng), bg)
        r0 = rng.uniform(0.12, 0.28) * min(H, W)
        harm = [(kk, rng.uniform(0, 0.35) / kk**0.7, rng.uniform(0, 2 * math.pi)) for kk in range(2, 7)]
        # Path: start inside the frame, end anywhere near it (so objects cross, occlude, leave).
        c0 = centre[0] + (np.array([W, H]) * rng.uniform(0.15, 0.85, 2) - np.array([W, H]) / 2) / zoom[0]
        travel = rng.uniform(0.4, 1.6) * r0 * np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)])
        wiggle = np.stack([_smooth(rng, tau, 0.25 * r0), _smooth(rng, tau, 0.25 * r0)], 1)
        pos = c0 + tau[:, None] * travel + wiggle
        theta = rng.uniform(0, 2 * math.pi) + rng.uniform(-1.0, 1.0) * tau + _smooth(rng, tau, 0.3)
        scale = np.exp(rng.uniform(-0.4, 0.4) * tau + _smooth(rng, tau, 0.15))
        # Texture placement inside the texture photo (photo px per object px, and offset).
        t_scale = rng.uniform(0.6, 1.4) / s_base if tex is bg else rng.uniform(0.5, 1.2)
        t_off = np.array([rng.uniform(0.2, 0.8) * tex.shape[1], rng.uniform(0.2, 0.8) * tex.shape[0]])
        objects.append(dict(tex=tex, r0=r0, harm=harm, pos=pos, theta=theta, scale=scale, t_scale=t_scale, t_off=t_off))
    light = {
        "gain": 1.0 + _smooth(rng, tau, 0.25),
        "tint": 1.0 + np.stack([_smooth(rng, tau, 0.08) for _ in range(3)], 1),
        "grad": np.stack([_smooth(rng, tau, 0.35), _smooth(rng, tau, 0.2)], 1),  # x, y brightness slope
    }
    return dict(bg=bg, s_base=s_base, cam=cam, objects=objects, light=light)


def _sample(src: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear sample of ``src`` (1, 3, h, w) at pixel coords ``xy`` (T, H, W, 2) -> (T, 3, H, W)."""
    h, w = src.shape[-2:]
    T, H, W, _ = xy.shape
    g = torch.stack([2 * xy[..., 0] / (w - 1) - 1, 2 * xy[..., 1] / (h - 1) - 1], -1)
    out = F.grid_sample(src, g.reshape(1, T * H, W, 2), mode="bilinear", padding_mode="reflection", align_corners=True)
    return out[0].reshape(3, T, H, W).permute(1, 0, 2, 3)


def _render(
    cfg: SynthConfig, plan: dict[str, Any], frames: np.ndarray, rng: np.random.Generator | None, image: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Render frames ``frames`` (indices) of a planned sequence -> ((t,H,W,3) uint8, (t,H,W) uint8).

    ``rng`` draws the sensor noise (None = no noise); ``image=False`` computes the labels only.
    """
    H, W = cfg.height, cfg.width
    t = torch.from_numpy(np.asarray(frames))
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    pix = torch.stack([xs - W / 2, ys - H / 2], -1)  # (H, W, 2), frame centre = 0
    zoom = f32(plan["cam"]["zoom"])[t].view(-1, 1, 1, 1)
    world = f32(plan["cam"]["centre"])[t].view(-1, 1, 1, 2) + pix / zoom  # (t, H, W, 2)
    as_src = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    img = _sample(as_src(plan["bg"]), world / plan["s_base"]) if image else None
    labels = torch.zeros(len(t), H, W, dtype=torch.uint8)
    cz, cc = plan["cam"]["zoom"], plan["cam"]["centre"]
    for k, o in enumerate(plan["objects"], start=1):  # depth order: later objects are in front
        reach = o["r0"] * (1 + sum(a for _, a, _ in o["harm"])) + 2  # bounding radius, object px
        tex_src = as_src(o["tex"]) if image else None
        for j, tj in enumerate(frames):  # work inside the object's bounding box only
            sc, th, zj = float(o["scale"][tj]), float(o["theta"][tj]), float(cz[tj])
            cx, cy = zj * (o["pos"][tj] - cc[tj]) + np.array([W / 2, H / 2])
            rr = zj * sc * reach
            x0, x1 = max(int(cx - rr), 0), min(int(cx + rr) + 2, W)
            y0, y1 = max(int(cy - rr), 0), min(int(cy + rr) + 2, H)
            if x0 >= x1 or y0 >= y1:
                continue
            d = world[j, y0:y1, x0:x1] - f32(o["pos"][tj])
            c, s = math.cos(th), math.sin(th)
            u = torch.stack([(c * d[..., 0] + s * d[..., 1]) / sc, (-s * d[..., 0] + c * d[..., 1]) / sc], -1)
            r, phi = u.norm(dim=-1), torch.atan2(u[..., 1], u[..., 0])
            radius = torch.ones_like(phi)
            for kk, a, ph in o["harm"]:
                radius = radius + a * torch.cos(kk * phi + ph)
            radius = o["r0"] * radius.clamp(min=0.3)
            alpha = ((radius - r) * sc * zj + 0.5).clamp(0, 1)  # ~1 px soft edge in the frame
            if image:
                tex = _sample(tex_src, f32(o["t_off"]) + float(o["t_scale"]) * u[None])[0]
                img[j, :, y0:y1, x0:x1] = img[j, :, y0:y1, x0:x1] * (1 - alpha) + tex * alpha
            labels[j, y0:y1, x0:x1][alpha >= 0.5] = k
    if not image:
        return None, labels.numpy()
    L = plan["light"]
    gx = torch.linspace(-0.5, 0.5, W).view(1, 1, 1, W)
    gy = torch.linspace(-0.5, 0.5, H).view(1, 1, H, 1)
    gain = f32(L["gain"])[t].view(-1, 1, 1, 1) * f32(L["tint"])[t].view(-1, 3, 1, 1)
    gain = gain * (1 + f32(L["grad"])[t, 0].view(-1, 1, 1, 1) * gx + f32(L["grad"])[t, 1].view(-1, 1, 1, 1) * gy)
    out = (img * gain).permute(0, 2, 3, 1).numpy() * 255.0
    if rng is not None and cfg.noise > 0:
        out = out + rng.standard_normal(out.shape, dtype=np.float32) * np.float32(cfg.noise)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), labels.numpy()


def render_sequence(
    cfg: SynthConfig, split: str, index: int, image: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Render sequence ``index`` of ``split`` ("train" | "val") in memory (before compression).

    Returns frames (T, H, W, 3) uint8 (None when ``image`` is False: labels only, faster) and labels
    (T, H, W) uint8 (0 = background, 1..n objects). Every object is visible (>= 0.5% of the frame)
    in frame 0, as in DAVIS.
    """
    if split not in _SPLIT_ID:
        raise DataError(f"ever-synth: unknown split {split!r} (train | val)")
    T = cfg.frames_train if split == "train" else cfg.frames_eval
    rng = np.random.default_rng((cfg.seed, _SPLIT_ID[split], index))
    min_area = 0.005 * cfg.height * cfg.width
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small tensors: one thread is faster (and never oversubscribes)
    try:
        for _ in range(50):  # re-draw until every object shows in the first frame
            plan = _plan(cfg, split, rng, T)
            _, lab0 = _render(cfg, plan, np.array([0]), None, image=False)
            if all((lab0 == k).sum() >= min_area for k in range(1, len(plan["objects"]) + 1)):
                break
        return _render(cfg, plan, np.arange(T), rng, image=image)
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------- writing


def _write_jpeg(path: Path, frame: np.ndarray, quality: int) -> None:
    from PIL import Image

    Image.fromarray(frame).save(path, format="JPEG", quality=quality)


def _write_png(path: Path, labels: np.ndarray) -> None:
    from PIL import Image

    im = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
    im.putpalette(davis_palette())
    im.save(path, format="PNG")


def _write_mp4(path: Path, frames: np.ndarray, cfg: SynthConfig) -> None:
    import imageio_ffmpeg

    T, H, W, _ = frames.shape
    w = imageio_ffmpeg.write_frames(
        str(path),
        (W, H),
        fps=cfg.fps,
        codec="libx264",
        quality=None,
        macro_block_size=2,
        output_params=[
            "-crf",
            str(cfg.crf),
            "-preset",
            "fast",
            "-threads",
            "1",
            "-map_metadata",
            "-1",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
        ],
    )
    w.send(None)
    for f in frames:
        w.send(np.ascontiguousarray(f))
    w.close()


def _write_sequence(root: Path, cfg: SynthConfig, split: str, i: int, name: str, written: list[Path]) -> None:
    """Render one sequence and write it (mp4 for train; JPEG frames + palette PNGs for val)."""
    frames, labels = render_sequence(cfg, split, i)
    if split == "train":
        out = root / "videos" / "train" / f"{name}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_mp4(out, frames, cfg)
        written.append(out)
        return
    jdir, adir = root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name
    jdir.mkdir(parents=True)
    adir.mkdir(parents=True)
    for t in range(len(frames)):
        _write_jpeg(jdir / f"{t:05d}.jpg", frames[t], cfg.jpeg_quality)
        _write_png(adir / f"{t:05d}.png", labels[t])
        written += [jdir / f"{t:05d}.jpg", adir / f"{t:05d}.png"]


def _config_record(cfg: SynthConfig) -> dict[str, Any]:
    return {"generator_version": GENERATOR_VERSION, **asdict(cfg)}


def is_generated(root: str | Path, cfg: SynthConfig) -> bool:
    """True when ``root`` holds a complete generation made with exactly ``cfg``."""
    root = Path(root)
    try:
        rec = yaml.safe_load((root / "synth_config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    return rec == _config_record(cfg) and (root / "checksums.sha256").is_file()


def _write_job(job: tuple[str, SynthConfig, str, int, str]) -> list[Path]:
    root, cfg, split, i, name = job
    written: list[Path] = []
    _write_sequence(Path(root), cfg, split, i, name, written)
    return written


def generate(
    root: str | Path, cfg: SynthConfig | None = None, force: bool = False, progress: bool = False, workers: int = 0
) -> dict[str, Any]:
    """Write the dataset under ``root`` (skipped when already generated with ``cfg``, unless ``force``).

    ``workers``: processes rendering sequences in parallel (0 = one per CPU core, at most 4, for
    large jobs; small ones run in this process); the files do not depend on it.

    Returns ``{"root", "generated" (False if skipped), "sequences": {"train": [...], "val": [...]},
    "num_files", "bytes", "seconds"}``.
    """
    from ever.utils import atomic_write_text

    cfg = cfg or SynthConfig()
    cfg.validate()
    root = Path(root)
    names = {s: seq_names(cfg, s) for s in ("train", "val")}
    if not force and is_generated(root, cfg):
        files = [p for p in root.rglob("*") if p.is_file()]
        return {
            "root": str(root),
            "generated": False,
            "sequences": names,
            "num_files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "seconds": 0.0,
        }
    from ever.utils import writable_dir

    writable_dir(root, "the generated dataset")
    t0 = time.perf_counter()
    for sub in ("JPEGImages", "Annotations", "ImageSets", "videos", "checksums.sha256", "synth_config.yaml"):
        p = root / sub
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    written: list[Path] = []
    sets = root / "ImageSets" / "2017"
    sets.mkdir(parents=True)
    for split in ("train", "val"):
        (sets / f"{split}.txt").write_text("".join(n + "\n" for n in names[split]))
        written.append(sets / f"{split}.txt")
    jobs = [(str(root), cfg, s, i, names[s][i]) for s in ("val", "train") for i in range(len(names[s]))]
    pixels = (cfg.num_train * cfg.frames_train + cfg.num_eval * cfg.frames_eval) * cfg.height * cfg.width
    auto = min(os.cpu_count() or 1, 4) if pixels > 2e7 else 1  # a worker costs ~2 s to start
    workers = min(workers or auto, len(jobs))
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        results = pool.map(_write_job, jobs)
    else:
        pool, results = None, map(_write_job, jobs)
    try:
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc="ever-synth", unit="seq")
        for files in results:
            written += files
    finally:
        if pool is not None:
            pool.shutdown()
    lines = [f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n" for p in sorted(written)]
    atomic_write_text(root / "checksums.sha256", "".join(lines))
    atomic_write_text(root / "synth_config.yaml", yaml.safe_dump(_config_record(cfg), sort_keys=False))
    return {
        "root": str(root),
        "generated": True,
        "sequences": names,
        "num_files": len(written) + 2,
        "bytes": sum(p.stat().st_size for p in written),
        "seconds": time.perf_counter() - t0,
    }


def config_from_sets(items: list[str]) -> SynthConfig:
    """A SynthConfig from ``key=value`` strings (values parsed as YAML), checked as run configs are
    (:func:`ever.config.apply_overrides`, :func:`ever.config.dataclass_from_dict`)."""
    from ever.config import ConfigError, apply_overrides, dataclass_from_dict

    try:
        cfg = dataclass_from_dict(SynthConfig, apply_overrides({}, list(items)), "generator options")
    except ConfigError as e:
        raise DataError(str(e)) from None
    cfg.validate()
    return cfg
