"""The training stage (model.train_stage): an encoder trained, saved and exported without layer4, as CRW."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_cfg

from ever.config import ConfigError, load_config, with_defaults
from ever.models import EverModel, load_checkpoint
from ever.models.encoder import ResNetEncoder
from ever.train import train

REPO = Path(__file__).resolve().parents[1]


def test_an_encoder_ending_at_layer3_has_no_layer4():
    full, short = ResNetEncoder(8), ResNetEncoder(8, last_stage="layer3")
    assert not hasattr(short, "layer4") and not any(k.startswith("layer4") for k in short.state_dict())
    assert short.out_channels == 32 and full.out_channels == 64
    # the stages they share are built alike: same parameter shapes in the same order
    shared = {k: v.shape for k, v in full.state_dict().items() if not k.startswith("layer4")}
    assert {k: v.shape for k, v in short.state_dict().items()} == shared
    x = torch.rand(2, 3, 64, 48)
    assert short(x).shape == (2, 32, 8, 6) and short(x, "layer2").shape == (2, 16, 8, 6)
    with pytest.raises(ValueError, match="ends at layer3"):
        short(x, "layer4")
    with pytest.raises(ValueError, match="last_stage"):
        ResNetEncoder(8, last_stage="layer5")


def test_train_stage_is_validated_against_the_eval_stage():
    with pytest.raises(ConfigError, match="model.eval_stage=layer4 is past model.train_stage=layer3"):
        load_config(None, ["model.train_stage=layer3"])
    with pytest.raises(ConfigError, match="model.train_stage must be layer3|layer4"):
        load_config(None, ["model.train_stage=layer2", "model.eval_stage=layer2"])
    cfg = load_config(None, ["model.train_stage=layer3", "model.eval_stage=layer2"])
    assert EverModel(cfg.model).dense(torch.rand(1, 3, 32, 32)).shape[1] == 4 * cfg.model.width
    # runs saved before the field existed trained through layer4, and read so
    assert with_defaults({"model": {"width": 16}})["model"]["train_stage"] == "layer4"
    ref = load_config(REPO / "configs" / "crw-reference.yaml")  # as ajabri/videowalk: train through layer4, read layer3
    assert (ref.model.train_stage, ref.model.eval_stage) == ("layer4", "layer3")
    cpu = load_config(REPO / "configs" / "crw-patch-cpu.yaml")  # the CPU default (issue 32, results/train-stage)
    assert (cpu.model.train_stage, cpu.model.eval_stage) == ("layer3", "layer3")


def test_a_layer3_run_trains_saves_and_counts_a_smaller_encoder(tmp_path, tiny_videos):
    common = ["train.steps=2", "train.ckpt_every=1", "model.eval_stage=layer3"]
    l3 = train(tiny_cfg(tmp_path, tiny_videos, *common, "name=l3"))  # the CPU default's stage
    l4 = train(tiny_cfg(tmp_path, tiny_videos, *common, "name=l4", "model.train_stage=layer4"))
    ckpt = torch.load(l3 / "checkpoint.pt", weights_only=False)
    assert not any(".layer4." in k for k in ckpt["model"]) and ckpt["config"]["model"]["train_stage"] == "layer3"
    assert any(".layer4." in k for k in torch.load(l4 / "checkpoint.pt", weights_only=False)["model"])
    model, cfg = load_checkpoint(l3 / "checkpoint.pt")
    assert cfg.model.train_stage == "layer3" and model.features(torch.rand(1, 3, 64, 64)).shape == (1, 32, 8, 8)
    # the ledger's FLOPs are the step's: layer4 at stride 1 is most of the encoder at 1/8 resolution
    flops = {
        r.name: json.loads((r / "ledger.json").read_text())["phases"]["train"]["totals"]["flops"] for r in (l3, l4)
    }
    assert 0 < flops["l3"] < 0.6 * flops["l4"], flops
    # evaluating the layer3 model at layer4 is a one-line config error naming the checkpoint
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "ever.cli",
            "eval",
            str(l3 / "checkpoint.pt"),
            "--data",
            str(tmp_path / "none"),
            "--set",
            "model.eval_stage=layer4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert f"{l3 / 'checkpoint.pt'}:config" in bad.stderr and "has no layer4" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    # and so is exporting it to be read at layer4
    from ever.models.pretrained import export

    with pytest.raises(ConfigError, match="has no layer4"):
        export(l3 / "checkpoint.pt", "l3", [], out_dir=tmp_path / "shipped", stage="layer4")
    assert not (tmp_path / "shipped").exists()
