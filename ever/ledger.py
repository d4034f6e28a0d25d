"""The energy ledger: what a run cost, written beside it as ``run_dir/ledger.json``.

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
records the hardware and software it ran on.

Honesty rule: every energy component says how it was obtained. ``"measured"`` means a hardware
counter was read (RAPL or an equivalent for the CPU, NVML for an NVIDIA GPU); ``"estimate"`` means a
model was used, and the assumption is written next to it. Energy comes from codecarbon's
``OfflineEmissionsTracker`` (no network, writes no file); when codecarbon is missing or fails, our own
documented estimate is used instead (see :class:`_EstimateMeter`). CO2eq is always an estimate: the
kWh times the country's average grid carbon intensity (codecarbon's offline table).

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
import platform
import socket
import sys
import time
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

LEDGER_FILE = "ledger.json"
LEDGER_VERSION = 1
K400_TRAIN_VIDEOS = 240_000  # Kinetics-400 training set, about 240k clips of ~10 s (Kay et al. 2017)

# Our own fallback estimate, used only when codecarbon is unavailable or fails.
FALLBACK_CPU_W_PER_CORE = 15.0  # W drawn by one fully busy core (a mid-range server core at ~TDP/cores)
FALLBACK_RAM_W_PER_GB = 3.0 / 8.0  # W per GB of resident memory (the common "3 W per 8 GB DDR4" rule)

ENERGY_KEYS = ("kwh_cpu", "kwh_gpu", "kwh_ram", "kwh", "co2_kg")
COUNT_KEYS = ("seconds", "cpu_seconds", "steps", "clips", "frames", "flops")


# ----------------------------------------------------------------------------------------------
# hardware and software facts


def hardware_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """CPU model (from /proc/cpuinfo), core counts, RAM, and the GPU name / memory / power limit."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_count_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gb": _ram_gb(),
        "device": str(device) if device is not None else None,
        "gpus": [],
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["gpus"].append({
                "index": i,
                "name": props.name,
                "memory_gb": round(props.total_memory / 1e9, 2),
                "power_limit_w": _nvml_power_limit_w(i),
            })
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _ram_gb() -> float | None:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * page_size / 1e9, 2)
    except (ValueError, OSError, AttributeError):
        return None


def _nvml_handle(torch_index: int):
    """The NVML handle of torch's CUDA device ``torch_index`` (matched by UUID when possible, so that
    CUDA_VISIBLE_DEVICES renumbering is respected). Raises if pynvml is missing or fails."""
    import pynvml  # from the nvidia-ml-py package (a codecarbon dependency)

    pynvml.nvmlInit()
    uuid_ = getattr(torch.cuda.get_device_properties(torch_index), "uuid", None)
    if uuid_ is not None:
        with contextlib.suppress(Exception):
            return pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid_}")
    return pynvml.nvmlDeviceGetHandleByIndex(torch_index)


def _nvml_ids_of(device: torch.device) -> list[int] | None:
    """NVML index of a single-GPU run's device; None (codecarbon's default: all visible GPUs) for CPU
    runs, multi-process runs, or when NVML cannot tell."""
    if device.type != "cuda" or _rank() != 0 or (torch.distributed.is_available()
                                                  and torch.distributed.is_initialized()):
        return None
    try:
        import pynvml

        index = device.index if device.index is not None else torch.cuda.current_device()
        return [int(pynvml.nvmlDeviceGetIndex(_nvml_handle(index)))]
    except Exception:
        return None


def _nvml_power_limit_w(torch_index: int) -> float | None:
    try:
        import pynvml

        return pynvml.nvmlDeviceGetPowerManagementLimit(_nvml_handle(torch_index)) / 1000.0
    except Exception:
        return None


def software_info() -> dict[str, Any]:
    """Versions (python, torch, numpy, codecarbon) and the git commit, via :func:`ever.utils.environment`."""
    from ever.utils import environment

    env = environment()
    try:
        from importlib.metadata import version

        env["codecarbon"] = version("codecarbon")
    except Exception:
        env["codecarbon"] = None
    return env


# ----------------------------------------------------------------------------------------------
# cheap process measurements (always on, also when the energy ledger is disabled)


