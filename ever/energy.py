"""What the machine is, what this process used, and how much energy a stretch of work took.

Three kinds of figures, each with its provenance:

* **Host facts** (:func:`hardware_info`, :func:`software_info`): CPU model and core counts, RAM (GB),
  the GPUs' names, memory (GB) and power limits (W, from NVML), library versions and the git commit.
  Read from the system; nothing is estimated.
* **Process counters** (:func:`process_cpu_seconds`, :func:`peak_rss_bytes`): CPU time (s) of this
  process and its children, and its peak resident memory (bytes). Measured by the kernel; cheap, so
  they are read also when energy is not.
* **Energy** (:class:`EnergyMeter`): kWh for CPU, GPU and RAM over a stretch of work, and kg CO2eq.
  Each component says how it was obtained. ``"measured"`` means a hardware energy counter was read
  (RAPL or an equivalent for the CPU, NVML for an NVIDIA GPU); ``"estimate"`` means a power model was
  used, and its assumption is written next to it (no machine has a RAM power counter, so RAM is always
  an estimate; a CPU without readable RAPL is estimated from TDP and CPU load). Energy comes from
  codecarbon's ``OfflineEmissionsTracker`` (no network, writes no file); when codecarbon is missing or
  fails, our own documented estimate is used instead (see :class:`_EstimateMeter`). CO2eq is always an
  estimate: the kWh times the country's average grid carbon intensity (codecarbon's offline table).

Importing this module reads nothing; every figure is read when its function is called.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

# Our own fallback estimate, used only when codecarbon is unavailable or fails.
FALLBACK_CPU_W_PER_CORE = 15.0  # W drawn by one fully busy core (a mid-range server core at ~TDP/cores)
FALLBACK_RAM_W_PER_GB = 3.0 / 8.0  # W per GB of resident memory (the common "3 W per 8 GB DDR4" rule)

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
            info["gpus"].append(
                {
                    "index": i,
                    "name": props.name,
                    "memory_gb": round(props.total_memory / 1e9, 2),
                    "power_limit_w": _nvml_power_limit_w(i),
                }
            )
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
    if device.type != "cuda" or (torch.distributed.is_available() and torch.distributed.is_initialized()):
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
# process counters (cheap: always read, also when energy is not)


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
# energy: codecarbon, or our documented estimate


class EnergyMeter:
    """Energy of one stretch of work on ``device``, from the first meter that answers.

    :meth:`start` opens codecarbon's offline tracker (when it imports and initialises) and our
    :class:`_EstimateMeter`; :meth:`read` takes codecarbon's reading and falls back to the estimate
    when codecarbon fails. Every meter is read (and stopped, when ``final``) so none is left running.

    Args:
        country: ISO-3 code for the grid carbon intensity (codecarbon's offline table).
        measure_power_secs: codecarbon's sampling interval (s).
        device: the torch device the work runs on (a CUDA device's GPU is the one billed).
    """

    def __init__(self, country: str, measure_power_secs: float, device: torch.device):
        self.country = country
        self.measure_power_secs = measure_power_secs
        self.device = device
        self._meters: list[Any] = []
        self._errors: list[str] = []

    def start(self) -> None:
        """Open and start the meters; one that fails is dropped and its error kept for :meth:`read`."""
        self._meters, self._errors = [], []
        with contextlib.suppress(Exception):  # codecarbon missing or broken: the fallback remains
            self._meters.append(_CodecarbonMeter(self.country, self.measure_power_secs, self.device))
        if not self._meters:
            self._errors.append("codecarbon unavailable")
        self._meters.append(_EstimateMeter(self.device))
        for meter in list(self._meters):
            try:
                meter.start()
            except Exception as e:
                self._meters.remove(meter)
                self._errors.append(f"{meter.name}: {e}")

    def read(self, final: bool) -> dict[str, Any]:
        """Energy since :meth:`start` (``final``: stop the meters).

        Returns ``kwh_cpu``, ``kwh_gpu``, ``kwh_ram`` (kWh) and ``co2_kg`` (kg CO2eq), each a float or
        None when unknown, and ``method``: the tool and each component's provenance (see
        :func:`_method`), with ``errors`` listing the meters that failed.
        """
        readings, errors = [], list(self._errors)
        for meter in self._meters:  # the first meter that answers wins; every meter is read
            try:
                readings.append(meter.read(final))
            except Exception as e:
                errors.append(f"{meter.name}: {e}")
        if not readings:
            out = {
                "kwh_cpu": None,
                "kwh_gpu": None,
                "kwh_ram": None,
                "co2_kg": None,
                "method": {"tool": "failed", "energy": "no energy reading"},
            }
        else:
            out = readings[0]
        if errors:
            out["method"]["errors"] = errors
        return out


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
        kwargs = dict(
            country_iso_code=country,
            log_level="error",
            measure_power_secs=measure_power_secs,
            tracking_mode=self.tracking_mode,
            allow_multiple_runs=True,
            project_name="ever",
            emissions_endpoint=None,
        )  # None beats any endpoint in a user's .codecarbon.config
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
                gpu = _method(
                    "measured",
                    "codecarbon via NVML/AMD-SMI: energy counters of GPU(s) "
                    f"{'all visible' if ids is None else ids} (whole devices, all processes)",
                )
            elif kind == "RAM":
                forced = getattr(hw, "_force_ram_power", None)
                if forced is not None:
                    ram = _method("estimate", "codecarbon constant RAM power", f"RAM draws {forced} W")
                else:
                    mem = "this process's resident memory" if mode == "process" else "the machine's total RAM"
                    ram = _method(
                        "estimate",
                        "codecarbon RAM power model (no RAM power counter is read)",
                        f"RAM power = about 5 W per DIMM (x86; 1.5 W on ARM), at least 2 DIMMs, the DIMM "
                        f"count guessed from {mem}; not a measurement",
                    )
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
        co2 = _method(
            "estimate",
            f"codecarbon offline carbon intensity table, country {country}",
            f"CO2eq = kWh x {intensity}"
            + (f"; PUE {pue}" if pue not in (None, 1.0) else "; PUE 1 (no datacentre overhead)"),
        )
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
    source = (
        "codecarbon's generic default (model not in its table)"
        if getattr(hw, "_is_generic_tdp", False)
        else f"codecarbon's CPU power table for {model!r} (4 W per thread when the model is unknown)"
    )
    if mode == "cpu_load":
        if tracking_mode == "process":
            formula = "power = TDP x (CPU time of this process and its children / wall time / logical cores)"
        else:
            formula = "power = TDP x (0.1 + 0.9 x machine CPU load^3)"
        return _method(
            "estimate",
            "codecarbon cpu_load mode: no CPU energy counter (RAPL) is readable",
            f"{formula}; TDP = {tdp} W from {source}",
        )
    if mode == "constant":
        return _method(
            "estimate",
            "codecarbon constant mode: no CPU energy counter and no load reading",
            f"power = 50% of TDP = {tdp} W from {source}",
        )
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

                self._nvml = _nvml_handle(
                    self.device.index if self.device.index is not None else torch.cuda.current_device()
                )
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
        cpu = _method(
            "estimate",
            "ever fallback (codecarbon unavailable)",
            f"CPU power = {FALLBACK_CPU_W_PER_CORE:g} W per busy core x utilisation, i.e. "
            f"{FALLBACK_CPU_W_PER_CORE:g} W x process CPU-seconds",
        )
        ram = _method(
            "estimate",
            "ever fallback (codecarbon unavailable)",
            f"RAM power = {FALLBACK_RAM_W_PER_GB:g} W per GB of peak resident memory (3 W per 8 GB)",
        )
        if self.device.type != "cuda":
            gpu = _method("none", "CPU run: GPU not used")
        elif self._mj0 is not None:
            import pynvml

            mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._nvml)
            out["kwh_gpu"] = (mj - self._mj0) / 3.6e9  # mJ -> kWh
            gpu = _method("measured", "NVML total energy counter of the device (all processes on it)")
        else:
            gpu = _method(
                "unavailable", "no codecarbon and no NVML energy counter", "GPU energy counted as 0: an underestimate"
            )
        co2 = _method("unavailable", "no carbon intensity table without codecarbon", "CO2eq not computed")
        out["method"] = {"tool": "ever-fallback", "cpu": cpu, "gpu": gpu, "ram": ram, "co2": co2}
        return out
