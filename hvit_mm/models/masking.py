"""Every mask generator of hvit_mm lives here; backbones never decide a mask.

Polarity, everywhere in hvit_mm: ``visible`` is bool (B, N_units), **True = the encoder sees the
unit**. (Official MAE's ``mask`` is the opposite, 1 = removed; Hiera's is 1 = keep.) Units are
patches for MAE and Hiera-style mask units (e.g. 8×8 tokens) for Hiera; they are raster-ordered.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor


class Mask(NamedTuple):
    """A per-sample mask with an equal number of visible units in every sample.

    visible:  (B, N) bool, True = seen by the encoder.
    ids_keep: (B, N_keep) long, indices of the visible units in ascending (raster) order; a teacher
              given the same ``ids_keep`` sees exactly the student's patches.
    """
    visible: Tensor
    ids_keep: Tensor

    @property
    def num_keep(self) -> int:
        return self.ids_keep.shape[1]


def num_keep(num_units: int, mask_ratio: float) -> int:
    """Visible units per sample: ``int(N · (1 - ratio))`` as in MAE and Hiera (at least 1)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
    return max(1, int(num_units * (1 - mask_ratio)))


def mask_from_visible(visible: Tensor) -> Mask:
    """Builds a :class:`Mask` from a bool (B, N) map with the same count of True per row."""
    counts = visible.sum(1)
    if (counts != counts[0]).any():
        raise ValueError(f'every sample needs the same number of visible units, got {counts.tolist()}')
    ids = torch.arange(visible.shape[1], device=visible.device).expand_as(visible)
    ids_keep = ids[visible].view(visible.shape[0], -1)
    return Mask(visible, ids_keep)


def random_mask(batch_size: int, num_units: int, mask_ratio: float,
                device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> Mask:
    """MAE's per-sample random masking: exactly ``num_keep(N, ratio)`` visible units per sample.

    Uniform noise ranks the units; the lowest-noise ones stay visible (MAE's argsort-of-noise).
    """
    keep = num_keep(num_units, mask_ratio)
    noise = torch.rand(batch_size, num_units, device=device, generator=generator)
    ids_keep = noise.argsort(dim=1)[:, :keep].sort(dim=1).values
    visible = torch.zeros(batch_size, num_units, dtype=torch.bool, device=device)
    visible.scatter_(1, ids_keep, True)
    return Mask(visible, ids_keep)


def gather_tokens(x: Tensor, ids: Tensor) -> Tensor:
    """x: (B, N, C), ids: (B, K) long -> (B, K, C)."""
    return x.gather(1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def scatter_tokens(tokens: Tensor, ids: Tensor, fill: Tensor, num_units: int) -> Tensor:
    """Inverse of :func:`gather_tokens`: put (B, K, C) tokens at ``ids`` of a (B, N, C) sequence
    whose other positions hold ``fill`` (broadcastable to (B, N, C), e.g. a mask token (1, 1, C))."""
    B, _, C = tokens.shape
    out = fill.to(tokens.dtype).expand(B, num_units, C).clone()
    return out.scatter(1, ids.unsqueeze(-1).expand(-1, -1, C), tokens)


def upsample_units(visible: Tensor, units_hw: tuple, factor: int) -> Tensor:
    """Unit mask to pixels: (B, h·w) bool, raster order -> (B, 1, h·factor, w·factor) bool, each
    unit's value repeated over its factor×factor block (nearest up-sampling). Hiera multiplies the
    image by it so masked units are zero before the overlapping patch conv."""
    h, w = units_hw
    grid = visible.view(visible.shape[0], 1, h, w)
    return grid.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
