"""One evaluation: label propagation on every sequence of a DAVIS-layout split, scored and written out.

    summary = evaluate(lab_features, "data/ever-synth", "val", "runs/baselines/lab/eval/val", cfg.eval, "lab")

Writes into ``out_dir`` (checked writable before any work; a file in the way or a read-only folder is a
one-line ``EverError``):

* ``sequences/<seq>.json``: the result of each sequence, written (atomically) as soon as it is done: its
  per-object rows, frames, seconds, keypoint scores, the settings ``fingerprint`` (method, checkpoint
  identity, data, split, eval settings, scoring version) and the ``ground_truth`` hash (its frame names,
  annotation and keypoint files: :func:`ground_truth_hash`). A rerun into the same folder skips every
  sequence already done with the same fingerprint and ground truth (and with the requested masks/overlays
  written), so an error in sequence 15 (raised, in one line naming the file) keeps sequences 1-14, and
  corrected annotations are scored again;
* ``per_sequence.csv``: one row per (sequence, object): frames scored, J-Mean, J-Recall, J-Decay, F-Mean,
  F-Recall, F-Decay (DAVIS definitions, :mod:`ever.evaluate.metrics`), rewritten after every sequence;
* ``summary.json`` (only when every sequence is done; strict JSON, an undefined score is null): J&F-Mean,
  J-Mean, J-Recall, F-Mean, F-Recall (means over objects), decays, num_sequences, num_objects, frames,
  seconds, frames_per_s (propagation + scoring, summed over the runs that computed the sequences),
  ``skipped_sequences`` (sequences with nothing to score: fewer than 3 frames, warned about), ``resumed_sequences``,
  method, eval_stage (the encoder
  stage read, null for copy and Lab), data, split, cfg, and, when
  the root has ``keypoints/<seq>.json`` files, ``pck_convention`` and PCK@0.1 / PCK@0.2 pooled over the
  sequences (:func:`ever.evaluate.keypoints.pool_pck`) with a per-sequence breakdown under ``keypoints``;
* ``overlays/<seq>/<frame>.png`` when ``cfg.overlays``: frames blended with the predicted masks.

With ``save_masks=DIR`` the predictions go to ``DIR/<seq>/<frame>.png`` (DAVIS submission layout: palette
PNGs of object ids with the ground truth's palette, or the DAVIS/PASCAL colour map when the ground truth
has none; every frame, the given one included, void 255 written as background) and the predicted joints
to ``DIR/keypoints/<seq>.json`` (the annotation format of :mod:`ever.evaluate.keypoints`, joints not
predicted as null), ready for the official davis2017-evaluation code.

``cli(args)`` implements ``ever eval CHECKPOINT|copy|lab|lab-dist|random`` (the baselines:
:mod:`ever.evaluate.baselines`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ever.config import EvalConfig, LedgerConfig
from ever.data.davis import DavisDataset, davis_palette
from ever.errors import CheckpointError, DataError
from ever.evaluate import BASELINES
from ever.evaluate.keypoints import (
    keypoint_convention,
    pool_pck,
    propagate_masks_keypoints,
    read_keypoints,
    score_keypoints,
)
from ever.evaluate.metrics import VOID, SequenceScorer, dataset_summary
from ever.evaluate.propagation import FeatureFn, lab_features, model_features, propagate_masks
from ever.utils import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    select_device,
    sha256_file,
    writable_dir,
)

CSV_FIELDS = ["sequence", "object", "frames", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
# Bump when scoring changes what a sequence's result is: saved results of another version are recomputed.
SCORING_VERSION = "davis2017-semi/seg2bmap-1"


def overlay(
    rgb: np.ndarray,
    labels: np.ndarray,
    palette: np.ndarray | None = None,
    points: np.ndarray | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """(H, W, 3) uint8 frame with (H, W) object ids blended in (``palette`` (256, 3) colours, default the
    DAVIS palette; background and void 255 untouched) and points (J, 2) as (x, y) drawn as dots."""
    from PIL import ImageDraw

    pal = np.asarray(davis_palette(), np.uint8).reshape(256, 3) if palette is None else palette
    labels = np.asarray(labels)
    fg = ((labels > 0) & (labels != VOID))[..., None]
    out = np.where(fg, (1 - alpha) * rgb + alpha * pal[labels.astype(np.int64) % 256], rgb).astype(np.uint8)
    if points is not None and len(points):
        im = Image.fromarray(out)
        pen, r = ImageDraw.Draw(im), max(2, min(rgb.shape[:2]) // 100)
        for j, (x, y) in enumerate(points):
            if np.isfinite(x) and np.isfinite(y):
                pen.ellipse(
                    [x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in pal[1 + j % 254]), outline=(255, 255, 255)
                )
        out = np.asarray(im)
    return out


def _save_png(path: Path, image: Image.Image | np.ndarray) -> None:
    buf = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def mask_palette(path: Path) -> list[int]:
    """The palette of a palette-PNG mask, else :func:`davis_palette`."""
    try:
        with Image.open(path) as im:
            pal = im.getpalette() if im.mode == "P" else None
    except OSError:
        pal = None
    return pal or davis_palette()


def save_prediction(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    """Write (H, W) object ids as a palette PNG (void 255 and anything above 255 refused)."""
    if labels.max(initial=0) >= VOID:
        raise ValueError(f"{path}: object id {int(labels.max())} does not fit a DAVIS mask (ids 0..254)")
    im = Image.fromarray(labels.astype(np.uint8))  # mode L ...
    im.putpalette(palette)  # ... becomes P
    _save_png(path, im)


def _mean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def ledger_dir(out_dir: Path) -> Path:
    """Where an evaluation's cost goes: the run's own ledger for ``runs/<name>/eval/<split>``, else ``out_dir``."""
    return out_dir.parent.parent if out_dir.parent.name == "eval" else out_dir


def fingerprint(name: str, identity: str, data_root: str | Path, split: str, cfg: EvalConfig) -> str:
    """sha256 of what decides a sequence's result: method name and identity (e.g. the checkpoint's
    sha256), data folder, split, eval settings (``overlays`` aside) and :data:`SCORING_VERSION`."""
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("overlays", "data", "split", "sequences")}
    key = {
        "method": name,
        "identity": identity,
        "data": str(Path(data_root).resolve()),
        "split": split,
        "eval": settings,
        "scoring": SCORING_VERSION,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def evaluate(
    method: FeatureFn | str,
    data_root: str | Path,
    split: str,
    out_dir: str | Path,
    cfg: EvalConfig,
    name: str,
    device: str | torch.device | None = None,
    ledger: LedgerConfig | None = None,
    save_masks: str | Path | None = None,
    identity: str = "",
    eval_stage: str | None = None,
) -> dict[str, Any]:
    """Propagate the first-frame masks of every sequence with ``method`` (a feature function or 'copy'),
    score them, write the results into ``out_dir`` and return the summary (see module docstring).
    ``identity`` tells apart methods of the same ``name`` (the checkpoint's sha256, the random encoder's
    seed and architecture) for skipping sequences already done; ``eval_stage`` (the encoder stage a
    model's features come from, None for copy and Lab) is recorded in the summary. The cost (time,
    energy, memory) is added to the ledger of the run as phase "eval"."""
    from ever.ledger import Ledger

    out_dir = writable_dir(out_dir, "evaluation results")
    if save_masks is not None:
        save_masks = writable_dir(save_masks, "predicted masks")
    device = select_device("auto") if device is None else torch.device(device)
    ledger = ledger or LedgerConfig()
    with Ledger(
        ledger_dir(out_dir), phase="eval", country=ledger.country, device=device, enabled=ledger.enabled
    ) as led:
        summary = _evaluate(
            method,
            data_root,
            split,
            out_dir,
            cfg,
            name,
            device,
            save_masks,
            identity,
            on_frames=lambda n: led.add(frames=n),
            eval_stage=eval_stage,
        )
        led.set_metric("J&F-Mean", summary["J&F-Mean"])
    return summary


def _record_path(out_dir: Path, seq_name: str) -> Path:
    return out_dir / "sequences" / f"{seq_name}.json"


def ground_truth_hash(ds: DavisDataset, seq_name: str) -> str:
    """sha256 over what a sequence is scored against: the names of its frames and the names and bytes of
    its annotation PNGs and keypoints file, so corrected ground truth is scored again."""
    h = hashlib.sha256()
    frame_dir, mask_dir = ds.frame_dir(seq_name), ds.mask_dir(seq_name)
    h.update("\n".join(sorted(p.name for p in frame_dir.iterdir())).encode())
    files = sorted(mask_dir.glob("*.png")) if mask_dir.is_dir() else []
    kp = ds.keypoints_file(seq_name)
    for f in files + ([kp] if kp is not None else []):
        h.update(f"\n{f.name}:{sha256_file(f)}".encode())
    return h.hexdigest()


def _load_done(
    path: Path, fp: str, save_masks: Path | None, overlays: bool, ground_truth: str
) -> dict[str, Any] | None:
    """A sequence's saved result if it was made with fingerprint ``fp`` against the same ground truth
    (:func:`ground_truth_hash`) and wrote what is asked now."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("fingerprint") != fp or rec.get("ground_truth") != ground_truth:
        return None
    # scores are written as strict JSON: an undefined one (NaN) is null on disk
    rec["rows"] = [{k: (math.nan if v is None else v) for k, v in r.items()} for r in rec.get("rows", [])]
    if save_masks is not None and rec.get("saved_masks") != str(save_masks.resolve()):
        return None
    if overlays and not rec.get("overlays"):
        return None
    return rec


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in CSV_FIELDS})
    atomic_write_text(path, buf.getvalue())


