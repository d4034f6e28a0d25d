"""Models that ship inside the package: fp16 weights and a card, one pair of files per model.

    ever models                                        # name, trained on, J&F on the dev data, size, energy
    model, cfg = load("crw-w16-real")                  # EverModel in eval mode (fp32), its Config
    python -m ever.models.pretrained runs/R/checkpoint.pt --name NAME [--stage layer3] --eval S.json [LABEL=S2.json ...]

Files in this folder, per model ``NAME``:

* ``NAME.pt``: ``{"format": 1, "state_dict": {...}}``, the :class:`~ever.models.EverModel` weights in fp16
  (no optimiser, no RNG state), read with ``torch.load(weights_only=True)``;
* ``NAME.json``: the card, written by :func:`export` from the run's own files, never by hand: ``config``
  (the run's), ``trained_on`` (its ``data.roots``), ``steps``, ``ledger`` (the training phase of the run's
  ``ledger.json``: kWh, kg CO2eq, FLOPs, hours, whether estimated), ``evaluation`` (one entry per
  ``ever eval`` ``summary.json`` given: the model itself, its fp32 checkpoint, baselines; each with the
  encoder stage it read, ``eval_stage``), ``recipe`` (the model's recipe over its seeds, from a committed
  results snapshot: :func:`ever.analysis.bar.recipe_summary`; ``--recipe SNAPSHOT:CELL``), ``sha256``.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path
from typing import Any

import torch

from ever.errors import CheckpointError

HERE = Path(__file__).parent
DEFAULT = "crw-w16-real3-1k"  # what `ever propagate` and `ever.propagate` use without --model
FORMAT = 1
_FIGURES = (
    "J&F-Mean",
    "J-Mean",
    "F-Mean",
    "PCK@0.1",
    "PCK@0.2",
    "pck_convention",
    "num_sequences",
    "frames",
    "frames_per_s",
    "eval_stage",
)


def names() -> list[str]:
    """Names of the shipped models (a ``.pt`` with its ``.json`` card), sorted."""
    return sorted(p.stem for p in HERE.glob("*.pt") if p.with_suffix(".json").is_file())


def card(name: str) -> dict[str, Any]:
    """The card (``NAME.json``) of a shipped model."""
    path = HERE / f"{name}.json"
    if not path.is_file() or not (HERE / f"{name}.pt").is_file():
        raise CheckpointError(f"{name}: no shipped model of that name (shipped: {', '.join(names()) or 'none'})")
    return json.loads(path.read_text())


def load(name: str) -> tuple[torch.nn.Module, Any]:
    """Shipped model ``name`` -> (EverModel in eval mode, fp32 weights, its Config). The weights file must
    hash to its card's ``sha256`` (a damaged or altered file is refused in one line)."""
    from ever.config import config_from_dict
    from ever.models import EverModel

    info = card(name)
    path = HERE / f"{name}.pt"
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info.get("sha256"):
        raise CheckpointError(
            f"{path}: sha256 {digest[:12]}... does not match {name}.json's {str(info.get('sha256'))[:12]}...: "
            "damaged or altered weights; reinstall ever"
        )
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means a damaged install
        raise CheckpointError(f"{path}: unreadable shipped weights ({type(e).__name__}); reinstall ever") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a shipped EVER model (format {FORMAT} expected)")
    cfg = config_from_dict(info["config"], f"{HERE / (name + '.json')}:config")
    model = EverModel(cfg.model)
    model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()}, strict=True)
    return model.eval(), cfg


def resolve_model(name_or_path: str | Path | None = None) -> tuple[torch.nn.Module, Any]:
    """A shipped model's name (``ever models``; None = the default one) or a checkpoint path ->
    (EverModel in eval mode, its Config). A name that is neither, or a file that does not load, raises a
    one-line ``CheckpointError``."""
    what = DEFAULT if name_or_path is None else str(name_or_path)
    if what in names():
        return load(what)
    if Path(what).exists() or what.endswith(".pt") or "/" in what:
        from ever.config import ConfigError

        try:
            from ever.models import load_checkpoint

            return load_checkpoint(what)
        except (CheckpointError, ConfigError):
            raise
        except Exception as e:  # noqa: BLE001 - anything else a loader raises means an unusable checkpoint
            raise CheckpointError(f"{what}: cannot load checkpoint ({type(e).__name__}: {e})".splitlines()[0]) from None
    raise CheckpointError(
        f"{what}: neither a checkpoint file nor a shipped model (shipped: {', '.join(names()) or 'none'})"
    )


def shipped_file(what: str | Path | None) -> Path | None:
    """The weights file of the shipped model named ``what`` (see ``ever models``), None for anything else."""
    return HERE / f"{what}.pt" if str(what) in names() else None


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    out = {k: summary[k] for k in _FIGURES if k in summary}
    out.update(data=summary.get("data"), split=summary.get("split"), protocol=summary.get("cfg"))
    return out


