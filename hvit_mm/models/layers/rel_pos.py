"""ViTDet-style blocks for plain ViTs on dense tasks: windowed or global attention on a token map,
with optional decomposed relative position (separate learned tables for row and column offsets).

Tokens stay a (B, H, W, C) map between blocks, as in detectron2's ViTDet, so a block windows its
input itself (partition -> attention -> unpartition) and the backbone never rearranges tokens.
Parameter names are ViTDet's and timm's SAM encoder's (``blocks.N.attn.rel_pos_h`` /
``rel_pos_w``, ``(2·size - 1, head_dim)``), so their checkpoints load unrenamed.

The relative position term depends on the query: for a query at (i, j) and a key at (k, l) it is
``q · R_h[i - k] + q · R_w[j - l]`` with the *unscaled* query, added to the pre-softmax logits.
It is computed here and handed to the shared core (:func:`attend`) as its additive ``bias``.
"""
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import Attention, attend
from .blocks import Block, layer_norm
from .window import windowed


def resize_rel_pos(table: Tensor, length: int) -> Tensor:
    """(L, d) table of relative offsets -> (length, d), linearly interpolated when L differs
    (a table learnt for another window or image size), as ViTDet does."""
    if table.shape[0] == length:
        return table
    out = F.interpolate(table.t()[None], size=length, mode='linear')  # (1, d, length)
    return out[0].t()


def rel_pos_lookup(table: Tensor, size: int) -> Tensor:
    """The (size, size, d) rows ``R[i - k]`` for query index i and key index k along one axis,
    from a table of 2·size - 1 offsets (resized first if it was learnt for another size)."""
    table = resize_rel_pos(table, 2 * size - 1)
    pos = torch.arange(size, device=table.device)
    return table[pos[:, None] - pos[None, :] + size - 1]  # offset -(size-1)..size-1 -> row 0..2size-2


def decomposed_rel_pos(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                       hw: Tuple[int, int]) -> Tensor:
    """Additive attention bias from decomposed relative position.

    Args:
        q: unscaled queries (B, heads, H·W, d) of an H×W token map, raster order.
        rel_pos_h, rel_pos_w: (2·h0 - 1, d), (2·w0 - 1, d) tables (any h0, w0: resized to H, W).
        hw: (H, W).
    Returns:
        (B, heads, H·W, H·W) float bias: ``bias[.., (i, j), (k, l)] = q_ij·R_h[i-k] + q_ij·R_w[j-l]``.
    """
    H, W = hw
    B, heads, _, d = q.shape
    Rh = rel_pos_lookup(rel_pos_h, H).to(q.dtype)  # (H, H, d)
    Rw = rel_pos_lookup(rel_pos_w, W).to(q.dtype)  # (W, W, d)
    r_q = q.reshape(B, heads, H, W, d)
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, Rh)  # (B, heads, H, W, H_k)
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, Rw)  # (B, heads, H, W, W_k)
    bias = rel_h[..., :, None] + rel_w[..., None, :]  # (B, heads, H, W, H_k, W_k)
    return bias.reshape(B, heads, H * W, H * W)


class MapAttention(Attention):
    """:class:`Attention` over an H×W token map, with optional decomposed relative position.

    Args:
        dim, num_heads, qkv_bias: as :class:`Attention`.
        rel_pos_size: (h0, w0) the tables are stored for (the window, or the image grid of a global
            block); None: no relative position. Zero-initialised, so a pretrained model starts as
            the plain ViT it was trained as.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 rel_pos_size: Optional[Tuple[int, int]] = None):
        super().__init__(dim, num_heads, qkv_bias=qkv_bias)
        self.use_rel_pos = rel_pos_size is not None
        if self.use_rel_pos:
            h0, w0 = rel_pos_size
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * h0 - 1, self.head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * w0 - 1, self.head_dim))

    def _bias(self, q: Tensor, hw: Tuple[int, int], key_mask: Optional[Tensor]) -> Optional[Tensor]:
        """Relative position bias plus ``key_mask`` (broadcastable bool, True = may attend)."""
        if not self.use_rel_pos:
            return key_mask
        bias = decomposed_rel_pos(q, self.rel_pos_h, self.rel_pos_w, hw)
        if key_mask is not None:
            bias = bias.masked_fill(~key_mask, float('-inf'))
        return bias

    def forward(self, x: Tensor, hw: Tuple[int, int], key_mask: Optional[Tensor] = None) -> Tensor:
        """x: (B, H·W, dim) raster tokens of an H×W map; key_mask: bool broadcastable to
        (B, heads, H·W, H·W), True = may attend. Returns (B, H·W, dim)."""
        q, k, v = self.split_heads(x)
        drop = self.attn_drop if self.training else 0.0
        return self.merge_heads(attend(q, k, v, self._bias(q, hw, key_mask), drop))


class MapBlock(Block):
    """Pre-norm block on a (B, H, W, C) map attending globally (``window=0``) or in k×k windows.

    Windows are zero-padded to multiples of ``window`` (bottom/right) and, unlike ViTDet, padded
    tokens are masked out of every window's keys, so a window's output never depends on the padding
    (with an exact multiple both agree). A map that fits in one window is attended as a whole.
    Names: ``norm1, attn.{qkv, proj, rel_pos_h, rel_pos_w}, norm2, mlp.{fc1, fc2}``.

    Args:
        dim, num_heads, mlp_ratio, qkv_bias, drop_path, norm_layer: as :class:`Block`.
        window: window side in tokens; 0 = global attention.
        rel_pos_size: (h0, w0) of the relative position tables (``(window, window)`` for a window
            block, the pretraining grid for a global one); None: no relative position.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, norm_layer: Callable[[int], nn.Module] = layer_norm,
                 window: int = 0, rel_pos_size: Optional[Tuple[int, int]] = None):
        super().__init__(dim, num_heads, mlp_ratio, qkv_bias, drop_path, norm_layer)
        self.attn = MapAttention(dim, num_heads, qkv_bias, rel_pos_size)
        self.window = window

    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        """x: (B, H, W, C) -> (B, H, W, C). ``bias`` is not supported (position enters through the
        relative tables) and must be None."""
        if bias is not None:
            raise ValueError('MapBlock takes no external attention bias')
        x = x + self.drop_path(windowed(self.attn, self.norm1(x), self.window))
        return x + self.drop_path(self.mlp(self.norm2(x)))
