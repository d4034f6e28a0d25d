"""The encoder + projection head, and loading a trained one from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ever.config import Config, ModelConfig, config_from_dict
from ever.errors import CheckpointError
from ever.models.encoder import ResNetEncoder
from ever.models.heads import projection_head


class EverModel(nn.Module):
    """Encoder (dense 1/8 features) and the walk's projection head."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ResNetEncoder(cfg.width, cfg.blocks, cfg.padding, cfg.train_stage)
        self.head = projection_head(self.encoder.out_channels, cfg.proj_dim, cfg.proj)

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        """Training features: (B, 3, H, W) in [0, 1] -> (B, C, H/8, W/8) of ``model.train_stage``, the
        encoder's last stage."""
        return self.encoder(x)

    @torch.no_grad()
    def features(self, x: torch.Tensor, stage: str | None = None) -> torch.Tensor:
        """Evaluation features (no head): (B, 3, H, W) in [0, 1] -> (B, C, H/8, W/8)."""
        return self.encoder(x, stage or self.cfg.eval_stage)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[EverModel, Config]:
    """Rebuild the model a checkpoint was trained with; returns (model in eval mode, its Config)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path}: not an EVER checkpoint (keys 'model' and 'config' missing)")
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(
            f"{path}: not an EVER checkpoint ('model' is a {type(ckpt['model']).__name__}, not a state dict)"
        )
    from ever.utils import finite_state

    bad = finite_state(ckpt["model"]) if isinstance(ckpt["model"], dict) else 0
    if bad:
        raise CheckpointError(f"{path}: {bad} weight tensors hold NaN or infinite values (a diverged run); refused")
    cfg = config_from_dict(ckpt["config"], f"{path}:config")
    model = EverModel(cfg.model)
    state = {k[len("model.") :]: v for k, v in ckpt["model"].items() if k.startswith("model.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise CheckpointError(f"{path}: weights do not fit the architecture in its config ({first})") from None
    return model.eval(), cfg
