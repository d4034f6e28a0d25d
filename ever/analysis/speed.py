"""What a training step and a propagated frame cost against the code EVER re-implements (issue 32). Reads the
snapshots ``bench/train.py`` and ``bench/eval.py`` write, one folder a machine (``results/speed/MACHINE/train.json``,
``.../eval.json``: the ratios depend on the CPU), and returns tables and sentences made from their numbers. No
figure is typed here.

    for name, train, evals in machines():  # one folder of results/speed a machine
        step_table(train)       # each variant x stage x precision x mode: wall and CPU ms a step, GFLOP a clip, ratios
        videowalk_table(train)  # ajabri/videowalk's step beside EVER's reference walk, stage by stage
        roof_text(train)        # that step against this machine's fp32 matrix product (what 2x videowalk would need)
        eval_table(evals)       # frames/s at 427 px and 480p: this tree, an older tree, videowalk; max|d|
        machine_line(train)     # what the figures were measured on, and when
    sections()                  # chapter 6: each machine's sentences (summary) and tables
    readme_speed()              # the README's generated Speed section: a row a machine
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ever.errors import EverError

SNAPSHOT = Path(__file__).resolve().parents[2] / "results" / "speed"
KEYS = {
    "train": ("command", "date", "environment", "machine", "args", "rows", "videowalk"),
    "eval": ("command", "date", "environment", "machine", "results"),
}
MAKES = {"train": "bench/train.py", "eval": "bench/eval.py"}


def load(path: str | Path, bench: str) -> dict[str, Any]:
    """The snapshot of ``bench`` ("train" or "eval") at ``path`` as a dict, checked: its keys, that ``bench`` wrote
    it, at least one row (a one-line :class:`EverError` naming the file otherwise)."""
    path = Path(path)
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EverError(f"{path}: no speed snapshot here (python {MAKES[bench]} ... --json {path})") from None
    except (OSError, ValueError) as e:
        raise EverError(f"{path}: not a readable JSON file ({type(e).__name__}: {e})") from None
    if not isinstance(snap, dict) or snap.get("bench") != bench:
        found = snap.get("bench") if isinstance(snap, dict) else None
        raise EverError(f"{path}: not a {MAKES[bench]} result (bench = {found!r})")
    missing = [k for k in KEYS[bench] if k not in snap]
    if missing:
        raise EverError(f"{path}: not a {MAKES[bench]} snapshot (missing {', '.join(missing)})")
    if not snap["rows" if bench == "train" else "results"]:
        raise EverError(f"{path}: no measured rows")
    return snap


def _mode(r: dict[str, Any]) -> str:
    return r.get("mode", "default")  # results before bench/train.py's --modes ran as ever.train does


def label(r: dict[str, Any]) -> str:
    """A training-step row's name: variant, stage, precision and its mode unless the default."""
    return f"{r['variant']} {r['stage']} {r['precision']}" + ("" if _mode(r) == "default" else f" {_mode(r)}")


def _row(snap: dict[str, Any], variant: str, stage: str, precision: str, mode: str = "default") -> dict | None:
    want = (variant, stage, precision, mode)
    return next((r for r in snap["rows"] if (r["variant"], r["stage"], r["precision"], _mode(r)) == want), None)


def _on_cpu(snap: dict[str, Any]) -> bool:
    return str(snap["machine"].get("device") or "cpu").startswith("cpu")


def _rate(r: dict[str, Any]) -> float:
    """GFLOP a second of a step: its counted FLOPs (GFLOP a clip x clips a second) over its median wall time."""
    return r["gflops_per_clip"] * r["clips_per_s"]


