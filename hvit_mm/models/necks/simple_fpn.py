"""ViTDet's simple feature pyramid: the multi-scale maps a detector or UperNet needs, built from the
single stride-16 map of a plain ViT (Li et al., "Exploring Plain Vision Transformer Backbones for
Object Detection", 2022).

Each scale factor s resamples the map: s = 4 two 2× transposed convolutions (LN + GELU between),
s = 2 one, s = 1 nothing, s = 0.5 a 2×2 max pool. Then a 1×1 lateral conv to ``out_channels`` and a
3×3 conv, each normalised (ViTDet: channel LayerNorm, no conv bias). ``num_outs`` above the number
of scales adds stride-2 max pools of the last level, as mmdet's FPN (``add_extra_convs=False``), so
Mask R-CNN's RPN gets its stride-64 level.
"""
from typing import List, Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model


@register_model(scopes=('mmdet', 'mmseg'), name='LN2d')
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map (ViTDet's ``LayerNorm`` for conv features)."""
    _abbr_ = 'ln'

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # normalise over C


@register_model(scopes=('mmdet', 'mmseg'))
class SimpleFeaturePyramid(BaseModule):
    """Feature pyramid from one plain-ViT map.

    Args:
        in_channels: channels of the backbone map (the ViT width).
        out_channels: channels of every output level.
        scale_factors: one output per factor, relative to the input map's resolution
            (4, 2, 1, 0.5 turn a stride-16 map into strides 4, 8, 16, 32). Allowed: 4, 2, 1, 0.5.
        num_outs: number of outputs; extra levels beyond ``len(scale_factors)`` are stride-2 max
            pools of the last one (5 for Mask R-CNN's RPN). ``len(scale_factors)`` when None.
        in_index: which of the backbone's outputs to read (the last by default).
        norm_cfg: norm of the convolutions and of the 4× branch (``LN2d``: channel LayerNorm).
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: Optional[int] = None, in_index: int = -1,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.num_outs = num_outs or len(self.scale_factors)
        if self.num_outs < len(self.scale_factors):
            raise ValueError(f'num_outs={num_outs} < {len(self.scale_factors)} scale factors')
        self.in_index = in_index
        if norm_cfg.get('type') == 'LN2d':  # found without a default scope (mmengine's root) too
            norm_cfg = dict(norm_cfg, type=LayerNorm2d)
        C = in_channels
        self.stages = nn.ModuleList()
        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for s in self.scale_factors:
            if s == 4.0:
                stage = nn.Sequential(nn.ConvTranspose2d(C, C // 2, 2, stride=2),
                                      build_norm_layer(norm_cfg, C // 2)[1], nn.GELU(),
                                      nn.ConvTranspose2d(C // 2, C // 4, 2, stride=2))
                dim = C // 4
            elif s == 2.0:
                stage, dim = nn.ConvTranspose2d(C, C // 2, 2, stride=2), C // 2
            elif s == 1.0:
                stage, dim = nn.Identity(), C
            elif s == 0.5:
                stage, dim = nn.MaxPool2d(2, stride=2), C
            else:
                raise ValueError(f'SimpleFeaturePyramid: scale factor {s} not in (4, 2, 1, 0.5)')
            self.stages.append(stage)
            # no conv bias: a norm follows (as ViTDet)
            self.lateral_convs.append(ConvModule(dim, out_channels, 1, bias=False,
                                                 norm_cfg=norm_cfg, act_cfg=None))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, bias=False,
                                             norm_cfg=norm_cfg, act_cfg=None))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """inputs: the backbone's tuple of maps; ``inputs[in_index]`` is (B, C_in, h, w).

        Returns ``num_outs`` maps (B, out_channels, h_i, w_i): h·s for each scale factor s (a
        transposed conv doubles, a pool halves with floor), then halved (ceil) for each extra level.
        """
        x = inputs[self.in_index]
        outs: List[Tensor] = [fpn(lat(stage(x))) for stage, lat, fpn in
                              zip(self.stages, self.lateral_convs, self.fpn_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))  # FPN's extra 'pool' level
        return tuple(outs)
