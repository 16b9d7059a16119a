"""The one attention core of hvit_mm.

Every backbone and decoder attends through :class:`Attention` (``qkv`` -> core -> ``proj``) or, when it
must rearrange tokens between the projections (mask units, windows, q-pooling), through its
``qkv``/``proj`` layers and :func:`attend` / :func:`attend_explicit`. Parameter names are timm's
(``attn.qkv``, ``attn.proj``) so MAE, timm and ViTDet checkpoints load unrenamed.

Two paths, numerically equal (tested to 1e-5):
* fused: ``F.scaled_dot_product_attention`` on 4-D contiguous q, k, v, so PyTorch can pick
  FlashAttention / memory-efficient kernels.
* explicit: softmax(q kᵀ · scale + bias) v, which also returns the pre-softmax logits. Only the blocks
  whose logits are wanted (MAE-Lite distillation) take it; the others stay fused.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def attend(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor] = None,
           dropout_p: float = 0.0) -> Tensor:
    """Fused attention.

    Args:
        q: (B, heads, Nq, d); k, v: (B, heads, Nk, d).
        bias: additive float bias broadcastable to (B, heads, Nq, Nk), or a bool mask of that shape
            where True = may attend.
    Returns:
        (B, heads, Nq, d)
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)


def attend_explicit(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor] = None,
                    dropout_p: float = 0.0) -> Tuple[Tensor, Tensor]:
    """Explicit attention with the same contract as :func:`attend`.

    Returns:
        out (B, heads, Nq, d) and the pre-softmax logits q kᵀ · d^-0.5 + bias, (B, heads, Nq, Nk),
        with masked-out positions (bool ``bias`` False) at -inf.
    """
    logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if bias is not None:
        if bias.dtype == torch.bool:
            logits = logits.masked_fill(~bias, float('-inf'))
        else:
            logits = logits + bias
    weights = logits.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, logits


class Attention(nn.Module):
    """Multi-head self-attention: ``qkv`` -> fused/explicit core -> ``proj``.

    Args:
        dim: input channels.
        num_heads: heads; ``dim_out`` must divide by it.
        dim_out: channels of q, k, v and of the output (Hiera's stage transitions widen here);
            ``dim`` by default.
        qkv_bias: bias on the qkv projection.
        attn_drop: dropout on attention weights (training only).
        proj_drop: dropout after ``proj``.
    """

    def __init__(self, dim: int, num_heads: int, dim_out: Optional[int] = None,
                 qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        dim_out = dim_out or dim
        if dim_out % num_heads:
            raise ValueError(f'Attention: dim_out={dim_out} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.head_dim = dim_out // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim_out * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        self.proj_drop = nn.Dropout(proj_drop)

    def split_heads(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(B, N, dim) -> q, k, v each (B, heads, N, head_dim), contiguous."""
        B, N, _ = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)

    def merge_heads(self, x: Tensor) -> Tensor:
        """(B, heads, N, head_dim) -> projected (B, N, dim_out)."""
        B, _, N, _ = x.shape
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, -1)))

    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        """x: (B, N, dim); bias: broadcastable to (B, heads, N, N). Returns (B, N, dim_out)."""
        q, k, v = self.split_heads(x)
        drop = self.attn_drop if self.training else 0.0
        return self.merge_heads(attend(q, k, v, bias, drop))

    def forward_with_logits(self, x: Tensor, bias: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """As :meth:`forward`, through the explicit core; also returns the pre-softmax logits
        (B, heads, N, N)."""
        q, k, v = self.split_heads(x)
        drop = self.attn_drop if self.training else 0.0
        out, logits = attend_explicit(q, k, v, bias, drop)
        return self.merge_heads(out), logits