def step_table(snap: dict[str, Any]):
    """One row per timed training step (variant, stage, precision and mode, in the order run): median wall ms (and
    its sd over the timed steps) and process CPU ms of a step, GFLOP a clip, clips/s, GFLOP/s (the counted FLOPs
    over the wall time: how busy the arithmetic kept the machine), the first step's seconds, and the first row's
    wall ms and GFLOP over this row's (x faster, x fewer FLOPs)."""
    import pandas as pd

    rows = snap["rows"]
    ref = rows[0]
    T = pd.DataFrame(
        {
            "step": [label(r) for r in rows],
            "wall ms": [r["step_ms"] for r in rows],
            "sd ms": [r.get("step_ms_std") for r in rows],
            "CPU ms": [r["cpu_ms"] for r in rows],
            "GFLOP/clip": [r["gflops_per_clip"] for r in rows],
            "clips/s": [r["clips_per_s"] for r in rows],
            "GFLOP/s": [_rate(r) for r in rows],
            "first step s": [r.get("first_step_s") for r in rows],
            "x faster": [ref["step_ms"] / r["step_ms"] for r in rows],
            "x fewer FLOPs": [ref["gflops_per_clip"] / r["gflops_per_clip"] for r in rows],
        }
    ).set_index("step")
    T = T.dropna(axis=1, how="all")  # results before first_step_s was recorded
    return T.round(
        {
            "sd ms": 0,
            "wall ms": 0,
            "CPU ms": 0,
            "GFLOP/clip": 2,
            "clips/s": 3,
            "GFLOP/s": 0,
            "first step s": 1,
            "x faster": 2,
            "x fewer FLOPs": 2,
        }
    )


def videowalk_pairs(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage videowalk was timed at: its step and EVER's reference walk (``patch_crop``, fp32, default mode) at
    that stage on the same clips, as dicts (stage, videowalk_ms, ever_ms, speedup = videowalk_ms / ever_ms, and both
    GFLOP a clip and GFLOP/s); stages EVER did not time are left out. Where EVER's walk was also timed under bf16
    autocast at that stage (default mode), ``speedup_bf16``: videowalk's time over that step's (videowalk runs in
    fp32: its code has no CPU autocast). Where the snapshot holds the GFLOP/s of a
    large fp32 matrix product on the same threads (``gemm_gflops``, bench/train.py), also ``ever_of_gemm`` and
    ``videowalk_of_gemm``: each step's GFLOP/s as a fraction of it, and ``twice_of_gemm``: the fraction a step twice
    as fast as videowalk's would need (above 1: beyond what this machine's dense arithmetic reaches)."""
    gemm = snap.get("gemm_gflops", {}).get("fp32")
    out = []
    for v in snap["videowalk"]:
        ours = _row(snap, "patch_crop", v["stage"], "fp32")
        if ours is None:
            continue
        out.append(
            {
                "stage": v["stage"],
                "videowalk_ms": v["step_ms"],
                "videowalk_sd_ms": v.get("step_ms_std"),
                "ever_ms": ours["step_ms"],
                "ever_sd_ms": ours.get("step_ms_std"),
                "speedup": v["step_ms"] / ours["step_ms"],
                "videowalk_gflop": v["gflops_per_clip"],
                "ever_gflop": ours["gflops_per_clip"],
                "videowalk_gflops": _rate(v),
                "ever_gflops": _rate(ours),
            }
        )
        bf16 = _row(snap, "patch_crop", v["stage"], "bf16")
        if bf16 is not None:
            out[-1]["speedup_bf16"] = v["step_ms"] / bf16["step_ms"]
        if gemm:
            out[-1].update(ever_of_gemm=_rate(ours) / gemm, videowalk_of_gemm=_rate(v) / gemm)
            out[-1]["twice_of_gemm"] = 2 * out[-1]["videowalk_of_gemm"]
    return out


def videowalk_table(snap: dict[str, Any]):
    """:func:`videowalk_pairs` as a table indexed by stage."""
    import pandas as pd

    P = pd.DataFrame(videowalk_pairs(snap))
    if P.empty:
        return P
    P = P.set_index("stage").rename(
        columns={
            "videowalk_ms": "videowalk ms",
            "videowalk_sd_ms": "videowalk sd ms",
            "ever_ms": "EVER ms",
            "ever_sd_ms": "EVER sd ms",
            "speedup": "x faster (videowalk ms / EVER ms)",
            "speedup_bf16": "x faster, EVER in bf16",
            "videowalk_gflop": "videowalk GFLOP/clip",
            "ever_gflop": "EVER GFLOP/clip",
            "videowalk_gflops": "videowalk GFLOP/s",
            "ever_gflops": "EVER GFLOP/s",
            "ever_of_gemm": "EVER / fp32 matrix product",
            "videowalk_of_gemm": "videowalk / fp32 matrix product",
            "twice_of_gemm": "2x videowalk / fp32 matrix product",
        }
    )
    return P.dropna(axis=1, how="all").round(2)


def _fps(r: dict[str, Any], impl: str) -> float | None:
    return 1.0 / (r["encode_s_per_frame"] + r[impl]["s_per_frame"]) if impl in r else None


def eval_rows(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """Per size and method: frames/s (1 / (encoder + propagation) seconds a frame) of this tree (``today``), of the
    older tree (``base``) and of videowalk where timed, today's over theirs, and ``max|d|`` between base's and
    today's soft labels."""
    out = []
    for r in snap["results"]:
        today, base, vw = _fps(r, "today"), _fps(r, "base"), _fps(r, "videowalk")
        out.append(
            {
                "size": f"{r['long_side']} px" if r["long_side"] else f"native {r['size'][0]}p",
                "method": r["method"],
                "channels": r["channels"],
                "cells": f"{r['cells'][0]}x{r['cells'][1]}",
                "today": today,
                "base": base,
                "videowalk": vw,
                "x base": today / base if base else None,
                "x videowalk": today / vw if vw else None,
                "max|d|": r.get("max_abs_diff"),
            }
        )
    return out


