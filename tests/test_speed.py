"""Speed against the reference code (issue 32): ever.analysis.speed on small synthetic bench results, bench/train.py
in a reduced form read back through it, and the committed snapshots (results/speed, one folder a machine) behind the
README's speed table (tests/test_readme.py checks that the README holds it)."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from ever.analysis import speed
from ever.errors import EverError

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "results" / "speed"
PROVENANCE = {
    "command": "python bench/x.py",
    "date": "2026-12-07T11:00:00+00:00",
    "environment": {"torch": "2.13.0+cpu", "git_commit": "0123456789abcdef", "git_changes": []},
    "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "device": "cpu", "gpus": []},
    "load_before": [1.0, 1.0, 1.0],
    "load_after": [2.0, 1.0, 1.0],
}


def _step(variant, stage, precision, ms, gflop, mode="default"):
    return {
        "variant": variant,
        "stage": stage,
        "precision": precision,
        "mode": mode,
        "first_step_s": 40.0 if mode == "compile" else ms / 1e3,
        "step_ms": ms,
        "cpu_ms": 2 * ms,
        "gflops_per_clip": gflop,
        "clips_per_s": 2e3 / ms,
        "nodes_per_frame": 49.0,
    }


def _train() -> dict:
    rows = [
        _step("patch_crop", "layer4", "fp32", 8000.0, 880.0),
        _step("patch_crop", "layer4", "bf16", 12000.0, 880.0),
        _step("patch_crop", "layer3", "fp32", 2000.0, 250.0),
        _step("patch_crop", "layer3", "bf16", 4000.0, 250.0),
        _step("patch_crop", "layer3", "fp32", 1600.0, 250.0, "channels_last"),
        _step("patch_crop", "layer3", "fp32", 2500.0, 250.0, "compile"),
        _step("patch_pool", "layer3", "fp32", 500.0, 80.0),
    ]
    vw = [
        {
            "variant": "videowalk",
            "stage": "layer4",
            "step_ms": 12000.0,
            "gflops_per_clip": 880.0,
            "clips_per_s": 2 / 12,
        },
        {"variant": "videowalk", "stage": "layer3", "step_ms": 3000.0, "gflops_per_clip": 250.0, "clips_per_s": 2 / 3},
    ]
    args = {"size": 256, "width": 64, "batch": 2, "clip_len": 4, "threads": 2}
    return {"bench": "train", **PROVENANCE, "args": args, "rows": rows, "videowalk": vw}


def _result(method, long_side, channels, enc, base, today, vw, d=0.0):
    cells = [30, 54] if long_side else [60, 107]
    r = {
        "source": "davis2016-dev/bear",
        "size": [480, 854],
        "cells": cells,
        "channels": channels,
        "frames": 30,
        "encode_s_per_frame": enc,
        "method": method,
        "long_side": long_side,
        "today": {"impl": "today", "s_per_frame": today, "torch_threads": 1},
        "base": {"impl": "base", "s_per_frame": base, "torch_threads": 1},
        "max_abs_diff": d,
    }
    if vw is not None:
        r["videowalk"] = {"impl": "videowalk", "s_per_frame": vw, "torch_threads": 1}
    return r


def _eval(d=0.0) -> dict:
    results = [
        _result("lab", 427, 3, 0.02, 0.08, 0.03, 0.38),
        _result("lab", 0, 3, 0.1, 0.9, 0.15, 3.9),
        _result("w16", 0, 64, 0.25, 0.75, 0.25, 9.75, d),
    ]
    return {"bench": "eval", **PROVENANCE, "base": {"path": "/x", "commit": "4965e1d0000"}, "results": results}


def test_step_table_gives_each_steps_times_flops_and_ratios_to_the_first():
    T = speed.step_table(_train())
    assert list(T.index) == [
        "patch_crop layer4 fp32",
        "patch_crop layer4 bf16",
        "patch_crop layer3 fp32",
        "patch_crop layer3 bf16",
        "patch_crop layer3 fp32 channels_last",
        "patch_crop layer3 fp32 compile",
        "patch_pool layer3 fp32",
    ]
    row = T.loc["patch_crop layer3 fp32"]
    assert row["wall ms"] == 2000 and row["CPU ms"] == 4000 and row["x faster"] == 4.0 and row["x fewer FLOPs"] == 3.52
    assert T.loc["patch_crop layer4 bf16", "x faster"] == 0.67
    assert T.loc["patch_crop layer3 fp32 compile", "first step s"] == 40.0
    assert T.loc["patch_crop layer3 fp32", "GFLOP/s"] == 250  # 250 GFLOP a clip, 2 clips in 2 s


def test_videowalk_is_paired_with_evers_fp32_reference_walk_at_the_same_stage():
    snap = _train()
    pairs = {p["stage"]: p for p in speed.videowalk_pairs(snap)}
    assert pairs["layer4"]["speedup"] == 1.5 and pairs["layer3"]["speedup"] == 1.5
    assert pairs["layer4"]["speedup_bf16"] == 1.0 and pairs["layer3"]["speedup_bf16"] == 0.75  # EVER under bf16
    assert pairs["layer3"]["ever_ms"] == 2000.0 and pairs["layer3"]["videowalk_gflop"] == 250.0
    assert pairs["layer3"]["ever_gflops"] == 250.0 and pairs["layer3"]["videowalk_gflops"] == pytest.approx(500 / 3)
    del snap["rows"][0]["mode"]  # a result from before --modes: its rows ran as ever.train runs them
    assert speed.videowalk_pairs(snap)[0] == pairs["layer4"]
    snap["rows"] = [r for r in snap["rows"] if r["stage"] == "layer4"]  # EVER not timed at layer3: no pair
    assert [p["stage"] for p in speed.videowalk_pairs(snap)] == ["layer4"]
    assert list(speed.videowalk_table(snap).index) == ["layer4"]


def test_eval_rows_add_the_encoder_to_each_propagation_and_compare_frames_per_second():
    rows = speed.eval_rows(_eval())
    native = rows[1]
    assert native["size"] == "native 480p" and rows[0]["size"] == "427 px"
    assert native["today"] == pytest.approx(1 / 0.25) and native["base"] == pytest.approx(1.0)
    assert native["x base"] == pytest.approx(4.0) and native["x videowalk"] == pytest.approx(16.0)
    T = speed.eval_table(_eval())
    assert {"f/s 0123456", "f/s 4965e1d", "f/s videowalk", "x 4965e1d", "x videowalk"} <= set(T.columns)


def test_the_sentences_carry_the_snapshots_numbers():
    t = speed.train_text(_train())
    assert "49 crops of 64 px, 256-px frames, width-64 ResNet-18, 2 x 4 frames, fp32)" in t
    assert "2.00 s through layer3, 8.00 s through layer4" in t
    assert "on the same clips and FLOPs takes 1.50x as long through layer3, 1.50x as long through layer4" in t
    assert "through layer4 (0.75x, 1.00x as long as EVER's under bf16 autocast)." in t
    fp32_only = {**_train(), "rows": [r for r in _train()["rows"] if r["precision"] == "fp32"]}
    assert "bf16" not in speed.train_text(fp32_only)  # not timed: not said
    # bf16 at both stages; channels_last and compile were timed through layer3 only: left out, not half-said
    assert t.endswith("Speed against eager fp32 on this CPU (layer3 / layer4): bf16 autocast 0.50x / 0.67x.")
    both = _train()
    both["rows"] += [
        _step("patch_crop", "layer4", "fp32", 10000.0, 880.0, "channels_last"),
        _step("patch_crop", "layer4", "fp32", 4000.0, 880.0, "compile"),
    ]
    assert speed.train_text(both).endswith(
        "(layer3 / layer4): bf16 autocast 0.50x / 0.67x, channels_last 1.25x / 0.80x, torch.compile 0.80x / 2.00x."
    )
    e = speed.eval_text(_eval())
    assert "at native 480p (30 frames of `bear`, 1 thread," in e
    assert "raw Lab 4.00, the shipped model 2.00" in e
    assert "; 4.0x, 2.0x those of 4965e1d (the same soft labels bit for bit) and 16.0x, 20.0x videowalk's." in e
    assert "(soft labels within 1.0e-05)" in speed.eval_text(_eval(d=1e-5))
    assert speed.machine_line(_train()) == (
        "Test CPU, 2 CPUs; torch 2.13.0+cpu; EVER 0123456; 2026-12-07; 2 threads; load average 1.0 -> 2.0"
    )


def test_the_step_is_read_against_the_machines_matrix_product():
    """With the GFLOP/s of a large fp32 matrix product on the same threads (bench/train.py's ``gemm_gflops``), each
    stage's step is a share of it, and so is a step twice as fast as videowalk's: (2 x 250 x 2/3) / 500 = 67 %
    through layer3, (2 x 880 / 6) / 500 = 59 % through layer4. Without it, neither is said."""
    snap = {**_train(), "gemm_gflops": {"n": 2048, "fp32": 500.0}}
    pairs = {p["stage"]: p for p in speed.videowalk_pairs(snap)}
    assert pairs["layer3"]["ever_of_gemm"] == pytest.approx(0.5) and pairs["layer4"]["ever_of_gemm"] == pytest.approx(
        0.44
    )
    assert pairs["layer3"]["twice_of_gemm"] == pytest.approx(2 / 3) and pairs["layer4"][
        "twice_of_gemm"
    ] == pytest.approx(2 * 880 / 6 / 500)
    t = speed.roof_text(snap)
    assert t == (
        "The reference walk's counted FLOPs run at 50% / 44% (layer3 / layer4) of what a 2048^3 fp32 matrix product "
        "reaches on the same threads (500 GFLOP/s); a step twice as fast as videowalk's in fp32 would need 67% / 59%."
    )
    assert "(500 GFLOP/s; in bf16 1000); a step" in speed.roof_text(
        {**snap, "gemm_gflops": {"n": 2048, "fp32": 500.0, "bf16": 1000.0}}
    )
    assert t in speed.summary(snap, None) and "matrix product" not in speed.train_text(snap)  # the README's line
    assert speed.roof_text(_train()) == "" and "twice_of_gemm" not in speed.videowalk_pairs(_train())[0]
    T = speed.videowalk_table(snap)
    assert T.loc["layer3", "2x videowalk / fp32 matrix product"] == pytest.approx(0.67)


def test_the_sentences_say_only_what_the_results_hold():
    snap = _train()
    snap["videowalk"][1]["gflops_per_clip"] = 300.0  # not the same FLOPs: the sentence must not say so
    assert "on the same clips takes 1.50x as long through layer3" in speed.train_text(snap)  # not "and FLOPs"
    gpu = _train()
    gpu["machine"] = {**gpu["machine"], "device": "cuda:0", "gpus": [{"name": "Test GPU"}]}
    t = speed.train_text(gpu)  # on CUDA the default already is channels_last: no such comparison
    assert "on this GPU" in t and "channels_last" not in t and speed.device(gpu) == "Test GPU"
    bare = _eval()
    del bare["base"]
    for r in bare["results"]:
        del r["base"], r["videowalk"], r["max_abs_diff"]
    e = speed.eval_text(bare)  # no older tree, no videowalk: frames/s only
    assert e.endswith("raw Lab 4.00, the shipped model 2.00.") and "x" not in e.split("frames/s:")[1]
    assert "f/s videowalk" not in speed.eval_table(bare).columns
    pool_only = {**_train(), "rows": [r for r in _train()["rows"] if r["variant"] == "patch_pool"]}
    assert speed.train_text(pool_only) == "" and len(speed.tables(pool_only, None)) == 1  # no pair: no table


def test_the_readme_section_has_a_row_a_machine_and_skips_what_is_absent(tmp_path):
    assert speed.readme_speed(tmp_path) == "" and speed.machines(tmp_path) == []
    assert speed.machines(tmp_path / "none") == [] and speed.snapshots(tmp_path) == (None, None)
    assert speed.summary(None, None).startswith("No `results/speed` snapshot")  # chapter 6 says so
    (tmp_path / "b-cpu").mkdir()
    pool_only = {**_train(), "rows": [r for r in _train()["rows"] if r["variant"] == "patch_pool"]}
    (tmp_path / "b-cpu" / "train.json").write_text(json.dumps(pool_only))
    assert [n for n, *_ in speed.machines(tmp_path)] == ["b-cpu"] and speed.readme_speed(tmp_path) == ""  # no pair
    (tmp_path / "b-cpu" / "eval.json").write_text(json.dumps(_eval()))
    (tmp_path / "notes").mkdir()  # a folder without a snapshot is no machine
    text = speed.readme_speed(tmp_path)
    head, table = text.split("\n\n")
    assert (
        head.startswith("**Speed**") and "propagation at native 480p (30 frames of `bear`, 1 thread, CPU time" in head
    )
    assert "ratios to 4965e1d's (the same soft labels bit for bit) and videowalk's." in head
    assert "training" not in text  # no machine timed a training step beside videowalk's: no word, no column
    rows = table.splitlines()
    assert rows[0] == (
        "| machine | propagation frames/s (raw Lab / shipped model) | x 4965e1d | propagation x videowalk |"
    )
    assert rows[2] == "| Test CPU x2 (2026-12-07) | 4.00 / 2.00 | 4.0 / 2.0 | 16.0 / 20.0 |" and len(rows) == 3
    assert speed.summary(*speed.snapshots(tmp_path / "b-cpu")) == speed.eval_text(_eval())
    [(text, tables)] = speed.sections(tmp_path)  # chapter 6: a section a machine
    assert text.startswith("**Test CPU x2** (`results/speed/b-cpu`)\n\n") and text.endswith(speed.eval_text(_eval()))
    assert [c.split(",")[0] for _, c in tables] == ["A training step", "Label propagation"]  # no videowalk pair
    assert speed.sections(tmp_path / "none") == [(speed.summary(None, None), [])]
    (tmp_path / "a-gpu").mkdir()  # a second machine, listed first by its folder's name, training only
    gpu = {**_train(), "machine": {**_train()["machine"], "device": "cuda:0", "gpus": [{"name": "Test GPU"}]}}
    (tmp_path / "a-gpu" / "train.json").write_text(json.dumps(gpu))
    assert [name for name, *_ in speed.machines(tmp_path)] == ["a-gpu", "b-cpu"]
    head, table = speed.readme_speed(tmp_path).split("\n\n")
    assert "(49 crops of 64 px, 256-px frames, width-64 ResNet-18, 2 x 4 frames, the same clips)" in head
    rows = table.splitlines()
    assert rows[0].startswith("| machine | training x videowalk, EVER fp32 (layer3 / layer4) | EVER bf16 | propagation")
    assert rows[2] == "| Test GPU (2026-12-07) | 1.50 / 1.50 | 0.75 / 1.00 | - | - | - |"
    assert rows[3] == "| Test CPU x2 (2026-12-07) | - | - | 4.00 / 2.00 | 4.0 / 2.0 | 16.0 / 20.0 |"
    later = {**_eval(d=1e-5), "date": "2026-12-08T09:00:00+00:00", "machine": gpu["machine"]}
    (tmp_path / "a-gpu" / "eval.json").write_text(json.dumps(later))
    head, table = speed.readme_speed(tmp_path).split("\n\n")
    assert "(soft labels within 1.0e-05)" in head and "bit for bit" not in head  # said of every machine at once
    assert "(30 frames of `bear`, 1 thread, wall time on a-gpu; 1 thread, CPU time on b-cpu, encoder included)" in head
    assert table.splitlines()[2].startswith("| Test GPU (2026-12-07 / 2026-12-08) | 1.50 / 1.50 | 0.75 / 1.00 | 4.00")
    other = {**_train(), "args": {**_train()["args"], "size": 128}}  # another setup: not one table
    (tmp_path / "b-cpu" / "train.json").write_text(json.dumps(other))
    with pytest.raises(EverError, match=r"the machines' training steps differ \(a-gpu: .*256-px.*; b-cpu: .*128-px"):
        speed.readme_speed(tmp_path)


def test_load_refuses_what_is_not_a_speed_snapshot_in_one_line(tmp_path):
    with pytest.raises(EverError, match=r"train\.json: no speed snapshot here \(python bench/train\.py"):
        speed.load(tmp_path / "train.json", "train")
    f = tmp_path / "s.json"
    f.write_text(json.dumps(_eval()))
    with pytest.raises(EverError, match=r"s\.json: not a bench/train\.py result \(bench = 'eval'\)"):
        speed.load(f, "train")
    snap = _train()
    del snap["environment"]
    f.write_text(json.dumps(snap))
    with pytest.raises(EverError, match=r"s\.json: not a bench/train\.py snapshot \(missing environment\)"):
        speed.load(f, "train")
    f.write_text(json.dumps({**_train(), "rows": []}))
    with pytest.raises(EverError, match=r"s\.json: no measured rows"):
        speed.load(f, "train")
    f.write_text("{")
    with pytest.raises(EverError, match=r"s\.json: not a readable JSON file"):
        speed.load(f, "train")


def test_bench_train_writes_what_the_analysis_reads(tmp_path, monkeypatch):
    """bench/train.py in a reduced form: its JSON is a snapshot speed.load accepts, with its provenance."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "bench" / "train.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_train", bench)
    spec.loader.exec_module(bench)
    out = tmp_path / "train.json"
    compiled = []  # torch.compile stood in for (inductor takes a minute): the mode's plumbing is what is tested

    def fake_compile(fn):
        compiled.append(fn)
        return lambda x: fn(x)

    monkeypatch.setattr(bench.torch, "compile", fake_compile)
    argv = "--size 64 --width 4 --proj-dim 8 --batch 1 --clip-len 2 --steps 1 --warmup 0 --stages layer3"
    modes = "--variants patch_crop --modes default,channels_last,compile"
    bench.main([*argv.split(), *modes.split(), "--json", str(out)])
    snap = speed.load(out, "train")
    assert snap["command"] == f"python bench/train.py {argv} {modes} --json {out}"
    assert snap["environment"]["torch"] and snap["machine"]["device"] == "cpu" and len(snap["load_after"]) == 3
    assert snap["gemm_gflops"]["n"] == 2048 and snap["gemm_gflops"]["fp32"] > 0 and "bf16" not in snap["gemm_gflops"]
    T = speed.step_table(snap)
    names = ["patch_crop layer3 fp32", "patch_crop layer3 fp32 channels_last", "patch_crop layer3 fp32 compile"]
    assert list(T.index) == names
    assert len(compiled) == 1 and compiled[0].__name__ == "dense"  # the encoder, once, for the compile row only
    assert T["GFLOP/clip"].nunique() == 1  # every mode counts the same step's FLOPs
    t = speed.train_text(snap)
    assert "through layer3" in t and re.search(r"channels_last \d+\.\d\dx, torch.compile \d+\.\d\dx\.$", t)
    assert "videowalk" not in t


@pytest.mark.skipif(not SNAPSHOT.is_dir(), reason="no results/speed snapshot committed")
@pytest.mark.parametrize("machine", [name for name, *_ in speed.machines(SNAPSHOT)])
def test_each_committed_machines_speed_snapshot_is_complete(machine):
    train, evals = (
        speed.load(SNAPSHOT / machine / "train.json", "train"),
        speed.load(SNAPSHOT / machine / "eval.json", "eval"),
    )
    for snap in (train, evals):
        assert len(snap["environment"]["git_commit"]) == 40 and snap["command"].startswith("python bench/")
        assert snap["machine"]["cpu_model"] and re.match(r"\d{4}-\d\d-\d\d", snap["date"])
    assert speed.device(train) == speed.device(evals)  # one machine a folder
    # both stages of the reference walk, fp32 and bf16, and videowalk beside them
    assert {(r["variant"], r["stage"], r["precision"]) for r in train["rows"]} >= {
        ("patch_crop", s, p) for s in ("layer3", "layer4") for p in ("fp32", "bf16")
    }
    assert {p["stage"] for p in speed.videowalk_pairs(train)} == {"layer3", "layer4"}
    # 427 px and native 480p for raw Lab, the width-16 and width-64 encoders, against the older tree and videowalk
    rows = speed.eval_rows(evals)
    assert {(r["size"], r["method"]) for r in rows} == {
        (s, m) for s in ("427 px", "native 480p") for m in ("lab", "w16", "w64")
    }
    assert all(r["x base"] and r["x videowalk"] and r["max|d|"] == 0 for r in rows)
