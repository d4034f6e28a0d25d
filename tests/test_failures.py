"""Nothing lost, nothing silent: what EVER does with bad settings, bad data, unwritable folders, NaN and
interrupted runs (the main job after the tests is tested end to end in tests/test_book.py)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_cfg
from PIL import Image

from ever.cli import main
from ever.config import ConfigError, load_config
from ever.errors import CheckpointError, DataError, EverError
from ever.train import train

REPO = Path(__file__).resolve().parents[1]


_cfg = tiny_cfg


def _frame_folder(path: Path, n: int, size=(64, 96), corrupt: tuple[int, ...] = ()) -> Path:
    """A JPEG frame folder of ``n`` noise frames; frames in ``corrupt`` hold garbage bytes."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        f = path / f"{i:05d}.jpg"
        if i in corrupt:
            f.write_bytes(b"not a jpeg")
        else:
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(f)
    return path


# ----------------------------------------------------------------------------- 1. the book's sources


def test_book_build_reads_only_the_books_own_files(tmp_path):
    from ever.report import stage_book_sources

    root = tmp_path / "checkout"
    for rel in (
        "_config.yml",
        "_toc.yml",
        "book/index.md",
        "book/references.bib",
        "book/01_intro.ipynb",
        "book/generated/01_intro.ipynb",
        "book/generated/figure.png",
        ".pytest_cache/README.md",
        ".venv/lib/README.md",
        "runs/notes.md",
        "README.md",
        "book/.ipynb_checkpoints/x.ipynb",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    src = stage_book_sources(root)
    got = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert got == [
        "_config.yml",
        "_toc.yml",
        "book/generated/01_intro.ipynb",
        "book/generated/figure.png",
        "book/index.md",
        "book/references.bib",
    ]


# ----------------------------------------------------------------------------- 2. NaN


def _all_finite(path: Path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def _breaks_at_step(n: int, value: float):
    """A build_optimizer whose ``n``-th update leaves ``value`` (NaN, inf) in the weights."""
    import ever.train

    real = ever.train.build_optimizer

    def build(cfg, model):
        opt, sched = real(cfg, model)
        step, calls = opt.step, []

        def broken(*args, **kwargs):
            out = step(*args, **kwargs)
            calls.append(1)
            if len(calls) == n:
                with torch.no_grad():
                    next(model.parameters()).view(-1)[0] = value
            return out

        opt.step = broken
        return opt, sched

    return build


def test_an_update_to_non_finite_weights_is_never_saved(tmp_path, tiny_videos, monkeypatch):
    # the loss of step 1 is finite, its update is not. A checkpoint every step.
    import ever.train

    monkeypatch.setattr(ever.train, "build_optimizer", _breaks_at_step(1, float("inf")))
    with pytest.raises(EverError, match="non-finite in the update of step 1.*No checkpoint was saved") as e:
        train(_cfg(tmp_path, tiny_videos, "name=inf", "train.steps=3", "train.ckpt_every=1"))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "inf" / "checkpoint.pt").exists()


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e999"])
def test_a_non_finite_setting_is_refused_by_the_config(tmp_path, value):
    """`--set optim.lr=.inf` (issue #30) used to pass validation and only blow up the first update."""
    with pytest.raises(ConfigError, match=rf"--set optim.lr={value}: optim.lr: expected a finite number"):
        load_config(REPO / "configs" / "crw-patch-cpu.yaml", [f"optim.lr={value}"])
    (tmp_path / "c.yaml").write_text(
        f"base: {REPO / 'configs' / 'crw-patch-cpu.yaml'}\nwalk:\n  temperature: {value}\n"
    )
    with pytest.raises(ConfigError, match=r"c.yaml: walk.temperature: expected a finite number"):
        load_config(tmp_path / "c.yaml")


def test_divergence_after_a_checkpoint_names_that_finite_checkpoint(tmp_path, tiny_videos, monkeypatch):
    import ever.train

    monkeypatch.setattr(ever.train, "build_optimizer", _breaks_at_step(3, float("nan")))
    with pytest.raises(
        EverError, match=r"update of step 3.*last checkpoint, step 2, is finite and kept: .*div/checkpoint.pt"
    ):
        train(_cfg(tmp_path, tiny_videos, "name=div", "train.steps=4", "train.ckpt_every=2"))
    assert torch.load(tmp_path / "div" / "checkpoint.pt", weights_only=False)["step"] == 2
    assert _all_finite(tmp_path / "div" / "checkpoint.pt")


def test_eval_refuses_a_checkpoint_with_non_finite_weights(tmp_path, tiny_videos, capsys):
    run = train(_cfg(tmp_path, tiny_videos, "name=ok", "train.steps=1"))
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    key = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][key] = torch.full_like(ckpt["model"][key], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "nan.pt"), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert "nan.pt: 1 weight tensors hold NaN or infinite values" in err and err.count("\n") == 1
    assert not (tmp_path / "ev" / "summary.json").exists()


