"""The energy ledger: what a run cost, written beside it as ``run_dir/ledger.json``, and read back.

Every training or evaluation run is wrapped in a :class:`Ledger`::

    with Ledger(run_dir, phase="train", country="FRA", device=device) as led:
        led.count_flops(train_step, batch)          # FLOPs of ONE step (it also runs that step)
        for batch in loader:
            train_step(batch)
            led.add(steps=1, clips=B, frames=B * T)
        led.set_metric("loss", loss)

Each use of the context manager is one *segment* (a resumed run appends a new one); the phase
totals are the sums over its segments. A segment records wall time, process CPU time, energy
(CPU / GPU / RAM, kWh) and CO2eq (kg), steps, clips, frames, FLOPs and peak memory; the file also
records the hardware and software it ran on. The figures themselves come from :mod:`ever.energy`,
which says for each energy component whether it was measured or estimated, and how.

Reading back: :func:`load_ledger`, :func:`phase_totals`, :func:`kinetics_estimate` (the cost scaled
to Kinetics-400, always an estimate) and the cost table of ``ever ledger runs/*`` (:func:`ledger_table`,
:func:`cli`).

Phases should not be nested on the same run (e.g. an eval ledger inside a train ledger): both would
measure the same joules and the run's totals would count them twice.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ever.energy import EnergyMeter, hardware_info, peak_rss_bytes, process_cpu_seconds, software_info
from ever.runs import LEDGER_FILE  # the run folder's layout has one home

LEDGER_VERSION = 1
K400_TRAIN_VIDEOS = 240_000  # Kinetics-400 training set, about 240k clips of ~10 s (Kay et al. 2017)

ENERGY_KEYS = ("kwh_cpu", "kwh_gpu", "kwh_ram", "kwh", "co2_kg")
COUNT_KEYS = ("seconds", "cpu_seconds", "steps", "clips", "frames", "flops")


# ----------------------------------------------------------------------------------------------
# the ledger


class Ledger:
    """Context manager recording one segment of a run's cost into ``run_dir/ledger.json``.

    Args:
        run_dir: the run's folder (created if needed).
        phase: "train", "eval" or any name; segments are grouped by phase.
        country: ISO-3 code for the grid carbon intensity (codecarbon's offline table).
        device: the torch device the work runs on (peak memory: CUDA allocator peak on CUDA).
        enabled: False records time, CPU time, steps, FLOPs and memory but no energy ("disabled").
        measure_power_secs: codecarbon's sampling interval; start/stop cost is paid once per segment.

    On exit (also when an exception escapes: status "failed", or "interrupted" for Ctrl-C; the exception
    is re-raised) the segment is appended to the file atomically and the phase totals recomputed.
    Under ``torch.distributed`` only rank 0 measures and writes; other ranks' Ledgers only count in memory.
    Do not nest two Ledgers on the same run.
    """

    def __init__(
        self,
        run_dir: str | Path,
        phase: str = "train",
        country: str = "FRA",
        device: torch.device | str | None = None,
        enabled: bool = True,
        measure_power_secs: float = 15.0,
    ):
        self.run_dir = Path(run_dir)
        self.phase = str(phase)
        self.country = country.upper()
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.writes = _rank() == 0
        self.enabled = enabled and self.writes
        self.measure_power_secs = measure_power_secs
        self.steps = self.clips = self.frames = 0
        self.flops_per_step: int | None = None
        self.extra_flops = 0
        self.metrics: dict[str, Any] = {}
        self._id = uuid.uuid4().hex[:12]
        self._energy_meter: EnergyMeter | None = None  # None when energy is not measured
        self._start: float | None = None
        self.segment: dict[str, Any] | None = None  # the last segment written

    # -- counting ----------------------------------------------------------------------------

    def add(self, steps: int = 0, clips: int = 0, frames: int = 0, flops: int = 0) -> None:
        """Count work done. ``flops`` adds directly (e.g. per evaluated video), on top of flops_per_step."""
        self.steps += int(steps)
        self.clips += int(clips)
        self.frames += int(frames)
        self.extra_flops += int(flops)

    def count_flops(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
        """Run ``fn(*args, **kwargs)`` ONCE under ``FlopCounterMode`` and store its FLOPs as flops_per_step.

        ``fn`` is really executed (a training step counts its backward if it calls it), so count that
        call as a step if it was one. torch's counter counts matmul / conv / attention ops (2 FLOPs per
        multiply-add); element-wise ops, norms and the optimiser are not counted.
        """
        from ever.utils import count_flops

        self.flops_per_step = count_flops(fn, *args, **kwargs)
        return self.flops_per_step

    def set_metric(self, name: str, value: Any) -> None:
        """Record a result of this segment (e.g. accuracy); numbers are stored as floats."""
        self.metrics[name] = float(value) if isinstance(value, (int, float)) or torch.is_tensor(value) else value

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Ledger:
        self._started_at = _now()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._cpu0 = process_cpu_seconds()
        self._energy_meter = None
        if self.enabled:
            self._energy_meter = EnergyMeter(self.country, self.measure_power_secs, self.device)
            self._energy_meter.start()
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "ok"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "failed"
        try:
            self._write(status, final=True, error=None if exc is None else f"{exc_type.__name__}: {exc}")
        except Exception as e:
            if exc_type is None:
                raise
            warnings.warn(f"ledger: could not record the failed segment ({e})", stacklevel=2)
        return False  # never swallow the exception

    def flush(self) -> None:
        """Write the segment so far with status "running" (call it at checkpoint time: if the process is
        then killed, the energy up to here stays in the ledger). Costs one power reading."""
        if self._start is None:
            raise RuntimeError("Ledger.flush() outside the with block")
        self._write("running", final=False)

    # -- recording ---------------------------------------------------------------------------

    def _energy(self, final: bool) -> dict[str, Any]:
        """kWh per component, kg CO2eq and their provenance, see :meth:`ever.energy.EnergyMeter.read`."""
        if self._energy_meter is None:
            return {
                "kwh_cpu": None,
                "kwh_gpu": None,
                "kwh_ram": None,
                "co2_kg": None,
                "method": {"tool": "disabled", "energy": "disabled (Ledger(enabled=False))"},
            }
        return self._energy_meter.read(final)

    def _write(self, status: str, final: bool, error: str | None = None) -> dict[str, Any]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - self._start
        energy = self._energy(final)
        parts = [energy[k] for k in ("kwh_cpu", "kwh_gpu", "kwh_ram")]
        kwh = None if any(p is None for p in parts) else sum(parts)
        method = energy.pop("method")
        estimated = [c for c in ("cpu", "gpu", "ram") if isinstance(method.get(c), dict) and method[c]["estimate"]]
        flops = None
        if self.flops_per_step is not None or self.extra_flops:
            flops = (self.flops_per_step or 0) * self.steps + self.extra_flops
        if self.device.type == "cuda":
            peak, peak_kind = torch.cuda.max_memory_allocated(self.device), "cuda_max_memory_allocated"
        else:
            peak, peak_kind = peak_rss_bytes(), "process_max_rss_since_process_start"
        seg = {
            "id": self._id,
            "status": status,
            "start": self._started_at,
            "end": _now(),
            "seconds": seconds,
            "cpu_seconds": process_cpu_seconds() - self._cpu0,
            **energy,
            "kwh": kwh,
            "steps": self.steps,
            "clips": self.clips,
            "frames": self.frames,
            "flops_per_step": self.flops_per_step,
            "flops": flops,
            "peak_mem_bytes": peak,
            "peak_mem_kind": peak_kind,
            "peak_rss_bytes": peak_rss_bytes(),
            "device": str(self.device),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "energy_enabled": self.enabled,
            "estimate": bool(estimated),  # some energy component is modelled, not read from hardware
            "estimated": estimated,
            "method": method,
            "metrics": dict(self.metrics),
        }
        if error:
            seg["error"] = error[:500]
        self.segment = seg
        if not self.writes:
            return seg
        with _locked(self.run_dir):
            ledger = _read(self.run_dir) or {"version": LEDGER_VERSION, "phases": {}}
            _mark_dead_segments(ledger)
            phase = ledger["phases"].setdefault(self.phase, {"segments": [], "totals": {}})
            phase["segments"] = [s for s in phase.get("segments", []) if s.get("id") != self._id] + [seg]
            for p in ledger["phases"].values():
                if "segments" in p:
                    p["totals"] = phase_totals(p["segments"])
            ledger["country"] = self.country
            ledger["hardware"] = hardware_info(self.device)
            ledger["software"] = software_info()
            ledger["updated"] = _now()
            from ever.utils import atomic_write_json

            atomic_write_json(self.run_dir / LEDGER_FILE, ledger)
        return seg


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked(run_dir: Path):
    """Serialise read-modify-write of the ledger between processes (POSIX flock; no-op elsewhere)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(run_dir / ".ledger.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mark_dead_segments(ledger: dict[str, Any]) -> None:
    """A "running" segment of a process of this host that no longer exists was killed: say so."""
    host = socket.gethostname()
    for phase in ledger.get("phases", {}).values():
        for s in phase.get("segments", []):
            if s.get("status") == "running" and s.get("host") == host and s.get("pid") != os.getpid():
                try:
                    os.kill(int(s["pid"]), 0)
                except ProcessLookupError:
                    s["status"] = "killed"  # energy up to its last flush() is kept
                except (OSError, KeyError, ValueError, TypeError):
                    pass


def phase_totals(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over segments (max for peak memory), plus per-clip ratios. A missing energy value in any
    segment makes the energy totals partial (``energy_complete`` False), never silently zero."""
    tot: dict[str, Any] = {"segments": len(segments)}
    for k in COUNT_KEYS:
        vals = [s.get(k) for s in segments if s.get(k) is not None]
        tot[k] = sum(vals) if vals else None
    for k in ENERGY_KEYS:
        vals = [s.get(k) for s in segments if s.get(k) is not None]
        tot[k] = sum(vals) if vals else None
    tot["energy_complete"] = all(s.get("kwh") is not None for s in segments)
    tot["co2_complete"] = all(s.get("co2_kg") is not None for s in segments)
    peaks = [s["peak_mem_bytes"] for s in segments if s.get("peak_mem_bytes") is not None]
    tot["peak_mem_bytes"] = max(peaks) if peaks else None
    tot["estimate"] = any(s.get("estimate", False) for s in segments)
    tot["estimated"] = sorted({c for s in segments for c in s.get("estimated", [])})
    tot["statuses"] = sorted({s.get("status", "?") for s in segments})
    clips = tot["clips"] or 0
    tot["kwh_per_clip"] = tot["kwh"] / clips if clips and tot["kwh"] is not None else None
    tot["co2_kg_per_clip"] = tot["co2_kg"] / clips if clips and tot["co2_kg"] is not None else None
    tot["flops_per_clip"] = tot["flops"] / clips if clips and tot["flops"] is not None else None
    tot["seconds_per_clip"] = tot["seconds"] / clips if clips and tot["seconds"] is not None else None
    metrics: dict[str, Any] = {}
    for s in segments:  # the latest value of each metric
        metrics.update(s.get("metrics") or {})
    tot["metrics"] = metrics
    return tot


def _read(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / LEDGER_FILE
    if not path.is_file():
        return None
    from ever.errors import EverError

    try:
        ledger = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EverError(f"{path}: not a valid ledger ({e})") from None
    phases = ledger.get("phases") if isinstance(ledger, dict) else None

    def ok(p: Any) -> bool:  # {"segments": [{...}, ...], "totals": {...}}, one of them at least
        return (
            isinstance(p, dict)
            and ("segments" in p or "totals" in p)
            and isinstance(p.get("segments", []), list)
            and all(isinstance(x, dict) for x in p.get("segments", []))
            and isinstance(p.get("totals", {}), dict)
        )

    bad = next((k for k, p in phases.items() if not ok(p)), None) if isinstance(phases, dict) else "phases"
    if bad is not None:
        where = "'phases'" if bad == "phases" else f"phase {bad!r}"
        raise EverError(
            f"{path}: not an EVER ledger ({where} must be "
            + (
                "a mapping of phases"
                if bad == "phases"
                else "a mapping with a list of 'segments' (mappings) or 'totals'"
            )
            + ', e.g. {"phases": {"train": {"segments": [...]}}})'
        )
    return ledger


# ----------------------------------------------------------------------------------------------
# reading ledgers back


def load_ledger(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``run_dir/ledger.json`` (FileNotFoundError when absent)."""
    ledger = _read(Path(run_dir))
    if ledger is None:
        raise FileNotFoundError(f"{Path(run_dir) / LEDGER_FILE}: no ledger")
    return ledger


def kinetics_estimate(
    ledger: dict[str, Any] | str | Path, epochs: int = 1, clips_per_epoch: int = K400_TRAIN_VIDEOS, phase: str = "train"
) -> dict[str, Any]:
    """Extrapolate the measured training cost to Kinetics-400 scale. Always an estimate.

    The per-clip energy, CO2eq, FLOPs and time of this run's ``phase`` totals are multiplied by
    ``clips_per_epoch * epochs``; the default is one clip per K400 training video per epoch.
    """
    if not isinstance(ledger, dict):
        ledger = load_ledger(ledger)
    tot = ledger.get("phases", {}).get(phase, {}).get("totals") or {}
    if not tot.get("clips"):
        raise ValueError(f"ledger has no clips counted in phase {phase!r}: cannot extrapolate per clip")
    n = int(clips_per_epoch) * int(epochs)

    def scale(key: str) -> float | None:
        v = tot.get(key)
        return None if v is None else v / tot["clips"] * n

    secs = scale("seconds")
    return {
        "estimate": True,
        "clips": n,
        "epochs": epochs,
        "kwh": scale("kwh"),
        "co2_kg": scale("co2_kg"),
        "flops": scale("flops"),
        "hours": None if secs is None else secs / 3600,
        "measured_on": {"clips": tot["clips"], "kwh": tot.get("kwh"), "energy_estimate": tot.get("estimate")},
        "assumptions": [
            f"Kinetics-400 has about {K400_TRAIN_VIDEOS:,} training videos; {clips_per_epoch:,} clips per epoch "
            f"(default: one clip per video per epoch), {epochs} epoch(s)",
            "cost is linear in clips: same model, clip size, batch size, hardware and software as this run",
            "data loading at that scale (decoding real 10 s videos) costs as much per clip as in this run",
            "no evaluation, checkpointing or hyper-parameter search included",
            "same grid carbon intensity"
            + ("" if tot.get("estimate") is False else "; the measured run's energy is itself partly an estimate"),
        ],
    }


def _eval_metrics(run_dir: Path, ledger: dict[str, Any]) -> tuple[float | None, float | None]:
    """J&F-Mean and PCK from ``run_dir/eval/*/summary.json`` (else from the ledger's eval metrics)."""
    jf = pck = None
    files = sorted(glob.glob(str(run_dir / "eval" / "*" / "summary.json"))) + sorted(
        glob.glob(str(run_dir / "eval" / "summary.json"))
    )
    for f in files:
        try:
            s = json.loads(Path(f).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(s, dict):
            continue
        if jf is None and _num(s.get("J&F-Mean")) is not None:
            jf = _num(s["J&F-Mean"])
        if pck is None:
            keys = sorted(k for k in s if str(k).startswith("PCK") and _num(s[k]) is not None)
            if keys:
                pck = _num(s["PCK@0.1"] if "PCK@0.1" in keys else s[keys[0]])
    metrics = ledger.get("phases", {}).get("eval", {}).get("totals", {}).get("metrics", {})
    if jf is None:
        jf = _num(metrics.get("J&F-Mean"))
    if pck is None:
        keys = sorted(k for k in metrics if str(k).startswith("PCK"))
        pck = _num(metrics[keys[0]]) if keys else None
    return jf, pck


def _num(v: Any) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


TABLE_COLUMNS = [  # (key, header): FLOPs first (the same on any machine); then time, CPU time, energy, CO2
    ("name", "run"),
    ("jf", "J&F"),
    ("pck", "PCK"),
    ("gflops", "GFLOPs"),
    ("gflops_per_clip", "GFLOPs/clip"),
    ("hours", "wall h"),
    ("cpu_hours", "CPU h"),
    ("wh", "Wh"),
    ("co2_g", "g CO2eq"),
    ("peak_mem_mib", "peak MiB"),
    ("estimate", "estimate"),
]


def ledger_row(run_dir: str | Path) -> dict[str, Any]:
    """One table row for a run: its cost summed over all phases, per-clip figures from training."""
    run_dir = Path(run_dir)
    ledger = load_ledger(run_dir)
    phases = ledger.get("phases", {})
    tots = [p.get("totals") or {} for p in phases.values()]

    def total(key: str) -> float | None:
        vals = [t.get(key) for t in tots if t.get(key) is not None]
        return sum(vals) if vals else None

    kwh, co2, flops, secs, cpu = total("kwh"), total("co2_kg"), total("flops"), total("seconds"), total("cpu_seconds")
    peaks = [t["peak_mem_bytes"] for t in tots if t.get("peak_mem_bytes") is not None]
    train = phases.get("train", {}).get("totals") or {}
    jf, pck = _eval_metrics(run_dir, ledger)
    est = []  # e.g. "train:cpu+ram" (estimated components), "eval:no-energy" (ledger disabled or failed)
    for ph, p in phases.items():
        t = p.get("totals") or {}
        if t.get("estimated"):
            est.append(f"{ph}:{'+'.join(t['estimated'])}")
        if not t.get("energy_complete", True):
            est.append(f"{ph}:no-energy")
    return {
        "name": run_dir.name,
        "jf": jf,
        "pck": pck,
        "gflops": None if flops is None else flops / 1e9,
        "gflops_per_clip": None if train.get("flops_per_clip") is None else train["flops_per_clip"] / 1e9,
        "seconds": secs,  # wall, all phases
        "cpu_seconds": cpu,
        "hours": None if secs is None else secs / 3600,
        "cpu_hours": None if cpu is None else cpu / 3600,  # CPU time / wall time: how many cores were busy
        "kwh": kwh,
        "co2_kg": co2,
        "wh": None if kwh is None else kwh * 1000,
        "co2_g": None if co2 is None else co2 * 1000,
        "peak_mem_mib": max(peaks) / 2**20 if peaks else None,
        "estimate": " ".join(est) if est else "no",
    }


def ledger_table(run_dirs: list[str | Path]) -> list[dict[str, Any]]:
    """One row per folder that holds a ledger.json (others are skipped quietly)."""
    return [ledger_row(d) for d in run_dirs if (Path(d) / LEDGER_FILE).is_file()]


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text aligned table (numbers to 4 significant digits, missing values as '-')."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[h for _, h in TABLE_COLUMNS]] + [[cell(r.get(k)) for k, _ in TABLE_COLUMNS] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(TABLE_COLUMNS))]
    lines = []
    for j, c in enumerate(cells):
        lines.append(
            "  ".join(
                s.ljust(w) if i in (0, len(widths) - 1) else s.rjust(w) for i, (s, w) in enumerate(zip(c, widths))
            ).rstrip()
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    import io

    from ever.utils import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[k for k, _ in TABLE_COLUMNS])
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k, _ in TABLE_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def cli(args) -> int:
    """``ever ledger runs/* [--csv FILE]``: print the table; folders without a ledger are skipped."""
    from ever.errors import EverError

    # a run folder, or its ledger.json itself; other files (``runs/*`` may match notes) are skipped
    rows = ledger_table(
        [
            Path(r).parent if Path(r).name == LEDGER_FILE and Path(r).is_file() else Path(r)
            for r in args.runs
            if Path(r).is_dir() or Path(r).name == LEDGER_FILE
        ]
    )
    if not rows:
        raise EverError(f"no {LEDGER_FILE} in any of the {len(args.runs)} folder(s) given")
    print(format_table(rows))
    if getattr(args, "csv", None):
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return 0