def process_cpu_seconds() -> float:
    """User + system CPU time of this process and its children (live ones too when psutil is present)."""
    try:
        import psutil

        proc = psutil.Process()
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                ct = child.cpu_times()
                total += ct.user + ct.system
        return total
    except ImportError:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_bytes() -> int | None:
    """Peak resident memory of this process, from ``resource.getrusage(RUSAGE_SELF).ru_maxrss``.

    Caveat: the kernel keeps ONE maximum per process lifetime and it cannot be reset, so in a
    segment it is the peak since the process started (an upper bound for the segment).
    """
    try:
        import resource
    except ImportError:  # Windows
        return None
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)  # bytes on macOS, KiB on Linux


# ----------------------------------------------------------------------------------------------
# energy meters: codecarbon, or our documented estimate


def _method(kind: str, how: str, assumption: str | None = None) -> dict[str, Any]:
    """One energy component's provenance. ``kind``: measured | estimate | none | unavailable."""
    out: dict[str, Any] = {"method": kind, "estimate": kind in ("estimate", "unavailable"), "how": how}
    if assumption:
        out["assumption"] = assumption
    return out


class _CodecarbonMeter:
    """codecarbon's OfflineEmissionsTracker: offline, no output file, log level error.

    ``tracking_mode="process"``: the CPU load and RAM of THIS process and its children are used for the
    estimated components, so other jobs on a shared machine are not billed to the run. Hardware
    counters (RAPL, NVML) still read whole devices.
    """

    name = "codecarbon"
    tracking_mode = "process"

    def __init__(self, country: str, measure_power_secs: float, device: torch.device):
        import logging

        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its import resets the level
        kwargs = dict(country_iso_code=country, log_level="error", measure_power_secs=measure_power_secs,
                      tracking_mode=self.tracking_mode, allow_multiple_runs=True, project_name="ever",
                      emissions_endpoint=None)  # None beats any endpoint in a user's .codecarbon.config
        gpu_ids = _nvml_ids_of(device)
        if gpu_ids is not None:  # bill only the run's GPU, not the other GPUs of the machine
            kwargs["gpu_ids"] = gpu_ids
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # codecarbon >= 3: output_methods=[] writes nothing (no emissions.csv)
                self.tracker = OfflineEmissionsTracker(output_methods=[], **kwargs)
            except TypeError:  # older codecarbon
                self.tracker = OfflineEmissionsTracker(save_to_file=False, **kwargs)
        if not hasattr(self.tracker, "_start_time"):  # its __init__ swallows exceptions
            raise RuntimeError("codecarbon tracker could not be initialised")
        # Offline means offline: an Electricity Maps token from a user config would trigger API calls.
        self.tracker._electricitymaps_api_token = None
        self.tracker._co2_signal_api_token = None

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.tracker.start()
        if getattr(self.tracker, "_start_time", None) is None:  # start() swallows exceptions
            raise RuntimeError("codecarbon tracker did not start")

    def read(self, final: bool) -> dict[str, Any]:
        """Energy so far (``final``: stop the tracker). Raises if codecarbon produced nothing."""
        t = self.tracker
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if final:
                t.stop()
                d = getattr(t, "final_emissions_data", None)
                if d is None:
                    raise RuntimeError("codecarbon returned no data")
                cpu, gpu, ram, co2 = d.cpu_energy, d.gpu_energy, d.ram_energy, d.emissions
            else:  # mid-segment snapshot: flush() measures and updates the private totals
                if t.flush() is None:
                    raise RuntimeError("codecarbon flush failed")
                cpu, gpu, ram = t._total_cpu_energy.kWh, t._total_gpu_energy.kWh, t._total_ram_energy.kWh
                co2 = t._total_emissions
        out = {"kwh_cpu": float(cpu), "kwh_gpu": float(gpu), "kwh_ram": float(ram), "co2_kg": float(co2)}
        out["method"] = self.methods()
        return out

    def methods(self) -> dict[str, Any]:
        """What codecarbon did for each component, read (defensively) from its hardware objects."""
        t = self.tracker
        cpu = _method("unavailable", "codecarbon found no CPU component", "CPU energy counted as 0")
        gpu = _method("none", "no GPU detected by codecarbon")
        ram = _method("unavailable", "codecarbon found no RAM component", "RAM energy counted as 0")
        mode = getattr(t, "_tracking_mode", self.tracking_mode)
        for hw in getattr(t, "_hardware", []) or []:
            kind = type(hw).__name__
            if kind == "CPU":
                cpu = _codecarbon_cpu_method(hw, mode)
            elif kind == "GPU":
                ids = getattr(hw, "gpu_ids", None)
                gpu = _method("measured", "codecarbon via NVML/AMD-SMI: energy counters of GPU(s) "
                                          f"{'all visible' if ids is None else ids} (whole devices, all processes)")
            elif kind == "RAM":
                forced = getattr(hw, "_force_ram_power", None)
                if forced is not None:
                    ram = _method("estimate", "codecarbon constant RAM power", f"RAM draws {forced} W")
                else:
                    mem = "this process's resident memory" if mode == "process" else "the machine's total RAM"
                    ram = _method("estimate", "codecarbon RAM power model (no RAM power counter is read)",
                                  f"RAM power = about 5 W per DIMM (x86; 1.5 W on ARM), at least 2 DIMMs, the DIMM "
                                  f"count guessed from {mem}; not a measurement")
            elif kind == "AppleSiliconChip":
                part = getattr(hw, "chip_part", "")
                m = _method("measured", f"codecarbon via macOS powermetrics ({part})")
                cpu, gpu = (m, gpu) if part == "CPU" else (cpu, m)
            elif kind == "Raspberry":
                part = getattr(hw, "chip_part", "")
                m = _method("measured", f"codecarbon via the Raspberry Pi PMIC ({part})")
                cpu, ram = (m, ram) if part == "CPU" else (cpu, m)
        pue = getattr(t, "_pue", 1.0)
        country = getattr(t, "_country_iso_code", None)
        intensity = "the country's average grid carbon intensity (annual mean, not the hour's mix)"
        if not _codecarbon_knows_country(country):
            intensity = f"the WORLD average carbon intensity (codecarbon has no data for {country!r})"
        co2 = _method("estimate", f"codecarbon offline carbon intensity table, country {country}",
                      f"CO2eq = kWh x {intensity}"
                      + (f"; PUE {pue}" if pue not in (None, 1.0) else "; PUE 1 (no datacentre overhead)"))
        return {"tool": "codecarbon", "tracking_mode": mode, "cpu": cpu, "gpu": gpu, "ram": ram, "co2": co2}


