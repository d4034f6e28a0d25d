"""ResNet-18-style encoder with dense output at 1/8 resolution (no torchvision).

As in CRW, the strides of the last two stages are 1, so ``layer3`` and ``layer4`` keep the 1/8 map
the walk and label propagation need. ``last_stage`` ends the network early: ``"layer3"`` builds no
``layer4`` at all (ajabri/videowalk's default ``--remove-layers layer4``), which at stride 1 is most of
a ResNet-18's FLOPs at 1/8 resolution.

Padding: ``"zeros"`` is the standard ResNet. ``"circular"`` makes every layer equivariant to cyclic
shifts (by multiples of the stride), so a feature carries no absolute position. This matters when the
nodes are pooled from one dense map of the whole frame (``patch_pool``, objects): with zero padding
the network can learn *where* a cell is, and "every node goes to the node at the same place" is a
perfectly cycle-consistent walk that needs no appearance at all (a shortcut the reference CRW avoids
by encoding each patch crop on its own). Normalisation is GroupNorm: a sample's features never depend on
the other samples of its batch, so training is exact under any DDP split and eval = train behaviour.

    enc = ResNetEncoder(width=16)            # 16 -> 32 -> 64 -> 128 channels
    fmap = enc(x)                            # x (B, 3, H, W) in [0, 1] -> (B, 8*width, H/8, W/8)
    enc3 = ResNetEncoder(16, last_stage="layer3")
    fmap = enc3(x)                           # -> (B, 4*width, H/8, W/8); enc3(x, "layer4") raises
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

# ImageNet statistics: the encoder takes frames in [0, 1] and normalises them itself.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
STAGES = ("layer1", "layer2", "layer3", "layer4")


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=math.gcd(8, c), num_channels=c)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, padding: str = "zeros"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False, padding_mode=padding)
        self.n1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False, padding_mode=padding)
        self.n2 = _norm(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.n1(self.conv1(x)))
        y = self.n2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNetEncoder(nn.Module):
    """(B, 3, H, W) float in [0, 1] -> dense features (B, C, H/8, W/8) of a chosen stage."""

    def __init__(
        self,
        width: int = 64,
        blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
        padding: str = "zeros",
        last_stage: str = "layer4",
    ):
        super().__init__()
        if padding not in ("zeros", "circular"):
            raise ValueError(f"padding must be 'zeros' or 'circular', got {padding!r}")
        if last_stage not in STAGES[1:]:
            raise ValueError(f"last_stage must be one of {STAGES[1:]}, got {last_stage!r}")
        self.stages = STAGES[: STAGES.index(last_stage) + 1]  # the stages this encoder has
        w = width
        pool = nn.MaxPool2d(3, 2, 1) if padding == "zeros" else nn.Sequential(nn.CircularPad2d(1), nn.MaxPool2d(3, 2))
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 7, 2, 3, bias=False, padding_mode=padding), _norm(w), nn.ReLU(inplace=True), pool
        )
        chans = (w, 2 * w, 4 * w, 8 * w)
        strides = (1, 2, 1, 1)  # stem /4, layer2 /8, layer3 and layer4 keep /8
        cin = w
        for name, c, s, n in zip(self.stages, chans, strides, blocks):
            layers = [BasicBlock(cin, c, s, padding)] + [BasicBlock(c, c, 1, padding) for _ in range(n - 1)]
            setattr(self, name, nn.Sequential(*layers))
            cin = c
        self.channels = dict(zip(self.stages, chans))
        self.out_channels = self.channels[last_stage]
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, stage: str | None = None) -> torch.Tensor:
        """x (B, 3, H, W) in [0, 1] -> features (B, channels[stage], H/8, W/8); ``stage`` None = the last."""
        stage = stage or self.stages[-1]
        if stage not in self.stages[1:]:
            past = f" (this encoder ends at {self.stages[-1]})" if stage in STAGES else ""
            raise ValueError(f"stage must be one of {self.stages[1:]}, got {stage!r}{past}")
        x = self.stem((x - self.mean) / self.std)
        for name in self.stages:
            x = getattr(self, name)(x)
            if name == stage:
                return x
        raise AssertionError(stage)