def _evaluations(evals: list[str | Path]) -> dict[str, dict[str, Any]]:
    """``[PATH | LABEL=PATH, ...]`` of ``ever eval`` summaries -> ``{label: figures}``; the label defaults
    to the summary's ``method``. Two entries with one label are refused (label them)."""
    out: dict[str, dict[str, Any]] = {}
    for e in map(str, evals):
        label, _, path = e.rpartition("=") if "=" in e else ("", "", e)
        try:
            summary = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path}: not a readable evaluation summary ({type(err).__name__})") from None
        label = label or summary["method"]
        if label in out:
            raise CheckpointError(f"{path}: a second evaluation named {label!r}; give it a label (LABEL=PATH)")
        out[label] = _figures(summary)
    return out


def export(
    checkpoint: str | Path,
    name: str,
    evals: list[str | Path],
    out_dir: str | Path = HERE,
    command: str | None = None,
    stage: str | None = None,
    recipe: str | None = None,
) -> Path:
    """Write ``out_dir/NAME.pt`` (fp16 weights of a training checkpoint) and ``NAME.json`` (its card).

    The card's figures are read from the run's files: ``ledger.json`` of the checkpoint's run (for a
    snapshot, ``<run>/snapshots/step-N.pt``, the run's training totals x N / steps: FLOPs exactly, energy
    and time assuming a steady rate; ``share_of_run`` says so), and each ``summary.json`` of ``evals``
    (as written by ``ever eval``; ``LABEL=PATH`` names the entry, else the summary's ``method``).
    ``stage`` sets the encoder stage the shipped model's features are read from (its config's
    ``model.eval_stage``; default: the run's). ``command`` (the command line that asked for the export) is
    recorded in the card. ``recipe`` (``SNAPSHOT:CELL``, e.g. ``results/data-scaling:realvideo``) records the
    scores of the run's recipe over its seeds (:func:`recipe_of`). Returns the path of the ``.pt``.
    """
    from ever.ledger import load_ledger, phase_totals
    from ever.models import load_checkpoint
    from ever.utils import atomic_write_bytes, atomic_write_json, git_commit

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    model, cfg = load_checkpoint(checkpoint)
    if stage is not None:
        from ever.config import config_from_dict

        cfg = config_from_dict(
            {**cfg.to_dict(), "model": {**cfg.to_dict()["model"], "eval_stage": stage}},
            f"{checkpoint}:config (--stage {stage})",
        )
    evaluation = _evaluations(evals)  # read before anything is written
    spread = None if recipe is None else recipe_of(recipe)
    step = int(torch.load(checkpoint, map_location="cpu", weights_only=False).get("step", -1))
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "state_dict": state}, buf)
    weights = buf.getvalue()

    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "snapshots" else checkpoint.parent
    train = phase_totals(load_ledger(run_dir)["phases"]["train"]["segments"])
    done = train.get("steps") or 0
    share = step / done if 0 < step < done else 1.0  # a snapshot: its part of the run's training cost
    info = {
        "name": name,
        "format": FORMAT,
        "trained_on": list(cfg.data.roots),
        "steps": step,
        "source": str(checkpoint),
        "config": cfg.to_dict(),
        "ledger": {
            **{k: (None if train.get(k) is None else train[k] * share) for k in ("kwh", "co2_kg", "flops", "clips")},
            "hours": (train.get("seconds") or 0) * share / 3600,
            "steps_logged": train.get("steps"),
            "estimate": train.get("estimate"),
            "estimated": train.get("estimated"),
            "share_of_run": share,
        },  # < 1: a snapshot; the run's totals x step / steps (steady rate)
        "evaluation": evaluation,
        "recipe": spread,
        "trained_with": _read_json(
            run_dir / "env.json"
        ),  # the training run's environment (env.json: commit, torch, host)
        "exported": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git_commit(), "command": command},
        "bytes": len(weights),
        "sha256": hashlib.sha256(weights).hexdigest(),
    }
    pt = out_dir / f"{name}.pt"
    atomic_write_bytes(pt, weights)
    atomic_write_json(out_dir / f"{name}.json", info)
    return pt


def recipe_of(spec: str) -> dict[str, Any]:
    """``SNAPSHOT:CELL`` -> the recipe's scores over its seeds (:func:`ever.analysis.bar.recipe_summary`), judged
    against the baselines and held-out sequences of the results folder holding ``SNAPSHOT``; a one-line error
    when the snapshot has no such cell or that folder no baselines."""
    from ever.analysis.bar import recipe_summary

    path, sep, cell = str(spec).rpartition(":")
    summary = recipe_summary(path, cell, Path(path).parent) if sep and path and cell else None
    if summary is None:
        raise CheckpointError(f"{spec}: not SNAPSHOT:CELL of a committed runs snapshot with that cell's seeds")
    if "deciding" not in summary:
        raise CheckpointError(f"{spec}: no baselines snapshot beside it ({Path(path).parent}/baselines) to judge it by")
    return summary


def set_recipe(name: str, spec: str, out_dir: str | Path = HERE, command: str | None = None) -> Path:
    """Record (or renew) the ``recipe`` of a shipped model's card (:func:`recipe_of` of ``spec``), with the date,
    commit and command that did it under ``recipe_recorded``; the weights are not touched. Returns the card."""
    from ever.utils import atomic_write_json, git_commit

    path = Path(out_dir) / f"{name}.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: no card of that name")
    info = json.loads(path.read_text())
    info["recipe"] = recipe_of(spec)
    info["recipe_recorded"] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git_commit(), "command": command}
    atomic_write_json(path, info)
    return path