def _codecarbon_knows_country(country: str | None) -> bool:
    try:
        from codecarbon.input import DataSource

        return country in DataSource().get_global_energy_mix_data()
    except Exception:
        return True  # cannot tell: do not claim otherwise


def _codecarbon_cpu_method(hw: Any, tracking_mode: str) -> dict[str, Any]:
    mode = getattr(hw, "_mode", None)
    tdp = getattr(hw, "_tdp", None)
    model = getattr(hw, "_model", None)
    if mode == "intel_rapl":
        return _method("measured", "codecarbon via RAPL energy counters (whole CPU package(s), all processes)")
    if mode in ("windows_emi", "intel_power_gadget"):
        return _method("measured", f"codecarbon via {mode} energy counters")
    source = ("codecarbon's generic default (model not in its table)" if getattr(hw, "_is_generic_tdp", False)
              else f"codecarbon's CPU power table for {model!r} (4 W per thread when the model is unknown)")
    if mode == "cpu_load":
        if tracking_mode == "process":
            formula = "power = TDP x (CPU time of this process and its children / wall time / logical cores)"
        else:
            formula = "power = TDP x (0.1 + 0.9 x machine CPU load^3)"
        return _method("estimate", "codecarbon cpu_load mode: no CPU energy counter (RAPL) is readable",
                       f"{formula}; TDP = {tdp} W from {source}")
    if mode == "constant":
        return _method("estimate", "codecarbon constant mode: no CPU energy counter and no load reading",
                       f"power = 50% of TDP = {tdp} W from {source}")
    return _method("estimate", f"codecarbon CPU mode {mode!r}", f"TDP = {tdp} W from {source}")


