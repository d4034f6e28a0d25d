"""One evaluation: label propagation on every sequence of a DAVIS-layout split, scored and written out.

    summary = evaluate(lab_features, "data/ever-synth", "val", "runs/baselines/lab/eval/val", cfg.eval, "lab")

Writes into ``out_dir``:

* ``per_sequence.csv``: one row per (sequence, object): frames scored, J-Mean, J-Recall, J-Decay, F-Mean,
  F-Recall, F-Decay (DAVIS definitions, :mod:`ever.evaluate.metrics`);
* ``summary.json``: J&F-Mean, J-Mean, J-Recall, F-Mean, F-Recall (means over objects), decays,
  num_sequences, num_objects, frames, seconds, frames_per_s (propagation + scoring), method, data, split,
  cfg, and, when the root has ``keypoints/<seq>.json`` files, PCK@0.1 / PCK@0.2 (over all scored
  joints) with a per-sequence breakdown under ``keypoints``;
* ``overlays/<seq>/<frame>.png`` when ``cfg.overlays``: frames blended with the predicted masks.

``cli(args)`` implements ``ever eval CHECKPOINT|copy|lab|random``.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ever.config import EvalConfig, LedgerConfig
from ever.data.davis import DavisDataset
from ever.errors import CheckpointError
from ever.evaluate.keypoints import read_keypoints, score_keypoints
from ever.evaluate.metrics import SequenceScorer, dataset_summary
from ever.evaluate.propagation import FeatureFn, lab_features, model_features, propagate_masks
from ever.utils import atomic_write_bytes, atomic_write_json, atomic_write_text, select_device

CSV_FIELDS = ["sequence", "object", "frames", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60]], np.uint8)


def overlay(rgb: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 frame with (H, W) object ids blended in (background untouched)."""
    colours = PALETTE[1:][(labels - 1) % (len(PALETTE) - 1)]
    fg = (labels > 0)[..., None]
    return np.where(fg, (1 - alpha) * rgb + alpha * colours, rgb).astype(np.uint8)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _mean(values: list[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def ledger_dir(out_dir: Path) -> Path:
    """Where an evaluation's cost goes: the run's own ledger for ``runs/<name>/eval/<split>``, else ``out_dir``."""
    return out_dir.parent.parent if out_dir.parent.name == "eval" else out_dir


def evaluate(method: FeatureFn | str, data_root: str | Path, split: str, out_dir: str | Path, cfg: EvalConfig,
             name: str, device: str | torch.device | None = None, ledger: LedgerConfig | None = None) -> dict[str, Any]:
    """Propagate the first-frame masks of every sequence with ``method`` (a feature function or 'copy'),
    score them, write the results into ``out_dir`` and return the summary (see module docstring).
    The cost (time, energy, memory) is added to the ledger of the run as phase "eval"."""
    from ever.ledger import Ledger

    out_dir = Path(out_dir)
    device = select_device("auto") if device is None else torch.device(device)
    ledger = ledger or LedgerConfig()
    with Ledger(ledger_dir(out_dir), phase="eval", country=ledger.country, device=device,
                enabled=ledger.enabled) as led:
        summary = _evaluate(method, data_root, split, out_dir, cfg, name, device)
        led.add(frames=summary["frames"])
        led.set_metric("J&F-Mean", summary["J&F-Mean"])
    return summary


def _evaluate(method, data_root, split, out_dir: Path, cfg: EvalConfig, name: str, device) -> dict[str, Any]:
    ds = DavisDataset(data_root, split)
    opts = dict(n_context=cfg.n_context, topk=cfg.topk, radius=cfg.radius, temperature=cfg.temperature,
                long_side=cfg.long_side, device=device)
    rows: list[dict[str, Any]] = []
    keypoints: dict[str, dict[str, float]] = {}
    frames = 0
    t0 = time.perf_counter()
    bar = tqdm(ds.sequences, desc=f"eval {name}", unit="seq", dynamic_ncols=True)
    for seq_name in bar:
        seq = ds.sequence(seq_name)
        scorer = SequenceScorer(seq.object_ids, len(seq))
        for t, pred in enumerate(propagate_masks(seq, method, **opts)):
            scorer.add(t, seq.mask(t), pred)
            if cfg.overlays:
                _save_png(out_dir / "overlays" / seq_name / f"{seq.frame_stem(t)}.png", overlay(seq.frame(t), pred))
        frames += len(seq)
        seq_rows = [{"sequence": seq_name, **r} for r in scorer.summary()]
        rows += seq_rows
        kp_file = ds.keypoints_file(seq_name)
        if kp_file is not None:
            kp = read_keypoints(kp_file, [seq.frame_stem(i) for i in range(len(seq))])
            keypoints[seq_name] = score_keypoints(seq, kp, method, **opts)
        if seq_rows:
            jf = _mean([(r["J-Mean"] + r["F-Mean"]) / 2 for r in seq_rows])
            bar.set_postfix_str(f"{seq_name} J&F={jf:.3f}")
    seconds = time.perf_counter() - t0

    summary: dict[str, Any] = dataset_summary(rows)
    summary.update(num_sequences=len(ds.sequences), num_objects=len(rows), frames=frames,
                   seconds=round(seconds, 3), frames_per_s=frames / seconds if seconds > 0 else float("nan"),
                   method=name, data=str(data_root), split=split, device=str(device),
                   cfg={**asdict(cfg), "data": str(data_root), "split": split})
    if keypoints:
        # PCK over all scored joints of all sequences (each joint counts once)
        n = sum(k["joints"] for k in keypoints.values())
        for key in ("PCK@0.1", "PCK@0.2"):
            summary[key] = (sum(k[key] * k["joints"] for k in keypoints.values() if k["joints"]) / n
                            if n else float("nan"))
        summary["keypoints"] = keypoints

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in CSV_FIELDS})
    atomic_write_text(out_dir / "per_sequence.csv", buf.getvalue())
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _stage_override(overrides: list[str]) -> str | None:
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "model.eval_stage":
            return value.strip()
    return None


