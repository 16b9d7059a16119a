"""Sparse 2-D convolution in plain PyTorch: gather / matmul over the active sites of a map.

A sparse map is a set of M *active sites* with features (M, C) and integer coordinates
``(b, h, w)`` (M, 3) on a (B, H, W) grid; every other site holds zeros. A convolution with the
weights of an ``nn.Conv2d`` (C_out, C_in / groups, k, k) is then exactly the dense convolution of
the zero-scattered map, evaluated at the *active output sites* only:

* ``stride == 1`` (odd k, 'same' padding), the *submanifold* convolution: the output sites are the
  input sites (Twins' PEG, a depthwise 3×3, on the visible tokens; masked neighbours read 0);
* otherwise the output sites are given by the caller (GreenMIM: for kernel == stride on 32 px mask
  units, exactly the fully visible cells, known without a search), or found as every output site
  whose receptive field holds an active input (one host-device sync, for the count).

No spconv or MinkowskiEngine: a dense (B, H + 2p, W + 2p) map of row indices (M = "empty", which
reads a zero row) turns the (output, kernel offset) -> input table into one gather, and the
convolution into one einsum over (offset, group, channel) -- a single matmul when ``groups == 1``.
Memory: the gathered (M_out, k², C_in) features; for kernel == stride that is the input itself
(each input is read once), for a 3×3 submanifold conv 9× the input, which is why
:func:`dense_conv_at` (scatter, dense conv, gather: the same numbers) serves depthwise 3×3 better.
Runs on any device PyTorch supports; autograd goes through the gather (an index-add backward).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def output_size(hw: Tuple[int, int], kernel: int, stride: int, padding: int) -> Tuple[int, int]:
    """(Ho, Wo) of a dense ``nn.Conv2d`` (floor mode) on an (H, W) map."""
    return tuple((s + 2 * padding - kernel) // stride + 1 for s in hw)


def active_outputs(coords: Tensor, shape: Tuple[int, int, int], kernel: int, stride: int,
                   padding: int) -> Tensor:
    """Every output site whose k×k receptive field holds an active input.

    Args:
        coords: (M, 3) long (b, h, w) of the active inputs on a ``shape`` = (B, H, W) grid.
    Returns:
        (M_out, 3) long (b, ho, wo), raster order (b, then ho, then wo). Syncs once (the count).
    """
    B, H, W = shape
    occ = coords.new_zeros(B, H, W, dtype=torch.float32)
    occ[coords[:, 0], coords[:, 1], coords[:, 2]] = 1.0
    ones = occ.new_ones(1, 1, kernel, kernel)
    hit = F.conv2d(occ[:, None], ones, stride=stride, padding=padding)[:, 0] > 0  # (B, Ho, Wo)
    return hit.nonzero()


def gather_table(coords: Tensor, shape: Tuple[int, int, int], out_coords: Tensor, kernel: int,
                 stride: int, padding: int) -> Tensor:
    """The (output, kernel offset) -> input row table.

    Args:
        coords: (M, 3) long (b, h, w) of the active inputs on ``shape`` = (B, H, W), unique.
        out_coords: (M_out, 3) long (b, ho, wo) output sites, inside the dense output map.
    Returns:
        (M_out, k²) long: row of ``coords`` read by offset (dy, dx) (raster, dy-major) of each
        output, or M where that input is inactive or padding.
    """
    B, H, W = shape
    M = coords.shape[0]
    Hp, Wp = H + 2 * padding, W + 2 * padding
    index = torch.full((B * Hp * Wp,), M, dtype=torch.long, device=coords.device)  # M = "empty"
    index[(coords[:, 0] * Hp + coords[:, 1] + padding) * Wp + coords[:, 2] + padding] = \
        torch.arange(M, device=coords.device)
    r = torch.arange(kernel, device=coords.device)
    rows = out_coords[:, 1:2] * stride + r  # (M_out, k) padded-map rows of the receptive field
    cols = out_coords[:, 2:3] * stride + r
    lin = (out_coords[:, 0, None, None] * Hp + rows[:, :, None]) * Wp + cols[:, None, :]
    return index[lin.reshape(-1, kernel * kernel)]  # (M_out, k²)


def sparse_conv2d(feats: Tensor, coords: Tensor, shape: Tuple[int, int, int], weight: Tensor,
                  bias: Optional[Tensor] = None, stride: int = 1, padding: int = 0,
                  groups: int = 1, out_coords: Optional[Tensor] = None
                  ) -> Tuple[Tensor, Tensor]:
    """``F.conv2d`` of the zero-scattered sparse map, at the active output sites only.

    Args:
        feats: (M, C_in) features of the active input sites.
        coords: (M, 3) long (b, h, w), unique, on a ``shape`` = (B, H, W) grid.
        weight: (C_out, C_in / groups, k, k), ``nn.Conv2d`` layout; bias: (C_out,) or None.
        stride, padding, groups: as ``nn.Conv2d`` (square kernel, no dilation).
        out_coords: (M_out, 3) long output sites on the (B, Ho, Wo) output grid
            (:func:`output_size`). None: the input sites when ``stride == 1`` (submanifold; needs
            a size-preserving ``padding``), else :func:`active_outputs` (one sync).
    Returns:
        (M_out, C_out) features and their (M_out, 3) coordinates. Equal to
        ``F.conv2d(dense, weight, bias, stride, padding, groups=groups)[b, :, ho, wo]`` where
        ``dense`` holds ``feats`` at ``coords`` and zeros elsewhere.
    """
    C_out, cig, k, _ = weight.shape
    if feats.shape[1] != cig * groups:
        raise ValueError(f'sparse_conv2d: {feats.shape[1]} input channels for a weight of '
                         f'{cig} x {groups} groups')
    if out_coords is None:
        if stride == 1:
            if 2 * padding != k - 1:
                raise ValueError('sparse_conv2d: a submanifold (stride 1) convolution needs '
                                 f'padding (k - 1) / 2, got k={k}, padding={padding}')
            out_coords = coords
        else:
            out_coords = active_outputs(coords, shape, k, stride, padding)
    table = gather_table(coords, shape, out_coords, k, stride, padding)  # (M_out, k²)
    zero = feats.new_zeros(1, feats.shape[1])
    x = torch.cat([feats, zero]).index_select(0, table.reshape(-1))  # (M_out·k², C_in)
    x = x.view(table.shape[0], k * k, feats.shape[1])  # (M_out, k², C_in), offsets dy-major
    if groups == 1:  # one matmul over (offset, channel)
        w = weight.permute(2, 3, 1, 0).reshape(k * k * cig, C_out)
        out = x.flatten(1) @ w
    elif cig == 1 and C_out == groups:  # depthwise: a weighted sum over the offsets
        out = (x * weight.reshape(C_out, k * k).t()).sum(1)
    else:
        w = weight.reshape(groups, C_out // groups, cig, k * k)
        out = torch.einsum('mkgi,goik->mgo', x.view(*x.shape[:2], groups, cig), w)
        out = out.reshape(-1, C_out)
    if bias is not None:
        out = out + bias
    return out, out_coords


def dense_conv_at(conv: nn.Conv2d, feats: Tensor, coords: Tensor, shape: Tuple[int, int, int],
                  out_coords: Optional[Tensor] = None) -> Tensor:
    """The same result as :func:`sparse_conv` by the other route: scatter ``feats`` (M, C_in) at
    ``coords`` (M, 3) into a zero (B, C_in, H, W) map, run ``conv`` densely and read (M_out, C_out)
    at ``out_coords`` (default: ``coords``, the submanifold sites). Cheaper than the gather for a
    depthwise 3×3 once a quarter of the map is active (its k² = 9 gathered copies outweigh the 4×
    larger dense map); memory B·H·W·C instead of M·k²·C."""
    B, H, W = shape
    dense = feats.new_zeros(B, H, W, feats.shape[1])
    dense = dense.index_put((coords[:, 0], coords[:, 1], coords[:, 2]), feats)
    out = conv(dense.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)  # (B, Ho, Wo, C_out)
    oc = coords if out_coords is None else out_coords
    return out[oc[:, 0], oc[:, 1], oc[:, 2]]


def sparse_conv(conv: nn.Conv2d, feats: Tensor, coords: Tensor, shape: Tuple[int, int, int],
                out_coords: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """:func:`sparse_conv2d` with the weights and settings of a (square, undilated) ``conv``, so a
    model keeps plain ``nn.Conv2d`` modules (dense checkpoints load unchanged) and runs them on
    dense maps or on sparse sites alike."""
    if conv.dilation != (1, 1) or conv.kernel_size[0] != conv.kernel_size[1] \
            or conv.stride[0] != conv.stride[1] or not isinstance(conv.padding, tuple) \
            or conv.padding[0] != conv.padding[1] or conv.padding_mode != 'zeros':
        raise ValueError(f'sparse_conv: unsupported {conv}')
    return sparse_conv2d(feats, coords, shape, conv.weight, conv.bias, conv.stride[0],
                         conv.padding[0], conv.groups, out_coords)