class _EstimateMeter:
    """Our own estimate, for when codecarbon is missing or fails (always marked as an estimate).

    CPU: ``FALLBACK_CPU_W_PER_CORE`` W per fully busy core, i.e. energy = 15 W x CPU-seconds of this process
    and its children (utilisation x cores x time). RAM: ``FALLBACK_RAM_W_PER_GB`` W per GB of peak resident
    memory during the segment. GPU: the NVML energy counter of the CUDA device when pynvml works (a
    measurement), else not counted (an underestimate, flagged). CO2eq: unknown (no carbon intensity table).
    """

    name = "estimate"

    def __init__(self, device: torch.device):
        self.device = device
        self._nvml = None

    def start(self) -> None:
        self._t0, self._cpu0 = time.perf_counter(), process_cpu_seconds()
        self._mj0 = None
        if self.device.type == "cuda":
            try:
                import pynvml

                self._nvml = _nvml_handle(self.device.index if self.device.index is not None
                                          else torch.cuda.current_device())
                self._mj0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._nvml)
            except Exception:
                self._nvml = None

    def read(self, final: bool) -> dict[str, Any]:
        seconds = time.perf_counter() - self._t0
        cpu_s = process_cpu_seconds() - self._cpu0
        rss_gb = (peak_rss_bytes() or 0) / 1e9
        out: dict[str, Any] = {
            "kwh_cpu": FALLBACK_CPU_W_PER_CORE * cpu_s / 3.6e6,
            "kwh_ram": FALLBACK_RAM_W_PER_GB * rss_gb * seconds / 3.6e6,
            "kwh_gpu": 0.0,
            "co2_kg": None,
        }
        cpu = _method("estimate", "ever fallback (codecarbon unavailable)",
                      f"CPU power = {FALLBACK_CPU_W_PER_CORE:g} W per busy core x utilisation, i.e. "
                      f"{FALLBACK_CPU_W_PER_CORE:g} W x process CPU-seconds")
        ram = _method("estimate", "ever fallback (codecarbon unavailable)",
                      f"RAM power = {FALLBACK_RAM_W_PER_GB:g} W per GB of peak resident memory (3 W per 8 GB)")
        if self.device.type != "cuda":
            gpu = _method("none", "CPU run: GPU not used")
        elif self._mj0 is not None:
            import pynvml

            mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._nvml)
            out["kwh_gpu"] = (mj - self._mj0) / 3.6e9  # mJ -> kWh
            gpu = _method("measured", "NVML total energy counter of the device (all processes on it)")
        else:
            gpu = _method("unavailable", "no codecarbon and no NVML energy counter",
                          "GPU energy counted as 0: an underestimate")
        co2 = _method("unavailable", "no carbon intensity table without codecarbon", "CO2eq not computed")
        out["method"] = {"tool": "ever-fallback", "cpu": cpu, "gpu": gpu, "ram": ram, "co2": co2}
        return out


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

    def __init__(self, run_dir: str | Path, phase: str = "train", country: str = "FRA",
                 device: torch.device | str | None = None, enabled: bool = True,
                 measure_power_secs: float = 15.0):
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
        self._meters: list[Any] = []
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

    def set_flops_per_step(self, n: int) -> None:
        self.flops_per_step = int(n)

    def set_metric(self, name: str, value: Any) -> None:
        """Record a result of this segment (e.g. accuracy); numbers are stored as floats."""
        self.metrics[name] = float(value) if isinstance(value, (int, float)) or torch.is_tensor(value) else value

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> "Ledger":
        self._started_at = _now()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self._cpu0 = process_cpu_seconds()
        self._meters, self._meter_errors = [], []
        if self.enabled:
            with contextlib.suppress(Exception):  # codecarbon missing or broken: the fallback remains
                self._meters.append(_CodecarbonMeter(self.country, self.measure_power_secs, self.device))
            if not self._meters:
                self._meter_errors.append("codecarbon unavailable")
            self._meters.append(_EstimateMeter(self.device))
            for meter in list(self._meters):
                try:
                    meter.start()
                except Exception as e:
                    self._meters.remove(meter)
                    self._meter_errors.append(f"{meter.name}: {e}")
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
            warnings.warn(f"ledger: could not record the failed segment ({e})")
        return False  # never swallow the exception

    def flush(self) -> None:
        """Write the segment so far with status "running" (call it at checkpoint time: if the process is
        then killed, the energy up to here stays in the ledger). Costs one power reading."""
        if self._start is None:
            raise RuntimeError("Ledger.flush() outside the with block")
        self._write("running", final=False)

    # -- recording ---------------------------------------------------------------------------

    def _energy(self, final: bool) -> dict[str, Any]:
        if not self.enabled:
            return {"kwh_cpu": None, "kwh_gpu": None, "kwh_ram": None, "co2_kg": None,
                    "method": {"tool": "disabled", "energy": "disabled (Ledger(enabled=False))"}}
        readings, errors = [], list(self._meter_errors)
        for meter in self._meters:  # the first meter that answers wins; every meter is stopped
            try:
                readings.append(meter.read(final))
            except Exception as e:
                errors.append(f"{meter.name}: {e}")
        if not readings:
            out = {"kwh_cpu": None, "kwh_gpu": None, "kwh_ram": None, "co2_kg": None,
                   "method": {"tool": "failed", "energy": "no energy reading"}}
        else:
            out = readings[0]
        if errors:
            out["method"]["errors"] = errors
        return out

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
            phase["segments"] = [s for s in phase["segments"] if s.get("id") != self._id] + [seg]
            for p in ledger["phases"].values():
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
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        from ever.errors import EverError

        raise EverError(f"{path}: not a valid ledger ({e})") from None


