"""Hiera-MAE (Ryali et al., 2023): MAE on 32 px mask units for the hierarchical Hiera encoder.

Data flow: a per-sample random mask over the mask units (60% hidden) -> ``Hiera.forward_masked``
(masked units zeroed before the patch conv, blocks run on visible units only, ``q_pool=2`` so the
last stage stays at stride 16) -> multi-scale fusion: stage 1 and 2 features are brought to the last
stage's resolution and width by stride-k convs (k = 4, 2) and summed with it -> ``encoder_norm`` ->
decoder (mask tokens fill the hidden units, learned position embedding, 8 × 512-d blocks) -> per-patch
normalised pixel MSE over the hidden 16 px patches.

Module names equal the official MAE checkpoints' (``multi_scale_fusion_heads``, ``encoder_norm``,
``mask_token``, ``decoder_*``), and ``decoder_pred`` predicts each patch in (C, p, p) order as they
do, so converted official files load strictly (``hvit_mm.checkpoints.hiera.convert_full``).
"""
from typing import Dict, Optional

import torch
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from ...registry import register_model
from ..layers import Block, layer_norm, resample_abs
from ..masking import Mask, random_mask, scatter_tokens, upsample_units
from ..pixel_loss import patchify
from .base import PixelMIM


def patchify_chw(imgs: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> (B, H/p · W/p, C·p·p), raster patches, each flattened as (C, p, p)."""
    B, C = imgs.shape[:2]
    x = patchify(imgs, patch)  # (B, N, p·p·C)
    return x.view(B, -1, patch, patch, C).permute(0, 1, 4, 2, 3).reshape(B, x.shape[1], -1)


@register_model(scopes=('mmpretrain',))
class HieraMAE(PixelMIM):
    """Hiera-MAE pretraining.

    Args:
        backbone: a ``Hiera`` config (``q_pool=2``, ``out_type='featmap'``): anything with
            ``forward_masked(x, mask) -> (per-stage (B, K, u, u, C) features, ids_keep)``,
            ``stage_info``, ``q_pool``, ``levels``, ``unit_px`` and ``img_size``.
        mask_ratio: fraction of mask units hidden (exactly ``int(N·(1-r))`` kept per sample).
        decoder_embed_dims, decoder_depth, decoder_num_heads, mlp_ratio: the decoder.
        norm_pix: per-patch normalised pixel targets.
    """

    def __init__(self, backbone: Dict, mask_ratio: float = 0.6, decoder_embed_dims: int = 512,
                 decoder_depth: int = 8, decoder_num_heads: int = 16, mlp_ratio: float = 4.0,
                 norm_pix: bool = True, data_preprocessor: Optional[Dict] = None, init_cfg=None):
        super().__init__(backbone=backbone, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        bb = self.backbone
        if getattr(bb, 'out_type', 'featmap') != 'featmap':
            raise ValueError("HieraMAE: the backbone needs out_type='featmap' (no final norm)")
        self.mask_ratio, self.norm_pix = mask_ratio, norm_pix
        q = bb.q_pool
        chans = [f['num_chs'] for f in bb.stage_info]
        C, D = chans[-1], decoder_embed_dims
        self.final_unit = 2 ** (bb.levels - q)  # last-stage tokens per unit side (2 for q_pool=2)
        self.pred_stride = bb.unit_px // self.final_unit  # 16 px for q_pool=2
        # resolution no longer changes after the q_pool-th stage, so only stages < q_pool and the
        # last one are fused (each stage < q_pool is 2^(q - s) times finer than the last)
        self.fused_stages = list(range(q)) + [bb.num_stages - 1]
        self.multi_scale_fusion_heads = nn.ModuleList(
            [nn.Conv2d(chans[s], C, 2 ** (q - s), stride=2 ** (q - s)) for s in range(q)]
            + [nn.Identity()])
        self.encoder_norm = layer_norm(C)
        self.decoder_embed = nn.Linear(C, D)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, D))
        self.decoder_grid = tuple(s // self.pred_stride for s in bb.img_size)
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, self.decoder_grid[0] * self.decoder_grid[1], D))
        self.decoder_blocks = nn.ModuleList(
            [Block(D, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth)])
        self.decoder_norm = layer_norm(D)
        self.in_channels = bb.patch_embed.proj.in_channels
        self.decoder_pred = nn.Linear(D, self.pred_stride ** 2 * self.in_channels)

    def init_weights(self) -> None:
        """The official MAE initialisation (xavier-uniform Linear layers and patch conv, zero
        biases, unit LayerNorms, trunc-normal tokens), unless ``init_cfg`` says otherwise."""
        if self.init_cfg:
            return super().init_weights()
        self.backbone.init_weights()
        trunc_normal_(self.mask_token, std=0.02)
        trunc_normal_(self.decoder_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.backbone.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))  # as a Linear over the 7×7×C patch
        self._is_init = True

    def no_weight_decay(self) -> set:
        """Full parameter names kept out of weight decay (the backbone declares its own)."""
        return {'mask_token', 'decoder_pos_embed'}

    def units_hw(self, x: Tensor) -> tuple:
        return x.shape[2] // self.backbone.unit_px, x.shape[3] // self.backbone.unit_px

    def draw_mask(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Mask:
        """A fresh random mask over the (H/32)·(W/32) mask units of x (B, C, H, W); True = visible."""
        h, w = self.units_hw(x)
        return random_mask(x.shape[0], h * w, self.mask_ratio, x.device, generator)

    def encode(self, x: Tensor, mask: Mask) -> Tensor:
        """Visible units -> fused, normalised latent (B, K, u, u, C_last), u = ``final_unit``."""
        feats, _ = self.backbone.forward_masked(x, mask)
        fused = 0
        for head, s in zip(self.multi_scale_fusion_heads, self.fused_stages):
            f = feats[s]  # (B, K, u_s, u_s, C_s)
            if not isinstance(head, nn.Identity):
                B, K, u, _, Cs = f.shape
                f = head(f.reshape(B * K, u, u, Cs).permute(0, 3, 1, 2))  # (B·K, C, uf, uf)
                f = f.permute(0, 2, 3, 1).reshape(B, K, *f.shape[2:], f.shape[1])
            fused = fused + f
        return self.encoder_norm(fused)

    def decode(self, latent: Tensor, mask: Mask, units_hw: tuple) -> Tensor:
        """latent (B, K, u, u, C) of the visible units -> predictions (B, h·w, C_in·p·p) for every
        p = ``pred_stride`` patch of the (h, w) = units_hw · u grid, raster order."""
        B, K, u = latent.shape[:3]
        D = self.mask_token.shape[-1]
        x = self.decoder_embed(latent).reshape(B, K, u * u * D)
        fill = self.mask_token.repeat(1, 1, u * u)  # one mask token per patch of a hidden unit
        x = scatter_tokens(x, mask.ids_keep, fill, units_hw[0] * units_hw[1])  # (B, NU, u·u·D)
        hw = (units_hw[0] * u, units_hw[1] * u)
        x = x.view(B, units_hw[0], units_hw[1], u, u, D).permute(0, 1, 3, 2, 4, 5)  # to raster
        x = x.reshape(B, hw[0] * hw[1], D)
        x = x + resample_abs(self.decoder_pos_embed, hw, self.decoder_grid)
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))

    def predict_patches(self, x: Tensor, mask: Mask) -> Tensor:
        """(B, C, H, W) + mask -> (B, N_patches, C·p·p), p = ``pred_stride``."""
        return self.decode(self.encode(x, mask), mask, self.units_hw(x))

    def patch_visible(self, mask: Mask, x: Tensor) -> Tensor:
        """Unit mask -> (B, N_patches) bool over the prediction patches, True = visible."""
        return upsample_units(mask.visible, self.units_hw(x), self.final_unit).flatten(1)

    def target_patches(self, x: Tensor) -> Tensor:
        """Pixel targets in the official (C, p, p) patch layout."""
        return patchify_chw(x, self.pred_stride)

    def prediction_to_hwc(self, pred: Tensor, channels: int) -> Tensor:
        B, N = pred.shape[:2]
        p = self.pred_stride
        return pred.view(B, N, channels, p, p).permute(0, 1, 3, 4, 2).reshape(B, N, -1)
