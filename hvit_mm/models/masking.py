"""Every mask generator of hvit_mm lives here; backbones never decide a mask.

Polarity, everywhere in hvit_mm: ``visible`` is bool (B, N_units), **True = the encoder sees the
unit**. (Official MAE's ``mask`` is the opposite, 1 = removed; Hiera's is 1 = keep.) Units are
patches for MAE and Hiera-style mask units (e.g. 8×8 tokens) for Hiera; they are raster-ordered.
"""
import numbers
from typing import NamedTuple, Optional

import torch
from torch import Tensor


class Mask(NamedTuple):
    """A per-sample mask with an equal number of visible units in every sample.

    visible:  (B, N) bool, True = the unit enters the encoder.
    ids_keep: (B, K) long, raster indices of the visible units **in the order the encoder returns
              them** (``Backbone.forward_masked``): ascending for :func:`random_mask`, 2×2-grid
              order for UM-MAE's uniform masks. A teacher given the same ``ids_keep`` sees exactly
              the student's units.
    replaced: (B, N) bool or None, a subset of ``visible``: units that enter the encoder as a
              learnable token instead of their pixels (UM-MAE's secondary masking; SimMIM, where
              every unit is visible and the masked ones are replaced).
    """
    visible: Tensor
    ids_keep: Tensor
    replaced: Optional[Tensor] = None

    @property
    def seen(self) -> Tensor:
        """(B, N) bool: units whose pixels the encoder saw (visible and not replaced)."""
        return self.visible if self.replaced is None else self.visible & ~self.replaced

    @property
    def num_keep(self) -> int:
        return self.ids_keep.shape[1]


def num_keep(num_units: int, mask_ratio: float) -> int:
    """Visible units per sample: ``int(N · (1 - ratio))`` as in MAE and Hiera (at least 1)."""
    if isinstance(mask_ratio, bool) or not isinstance(mask_ratio, numbers.Real):
        raise TypeError(f'mask_ratio must be a number in [0, 1), got {mask_ratio!r} '
                        f'({type(mask_ratio).__name__})')
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


def uniform_mask(batch_size: int, units_hw: tuple, secondary_ratio: float = 0.25,
                 device: Optional[torch.device] = None,
                 generator: Optional[torch.Generator] = None) -> Mask:
    """UM-MAE's Uniform Sampling + Secondary Masking, per sample.

    The (h, w) unit grid (both even) is cut into (h/2)·(w/2) grids of 2×2 units and each grid
    keeps exactly one unit (K = N/4 visible, a 75% mask). The kept position inside a grid (0 = top
    left, 1 = top right, 2 = bottom left, 3 = bottom right) is drawn as the paper's generator draws
    it: a pool holding every position equally often, at least twice as large as the number of
    grids, is shuffled and its first entries used, so the four positions stay near-balanced.
    ``int(K · secondary_ratio)`` of the kept units are then chosen at random as ``replaced`` (they
    enter the encoder as a learnable token, not as pixels).

    Returns:
        :class:`Mask` with ``visible`` (B, N) bool (True = kept), ``ids_keep`` (B, K) raster unit
        indices in **2×2-grid order** (the k-th is the unit kept by grid (k // (w/2), k % (w/2)),
        so a compact (h/2, w/2) map puts every unit at its own grid), and ``replaced`` (B, N) bool
        (a subset of ``visible``), or None when no unit is replaced.
    """
    h, w = units_hw
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f'uniform_mask: the unit grid is {h}x{w}; uniform sampling keeps one unit '
                         'per 2x2 grid, so both sides must be even (use an input size divisible '
                         'by twice the mask unit)')
    if not 0.0 <= secondary_ratio < 1.0:
        raise ValueError(f'uniform_mask: secondary_ratio must be in [0, 1), got {secondary_ratio}')
    gh, gw = h // 2, w // 2
    grids = gh * gw
    pool = 4 * -(-2 * grids // 4)  # smallest multiple of 4 that is >= 2·grids
    # a random permutation of the pool indices; index i holds position i % 4
    order = torch.rand(batch_size, pool, device=device, generator=generator).argsort(dim=1)
    pos = order[:, :grids] % 4  # (B, G) kept position of each grid
    k = torch.arange(grids, device=order.device)
    row = 2 * (k // gw) + pos // 2  # unit row of the kept unit of grid k
    col = 2 * (k % gw) + pos % 2
    ids_keep = row * w + col  # (B, G), grid order
    visible = torch.zeros(batch_size, h * w, dtype=torch.bool, device=order.device)
    visible.scatter_(1, ids_keep, True)
    num_replaced = int(grids * secondary_ratio)
    if num_replaced == 0:
        return Mask(visible, ids_keep)
    pick = torch.rand(batch_size, grids, device=device, generator=generator).argsort(dim=1)
    replaced = torch.zeros_like(visible)
    replaced.scatter_(1, ids_keep.gather(1, pick[:, :num_replaced]), True)
    return Mask(visible, ids_keep, replaced)