# ----------------------------------------------------------------------------------------------
# reading ledgers back


def load_ledger(run_dir: str | Path) -> dict[str, Any]:
    """The parsed ``run_dir/ledger.json`` (FileNotFoundError when absent)."""
    ledger = _read(Path(run_dir))
    if ledger is None:
        raise FileNotFoundError(f"{Path(run_dir) / LEDGER_FILE}: no ledger")
    return ledger


def kinetics_estimate(ledger: dict[str, Any] | str | Path, epochs: int = 1,
                      clips_per_epoch: int = K400_TRAIN_VIDEOS, phase: str = "train") -> dict[str, Any]:
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
            "same grid carbon intensity" + ("" if tot.get("estimate") is False else
                                           "; the measured run's energy is itself partly an estimate"),
        ],
    }


def _eval_metrics(run_dir: Path, ledger: dict[str, Any]) -> tuple[float | None, float | None]:
    """J&F-Mean and PCK from ``run_dir/eval/*/summary.json`` (else from the ledger's eval metrics)."""
    jf = pck = None
    files = sorted(glob.glob(str(run_dir / "eval" / "*" / "summary.json"))) + \
        sorted(glob.glob(str(run_dir / "eval" / "summary.json")))
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


TABLE_COLUMNS = [  # (key, header)
    ("name", "run"), ("jf", "J&F"), ("pck", "PCK"), ("kwh", "kWh"), ("co2_kg", "kg CO2eq"),
    ("gflops", "GFLOPs"), ("hours", "hours"), ("peak_mem_gb", "peak mem GB"),
    ("wh_per_clip", "Wh/clip"), ("gflops_per_clip", "GFLOPs/clip"), ("jf_per_kwh", "J&F/kWh"),
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

    kwh, co2, flops, secs = total("kwh"), total("co2_kg"), total("flops"), total("seconds")
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
        "kwh": kwh,
        "co2_kg": co2,
        "gflops": None if flops is None else flops / 1e9,
        "hours": None if secs is None else secs / 3600,
        "peak_mem_gb": max(peaks) / 1e9 if peaks else None,
        "wh_per_clip": None if train.get("kwh_per_clip") is None else train["kwh_per_clip"] * 1000,
        "gflops_per_clip": None if train.get("flops_per_clip") is None else train["flops_per_clip"] / 1e9,
        "jf_per_kwh": jf / kwh if jf is not None and kwh else None,
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
        lines.append("  ".join(s.ljust(w) if i in (0, len(widths) - 1) else s.rjust(w)
                               for i, (s, w) in enumerate(zip(c, widths))).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    from ever.utils import atomic_write_text
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[k for k, _ in TABLE_COLUMNS])
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k, _ in TABLE_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def cli(args) -> int:
    """``ever ledger runs/* [--csv FILE]``: print the table; folders without a ledger are skipped."""
    from ever.errors import EverError

    rows = ledger_table([Path(r) for r in args.runs if Path(r).is_dir()])
    if not rows:
        raise EverError(f"no {LEDGER_FILE} in any of the {len(args.runs)} folder(s) given")
    print(format_table(rows))
    if getattr(args, "csv", None):
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    return 0
