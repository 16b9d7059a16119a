"""Hiera-MAE's multi-scale fusion as an encoder-side neck on :class:`MaskedFeatures`.

Stage features that are finer than the last stage (more tokens per mask unit) are brought to its
resolution and width by a conv whose kernel and stride equal the ratio (4 and 2 for Hiera-MAE's
``q_pool=2``), summed with the last stage, and normalised (``encoder_norm``). Stages already at the
last stage's resolution are not fused (as in the official model). Module names are the official
checkpoints' (``multi_scale_fusion_heads``, ``encoder_norm``), under ``encoder_neck.``.
"""
from typing import Sequence

from mmengine.model import BaseModule
from torch import nn

from ...registry import register_model
from ..backbones.base import MaskedFeatures
from ..layers import layer_norm


@register_model(scopes=('mmpretrain',))
class MultiScaleFusion(BaseModule):
    """Args:
        in_channels: channels of each stage in ``MaskedFeatures.stages`` (filled in from the
            backbone's ``mim_stages``).
        unit_tokens: tokens per unit side of each stage (filled in likewise).
    """

    def __init__(self, in_channels: Sequence[int] = (), unit_tokens: Sequence[int] = (),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(unit_tokens) or not in_channels:
            raise ValueError('MultiScaleFusion: in_channels and unit_tokens need one entry per stage')
        C, t = in_channels[-1], unit_tokens[-1]
        self.fused = [s for s, u in enumerate(unit_tokens[:-1]) if u > t] + [len(in_channels) - 1]
        self.multi_scale_fusion_heads = nn.ModuleList(
            [nn.Conv2d(in_channels[s], C, unit_tokens[s] // t, stride=unit_tokens[s] // t)
             for s in self.fused[:-1]] + [nn.Identity()])
        self.encoder_norm = layer_norm(C)

    def forward(self, feats: MaskedFeatures) -> MaskedFeatures:
        """stages (B, K, u_s, u_s, C_s) -> tokens (B, K·t², C) of the fused, normalised latent."""
        if not feats.stages:
            raise ValueError('MultiScaleFusion needs a backbone whose MaskedFeatures carry stages')
        fused = 0
        for head, s in zip(self.multi_scale_fusion_heads, self.fused):
            f = feats.stages[s]  # (B, K, u, u, C_s)
            if not isinstance(head, nn.Identity):
                B, K, u, _, Cs = f.shape
                f = head(f.reshape(B * K, u, u, Cs).permute(0, 3, 1, 2))  # (B·K, C, t, t)
                f = f.permute(0, 2, 3, 1).reshape(B, K, *f.shape[2:], f.shape[1])
            fused = fused + f
        latent = self.encoder_norm(fused)  # (B, K, t, t, C)
        return feats._replace(tokens=latent.flatten(1, 3), unit_tokens=latent.shape[2], stages=())