def cli(args) -> int:
    """``ever eval CHECKPOINT|copy|lab|random [--config C] [--data DIR] [--split S] [--out DIR] [--set k=v]``."""
    from ever.config import load_config

    cfg = load_config(args.config or None, list(args.set or []))
    what = args.checkpoint
    device = select_device("auto")
    if what in ("copy", "lab", "random"):
        name = what
        if what == "copy":
            method: FeatureFn | str = "copy"
        elif what == "lab":
            method = lab_features
        else:
            from ever.models import EverModel

            torch.manual_seed(cfg.seed)
            model = EverModel(cfg.model).to(device).eval()
            method = model_features(model, cfg.model.eval_stage)
        default_out = Path("runs") / "baselines" / name / "eval"
    else:
        from ever.models import load_checkpoint

        path = Path(what)
        try:
            model, ckpt_cfg = load_checkpoint(path, map_location="cpu")
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - anything else a loader raises means an unusable checkpoint
            raise CheckpointError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})".splitlines()[0]) from None
        if args.config and asdict(cfg.model) != asdict(ckpt_cfg.model):
            raise CheckpointError(f"{path}: made for model {asdict(ckpt_cfg.model)}, but {args.config} describes "
                                  f"model {asdict(cfg.model)}")
        if not args.config:  # the run's own eval settings (its saved config), with --set on top
            from ever.config import apply_overrides, config_from_dict

            cfg = config_from_dict(apply_overrides(ckpt_cfg.to_dict(), list(args.set or [])), f"{path}:config")
        stage = _stage_override(list(args.set or [])) or ckpt_cfg.model.eval_stage
        method = model_features(model.to(device).eval(), stage)
        name = path.stem if path.parent.name in ("", ".") else f"{path.parent.name}/{path.stem}"
        default_out = path.parent / "eval"
    ecfg = cfg.eval
    data = args.data or ecfg.data
    split = args.split or ecfg.split
    out = Path(args.out) if args.out else default_out / split
    s = evaluate(method, data, split, out, ecfg, name, device=device, ledger=cfg.ledger)
    line = (f"{name} on {data} [{split}]: J&F {s['J&F-Mean']:.4f}  J {s['J-Mean']:.4f}  F {s['F-Mean']:.4f}  "
            f"({s['frames']} frames, {s['frames_per_s']:.2f} frames/s)")
    if "PCK@0.1" in s:
        line += f"  PCK@0.1 {s['PCK@0.1']:.4f}  PCK@0.2 {s['PCK@0.2']:.4f}"
    print(line + f"  -> {out}")
    return 0
