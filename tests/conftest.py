"""Shared test fixtures: tiny synthetic training videos and the tiny training config built on them."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory):
    """Three short synthetic training videos (mp4, 12 frames of 64x96), written by the ever-synth generator."""
    from ever.data.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(num_train=3, num_eval=1, frames_train=12, frames_eval=6, height=64, width=96))
    return root / "videos" / "train"


def tiny_cfg(out_dir, roots, *extra):
    """``configs/crw-patch-cpu.yaml`` shrunk to seconds: 64 px, width 8, batch 4, no workers, no ledger, the
    plain palindrome (the shifted home view has its own tests in test_home.py); ``extra`` overrides last."""
    from ever.config import load_config

    roots = roots if isinstance(roots, list) else [roots]
    return load_config(
        REPO / "configs" / "crw-patch-cpu.yaml",
        [f"data.roots=[{', '.join(map(str, roots))}]", *tiny_settings(out_dir), "walk.home_shift=0", *extra],
    )


def tiny_settings(out_dir):
    """The ``--set`` overrides that shrink ``configs/crw-patch-cpu.yaml`` to seconds (:func:`tiny_cfg`'s,
    without its roots and home view), for tests that run ``ever train`` as a command."""
    return [
        "data.size=64",
        "data.num_workers=0",
        "model.width=8",
        "model.proj_dim=16",
        "train.batch_size=4",
        "train.log_every=1",
        "train.ckpt_every=2",
        f"out_dir={out_dir}",
        "ledger.enabled=false",
    ]


class _FullDisk:
    """A file open for writing whose writes fail as on a full disk once ``room`` bytes are written."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            import errno
            import os

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def fill_disk(monkeypatch, full=lambda path: True, room: int = 0):
    """Make the disk 'full' for ever's atomic writes (``ever.utils.atomic_write``): a temp file opened for
    writing whose path passes ``full`` accepts ``room`` bytes, then raises ``OSError(ENOSPC)`` as a full
    disk does (torch's writer turns it into its own RuntimeError, as on a real full disk)."""
    import builtins

    import ever.utils

    def fake_open(file, mode="r", *args, **kwargs):
        f = builtins.open(file, mode, *args, **kwargs)
        return _FullDisk(f, room) if "w" in mode and full(Path(file)) else f

    monkeypatch.setattr(ever.utils, "open", fake_open, raising=False)