# ----------------------------------------------------------------------------- 3. unreadable training video


def test_failed_reads_during_training_are_counted_and_stop_the_run(tmp_path, tiny_videos):
    # a frame folder whose frames 2.. are garbage: it passes the start-up probe, most of its reads fail
    _frame_folder(tmp_path / "bad" / "clip", 12, corrupt=tuple(range(2, 12)))
    roots = [tiny_videos, tmp_path / "bad"]
    run = train(_cfg(tmp_path, roots, "name=tolerant", "train.steps=4", "data.max_fail_frac=1.0"))
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["read_failures"] > 0  # reported, not silent
    with pytest.raises(
        DataError,
        match=r"training reads failed by step \d+ \(> data.max_fail_frac=0.05\); "
        r"first: .*clip/0000\d.jpg: unreadable JPEG",
    ):
        train(_cfg(tmp_path, roots, "name=strict", "train.steps=4", "data.max_fail_frac=0.05"))


def test_a_data_worker_error_is_one_line(tmp_path, capsys):
    # every video unreadable after the probe: the worker raises; the user sees its message, not its traceback
    _frame_folder(tmp_path / "bad" / "a", 12, corrupt=tuple(range(12)))
    _frame_folder(tmp_path / "bad" / "b", 12, corrupt=tuple(range(12)))
    cfg = REPO / "configs" / "crw-patch-cpu.yaml"
    rc = main(
        [
            "train",
            str(cfg),
            "--set",
            f"data.roots=[{tmp_path / 'bad'}]",
            "--set",
            "data.num_workers=1",
            "--set",
            "data.size=64",
            "--set",
            "model.width=8",
            "--set",
            "train.steps=2",
            "--set",
            f"out_dir={tmp_path / 'runs'}",
            "--set",
            "ledger.enabled=false",
            "--set",
            "walk.home_shift=0",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    line = [ln for ln in err.splitlines() if ln.startswith("ever: error:")]
    assert len(line) == 1 and "failed to read" in line[0] and "Traceback" not in err, err[-2000:]


# ----------------------------------------------------------------------------- 4. unwritable outputs


def test_a_file_in_the_way_of_the_run_folder_is_one_line_before_any_work(tmp_path, tiny_videos):
    (tmp_path / "blocked").write_text("a file, not a folder")
    with pytest.raises(EverError, match=r"blocked: cannot write the run folder here: a file is in the way"):
        train(_cfg(tmp_path, tiny_videos, "name=blocked", "train.steps=1"))


def test_data_generate_into_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "gen").write_text("x")
    assert main(["data", "generate", "--root", str(tmp_path / "gen" / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the generated dataset here" in err and err.count("\n") == 1


def test_an_os_error_during_work_is_one_line(monkeypatch, capsys):
    import ever.cli

    def full_disk(args):
        raise OSError(28, "No space left on device", "runs/x/checkpoint.pt")

    monkeypatch.setattr(ever.cli, "_run", full_disk)
    assert main(["data", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ever: error: runs/x/checkpoint.pt: No space left on device") and err.count("\n") == 1


# ----------------------------------------------------------------------------- 5. runs that learn nothing


def test_impossible_node_settings_are_refused_at_config_time():
    with pytest.raises(ConfigError, match="1 node per frame .*the walk needs at least 2"):
        load_config(REPO / "configs" / "crw-patch-cpu.yaml", ["nodes.patch_stride=1000"])
    with pytest.raises(ConfigError, match=r"walk.min_cycle=5 needs clips of at least 6 frames \(data.clip_len=4\)"):
        load_config(REPO / "configs" / "crw-patch-cpu.yaml", ["walk.min_cycle=5"])


def test_a_gradient_stuck_at_zero_is_warned_in_log_metrics_and_ledger(tmp_path, tiny_videos, capsys):
    from ever.train import _ZeroGradWatch

    w = _ZeroGradWatch(5)
    got = [w.add(g, s) for s, g in enumerate([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0], 1)]
    assert got == [False] * 8 + [True, False, False]  # steps 5-9: 4 zeros of 5 (80 %); said once
    assert "< 1e-06 in 4 of steps 5-9" in w.warning
    # a learning rate so high that the first update saturates the walk: zero gradients from then on
    cfg = _cfg(tmp_path, tiny_videos, "name=frozen", "train.steps=12", "optim.lr=1e+6", "ledger.enabled=true")
    run = train(cfg)
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] < 1e-6 for r in rows[1:]) and "warning" not in rows[8]
    assert "not learning" in rows[-1]["warning"]
    assert "not learning" in capsys.readouterr().err
    ledger = json.loads((run / "ledger.json").read_text())
    assert "not learning" in json.dumps(ledger)


# ----------------------------------------------------------------------------- 6. config values


def test_yaml_exponent_floats_are_accepted_in_files_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 1e-4\nwalk:\n  temperature: 5E-2\n")
    cfg = load_config(f, ["eval.temperature=2e-2"])
    assert (cfg.optim.lr, cfg.walk.temperature, cfg.eval.temperature) == (1e-4, 5e-2, 2e-2)
    with pytest.raises(ConfigError, match="optim.lr: expected float, got 'e-4'"):
        load_config(f, ["optim.lr=e-4"])


def test_override_errors_name_the_override_and_num_workers_is_checked(tmp_path):
    cfg = REPO / "configs" / "crw-patch-cpu.yaml"
    with pytest.raises(ConfigError, match=r"^--set optim.lr=abc: optim.lr: expected float"):
        load_config(cfg, ["train.steps=3", "optim.lr=abc"])
    with pytest.raises(ConfigError, match=r"^--set data.num_workers=-1: data.num_workers must be >= 0"):
        load_config(cfg, ["data.num_workers=-1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {lr: -1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: optim.lr must be > 0"):
        load_config(bad, ["train.steps=3"])
    # a file that only its overrides make valid is fine
    part = tmp_path / "part.yaml"
    part.write_text("data: {size: 64}\nnodes: {patch_size: 64, patch_stride: 32}\n")
    assert load_config(part, ["nodes.patch_size=32"]).nodes.patch_size == 32


# ----------------------------------------------------------------------------- 7. resume with other steps


def test_resume_with_another_step_count_is_refused(tmp_path, tiny_videos):
    train(_cfg(tmp_path, tiny_videos, "name=r", "train.steps=2"))
    with pytest.raises(CheckpointError, match="train.steps was 2 and is now 4 .*schedule is laid out over train.steps"):
        train(_cfg(tmp_path, tiny_videos, "name=r", "train.steps=4"), resume=True)
    train(
        _cfg(tmp_path, tiny_videos, "name=r", "train.steps=2", "train.log_every=2"), resume=True
    )  # neutral keys may change
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    del ckpt["config"]["eval"]["sequences"]  # a checkpoint saved before that field existed still resumes
    torch.save(ckpt, tmp_path / "r" / "checkpoint.pt")
    train(_cfg(tmp_path, tiny_videos, "name=r", "train.steps=2"), resume=True)


# ----------------------------------------------------------------------------- 8. leftovers and gaps


def test_torn_checkpoint_temp_files_are_removed_at_start(tmp_path, tiny_videos):
    run = tmp_path / "torn"
    run.mkdir()
    torn = run / ".checkpoint.pt.abc123.tmp"
    torn.write_bytes(b"\0" * 1000)
    other = run / "notes.txt"
    other.write_text("mine")
    train(_cfg(tmp_path, tiny_videos, "name=torn", "train.steps=1"))
    assert not torn.exists() and other.exists()


def test_verify_reports_an_extra_unlisted_frame(tmp_path):
    from ever.data.manifest import verify
    from ever.data.synth import SynthConfig, generate

    root = tmp_path / "s"
    generate(root, SynthConfig(num_train=1, num_eval=1, frames_train=4, frames_eval=4, height=48, width=64))
    assert verify("ever-synth", root) == []
    seq = next((root / "JPEGImages" / "480p").iterdir())
    shutil.copy(seq / "00000.jpg", seq / "00099.jpg")
    problems = verify("ever-synth", root)
    assert len(problems) == 1 and problems[0].endswith(
        "00099.jpg: not in checksums.sha256 (an extra file the dataset does not list)"
    )


def test_a_tiny_video_is_said_to_be_too_small(tmp_path):
    import imageio.v2 as imageio

    from ever.data.video import open_video

    for name, side, codec in (("dot.avi", 1, "mjpeg"), ("dot.mp4", 2, "libx264")):
        path = tmp_path / name
        with imageio.get_writer(path, fps=10, macro_block_size=1, codec=codec) as w:
            for _ in range(5):
                w.append_data(np.zeros((side, side, 3), np.uint8))
        with pytest.raises(DataError, match=rf"{name}: frames of {side}x{side} px are too small"):
            open_video(path)


# ----------------------------------------------------------------------------- issue #30: nothing silent


def _yaml(cfg, path: Path) -> Path:
    from ever.config import save_config

    save_config(cfg, path)
    return path


def test_a_second_train_into_a_running_run_folder_is_refused(tmp_path, tiny_videos, capsys):
    """Another process holds the run folder's lock: `ever train` into it is one line, writes nothing."""
    import subprocess
    import sys

    cfg = _cfg(tmp_path, tiny_videos, "name=busy", "train.steps=2")
    run = cfg.run_dir
    run.mkdir(parents=True)
    holder = subprocess.Popen(  # a stand-in for the first `ever train`: holds the lock until told to stop
        [
            sys.executable,
            "-c",
            "import sys; from ever.utils import hold_lock\n"
            f"with hold_lock({str(run / '.train.lock')!r}, 'x'):\n print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", str(_yaml(cfg, tmp_path / "busy.yaml"))]) == 2
        err = capsys.readouterr().err.strip()
        assert (
            err == f"ever: error: {run}: another `ever train` (pid {holder.pid}) holds .train.lock: wait for it "
            "to finish"
        ), err
        assert sorted(p.name for p in run.iterdir()) == [".train.lock"]  # nothing written: no config, no metrics
    finally:
        holder.communicate("")
    # the holder is gone: its lock is free (a lock file of a dead process never blocks), the run trains
    assert (run / ".train.lock").exists()
    assert train(cfg) == run and torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 2
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(ln)["step"] for ln in lines] == [1, 2]


def test_a_full_disk_during_training_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path, tiny_videos, capsys, monkeypatch
):
    """The second checkpoint write meets a full disk (torch reports it as its own RuntimeError): one line naming
    the checkpoint, the first checkpoint kept whole, no temp file, and --resume finishes the run."""
    from conftest import fill_disk

    cfg = _cfg(tmp_path, tiny_videos, "name=full", "train.steps=4", "train.ckpt_every=2")
    yaml_file = _yaml(cfg, tmp_path / "full.yaml")
    writes = []
    fill_disk(
        monkeypatch,
        full=lambda p: p.name.startswith(".checkpoint.pt.") and writes.append(p) is None and len(writes) > 1,
        room=1000,
    )
    assert main(["train", str(yaml_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "RuntimeError" not in err, err
    err = err.splitlines()[-1].split("\r")[-1]  # after the progress bar
    ckpt = cfg.run_dir / "checkpoint.pt"
    assert err == f"ever: error: {ckpt}: No space left on device (results and checkpoints written so far are kept)", err
    assert torch.load(ckpt, weights_only=False)["step"] == 2 and not list(cfg.run_dir.glob(".checkpoint.pt.*"))
    monkeypatch.undo()
    assert main(["train", str(yaml_file), "--resume"]) == 0
    assert torch.load(ckpt, weights_only=False)["step"] == 4
