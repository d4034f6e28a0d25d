"""Small helpers shared by the bench scripts: timing, FLOPs, peak memory, JSON, power-law fits.

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import count_flops, fit_exponent, peak_memory, reset_peak, time_fn, write_json

    dev = select_device()  # ever.utils: the rule training uses
    reset_peak(dev)
    secs = time_fn(step, dev, reps=10)                 # median seconds of one call, after warm-up
    rows.append({"n": n, "ms": 1e3 * secs, "gflops": count_flops(step) / 1e9, "peak_b": peak_memory(dev)})
    k = fit_exponent([r["n"] for r in rows], [r["ms"] for r in rows])     # time ~ n^k
    write_json("runs/bench/x.json", {"device": str(dev), "rows": rows})

Timings synchronise CUDA before reading the clock, so they include the queued GPU work.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ever.utils import count_flops  # noqa: F401 - the one FLOP counter, re-exported for the bench scripts


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_stats(
    fn: Callable[[], Any],
    device: torch.device | str = "cpu",
    reps: int = 10,
    warmup: int = 2,
    max_seconds: float | None = None,
) -> dict[str, float]:
    """Time ``fn()``: ``warmup`` untimed calls, then ``reps`` timed ones (fewer if ``max_seconds`` runs
    out, at least one). Returns median / mean / min / std in seconds and the number of timed calls."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(max(1, reps)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            break
    return {
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "std_s": statistics.pstdev(times) if len(times) > 1 else 0.0,
        "reps": len(times),
    }


def time_fn(fn: Callable[[], Any], device: torch.device | str = "cpu", reps: int = 10, warmup: int = 2) -> float:
    """Median seconds of one ``fn()`` call after ``warmup`` untimed calls (see :func:`time_stats`)."""
    return time_stats(fn, device, reps=reps, warmup=warmup)["median_s"]


def reset_peak(device: torch.device | str) -> None:
    """Start a new peak-memory window (CUDA only; the CPU peak RSS cannot be reset)."""
    device = torch.device(device)
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device | str) -> int:
    """Peak bytes: CUDA allocator peak since the last :func:`reset_peak`; on CPU the process's peak RSS
    since it started (ru_maxrss cannot be reset, so only its growth between sizes is informative;
    0 where the platform has no ``resource`` module)."""
    device = torch.device(device)
    if device.type == "cuda":
        sync(device)
        return int(torch.cuda.max_memory_allocated(device))
    from ever.energy import peak_rss_bytes

    return peak_rss_bytes() or 0


def fit_power_law(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> dict[str, float]:
    """Fit ``y = c * x**k`` by least squares in log-log (numpy.polyfit, degree 1).

    Returns the exponent ``k``, the coefficient ``c``, ``r2`` of the log-log fit and the number of
    points used. Points with non-positive or non-finite values are dropped; at least two must remain.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        raise ValueError("fit_power_law needs at least two positive points")
    lx, ly = np.log(x[ok]), np.log(y[ok])
    k, logc = np.polyfit(lx, ly, 1)
    pred = k * lx + logc
    ss_res, ss_tot = float(((ly - pred) ** 2).sum()), float(((ly - ly.mean()) ** 2).sum())
    return {
        "exponent": float(k),
        "coef": float(math.exp(logc)),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0,
        "points": int(ok.sum()),
    }


def fit_exponent(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> float:
    """The exponent ``k`` of ``y ~ x**k`` (log-log least squares, see :func:`fit_power_law`); NaN when
    fewer than two usable points are given (a bench then prints "nan" instead of failing)."""
    try:
        return fit_power_law(x, y)["exponent"]
    except ValueError:
        return float("nan")


def device_info(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on (printed with every bench result)."""
    from ever.energy import hardware_info

    hw = hardware_info(device)
    gpu = hw["gpus"][device.index or 0]["name"] if device.type == "cuda" and hw["gpus"] else None
    return {
        "device": str(device),
        "cpu_model": hw["cpu_model"],
        "cpu_count": hw["cpu_count_usable"],
        "gpu": gpu,
        "torch": torch.__version__,
    }


# Dense bf16 / fp32 tensor-core peaks (TFLOP/s) from the vendors' data sheets, for model FLOPs utilisation.
PEAK_TFLOPS = {
    "H100": {"bf16": 989.0, "fp32": 67.0},
    "H200": {"bf16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp32": 19.5},
    "L4": {"bf16": 121.0, "fp32": 30.3},
}


def peak_tflops(device: torch.device, dtype: str) -> float | None:
    """The device's peak TFLOP/s for ``dtype`` ("bf16" | "fp32") if known, else None (no MFU printed)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v[dtype] for k, v in PEAK_TFLOPS.items() if k in name), None)


def gemm_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of one n x n by n x n matrix product (``torch.matmul``, 2 n^3 FLOPs) in ``dtype`` on ``device`` with
    the threads set: what dense arithmetic reaches on this machine in practice, the roof a step's counted FLOPs a
    second are read against (a vendor's peak, :func:`peak_tflops`, is known for some GPUs only). The fastest of
    ``reps`` calls after the warm-up: a roof is what the machine can reach, and a shared machine's slow calls are
    other processes' time."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
    return 2 * n**3 / time_stats(lambda: a @ b, device, reps=reps)["min_s"] / 1e9


def provenance(script: str, argv: list[str], device: torch.device | str) -> dict[str, Any]:
    """What makes a bench result a snapshot: the command that made it, when (UTC), the code (``environment``:
    commit and uncommitted changes, torch), the machine it ran on (``hardware_info`` of ``device``; ``gpus`` only
    when that is CUDA) and the load average as it started (the caller adds ``load_after`` when it ends)."""
    import os
    from datetime import datetime, timezone

    from ever.energy import hardware_info
    from ever.utils import environment

    return {
        "command": " ".join(["python", f"bench/{script}", *argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "machine": {**hardware_info(device), **({} if torch.device(device).type == "cuda" else {"gpus": []})},
        "load_before": list(os.getloadavg()),
    }


def write_json(path: str | Path, obj: dict[str, Any]) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (folders created)."""
    from ever.utils import atomic_write_json

    atomic_write_json(path, obj)
    print(f"wrote {path}")


def emit(result: dict[str, Any], path: str | Path | None = None) -> None:
    """Print ``result`` as indented JSON on stdout and, if ``path`` is given, also write it there."""
    print(json.dumps(result, indent=2, default=str))
    sys.stdout.flush()
    if path:
        write_json(path, result)
