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
    return load_config(REPO / "configs" / "crw-patch-cpu.yaml", [
        f"data.roots=[{', '.join(map(str, roots))}]", "data.size=64", "data.num_workers=0", "model.width=8",
        "model.proj_dim=16", "train.batch_size=4", "train.log_every=1", "train.ckpt_every=2", f"out_dir={out_dir}",
        "ledger.enabled=false", "walk.home_shift=0", *extra])
