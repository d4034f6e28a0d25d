"""The energy ledger: file layout, resumed totals, honest estimate flags, FLOPs, failures, CLI."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest
import torch

from ever import energy
from ever import ledger as L
from ever.errors import EverError
from ever.ledger import Ledger, kinetics_estimate, ledger_table, load_ledger

SEGMENT_KEYS = {
    "start",
    "end",
    "seconds",
    "kwh_cpu",
    "kwh_gpu",
    "kwh_ram",
    "kwh",
    "co2_kg",
    "steps",
    "clips",
    "frames",
    "flops",
    "peak_mem_bytes",
    "method",
    "status",
    "estimate",
}


def _busy(n: int = 20) -> None:
    a = torch.randn(128, 128)
    for _ in range(n):
        a = torch.tanh(a @ a)


def _segment(run_dir: Path, phase: str = "train", steps: int = 2, clips: int = 8, **kw) -> dict:
    with Ledger(run_dir, phase=phase, country="FRA", device="cpu", **kw) as led:
        assert led.count_flops(torch.matmul, torch.randn(10, 10), torch.randn(10, 5)) == 1000  # as train.py does
        _busy()
        led.add(steps=steps, clips=clips, frames=clips * 4)
    return led.segment


def test_ledger_file_has_expected_keys_and_writes_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # codecarbon must not drop emissions.csv (or anything) in the cwd
    _segment(Path("runs/a"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    led = load_ledger(tmp_path / "runs/a")
    assert {"phases", "hardware", "software", "country"} <= set(led)
    assert led["country"] == "FRA"
    assert led["hardware"]["cpu_model"] and led["hardware"]["cpu_count"] >= 1
    assert "torch" in led["software"] and "git_commit" in led["software"]
    (seg,) = led["phases"]["train"]["segments"]
    assert SEGMENT_KEYS <= set(seg)
    assert seg["status"] == "ok" and seg["steps"] == 2 and seg["clips"] == 8 and seg["frames"] == 32
    assert seg["flops"] == 2000 and seg["peak_mem_bytes"] > 0
    assert seg["kwh"] == pytest.approx(seg["kwh_cpu"] + seg["kwh_gpu"] + seg["kwh_ram"])
    assert seg["kwh"] > 0
    tot = led["phases"]["train"]["totals"]
    assert tot["kwh_per_clip"] == pytest.approx(tot["kwh"] / 8)
    assert tot["flops_per_clip"] == pytest.approx(2000 / 8)


def test_resumed_run_appends_segment_and_totals_add_up(tmp_path):
    a = _segment(tmp_path, steps=2, clips=8)
    b = _segment(tmp_path, steps=3, clips=12)
    _segment(tmp_path, phase="eval", steps=1, clips=1)
    led = load_ledger(tmp_path)
    segs, tot = led["phases"]["train"]["segments"], led["phases"]["train"]["totals"]
    assert [s["id"] for s in segs] == [a["id"], b["id"]]
    assert tot["segments"] == 2 and tot["steps"] == 5 and tot["clips"] == 20 and tot["frames"] == 80
    assert tot["flops"] == 5000
    for k in ("seconds", "kwh_cpu", "kwh_gpu", "kwh_ram", "kwh", "co2_kg"):
        assert tot[k] == pytest.approx(a[k] + b[k]), k
    assert led["phases"]["eval"]["totals"]["steps"] == 1  # phases are kept apart


def test_estimates_are_flagged_with_their_assumption(tmp_path):
    seg = _segment(tmp_path)
    method = seg["method"]
    for comp in ("cpu", "gpu", "ram", "co2"):
        m = method[comp]
        assert m["method"] in ("measured", "estimate", "none", "unavailable")
        assert m["estimate"] == (m["method"] in ("estimate", "unavailable"))
        if m["estimate"]:
            assert m["assumption"].strip()
    assert method["ram"]["estimate"]  # nobody reads a RAM power counter
    assert method["co2"]["estimate"]  # a grid average, never a measurement
    if not Path("/sys/class/powercap/intel-rapl").exists():  # no RAPL (this machine): CPU is an estimate
        assert method["cpu"]["estimate"] and "cpu" in seg["estimated"]
    assert seg["estimate"] is True
    assert load_ledger(tmp_path)["phases"]["train"]["totals"]["estimate"] is True


def test_fallback_estimate_when_codecarbon_fails(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("no codecarbon")

    monkeypatch.setattr(energy, "_CodecarbonMeter", broken)
    seg = _segment(tmp_path)
    assert seg["method"]["tool"] == "ever-fallback"
    assert seg["method"]["cpu"]["estimate"] and "W per busy core" in seg["method"]["cpu"]["assumption"]
    assert seg["kwh_cpu"] >= 0 and seg["co2_kg"] is None
    assert load_ledger(tmp_path)["phases"]["train"]["totals"]["co2_complete"] is False


def test_disabled_ledger_records_work_but_no_energy(tmp_path):
    seg = _segment(tmp_path, enabled=False)
    assert seg["kwh"] is None and seg["co2_kg"] is None and seg["method"]["tool"] == "disabled"
    assert seg["steps"] == 2 and seg["flops"] == 2000 and seg["seconds"] > 0
    assert seg["estimate"] is False and seg["estimated"] == []  # nothing estimated: nothing measured either
    assert load_ledger(tmp_path)["phases"]["train"]["totals"]["energy_complete"] is False


def test_count_flops_of_a_matmul_is_exact(tmp_path):
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    with Ledger(tmp_path, enabled=False) as led:
        n = led.count_flops(torch.matmul, a, b)
        led.add(steps=3)
    assert n == 2 * 64 * 32 * 16
    assert led.flops_per_step == n and led.segment["flops"] == 3 * n


def test_count_flops_includes_backward(tmp_path):
    lin = torch.nn.Linear(32, 16, bias=False)
    x = torch.randn(64, 32, requires_grad=True)

    def step():
        lin(x).sum().backward()

    n = Ledger(tmp_path).count_flops(step)
    assert n == 3 * 2 * 64 * 32 * 16  # forward, grad wrt input, grad wrt weight


@pytest.mark.parametrize("exc, status", [(ValueError("boom"), "failed"), (KeyboardInterrupt(), "interrupted")])
def test_exception_writes_segment_and_reraises(tmp_path, exc, status):
    with pytest.raises(type(exc)):
        with Ledger(tmp_path, phase="train", enabled=False) as led:
            led.add(steps=4, clips=4)
            raise exc
    (seg,) = load_ledger(tmp_path)["phases"]["train"]["segments"]
    assert seg["status"] == status and seg["steps"] == 4
    if status == "failed":
        assert "boom" in seg["error"]


def test_flush_then_kill_keeps_the_segment(tmp_path, monkeypatch):
    led = Ledger(tmp_path, enabled=False).__enter__()
    led.add(steps=7)
    led.flush()
    (seg,) = load_ledger(tmp_path)["phases"]["train"]["segments"]
    assert seg["status"] == "running" and seg["steps"] == 7
    # pretend the flushing process died: the next write marks its segment "killed", keeps its counts
    data = json.loads((tmp_path / "ledger.json").read_text())
    data["phases"]["train"]["segments"][0]["pid"] = 2**22 + 12345  # beyond pid_max: no such process
    (tmp_path / "ledger.json").write_text(json.dumps(data))
    _segment(tmp_path, enabled=False)
    segs = load_ledger(tmp_path)["phases"]["train"]["segments"]
    assert [s["status"] for s in segs] == ["killed", "ok"]
    assert load_ledger(tmp_path)["phases"]["train"]["totals"]["steps"] == 9


def test_kinetics_estimate_scales_per_clip(tmp_path):
    _segment(tmp_path, steps=2, clips=8)
    led = load_ledger(tmp_path)
    est = kinetics_estimate(led, epochs=10)
    tot = led["phases"]["train"]["totals"]
    assert est["estimate"] is True and est["clips"] == 240_000 * 10
    assert est["kwh"] == pytest.approx(tot["kwh"] / 8 * 2_400_000)
    assert est["flops"] == pytest.approx(2000 / 8 * 2_400_000)
    assert any("240,000" in a for a in est["assumptions"])
    with pytest.raises(ValueError):
        kinetics_estimate(led, phase="eval")


def test_cli_prints_one_row_per_run_and_writes_csv(tmp_path, capsys):
    runs = tmp_path / "runs"
    for name, jf in (("alpha", 0.5), ("beta", None)):
        _segment(runs / name, enabled=name == "alpha")
        if jf is not None:
            summ = runs / name / "eval" / "davis" / "summary.json"
            summ.parent.mkdir(parents=True)
            summ.write_text(json.dumps({"J&F-Mean": jf, "J-Mean": 0.4}))
    (runs / "notarun").mkdir()
    (runs / "file.txt").write_text("x")
    out_csv = tmp_path / "table.csv"
    args = argparse.Namespace(runs=[str(p) for p in sorted(runs.iterdir())], csv=str(out_csv))
    assert L.cli(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "run"
    assert [ln.split()[0] for ln in lines[2:4]] == ["alpha", "beta"] and "notarun" not in "".join(lines)
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["name"] for r in rows] == ["alpha", "beta"]
    assert float(rows[0]["jf"]) == 0.5 and rows[1]["jf"] == ""
    assert (
        float(rows[0]["wh"]) == pytest.approx(1000 * ledger_table([runs / "alpha"])[0]["kwh"])
        and "jf_per_kwh" not in rows[0]
    )
    assert float(rows[0]["cpu_hours"]) >= 0 and lines[0].split()[3] == "GFLOPs"  # FLOPs first
    assert rows[1]["wh"] == ""  # energy disabled: no number, not zero
    assert "train:" in rows[0]["estimate"] and rows[1]["estimate"] == "train:no-energy"
    assert ledger_table([runs / "alpha"])[0]["gflops"] == pytest.approx(2000 / 1e9)


def test_cli_errors_when_no_ledger(tmp_path):
    with pytest.raises(EverError, match="no ledger.json"):
        L.cli(argparse.Namespace(runs=[str(tmp_path)], csv=None))


def test_the_environment_says_when_a_run_came_from_uncommitted_code(tmp_path):
    import shutil
    import subprocess

    from ever.utils import git_changes

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "w").mkdir()
    tmp_path = tmp_path / "w"
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert git_changes(tmp_path) == []  # a fresh checkout with no commit yet: nothing differs
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    (tmp_path / "new.py").write_text("untracked\n")
    assert git_changes(tmp_path) == []  # untracked files are not the run's code
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_changes(tmp_path) == ["a.py"]
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "b.py").write_text("y = 1\n")
    subprocess.run([*git, "add", "pkg/b.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "b"], check=True)
    (tmp_path / "pkg" / "b.py").write_text("y = 2\n")
    assert git_changes(tmp_path / "pkg") == ["pkg/b.py"]  # only the folder asked about, named from the root


@pytest.mark.parametrize(
    "content, words",
    [
        ({"J&F-Mean": 0.5, "method": "copy"}, "'phases' must be a mapping of phases"),  # a summary.json, say
        ({"phases": 5}, "'phases' must be a mapping of phases"),
        (
            {"phases": {"train": {"segments": 3}}},
            "phase 'train' must be a mapping with a list of 'segments' (mappings) or 'totals'",
        ),
        ([1, 2], "'phases' must be a mapping of phases"),
        (
            {"phases": {"train": {"steps": 3}}},
            "phase 'train' must be a mapping with a list of 'segments' (mappings) or 'totals'",
        ),
    ],
)
def test_a_json_file_that_is_not_a_ledger_is_one_line(tmp_path, capsys, content, words):
    """Issue #30: a non-ledger ledger.json gave exit 0 and a row of '-', {"phases": 5} a traceback."""
    from ever.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "ledger.json").write_text(json.dumps(content))
    assert main(["ledger", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"ever: error: {run / 'ledger.json'}: not an EVER ledger ({words}, e.g. "
        '{"phases": {"train": {"segments": [...]}}})'
    ), err


def test_cli_takes_a_ledger_file_itself(tmp_path, capsys):
    from ever.cli import main

    _segment(tmp_path / "alpha")
    assert main(["ledger", str(tmp_path / "alpha" / "ledger.json")]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[0] == "alpha"