def _native(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`eval_rows` at native size, else at the first size."""
    rows = eval_rows(snap)
    return [r for r in rows if r["size"].startswith("native")] or rows[: len({r["method"] for r in rows})]


def eval_table(snap: dict[str, Any]):
    """:func:`eval_rows` as a table (size, method) x frames/s of each implementation and the ratios; the older
    tree's column is named after its commit when the snapshot records it."""
    import pandas as pd

    base = _short(snap.get("base", {}).get("commit")) or "base"
    today = _short(snap["environment"].get("git_commit")) or "today"
    T = pd.DataFrame(eval_rows(snap)).set_index(["size", "method"])
    T = T.rename(
        columns={
            "today": f"f/s {today}",
            "base": f"f/s {base}",
            "videowalk": "f/s videowalk",
            "x base": f"x {base}",
        }
    )
    return T.dropna(axis=1, how="all").round(2)


def _short(commit: str | None) -> str | None:
    return commit[:7] if commit else None


def machine_line(snap: dict[str, Any]) -> str:
    """Where and when: CPU model and count (and GPU), torch, EVER's commit, the date, threads, the load average."""
    m, env = snap["machine"], snap["environment"]
    cpu = f"{m.get('cpu_model', 'unknown CPU')}, {m.get('cpu_count', '?')} CPUs"
    code = f"EVER {_short(env.get('git_commit')) or 'unknown commit'}"
    parts = [
        cpu + (f", {m['gpus'][0]['name']}" if m.get("gpus") else ""),
        f"torch {env.get('torch')}",
        code + (" with uncommitted changes" if env.get("git_changes") else ""),
        snap["date"][:10],
    ]
    threads = snap.get("args", {}).get("threads")
    if threads:
        parts.append(f"{threads} threads")
    if snap.get("load_before") and snap.get("load_after"):
        parts.append(f"load average {snap['load_before'][0]:.1f} -> {snap['load_after'][0]:.1f}")
    return "; ".join(parts)


def _walk_setup(snap: dict[str, Any], r: dict[str, Any]) -> str:
    """What the reference walk's step ``r`` of ``snap`` ran on: nodes, crop and frame size, encoder, clips."""
    a = snap["args"]
    return (
        f"{r['nodes_per_frame']:.0f} crops of {a['size'] // 4} px, {a['size']}-px frames, width-{a['width']} "
        f"ResNet-18, {a['batch']} x {a['clip_len']} frames"
    )


def train_text(snap: dict[str, Any]) -> str:
    """The reference walk's training step in two sentences: its seconds through layer3 and layer4 (fp32, default
    mode), videowalk's stage by stage as a ratio (also to EVER's bf16 step, where timed at every stage), and bf16
    autocast, channels_last (on CPU) and torch.compile as ratios of its speed at each of those stages (a way timed
    at some stages only is left out); empty without a patch_crop fp32 row."""
    steps = [r for r in (_row(snap, "patch_crop", s, "fp32") for s in ("layer3", "layer4")) if r]
    if not steps:
        return ""
    text = f"**Training step** of the reference walk ({_walk_setup(snap, steps[0])}, fp32): " + ", ".join(
        f"{r['step_ms'] / 1e3:.2f} s through {r['stage']}" for r in steps
    )
    pairs = sorted(videowalk_pairs(snap), key=lambda p: p["stage"])
    if pairs:
        same = all(abs(p["videowalk_gflop"] / p["ever_gflop"] - 1) < 0.01 for p in pairs)
        text += f"; ajabri/videowalk's own step on the same clips{' and FLOPs' if same else ''} takes " + (
            ", ".join(f"{p['speedup']:.2f}x as long through {p['stage']}" for p in pairs)
        )
        if all("speedup_bf16" in p for p in pairs):
            bf16 = ", ".join(f"{p['speedup_bf16']:.2f}x" for p in pairs)
            text += f" ({bf16} as long as EVER's under bf16 autocast)"
    ways = [("bf16 autocast", "bf16", "default"), ("torch.compile", "fp32", "compile")]
    if _on_cpu(snap):  # on CUDA the default is channels_last already
        ways.insert(1, ("channels_last", "fp32", "channels_last"))
    others = []
    for what, precision, mode in ways:
        pairs = [(r, o) for r in steps if (o := _row(snap, "patch_crop", r["stage"], precision, mode))]
        if len(pairs) == len(steps):
            others.append(f"{what} " + " / ".join(f"{r['step_ms'] / o['step_ms']:.2f}x" for r, o in pairs))
    if others:
        where = "this CPU" if _on_cpu(snap) else "this GPU"
        stages = " / ".join(r["stage"] for r in steps)
        text += f". Speed against eager fp32 on {where} ({stages}): {', '.join(others)}"
    return text + "."


def _method(r: dict[str, Any], short: bool = False) -> str:
    if r["method"] in ("lab", "w16"):
        return {"lab": "raw Lab", "w16": "shipped model" if short else "the shipped model"}[r["method"]]
    return f"random width-{r['method'][1:]}" if short else f"a random width-{r['method'][1:]} encoder"


def _times(rows: list[dict[str, Any]], key: str) -> str:
    return ", ".join(f"{r[key]:.1f}x" for r in rows)


def _base(snap: dict[str, Any]) -> str:
    return _short(snap.get("base", {}).get("commit")) or "the older tree"


def _propagation_setup(snap: dict[str, Any], clock: bool = True) -> str:
    """Where propagation was timed, e.g. "at native 480p (30 frames of `bear`", then with ``clock`` how
    (:func:`_clock`) and ", encoder included)"."""
    first, native = snap["results"][0], _native(snap)
    where = f"at {native[0]['size']} ({first['frames']} frames of `{first['source'].split('/')[-1]}`"
    return f"{where}, {_clock(snap)}, encoder included)" if clock else where


def _clock(snap: dict[str, Any]) -> str:
    """How propagation was timed: torch's threads and CPU time on a CPU, wall time on a GPU."""
    threads = snap["results"][0]["today"]["torch_threads"]
    return f"{threads} thread{'s' if threads != 1 else ''}, {'CPU' if _on_cpu(snap) else 'wall'} time"


def _bits(rows: list[dict[str, Any]]) -> str:
    """Whether the older tree's soft labels were today's bit for bit in ``rows`` (of :func:`eval_rows`), as a clause;
    empty where no row compared them."""
    diffs = [r["max|d|"] for r in rows if r["max|d|"] is not None]
    if not diffs:
        return ""
    return " (the same soft labels bit for bit)" if max(diffs) == 0 else f" (soft labels within {max(diffs):.1e})"


def eval_text(snap: dict[str, Any]) -> str:
    """Propagation in one sentence: at native size (else the first size), each method's frames/s, today's over the
    older tree's (with whether the soft labels were the same bit for bit) and over videowalk's."""
    native = _native(snap)
    text = f"**Propagation** {_propagation_setup(snap)}, frames/s: " + ", ".join(
        f"{_method(r)} {r['today']:.2f}" for r in native
    )
    ratios = []
    if all(r["x base"] for r in native):
        ratios.append(_times(native, "x base") + f" those of {_base(snap)}{_bits(native)}")
    if all(r["x videowalk"] for r in native):
        ratios.append(_times(native, "x videowalk") + " videowalk's")
    if ratios:
        text += "; " + " and ".join(ratios)
    return text + "."


def device(snap: dict[str, Any]) -> str:
    """What a snapshot ran on: the GPU, else the CPU model x its count."""
    m = snap["machine"]
    cpu = re.sub(r"\((R|TM)\)", "", m.get("cpu_model") or "unknown CPU")  # Intel(R) Xeon(R) -> Intel Xeon
    return m["gpus"][0]["name"] if m.get("gpus") else f"{cpu} x{m.get('cpu_count', '?')}"


def snapshots(folder: str | Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The train and eval snapshots of one machine's ``folder`` (:func:`load`), None for each one absent."""
    folder = Path(folder)
    return tuple(load(folder / f"{b}.json", b) if (folder / f"{b}.json").is_file() else None for b in ("train", "eval"))


def machines(root: str | Path = SNAPSHOT) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    """(folder name, train, eval) for each folder of ``root`` that holds a snapshot, by name: one a machine."""
    root = Path(root)
    found = [(d.name, *snapshots(d)) for d in sorted(root.iterdir()) if d.is_dir()] if root.is_dir() else []
    return [m for m in found if m[1] is not None or m[2] is not None]


def roof_text(snap: dict[str, Any]) -> str:
    """How near the reference walk's step is to this machine's dense arithmetic, in one sentence (chapter 6): its
    counted FLOPs a second as a share of a large fp32 matrix product's on the same threads (and that product's
    GFLOP/s in bf16, where timed), and the share a step twice as fast as videowalk's would need in fp32, stage by
    stage; empty where the snapshot has no matrix product or no videowalk pair."""
    pairs = sorted(videowalk_pairs(snap), key=lambda p: p["stage"])
    if not pairs or "twice_of_gemm" not in pairs[0]:
        return ""
    stages, gemm = " / ".join(p["stage"] for p in pairs), snap["gemm_gflops"]
    ours, twice = (" / ".join(f"{p[key]:.0%}" for p in pairs) for key in ("ever_of_gemm", "twice_of_gemm"))
    return (
        f"The reference walk's counted FLOPs run at {ours} ({stages}) of what a {gemm['n']}^3 fp32 matrix product "
        f"reaches on the same threads ({gemm['fp32']:.0f} GFLOP/s"
        + (f"; in bf16 {gemm['bf16']:.0f}" if gemm.get("bf16") else "")
        + f"); a step twice as fast as videowalk's in fp32 would need {twice}."
    )


def summary(train: dict[str, Any] | None, evals: dict[str, Any] | None) -> str:
    """:func:`train_text`, :func:`roof_text` and :func:`eval_text` of the snapshots given, as paragraphs (chapter 6),
    or a sentence saying that there is none."""
    texts = [t for t in (train and train_text(train), train and roof_text(train), evals and eval_text(evals)) if t]
    return "\n\n".join(texts) or "No `results/speed` snapshot in this checkout: `bench/README.md` says how to make one."


def _slashed(values: list, fmt: str) -> str:
    return " / ".join("-" if v is None else format(v, fmt) for v in values)


def _one(root: Path, what: str, by_machine: dict[str, str]) -> str:
    """The one ``what`` of every machine, or a one-line EverError: a table a row a machine compares one setup."""
    if len(set(by_machine.values())) > 1:
        each = "; ".join(f"{name}: {text}" for name, text in by_machine.items())
        raise EverError(f"{root}: the machines' {what} differ ({each}); rerun the bench with one command on each")
    return next(iter(by_machine.values()))


def readme_speed(root: str | Path = SNAPSHOT) -> str:
    """The README's Speed section: what was timed, then a table with a row a machine of :func:`machines` (its
    device and dates; the commits are in chapter 6): videowalk's training step over the reference walk's in fp32
    and under bf16 autocast, stage by stage (:func:`videowalk_pairs`), and propagation's frames/s with the ratios
    to the older tree's and videowalk's (:func:`eval_rows`). Columns no machine has are left out; the setups
    (:func:`_walk_setup`, :func:`_propagation_setup`) must be every machine's same (else a one-line
    :class:`EverError`). Empty without a snapshot that says any of it."""
    root = Path(root)
    names, train, pairs, evals, native = [], {}, {}, {}, {}  # the machines with something to say, and what
    for name, t, e in machines(root):
        ps = sorted(videowalk_pairs(t), key=lambda p: p["stage"]) if t else []
        if ps:
            train[name], pairs[name] = t, ps
        if e:
            evals[name], native[name] = e, _native(e)
        if ps or e:
            names.append(name)
    if not names:
        return ""
    lead, cols = [], ["machine"]
    if pairs:
        setup = _one(
            root,
            "training steps",
            {n: _walk_setup(t, _row(t, "patch_crop", pairs[n][0]["stage"], "fp32")) for n, t in train.items()},
        )
        stages = _one(root, "stages", {n: " / ".join(p["stage"] for p in ps) for n, ps in pairs.items()})
        lead.append(f"training: videowalk's step time over the reference walk's ({setup}, the same clips)")
        cols.append(f"training x videowalk, EVER fp32 ({stages})")
        bf16 = any("speedup_bf16" in p for ps in pairs.values() for p in ps)
        cols += ["EVER bf16"] if bf16 else []
    if native:
        setup = _one(root, "propagation setups", {n: _propagation_setup(e, clock=False) for n, e in evals.items()})
        clocks: dict[str, list[str]] = {}
        for n, e in evals.items():
            clocks.setdefault(_clock(e), []).append(n)
        clock = (
            next(iter(clocks)) if len(clocks) == 1 else "; ".join(f"{c} on {', '.join(n)}" for c, n in clocks.items())
        )
        methods = _one(root, "methods", {n: " / ".join(_method(r, short=True) for r in rs) for n, rs in native.items()})
        base = _one(root, "older trees", {n: _base(e) for n, e in evals.items()})
        every = [r for rs in native.values() for r in rs]
        lead.append(
            f"propagation {setup}, {clock}, encoder included): frames/s, ratios to {base}'s{_bits(every)} "
            "and videowalk's"
        )
        cols += [f"propagation frames/s ({methods})", f"x {base}", "propagation x videowalk"]
    rows = []
    for name in names:
        used = [s for s in (train.get(name), evals.get(name)) if s]
        row = [f"{device(used[0])} ({' / '.join(dict.fromkeys(s['date'][:10] for s in used))})"]
        if pairs:
            ps = pairs.get(name, [])
            row.append(_slashed([p["speedup"] for p in ps], ".2f") if ps else "-")
            row += [_slashed([p.get("speedup_bf16") for p in ps], ".2f") if ps else "-"] if bf16 else []
        if native:
            rs = native.get(name, [])
            for key, fmt in (("today", ".2f"), ("x base", ".1f"), ("x videowalk", ".1f")):
                row.append(_slashed([r[key] for r in rs], fmt) if rs else "-")
        rows.append(row)
    head = "**Speed** beside the code EVER re-implements, ajabri/videowalk, by machine (`results/speed`; chapter 6): "
    head += "; ".join(lead) + "."
    table = "\n".join("| " + " | ".join(r) + " |" for r in [cols, ["---"] * len(cols), *rows])
    return head + "\n\n" + table


def sections(root: str | Path = SNAPSHOT) -> list[tuple[str, list[tuple[Any, str]]]]:
    """Chapter 6's speed part, a section a machine of :func:`machines`: its name and :func:`summary` (markdown) and
    its :func:`tables`; without a snapshot, the summary that says so and no table."""
    found = machines(root)
    if not found:
        return [(summary(None, None), [])]
    return [(f"**{device(t or e)}** (`results/speed/{name}`)\n\n{summary(t, e)}", tables(t, e)) for name, t, e in found]


def tables(train: dict[str, Any] | None, evals: dict[str, Any] | None) -> list[tuple[Any, str]]:
    """The chapter's tables with their captions: :func:`step_table` and :func:`videowalk_table` of ``train``,
    :func:`eval_table` of ``evals`` (either may be None: its tables are left out), each caption saying what was
    run, on what and by which command."""
    out = []
    if train is not None:
        out.append(
            (
                step_table(train),
                "A training step, by node type (patch_crop: the reference walk's patch crops, encoded one by one; "
                "patch_pool: the same patches pooled from one encoding), the stage the encoder ends at, the "
                "precision (bf16: autocast, the loss in fp32) and the mode (none: as `ever train` runs; "
                "channels_last; compile: the encoder torch.compile'd, its first step compiling): median wall "
                "ms of a step (forward, backward, Adam; sd over the timed steps) and process CPU ms, GFLOPs a clip "
                "counted by PyTorch, GFLOP/s (those FLOPs over the wall time), the first step's seconds, and the "
                "first row's time and FLOPs over each row's. "
                f"{machine_line(train)}. Command: `{train['command']}`.",
            )
        )
        if videowalk_pairs(train):
            out.append(
                (
                    videowalk_table(train),
                    "ajabri/videowalk's own training step (its CRW and ResNet-18, fetched and run outside this "
                    "repository) on the same clips, beside EVER's reference walk in fp32 at the same stage: x faster "
                    "is videowalk's time over EVER's (in bf16: over EVER's step under bf16 autocast, where timed; "
                    f"videowalk's runs in fp32). {machine_line(train)}.",
                )
            )
    if evals is not None:
        base = _short(evals.get("base", {}).get("commit")) or "the older tree"
        first = evals["results"][0]
        seconds = "CPU seconds" if _on_cpu(evals) else "seconds"
        out.append(
            (
                eval_table(evals),
                f"Label propagation, frames/s (1 / (encoder + propagation) {seconds} a frame) on {first['frames']} "
                f"frames of `{first['source']}`: this tree, {base} and ajabri/videowalk's affinity and top-k on the "
                f"same features; max|d|: the largest difference between {base}'s and this tree's soft labels (0: "
                f"the same bit for bit). {machine_line(evals)}. Command: `{evals['command']}`.",
            )
        )
    return out
