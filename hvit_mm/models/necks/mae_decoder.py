"""MAE's lightweight decoder: visible tokens + mask tokens, back in raster order -> pixels per patch.

Parameter names are those of the official MAE files (``decoder_embed``, ``mask_token``,
``decoder_pos_embed``, ``decoder_blocks.N.*``, ``decoder_norm``, ``decoder_pred``), so the decoder of a
``*_full.pth`` checkpoint loads under ``neck.`` without renaming.
"""
from typing import Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model
from ..layers import Block, layer_norm, resample_abs, sincos_2d
from ..masking import scatter_tokens


@register_model(scopes=('mmpretrain',))
class MAEDecoder(BaseModule):
    """Args:
        embed_dims: encoder width (filled in from the backbone by the MIM algorithm).
        num_patches: patches of the pretraining image, a square grid, or ``grid_size`` (h, w).
        patch_size, in_channels: the prediction is ``patch_size² · in_channels`` values per patch
            (filled in from the backbone by the algorithm).
        decoder_embed_dims, decoder_depth, decoder_num_heads: MAE: 512 / 8 / 16;
            MAE-Lite Tiny: 96 / 1 / 3, Small: 192 / 1 / 6.
        mlp_ratio: MLP hidden / width.
        predict_dims: output values per patch; ``patch_size² · in_channels`` when None.
    """

    def __init__(self, embed_dims: int = 768, num_patches: Union[int, Tuple[int, int]] = 196,
                 patch_size: int = 16, in_channels: int = 3, decoder_embed_dims: int = 512,
                 decoder_depth: int = 8, decoder_num_heads: int = 16, mlp_ratio: float = 4.0,
                 predict_dims: Optional[int] = None, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(num_patches, int):
            side = int(round(num_patches ** 0.5))
            if side * side != num_patches:
                raise ValueError(f'MAEDecoder: num_patches={num_patches} is not square; pass (h, w)')
            num_patches = (side, side)
        self.grid_size = tuple(num_patches)
        D = decoder_embed_dims
        self.decoder_embed = nn.Linear(embed_dims, D)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        # fixed sin-cos with a zero cls row, like the encoder's; stored so official files load
        self.decoder_pos_embed = nn.Parameter(sincos_2d(self.grid_size, D, 1), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            [Block(D, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_layer=layer_norm)
             for _ in range(decoder_depth)])
        self.decoder_norm = layer_norm(D)
        self.decoder_pred = nn.Linear(D, predict_dims or patch_size ** 2 * in_channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, x: Tensor, ids_keep: Tensor, grid_hw: Tuple[int, int],
                num_prefix: int = 1) -> Tensor:
        """Args:
            x: (B, P + K, C_enc) encoder output: ``num_prefix`` leading tokens (cls; 0 for backbones
               without one), then the K visible patches.
            ids_keep: (B, K) raster index of each visible patch (K = N means nothing is masked).
            grid_hw: the patch grid (h, w), N = h·w.
        Returns:
            (B, N, predict_dims) per-patch predictions in raster order (prefix tokens dropped).
        """
        x = self.decoder_embed(x)
        prefix, visible = x[:, :num_prefix], x[:, num_prefix:]
        N = grid_hw[0] * grid_hw[1]
        # mask tokens everywhere, the visible tokens back at their raster positions
        patches = scatter_tokens(visible, ids_keep, self.mask_token, N)  # (B, N, D)
        pos = resample_abs(self.decoder_pos_embed, grid_hw, self.grid_size, 1)
        x = torch.cat([prefix + pos[:, :1], patches + pos[:, 1:]], dim=1) if num_prefix else \
            patches + pos[:, 1:]
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, num_prefix:]
