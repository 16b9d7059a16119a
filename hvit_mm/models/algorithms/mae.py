"""MAE (He et al., 2022) as an mmpretrain self-supervisor, for any backbone with ``forward_masked``.

The algorithm owns the mask, the decoder and the loss: it draws a per-sample random mask with an
exact keep count (``hvit_mm.models.masking``), lets the backbone encode the visible patches only,
decodes all patches with :class:`~hvit_mm.models.necks.MAEDecoder` and averages the squared error of
per-patch normalised pixels over the masked patches only (``masked_mse``).
"""
from typing import Dict, List, NamedTuple, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ...registry import register_model
from ..masking import Mask, random_mask
from ..pixel_loss import masked_mse, patchify, unpatchify


class Reconstruction(NamedTuple):
    """What every hvit_mm pretraining algorithm's ``reconstruct`` returns (for visualisation).

    image:   (B, C, H, W) predicted pixels, in the data preprocessor's normalised space (per-patch
             normalisation undone with the true patch statistics when trained with ``norm_pix``).
    visible: (B, 1, H, W) float, 1 where the encoder saw the pixel.
    """
    image: Tensor
    visible: Tensor


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


def first_view(inputs: Union[Tensor, List[Tensor]]) -> Tensor:
    """SelfSupDataPreprocessor hands over a list of views for multi-view pipelines; MAE uses one."""
    return inputs[0] if isinstance(inputs, (list, tuple)) else inputs


@register_model(scopes=('mmpretrain',))
class MaskedAutoencoder(BaseSelfSupervisor):
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

    def draw_mask(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Mask:
        """A fresh per-sample random mask over the patch grid of x (B, C, H, W)."""
        n = (x.shape[2] // self.patch_size) * (x.shape[3] // self.patch_size)
        return random_mask(x.shape[0], n, self.mask_ratio, x.device, generator)

    def predict_patches(self, x: Tensor, mask: Mask) -> Tensor:
        """Encode the visible patches and decode every patch: (B, N, p²·C)."""
        tokens, ids_keep = self.backbone.forward_masked(x, mask)
        grid = (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        return self.neck(tokens, ids_keep, grid, self.backbone.num_prefix_tokens)

    def reconstruction_loss(self, x: Tensor, pred: Tensor, mask: Mask) -> Tensor:
        """MSE over the masked patches only (visible-patch targets do not enter)."""
        return masked_mse(pred, patchify(x, self.patch_size), mask.visible, self.norm_pix)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, **kwargs
             ) -> Dict[str, Tensor]:
        """inputs: (B, C, H, W) preprocessed images. Returns ``dict(loss=...)``."""
        x = first_view(inputs)
        mask = self.draw_mask(x)
        return dict(loss=self.reconstruction_loss(x, self.predict_patches(x, mask), mask))

    def extract_feat(self, inputs: Union[Tensor, List[Tensor]]):
        """All patches through the backbone's ``forward`` (tuple of its ``out_type`` outputs)."""
        return self.backbone(first_view(inputs))

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor, mask: Optional[Mask] = None,
                    generator: Optional[torch.Generator] = None) -> Reconstruction:
        """Predicted image for ``inputs`` (B, C, H, W) under ``mask`` (a fresh random one if None)."""
        x = first_view(inputs)
        mask = mask if mask is not None else self.draw_mask(x, generator)
        pred = self.predict_patches(x, mask).float()
        p, grid = self.patch_size, (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        if self.norm_pix:  # undo the per-patch normalisation with the true patch statistics
            target = patchify(x, p).float()
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        image = unpatchify(pred, p, grid, x.shape[1])
        vis = mask.visible.float()[..., None].expand(-1, -1, p * p)  # (B, N, p²)
        return Reconstruction(image, unpatchify(vis, p, grid, 1))