def _short(root: str) -> str:
    """A data root as a dataset name: ``.../davis2016-dev/JPEGImages/480p`` -> ``davis2016-dev``."""
    parts = Path(root).parts
    return parts[parts.index("JPEGImages") - 1] if "JPEGImages" in parts[1:] else Path(root).name


def table() -> list[dict[str, Any]]:
    """One row per shipped model: name, trained_on, steps, J&F (dev), PCK@0.1, MB, kWh (what `ever models` prints),
    ``J&F checkpoint``, the score of the checkpoint it was exported from (None when its card has none), and from
    the card's ``recipe`` (None without one): ``recipe`` (its ``SNAPSHOT:CELL``), ``recipe J&F`` / ``recipe
    PCK@0.1`` (``{"mean", "sd", "seeds"}`` over the recipe's seeds on the same sequences), ``held-out J&F``
    (the same on the held-out sequences, ``held-out`` of them), ``bar`` (its verdict, one line) and ``baselines``
    (J&F of the colour and copy baselines the card holds, on the same data)."""
    rows = []
    for name in names():
        info = card(name)
        own = info["evaluation"].get(name) or next(iter(info["evaluation"].values()), {})
        rec = info.get("recipe") or {}
        deciding = rec.get("deciding") or {}
        rows.append(
            {
                "name": name,
                "default": name == DEFAULT,
                "trained_on": ", ".join(_short(r) for r in info["trained_on"]),
                "steps": info["steps"],
                "J&F": own.get("J&F-Mean"),
                "J&F checkpoint": info["evaluation"].get("checkpoint", {}).get("J&F-Mean"),
                "PCK@0.1": own.get("PCK@0.1"),
                "eval_data": Path(own.get("data") or "?").name,
                "MB": info["bytes"] / 1e6,
                "kWh": info["ledger"]["kwh"],
                "recipe": f"{rec['snapshot']}:{rec['cell']}" if rec else None,
                "recipe J&F": rec.get("J&F-Mean"),
                "recipe PCK@0.1": rec.get("PCK@0.1"),
                "held-out J&F": deciding.get("J&F-Mean"),
                "held-out": len(deciding.get("sequences") or []),
                "bar": (deciding.get("bar") or {}).get("text"),
                "baselines": {
                    k: v.get("J&F-Mean")
                    for k, v in info["evaluation"].items()
                    if k in ("lab-dist", "lab", "copy") and v.get("J&F-Mean") is not None
                },
            }
        )
    return rows


def _spread(s: dict[str, Any] | None) -> str:
    """``{"mean", "sd", "seeds"}`` -> ``0.482 ± 0.029 (3)`` (:func:`ever.analysis.display.mean_sd`); ``–`` for None."""
    from ever.analysis.display import mean_sd

    if not s or s.get("mean") is None:
        return "–"
    return f"{mean_sd(s['mean'], float('nan') if s.get('sd') is None else s['sd'])} ({s['seeds']})"


def cli(args) -> int:
    """``ever models``: print :func:`table`, the baselines beside the default and its recipe's verdict."""
    rows = table()
    if not rows:
        print("no shipped models")
        return 0
    fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
    print(
        f"{'name':<18} {'steps':>5} {'J&F':>6} {'PCK@0.1':>7}  {'recipe J&F':<19} {'recipe held-out':<19} "
        f"{'recipe PCK@0.1':<19} {'MB':>4} {'train Wh':>8}  trained on"
    )
    for r in rows:
        print(
            f"{r['name'] + (' *' if r['default'] else ''):<18} {r['steps']:>5} {fmt(r['J&F'], '.3f'):>6} "
            f"{fmt(r['PCK@0.1'], '.3f'):>7}  {_spread(r['recipe J&F']):<19} {_spread(r['held-out J&F']):<19} "
            f"{_spread(r['recipe PCK@0.1']):<19} {r['MB']:>4.1f} "
            f"{fmt(None if r['kWh'] is None else 1000 * r['kWh'], '.2f'):>8}  {r['trained_on']}"
        )
    default = next((r for r in rows if r["default"]), rows[0])
    held = max((r["held-out"] for r in rows), default=0)
    print(
        f"* the default of `ever propagate`. J&F, PCK@0.1: the model itself (fp16) on {default['eval_data']}. "
        "recipe: mean ± sd (seeds) of the recipe it was trained with, on the same sequences"
        + (f"; held-out: on the {held} of them that did not choose its learning rate" if held else "")
        + "."
    )
    if default["baselines"]:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in default["baselines"].items())
        print(f"Without training, on the same sequences (J&F): {scores}.")
    if default["bar"]:
        print(f"The default's recipe ({default['recipe']}) {default['bar']}.")
    print(f"Cards (config, evaluations, ledger, recipe): {HERE}/NAME.json")
    return 0
