"""The pre-norm transformer block shared by ViT, HPViT and every MAE-style decoder (timm names)."""
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from .attention import Attention


class DropPath(nn.Module):
    """Stochastic depth per sample (identity at eval or ``p == 0``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:  # p = 1 would divide by zero; backbones name drop_path_rate first
            raise ValueError(f'DropPath: the drop probability must be in [0, 1), got {p}')
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f'p={self.p}'


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (timm names ``mlp.fc1``, ``mlp.fc2``)."""

    def __init__(self, dim: int, hidden: int, dim_out: Optional[int] = None, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim_out or dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def init_mae_(module: nn.Module) -> None:
    """MAE's initialisation, in place: every Linear xavier-uniform with zero bias, every LayerNorm
    at (1, 0). (Convolutions and tokens are each model's own business.)"""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_conv_fan_out_(conv: nn.Conv2d) -> None:
    """He-normal (fan-out) weights and zero bias, in place: the conv init of timm's Twins/PVT and
    UM-MAE."""
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels // conv.groups
    nn.init.normal_(conv.weight, 0.0, (2.0 / fan_out) ** 0.5)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def layer_norm(dim: int, eps: float = 1e-6) -> nn.LayerNorm:
    """The LayerNorm of MAE/timm ViTs (eps 1e-6)."""
    return nn.LayerNorm(dim, eps=eps)


class Block(nn.Module):
    """x + drop_path(attn(norm1(x))); x + drop_path(mlp(norm2(x))).

    Args:
        dim: channels. num_heads: attention heads. mlp_ratio: hidden/dim of the MLP.
        qkv_bias: bias on qkv. drop_path: stochastic-depth rate of this block.
        norm_layer: callable(dim) -> norm module.
    Tokens are (B, N, C); ``bias`` is an additive attention bias broadcastable to (B, heads, N, N).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_path: float = 0.0, norm_layer: Callable[[int], nn.Module] = layer_norm,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                              proj_drop=proj_drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)

    def forward(self, x: Tensor, bias: Optional[Tensor] = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), bias))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    def forward_with_logits(self, x: Tensor, bias: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """As :meth:`forward`; also returns the attention's pre-softmax logits (B, heads, N, N)."""
        out, logits = self.attn.forward_with_logits(self.norm1(x), bias)
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x))), logits
