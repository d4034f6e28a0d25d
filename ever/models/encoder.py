"""ResNet-18-style encoder with dense output at 1/8 resolution (no torchvision).

As in CRW, the strides of the last two stages are 1, so ``layer3`` and ``layer4`` keep the 1/8 map
the walk and label propagation need. Normalisation is GroupNorm: a sample's features never depend on
the other samples of its batch, so training is exact under any DDP split and eval = train behaviour.

    enc = ResNetEncoder(width=16)            # 16 -> 32 -> 64 -> 128 channels
    fmap = enc(x)                            # x (B, 3, H, W) in [0, 1] -> (B, 8*width, H/8, W/8)
"""
from __future__ import annotations

import torch
import torch.nn as nn

# ImageNet statistics: the encoder takes frames in [0, 1] and normalises them itself.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
STAGES = ("layer1", "layer2", "layer3", "layer4")


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=min(8, c), num_channels=c)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
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

    def __init__(self, width: int = 64, blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2)):
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 7, 2, 3, bias=False), _norm(w), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        chans = (w, 2 * w, 4 * w, 8 * w)
        strides = (1, 2, 1, 1)  # stem /4, layer2 /8, layer3 and layer4 keep /8
        cin = w
        for name, c, s, n in zip(STAGES, chans, strides, blocks):
            layers = [BasicBlock(cin, c, s)] + [BasicBlock(c, c, 1) for _ in range(n - 1)]
            setattr(self, name, nn.Sequential(*layers))
            cin = c
        self.channels = dict(zip(STAGES, chans))
        self.out_channels = chans[-1]
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, stage: str = "layer4") -> torch.Tensor:
        if stage not in STAGES[1:]:
            raise ValueError(f"stage must be one of {STAGES[1:]}, got {stage!r}")
        x = self.stem((x - self.mean) / self.std)
        for name in STAGES:
            x = getattr(self, name)(x)
            if name == stage:
                return x
        raise AssertionError(stage)
