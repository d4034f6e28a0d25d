"""The node extractor's interface: frames -> one feature vector per node per frame (see :mod:`ever.nodes`)."""

from __future__ import annotations

import abc

import torch


class NodeExtractor(abc.ABC):
    """frames (B, T, 3, H, W) -> (features (B, T, N, C), valid (B, T, N) bool)."""

    #: True when the extractor needs per-frame segment maps (B, T, H, W) int from the data pipeline.
    needs_segments: bool = False

    @abc.abstractmethod
    def __call__(
        self,
        encode,
        frames: torch.Tensor,
        segments: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``encode``: (M, 3, h, w) -> dense (M, C, h/8, w/8), e.g. ``EverModel.dense``."""

    #: Pixels between neighbouring node positions: shifts of the home view are multiples of it.
    step: int = 8

    def home_target(self, dy: int, dx: int, H: int, W: int) -> torch.Tensor:
        """For a frame rolled by (dy, dx) px (multiples of ``step``): (N,) long, the node of the rolled
        frame that shows node ``i`` of the original, or -1 where it left the frame (``walk.home_shift``)."""
        raise NotImplementedError(f"{type(self).__name__} does not support walk.home_shift")
