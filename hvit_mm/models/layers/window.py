"""Window partitioning for local attention on (B, H, W, C) token maps, with padding for any size."""
from typing import Callable, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor


def window_partition(x: Tensor, window: int) -> Tuple[Tensor, Tuple[int, int]]:
    """(B, H, W, C) -> windows (B·nH·nW, window², C) and the padded size (Hp, Wp).

    H and W are zero-padded up to multiples of ``window`` (bottom/right), as in ViTDet; padded tokens
    take part in attention and are cut off again by :func:`window_unpartition`.
    """
    B, H, W, C = x.shape
    pad_h, pad_w = (-H) % window, (-W) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, C), (Hp, Wp)


def window_unpartition(windows: Tensor, window: int, padded_hw: Tuple[int, int],
                       hw: Tuple[int, int]) -> Tensor:
    """Inverse of :func:`window_partition`: (B·nH·nW, window², C) -> (B, H, W, C)."""
    Hp, Wp = padded_hw
    H, W = hw
    C = windows.shape[-1]
    B = windows.shape[0] // ((Hp // window) * (Wp // window))
    x = windows.view(B, Hp // window, Wp // window, window, window, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
    return x[:, :H, :W].contiguous()


def windowed(attn: Callable[[Tensor, Tuple[int, int], Optional[Tensor]], Tensor], x: Tensor,
             window: int) -> Tensor:
    """Run ``attn(tokens (B', T, C), hw, key_mask)`` on a (B, H, W, C) map globally
    (``window=0``, or a map that fits in one window: the same function, cheaper) or in k×k windows.

    Windows are zero-padded to multiples of ``window`` (bottom/right) and, unlike ViTDet, the padded
    tokens are excluded from the keys through ``key_mask`` (bool (B·nW, 1, 1, k²), True = may
    attend), so a window's output never depends on its padding. Returns (B, H, W, C_out).
    """
    B, H, W, C = x.shape
    if window <= 0 or (H <= window and W <= window):
        return attn(x.reshape(B, H * W, C), (H, W), None).view(B, H, W, -1)
    windows, padded_hw = window_partition(x, window)  # (B·nW, k², C)
    key_mask = None
    if padded_hw != (H, W):
        valid, _ = window_partition(x.new_ones(1, H, W, 1), window)  # (nW, k², 1), 0 at padding
        key_mask = (valid[:, :, 0] > 0).repeat(B, 1)[:, None, None, :]  # (B·nW, 1, 1, k²)
    return window_unpartition(attn(windows, (window, window), key_mask), window, padded_hw, (H, W))