def _evaluate(
    method,
    data_root,
    split,
    out_dir: Path,
    cfg: EvalConfig,
    name: str,
    device,
    save_masks: Path | None,
    identity: str,
    on_frames=lambda n: None,
    eval_stage: str | None = None,
) -> dict[str, Any]:
    ds = DavisDataset(data_root, split)
    for seq_name in cfg.sequences:  # a subset (eval.sequences): each must be in the split
        ds.sequence(seq_name)
    sequences = list(cfg.sequences) or ds.sequences
    opts = dict(
        n_context=cfg.n_context,
        topk=cfg.topk,
        radius=cfg.radius,
        temperature=cfg.temperature,
        long_side=cfg.long_side,
        device=device,
        context=cfg.context,
        label_resize=cfg.label_resize,
    )
    conventions = {}
    for seq_name in sequences:  # before any work: one PCK convention per evaluation
        kp_file = ds.keypoints_file(seq_name)
        if kp_file is not None:
            try:
                conventions[kp_file] = keypoint_convention(json.loads(kp_file.read_text()), kp_file)
            except (OSError, ValueError, AttributeError) as e:
                raise DataError(f"{kp_file}: unreadable keypoint JSON ({e})".splitlines()[0]) from None
    if len(set(conventions.values())) > 1:
        raise DataError(
            f"{ds.root / 'keypoints'}: files mix PCK conventions "
            f"({', '.join(f'{p.name}: {c}' for p, c in conventions.items())})"
        )
    fp = fingerprint(name, identity, data_root, split, cfg)
    (out_dir / "summary.json").unlink(missing_ok=True)  # present only when every sequence is done
    records: list[dict[str, Any]] = []
    resumed = 0
    bar = tqdm(sequences, desc=f"eval {name}", unit="seq", dynamic_ncols=True)
    for seq_name in bar:
        path = _record_path(out_dir, seq_name)
        gt = ground_truth_hash(ds, seq_name)
        rec = _load_done(path, fp, save_masks, cfg.overlays, gt)
        if rec is not None:
            resumed += 1
        else:
            rec = _evaluate_sequence(ds, seq_name, method, cfg, opts, out_dir, save_masks)
            rec.update(
                fingerprint=fp,
                ground_truth=gt,
                saved_masks=str(save_masks.resolve()) if save_masks else None,
                overlays=cfg.overlays,
            )
            atomic_write_json(path, rec)
            on_frames(rec["frames"])
        records.append(rec)
        _write_csv(out_dir / "per_sequence.csv", [r for rec_ in records for r in rec_["rows"]])
        if rec["rows"]:
            jf = _mean([(r["J-Mean"] + r["F-Mean"]) / 2 for r in rec["rows"]])
            bar.set_postfix_str(f"{seq_name} J&F={jf:.3f}")

    rows = [r for rec in records for r in rec["rows"]]
    frames = sum(rec["frames"] for rec in records)
    seconds = sum(rec["seconds"] for rec in records)
    skipped = [{"sequence": rec["sequence"], "reason": rec["skipped"]} for rec in records if rec.get("skipped")]
    summary: dict[str, Any] = dataset_summary(rows)
    summary.update(
        num_sequences=len(sequences),
        num_objects=len(rows),
        frames=frames,
        seconds=round(seconds, 3),
        frames_per_s=frames / seconds if seconds > 0 else float("nan"),
        skipped_sequences=skipped,
        resumed_sequences=resumed,
        method=name,
        eval_stage=eval_stage,
        data=str(data_root),
        split=split,
        device=str(device),
        cfg={**asdict(cfg), "data": str(data_root), "split": split},
    )
    keypoints = {rec["sequence"]: rec["keypoints"] for rec in records if rec.get("keypoints")}
    if keypoints:
        summary.update(pool_pck(list(keypoints.values())))
        summary["keypoints"] = {
            s: {k: v for k, v in kp.items() if k not in ("hits", "visible")} for s, kp in keypoints.items()
        }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _evaluate_sequence(
    ds: DavisDataset, seq_name: str, method, cfg: EvalConfig, opts: dict, out_dir: Path, save_masks: Path | None
) -> dict[str, Any]:
    """Propagate, score and (optionally) save one sequence -> its record (see module docstring)."""
    t0 = time.perf_counter()
    seq = ds.sequence(seq_name)
    rec: dict[str, Any] = {"sequence": seq_name, "rows": [], "frames": len(seq), "seconds": 0.0}
    if len(seq) < 3:
        reason = f"{len(seq)} frame{'s' if len(seq) > 1 else ''}: DAVIS scores frames 1..T-2, none here"
        warnings.warn(f"{ds.frame_dir(seq_name)}: sequence skipped, nothing to score ({reason})", stacklevel=2)
        rec.update(skipped=reason, frames=0)
        return rec
    scorer = SequenceScorer(seq.object_ids, len(seq))
    palette = mask_palette(seq.mask_paths[0]) if save_masks is not None else []
    kp_file = ds.keypoints_file(seq_name)
    kp = read_keypoints(kp_file, [seq.frame_stem(i) for i in range(len(seq))]) if kp_file is not None else None
    shared = kp is not None and kp.frames[0] == 0  # joints given in frame 0: one propagation serves both
    stream = (
        propagate_masks_keypoints(seq, kp.xy[0], kp.visible[0], method, **opts)
        if shared
        else ((p, None) for p in propagate_masks(seq, method, **opts))
    )
    joints = []
    for t, (pred, points) in enumerate(stream):
        joints.append(points)
        scorer.add(t, seq.mask(t), pred)
        stem = seq.frame_stem(t)
        pred = np.where(pred == VOID, 0, pred)  # frame 0 is the ground truth: its void is no object
        if save_masks is not None:
            save_prediction(save_masks / seq_name / f"{stem}.png", pred, palette)
        if cfg.overlays:
            _save_png(out_dir / "overlays" / seq_name / f"{stem}.png", overlay(seq.frame(t), pred))
    rec["rows"] = [{"sequence": seq_name, **r} for r in scorer.summary()]
    if kp is not None:
        res = score_keypoints(
            seq,
            kp,
            method,
            predicted=joints if shared else None,
            **{k: v for k, v in opts.items() if k != "label_resize"},
        )
        predictions = res.pop("predictions")
        if save_masks is not None:
            atomic_write_json(
                save_masks / "keypoints" / f"{seq_name}.json",
                {
                    "sequence": seq_name,
                    "pck_convention": kp.convention,
                    "predicted": True,
                    "annotated_frames": [
                        {
                            "frame": p["frame"],
                            "joints_xy_480p": p["joints_xy"],
                            "visible": [xy is not None for xy in p["joints_xy"]],
                        }
                        for p in predictions
                    ],
                },
            )
        rec["keypoints"] = res
    rec["seconds"] = time.perf_counter() - t0
    return rec


