"""The one position-embedding module: pure tensor functions, used by every backbone and decoder."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def sincos_1d(pos: Tensor, dim: int) -> Tensor:
    """pos: (N,) float -> (N, dim) as [sin(pos·ω), cos(pos·ω)], ω_i = 10000^(-i/(dim/2))."""
    if dim % 2:
        raise ValueError(f'sincos_1d: dim={dim} must be even')
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    out = pos.to(torch.float64)[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=1)


def sincos_2d(grid_hw: Tuple[int, int], dim: int, num_prefix: int = 0) -> Tensor:
    """Fixed 2-D sin-cos table in the official MAE channel order.

    Tokens are raster-ordered (row-major over H, W). Channels ``[:dim/2]`` encode the column
    (x), ``[dim/2:]`` the row (y); mmpretrain's table is the transpose of this one.

    Returns:
        (1, num_prefix + H·W, dim) float32; the ``num_prefix`` leading rows (cls token) are zero.
    """
    if dim % 4:
        raise ValueError(f'sincos_2d: dim={dim} must be divisible by 4')
    h, w = grid_hw
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    table = torch.cat([sincos_1d(xs.flatten(), dim // 2), sincos_1d(ys.flatten(), dim // 2)], 1)
    table = torch.cat([torch.zeros(num_prefix, dim, dtype=table.dtype), table], 0)
    return table.float()[None]


def resample_abs(pe: Tensor, new_hw: Tuple[int, int], old_hw: Optional[Tuple[int, int]] = None,
                 num_prefix: int = 0) -> Tensor:
    """Bicubically resize an absolute position table to a new token grid (prefix rows kept).

    Same interpolation as MAE's fine-tuning (bicubic, ``align_corners=False``), so resized
    checkpoints match it.

    Args:
        pe: (1, num_prefix + h·w, C).
        new_hw: target grid (H, W).
        old_hw: source grid; a square root of the token count when None.
    Returns:
        (1, num_prefix + H·W, C), in ``pe``'s dtype; ``pe`` itself when the grid is unchanged.
    """
    prefix, grid = pe[:, :num_prefix], pe[:, num_prefix:]
    if old_hw is None:
        side = int(round(grid.shape[1] ** 0.5))
        if side * side != grid.shape[1]:
            raise ValueError(f'resample_abs: {grid.shape[1]} tokens are not a square grid; pass old_hw')
        old_hw = (side, side)
    if tuple(old_hw) == tuple(new_hw):
        return pe
    C = grid.shape[-1]
    grid = grid.reshape(1, old_hw[0], old_hw[1], C).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_hw), mode='bicubic', align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_hw[0] * new_hw[1], C).to(pe.dtype)
    return torch.cat([prefix, grid], dim=1)


def fit_pos_embed(pe: Tensor, new_hw: Tuple[int, int], num_prefix: int = 0) -> Tensor:
    """A checkpoint's table (1, num_prefix + h·w, C) resized to ``new_hw`` when its grid can be read
    off its token count (a square grid), for ``adapt_checkpoint``.

    A table whose grid cannot be known (a 4x6 table from a 64x96 model, another family's table) is
    returned unchanged: the strict load then reports the ``pos_embed`` shape next to every other
    mismatching key, which says more than a failed resampling (build the model with the
    checkpoint's ``img_size`` to load such a table as it is)."""
    n = pe.shape[1] - num_prefix
    side = int(round(max(n, 0) ** 0.5))
    if pe.ndim != 3 or n <= 0 or side * side != n:
        return pe
    return resample_abs(pe, new_hw, (side, side), num_prefix)
