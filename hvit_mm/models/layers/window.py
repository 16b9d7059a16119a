"""Window partitioning for local attention on (B, H, W, C) token maps, with padding for any size."""
from typing import Tuple

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
