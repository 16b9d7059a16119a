"""What every pixel-reconstruction MIM algorithm of hvit_mm shares: the loss step, feature
extraction and the reconstruction used for visualisation.

A subclass says how it masks (``draw_mask``), predicts (``predict_patches``), lays out its pixel
targets (``target_patches``) and which prediction patches the encoder saw (``patch_visible``); the
rest is here once.
"""
from typing import Dict, List, NamedTuple, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor

from ..masking import Mask
from ..pixel_loss import masked_mse, patchify, unpatchify


class Reconstruction(NamedTuple):
    """What every hvit_mm pretraining algorithm's ``reconstruct`` returns (for visualisation).

    image:   (B, C, H, W) predicted pixels, in the data preprocessor's normalised space (per-patch
             normalisation undone with the true patch statistics when trained with ``norm_pix``).
    visible: (B, 1, H, W) float, 1 where the encoder saw the pixel.
    """
    image: Tensor
    visible: Tensor


def first_view(inputs: Union[Tensor, List[Tensor]]) -> Tensor:
    """SelfSupDataPreprocessor hands over a list of views for multi-view pipelines; these use one."""
    return inputs[0] if isinstance(inputs, (list, tuple)) else inputs


class PixelMIM(BaseSelfSupervisor):
    """Base of the MAE-style algorithms. Subclasses set ``mask_ratio``, ``norm_pix`` and implement:

    * ``draw_mask(x, generator) -> Mask`` over the algorithm's units;
    * ``predict_patches(x, mask) -> (B, N, D)``, one prediction per ``pred_stride`` patch;
    * ``pred_stride`` (px of a predicted patch).

    and override, when their layout differs from MAE's (patch flattened (p, p, C), units = patches):
    ``target_patches``, ``patch_visible`` and ``prediction_to_hwc``.
    """

    norm_pix: bool = True

    def target_patches(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> raw pixel targets (B, N, D) in the layout of the predictions."""
        return patchify(x, self.pred_stride)

    def patch_visible(self, mask: Mask, x: Tensor) -> Tensor:
        """(B, N) bool over the prediction patches, True = the encoder saw it."""
        return mask.visible

    def prediction_to_hwc(self, pred: Tensor, channels: int) -> Tensor:
        """Predictions (B, N, D) -> MAE's (p, p, C) patch layout for :func:`unpatchify`."""
        return pred

    def reconstruction_loss(self, x: Tensor, pred: Tensor, mask: Mask) -> Tensor:
        """MSE of (normalised) pixels over the hidden patches only (visible targets do not enter)."""
        return masked_mse(pred, self.target_patches(x), self.patch_visible(mask, x), self.norm_pix)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, **kwargs
             ) -> Dict[str, Tensor]:
        """inputs: (B, C, H, W) preprocessed images. Returns ``dict(loss=...)``."""
        x = first_view(inputs)
        mask = self.draw_mask(x)
        return dict(loss=self.reconstruction_loss(x, self.predict_patches(x, mask), mask))

    def extract_feat(self, inputs: Union[Tensor, List[Tensor]]):
        """All patches through the backbone's ``forward`` (its tuple of outputs)."""
        return self.backbone(first_view(inputs))

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor, mask: Optional[Mask] = None,
                    generator: Optional[torch.Generator] = None) -> Reconstruction:
        """Predicted image for ``inputs`` (B, C, H, W) under ``mask`` (a fresh random one if None)."""
        x = first_view(inputs)
        mask = mask if mask is not None else self.draw_mask(x, generator)
        p, C = self.pred_stride, x.shape[1]
        pred = self.predict_patches(x, mask).float()
        if self.norm_pix:  # undo the per-patch normalisation with the true patch statistics
            target = self.target_patches(x).float()
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        grid = (x.shape[2] // p, x.shape[3] // p)
        vis = self.patch_visible(mask, x).float()[..., None].expand(-1, -1, p * p)  # (B, N, p²)
        return Reconstruction(unpatchify(self.prediction_to_hwc(pred, C), p, grid, C),
                              unpatchify(vis, p, grid, 1))
