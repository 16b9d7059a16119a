"""The one MAE-style decoder of hvit_mm: encoder tokens of the visible units + mask tokens for the
hidden ones, back on the prediction grid -> pixels per predicted patch.

It serves every MIM algorithm and backbone through :class:`~hvit_mm.models.backbones.base.
MaskedFeatures`: MAE on ViT (one token per 16 px patch, sin-cos positions with a cls row),
Hiera-MAE (2×2 tokens per 32 px unit, learned positions), GreenMIM (one token per 32 px unit) and
UM-MAE (a compact map whose tokens each cover 2×2 units: ``decoder_embed`` widens to 4·D and a
PixelShuffle(2) gives one token per unit). Each visible token is scattered to the unit it came from
(``mask.ids_keep``), so it gets its own unit's position: official UM-MAE instead adds raster-order
positions to tokens that come out in 2×2-grid order, misaligning about 2/3 of them.

Parameter names are those of the official MAE files (``decoder_embed``, ``mask_token``,
``decoder_pos_embed``, ``decoder_blocks.N.*``, ``decoder_norm``, ``decoder_pred``), so official
decoders load under ``neck.`` after a prefix-only conversion.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from ...registry import register_model
from ..backbones.base import MaskedFeatures, check_heads, check_int
from ..layers import Block, init_mae_, layer_norm, resample_abs, sincos_2d
from ..masking import Mask, scatter_tokens


@register_model(scopes=('mmpretrain',))
class MAEDecoder(BaseModule):
    """Args:
        embed_dims: encoder width (filled in from the backbone by the MIM algorithm).
        num_patches: prediction grid at the backbone's ``img_size``, a square count or (h, w)
            (filled in); the position table is stored for it and resampled for other sizes.
        patch_size, in_channels: a prediction is ``patch_size² · in_channels`` values per patch
            (filled in: the backbone's unit over its tokens per unit side).
        decoder_embed_dims, decoder_depth, decoder_num_heads: MAE: 512 / 8 / 16;
            MAE-Lite Tiny: 96 / 1 / 3; Hiera-MAE 512 / 8 / 16; GreenMIM 512 / 1 / 16;
            UM-MAE 512 / 2 / 16 (Swin-L: 8 blocks).
        mlp_ratio: MLP hidden / width.
        predict_dims: output values per patch; ``patch_size² · in_channels`` when None.
        pos_embed: ``'sincos'`` (fixed, MAE, GreenMIM, UM-MAE) or ``'learned'`` (Hiera-MAE).
        num_prefix: rows of the position table for the encoder's prefix tokens (MAE's zero cls row:
            1 for ViT, filled in from the backbone).
        expand: units per token side of a compact encoder layout (UM-MAE: 2): ``decoder_embed``
            widens each token to ``expand² · D`` and a PixelShuffle spreads it over its units.
    """

    def __init__(self, embed_dims: int = 768, num_patches: Union[int, Tuple[int, int]] = 196,
                 patch_size: int = 16, in_channels: int = 3, decoder_embed_dims: int = 512,
                 decoder_depth: int = 8, decoder_num_heads: int = 16, mlp_ratio: float = 4.0,
                 predict_dims: Optional[int] = None, pos_embed: str = 'sincos',
                 num_prefix: int = 1, expand: int = 1, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        D = check_int('MAEDecoder', 'decoder_embed_dims', decoder_embed_dims)
        if D % 4:
            raise ValueError(f'MAEDecoder: decoder_embed_dims={D} must be divisible by 4 (2-D '
                             'sin-cos table)')
        check_heads('MAEDecoder', D, decoder_num_heads, 'decoder_num_heads', 'decoder_embed_dims')
        check_int('MAEDecoder', 'decoder_depth', decoder_depth, minimum=0)
        check_int('MAEDecoder', 'embed_dims', embed_dims)
        if isinstance(num_patches, int):
            side = int(round(num_patches ** 0.5))
            if side * side != num_patches:
                raise ValueError(f'MAEDecoder: num_patches={num_patches} is not square; pass (h, w)')
            num_patches = (side, side)
        if pos_embed not in ('sincos', 'learned'):
            raise ValueError(f"MAEDecoder: pos_embed must be 'sincos' or 'learned', got {pos_embed!r}")
        if expand < 1 or (expand > 1 and num_prefix):
            raise ValueError(f'MAEDecoder: expand={expand} must be >= 1 and needs num_prefix=0')
        self.grid_size, self.num_prefix, self.expand = tuple(num_patches), num_prefix, expand
        self.decoder_embed = nn.Linear(embed_dims, D * expand * expand)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        table = sincos_2d(self.grid_size, D, num_prefix)  # (1, P + h·w, D), zero prefix rows
        # stored as a parameter either way, so official files (which carry it) load
        self.decoder_pos_embed = nn.Parameter(table, requires_grad=pos_embed == 'learned')
        self.decoder_blocks = nn.ModuleList(
            [Block(D, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=layer_norm)
             for _ in range(decoder_depth)])
        self.decoder_norm = layer_norm(D)
        self.decoder_pred = nn.Linear(D, predict_dims or patch_size ** 2 * in_channels)
        init_mae_(self)
        nn.init.normal_(self.mask_token, std=0.02)
        if pos_embed == 'learned':
            trunc_normal_(self.decoder_pos_embed, std=0.02)

    def unit_tokens(self, feats: MaskedFeatures) -> Tuple[Tensor, int]:
        """Decoder-width tokens per visible unit: (B, K, t²·D) in ``ids_keep`` order, and t."""
        x = self.decoder_embed(feats.tokens)  # (B, L, e²·D)
        B, L, _ = x.shape
        D = self.mask_token.shape[-1]
        if feats.compact_hw is None:
            t = feats.unit_tokens
            return x.reshape(B, L // (t * t), t * t * D), t
        gh, gw = feats.compact_hw
        r = self.expand
        if (gh // r) * (gw // r) != L or gh % r or gw % r:
            raise ValueError(f'MAEDecoder: {L} compact tokens do not cover a {gh}x{gw} unit grid '
                             f'at {r} units per token side (set expand to the backbone\'s)')
        x = x.transpose(1, 2).reshape(B, D * r * r, gh // r, gw // r)
        x = F.pixel_shuffle(x, r)  # (B, D, gh, gw): one token per unit, compact raster = ids order
        return x.flatten(2).transpose(1, 2), 1

    def forward(self, feats: MaskedFeatures, mask: Mask, units_hw: Tuple[int, int]) -> Tensor:
        """Args:
            feats: the encoder's :class:`MaskedFeatures` (visible units in ``mask.ids_keep``
                order; K = N when nothing was hidden).
            mask: the mask the encoder was given.
            units_hw: the unit grid (h, w) of the input.
        Returns:
            (B, h·t · w·t, predict_dims): one prediction per patch of the (h·t, w·t) grid, raster
            order, t = the encoder's tokens per unit side (prefix tokens dropped).
        """
        x, t = self.unit_tokens(feats)
        B, D = x.shape[0], self.mask_token.shape[-1]
        Hu, Wu = units_hw
        fill = self.mask_token.repeat(1, 1, t * t)  # one mask token per patch of a hidden unit
        x = scatter_tokens(x, mask.ids_keep, fill, Hu * Wu)  # (B, NU, t²·D)
        x = x.view(B, Hu, Wu, t, t, D).permute(0, 1, 3, 2, 4, 5)  # units -> patch raster
        hw = (Hu * t, Wu * t)
        x = x.reshape(B, hw[0] * hw[1], D)
        P = self.num_prefix
        pos = resample_abs(self.decoder_pos_embed, hw, self.grid_size, P)
        x = x + pos[:, P:]
        if feats.prefix.shape[1]:
            x = torch.cat([self.decoder_embed(feats.prefix) + pos[:, :P], x], dim=1)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, feats.prefix.shape[1]:]