def _stage_override(overrides: list[str]) -> str | None:
    """``model.eval_stage`` when the ``--set`` overrides give it (the one model field eval may change)."""
    from ever.config import apply_overrides

    return (apply_overrides({}, list(overrides)).get("model") or {}).get("eval_stage")


def cli(args) -> int:
    """``ever eval CHECKPOINT|copy|lab|lab-dist|random [--config C] [--data DIR] [--split S] [--out DIR]
    [--save-masks DIR] [--set k=v]`` (``random``: ``--set seed=N`` picks the initialisation)."""
    from ever.config import load_config

    cfg = load_config(args.config or None, list(args.set or []))
    what = args.checkpoint
    device = select_device("auto")
    identity, stage = "", None
    if what in BASELINES:
        name = what
        if what == "copy":
            method: FeatureFn | str = "copy"
        elif what == "lab":
            method = lab_features
        elif what == "lab-dist":
            from ever.evaluate.baselines import lab_dist_features

            method = lab_dist_features
        else:  # random: the initialisation of seed (--set seed=N), each seed but 0 in its own folder
            from ever.evaluate.baselines import random_encoder

            stage = cfg.model.eval_stage
            method = model_features(random_encoder(cfg.model, cfg.seed).to(device), stage)
            identity = json.dumps({"seed": cfg.seed, "model": asdict(cfg.model)}, sort_keys=True)
        folder = f"{name}-seed{cfg.seed}" if what == "random" and cfg.seed else name
        default_out = Path("runs") / "baselines" / folder / "eval"
    else:
        from ever.models.pretrained import resolve_model, shipped_file

        shipped = shipped_file(what)  # a shipped model's name (ever models), else a checkpoint path
        path = shipped or Path(what)
        model, ckpt_cfg = resolve_model(what)  # an unusable file: a one-line CheckpointError
        if args.config and asdict(cfg.model) != asdict(ckpt_cfg.model):
            raise CheckpointError(
                f"{path}: made for model {asdict(ckpt_cfg.model)}, but {args.config} describes "
                f"model {asdict(cfg.model)}"
            )
        if not args.config:  # the run's own eval settings (its saved config), with --set on top
            from ever.config import apply_overrides, config_from_dict

            cfg = config_from_dict(apply_overrides(ckpt_cfg.to_dict(), list(args.set or [])), f"{path}:config")
        stage = _stage_override(list(args.set or [])) or ckpt_cfg.model.eval_stage
        method = model_features(model.to(device).eval(), stage)
        identity = f"{sha256_file(path)} {stage}"
        name = what if shipped else path.stem if path.parent.name in ("", ".") else f"{path.parent.name}/{path.stem}"
        default_out = (Path("runs") / "pretrained" / what if shipped else path.parent) / "eval"
    ecfg = cfg.eval
    data = args.data or ecfg.data
    split = args.split or ecfg.split
    out = Path(args.out) if args.out else default_out / split
    s = evaluate(
        method,
        data,
        split,
        out,
        ecfg,
        name,
        device=device,
        ledger=cfg.ledger,
        save_masks=getattr(args, "save_masks", None),
        identity=identity,
        eval_stage=stage,
    )
    line = (
        f"{name} on {data} [{split}]: J&F {s['J&F-Mean']:.4f}  J {s['J-Mean']:.4f}  F {s['F-Mean']:.4f}  "
        f"({s['frames']} frames, {s['frames_per_s']:.2f} frames/s)"
    )
    if "PCK@0.1" in s:
        line += f"  PCK@0.1 {s['PCK@0.1']:.4f}  PCK@0.2 {s['PCK@0.2']:.4f} ({s['pck_convention']})"
    if s["skipped_sequences"]:
        line += f"  [{len(s['skipped_sequences'])} sequence(s) with nothing to score]"
    if math.isnan(s["J&F-Mean"]):
        raise DataError(
            f"{data}: no frame could be scored in split '{split}': none of its {s['num_sequences']} "
            "sequence(s) has a ground-truth mask on a frame 1..T-2 (frame 0's is the input); J&F is "
            f"undefined, null in {out / 'summary.json'}"
        )
    print(line + f"  -> {out}")
    return 0
