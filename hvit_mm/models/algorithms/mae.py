"""MAE (He et al., 2022) as an mmpretrain self-supervisor, for any backbone with ``forward_masked``.

The algorithm owns the mask, the decoder and the loss: it draws a per-sample random mask with an
exact keep count (``hvit_mm.models.masking``), lets the backbone encode the visible patches only,
decodes all patches with :class:`~hvit_mm.models.necks.MAEDecoder` and averages the squared error of
per-patch normalised pixels over the masked patches only (``masked_mse``).
"""
from typing import Dict, Optional, Union

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ...registry import register_model
from ..masking import Mask, random_mask
from .base import PixelMIM


def build_with_backbone(neck: Union[Dict, nn.Module], backbone: nn.Module) -> nn.Module:
    """Build a decoder config, filling in what it must share with the backbone (set once, STYLE 12):
    ``embed_dims``, ``patch_size``, ``in_channels`` and the patch grid ``num_patches``."""
    if isinstance(neck, nn.Module):
        return neck
    neck = dict(neck)
    neck.setdefault('embed_dims', backbone.embed_dims)
    neck.setdefault('patch_size', backbone.patch_size)
    neck.setdefault('in_channels', backbone.patch_embed.proj.in_channels)
    neck.setdefault('num_patches', tuple(backbone.grid_size))
    return MODELS.build(neck)


@register_model(scopes=('mmpretrain',))
class MaskedAutoencoder(PixelMIM):
    """MAE pretraining (registered as ``MaskedAutoencoder``; mmpretrain's own ``MAE`` stays intact).

    Args:
        backbone: config of a backbone with ``forward_masked(x, mask) -> (tokens, ids_keep)``,
            ``embed_dims``, ``patch_size``, ``grid_size`` and ``num_prefix_tokens``, e.g. ``ViT``.
        neck: decoder config (``MAEDecoder``); encoder width, patch size and grid are filled in.
        mask_ratio: fraction of patches hidden from the encoder (exactly ``int(N·(1-r))`` kept).
        norm_pix: targets are per-patch normalised pixels (MAE's ``norm_pix_loss``).
        data_preprocessor: ``SelfSupDataPreprocessor`` by default (mmpretrain's).
    """

    def __init__(self, backbone: Dict, neck: Dict, mask_ratio: float = 0.75, norm_pix: bool = True,
                 data_preprocessor: Optional[Dict] = None, init_cfg=None):
        backbone = backbone if isinstance(backbone, nn.Module) else MODELS.build(backbone)
        super().__init__(backbone=backbone, neck=build_with_backbone(neck, backbone),
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.mask_ratio = mask_ratio
        self.norm_pix = norm_pix

    @property
    def patch_size(self) -> int:
        return self.backbone.patch_size

    pred_stride = patch_size

    def draw_mask(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Mask:
        """A fresh per-sample random mask over the patch grid of x (B, C, H, W)."""
        n = (x.shape[2] // self.patch_size) * (x.shape[3] // self.patch_size)
        return random_mask(x.shape[0], n, self.mask_ratio, x.device, generator)

    def predict_patches(self, x: Tensor, mask: Mask) -> Tensor:
        """Encode the visible patches and decode every patch: (B, N, p²·C)."""
        tokens, ids_keep = self.backbone.forward_masked(x, mask)
        grid = (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        return self.neck(tokens, ids_keep, grid, self.backbone.num_prefix_tokens)
