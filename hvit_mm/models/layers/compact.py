"""UM-MAE's compaction: the units a uniform mask keeps, packed into a dense quarter-size map.

A uniform mask (:func:`hvit_mm.models.masking.uniform_mask`) keeps one unit per 2×2 grid of units
and lists the kept units in grid order, so the k-th kept unit belongs at cell k of the compact
(h/2, w/2) unit grid. Gathering every kept unit's t×t token block there gives a dense map that a
plain windowed / pyramid encoder runs on unchanged, with a different mask per sample. Each token
keeps its true (row, col) on the full token grid, so position terms (UM-Swin's relative-position
MLP, UM-PVT's absolute table) see real distances.

The official code builds the same map by zeroing the dropped units and summing the four units of
every grid with a dilated all-ones depthwise conv; a gather is equivalent, cheaper and exact.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor


def token_coords(hw: Tuple[int, int], device: Optional[torch.device] = None) -> Tensor:
    """(1, H, W, 2) float32: the (row, col) of every token of an H×W map."""
    rows = torch.arange(hw[0], device=device, dtype=torch.float32)
    cols = torch.arange(hw[1], device=device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(rows, cols, indexing='ij'), dim=-1)[None]


def compact_hw(mask, units_hw: Tuple[int, int], owner: str) -> Tuple[int, int]:
    """The compact unit grid a mask asks a UM-MAE backbone for, after checking the mask.

    Two masks are accepted:

    * uniform (UM-MAE): K = N/4 visible units, ``ids_keep`` in 2×2-grid order (the k-th kept unit
      lies in grid k of the (h/2, w/2) grid) -> (h/2, w/2);
    * every unit visible (SimMIM on the full image): K = N, ``ids_keep`` = arange -> (h, w).

    Anything else raises ValueError naming what is wrong. Costs one host sync (the order check).
    """
    h, w = units_hw
    ids = mask.ids_keep
    B, K = ids.shape
    if tuple(mask.visible.shape) != (B, h * w):
        raise ValueError(f'{owner}: the mask covers {tuple(mask.visible.shape)} units, the input '
                         f'has a {h}x{w} unit grid (batch {B})')
    if K == h * w:
        if not torch.equal(ids, torch.arange(K, device=ids.device).expand(B, K)):
            raise ValueError(f'{owner}: a mask with every unit visible needs ids_keep = arange')
        return h, w
    if h % 2 or w % 2 or 4 * K != h * w:
        raise ValueError(f'{owner}: needs a uniform mask (one visible unit per 2x2 grid, '
                         f'hvit_mm.models.masking.uniform_mask) or every unit visible; got {K} '
                         f'visible of {h}x{w} units')
    grid = (ids // w // 2) * (w // 2) + (ids % w) // 2  # 2×2 grid each kept unit lies in
    if not torch.equal(grid, torch.arange(K, device=ids.device).expand(B, K)):
        raise ValueError(f'{owner}: ids_keep must list one unit per 2x2 grid in grid order '
                         '(as uniform_mask returns it)')
    return h // 2, w // 2


def compact_units(x: Tensor, ids: Tensor, units_hw: Tuple[int, int],
                  grid_hw: Tuple[int, int]) -> Tensor:
    """Gather the t×t token blocks of the units ``ids`` into a dense map.

    Args:
        x: (B', H, W, C) token map, B' = B or 1 (shared, e.g. coordinates or a position table);
            H = h·t, W = w·t for the (h, w) unit grid ``units_hw``.
        ids: (B, K) raster unit indices; the k-th lands at cell (k // gw, k % gw) of ``grid_hw``.
        grid_hw: (gh, gw) compact unit grid, gh·gw = K.
    Returns:
        (B, gh·t, gw·t, C): unit k's tokens in raster order inside its cell.
    """
    Bx, H, W, C = x.shape
    h, w = units_hw
    gh, gw = grid_hw
    t = H // h
    B, K = ids.shape
    if H != h * t or W != w * t or gh * gw != K:
        raise ValueError(f'compact_units: a {H}x{W} map is not {h}x{w} units of equal size, or '
                         f'{K} units do not fill a {gh}x{gw} grid')
    units = x.view(Bx, h, t, w, t, C).permute(0, 1, 3, 2, 4, 5)  # (B', h, w, t, t, C)
    units = units.reshape(Bx, h * w, t * t * C).expand(B, -1, -1)
    kept = units.gather(1, ids[:, :, None].expand(B, K, t * t * C))  # (B, K, t·t·C)
    kept = kept.view(B, gh, gw, t, t, C).permute(0, 1, 3, 2, 4, 5)  # (B, gh, t, gw, t, C)
    return kept.reshape(B, gh * t, gw * t, C)


def compact_flags(flags: Tensor, ids: Tensor, grid_hw: Tuple[int, int], t: int) -> Tensor:
    """Per-unit flags (B, N) bool -> the compact token map's (B, gh·t, gw·t) bool, each kept
    unit's flag (from ``ids`` (B, K), as :func:`compact_units`) repeated over its t×t tokens."""
    gh, gw = grid_hw
    kept = flags.gather(1, ids).view(-1, gh, 1, gw, 1)
    return kept.expand(-1, gh, t, gw, t).reshape(-1, gh * t, gw * t)
