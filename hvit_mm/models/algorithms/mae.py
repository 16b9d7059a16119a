"""Masked autoencoding for every MIM-capable hvit_mm backbone: MAE (He et al., 2022), Hiera-MAE,
UM-MAE and GreenMIM are this one algorithm with different masks, backbones and decoder sizes.

The algorithm owns the mask, the decoder and the loss; it talks to the backbone only through the
contract of :mod:`hvit_mm.models.backbones.base` (``forward_masked`` -> ``MaskedFeatures``, plus
``mim_unit``, ``mim_dims``, ``mim_out``, ``mim_stages``, ``img_size``, ``num_prefix_tokens``):

    mask = draw_mask(x)                        # hvit_mm.models.masking, over backbone.unit_grid
    feats = backbone.forward_masked(x, mask)   # visible units only, in mask.ids_keep order
    feats = encoder_neck(feats)                # optional (Hiera-MAE's multi-scale fusion)
    pred = neck(feats, mask, units_hw)         # MAEDecoder: (B, N_patches, p²·C)
    loss = masked_mse(pred, pixels, ...)       # per-patch normalised pixels of the target units
"""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ...registry import register_model
from .. import masking
from ..backbones.base import Backbone, check_rate
from ..layers import init_mae_
from ..masking import Mask
from ..pixel_loss import masked_mse, patchify, unpatchify
from .base import Reconstruction, first_view

MASK_TYPES = ('random', 'uniform')
TARGET_LAYOUTS = ('hwc', 'chw')


def build_part(owner: str, name: str, cfg) -> nn.Module:
    """A module argument (``backbone``, ``teacher``) given as a config dict or a module."""
    if isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError(f"{owner}: {name} must be a config dict with a 'type' (e.g. "
                        f"dict(type='ViT', arch='base')) or a module, got {cfg!r}")
    return MODELS.build(cfg)


def mim_backbone(owner: str, name: str, cfg) -> Backbone:
    """Build ``cfg`` and check it can do masked image modeling, naming the backbones that can."""
    backbone = build_part(owner, name, cfg)
    if getattr(backbone, 'mim_unit', None) is None or not hasattr(backbone, 'forward_masked'):
        why = ''
        if getattr(type(backbone), 'masked_modeling', False):
            why = ' in this configuration (a classifier out_type switches it off)'
        raise TypeError(f'{owner}: {name} {type(backbone).__name__} does not support masked image '
                        f'modeling{why}; backbones that do: {list(Backbone.mim_names())}')
    return backbone


def build_with_backbone(cfg: Union[Dict, nn.Module, None], backbone: nn.Module, **fill):
    """Build a neck config, filling in what it must share with the backbone (set once, STYLE 12)."""
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    if not isinstance(cfg, dict):
        raise TypeError(f"neck configs must be dicts with a 'type' (e.g. dict(type='MAEDecoder')), "
                        f'got {cfg!r}')
    cfg = dict(cfg)
    for k, v in fill.items():
        cfg.setdefault(k, v)
    return MODELS.build(cfg)


@register_model(scopes=('mmpretrain',))
class MaskedAutoencoder(BaseSelfSupervisor):
    """Masked autoencoder pretraining (registered as ``MaskedAutoencoder``; mmpretrain's own
    ``MAE`` stays intact).

    Args:
        backbone: config of a backbone that sets ``mim_unit`` (ViT, Hiera, GreenSwin, UMSwin, ...).
        neck: decoder config (``MAEDecoder``); encoder width, patch size, prediction grid, prefix
            rows and compact expansion are filled in from the backbone.
        encoder_neck: optional neck on the encoder's ``MaskedFeatures`` before the decoder
            (``MultiScaleFusion`` for Hiera-MAE; its channels are filled in).
        mask_ratio: fraction of units hidden (exactly ``int(N·(1-r))`` kept; ``'uniform'`` keeps
            one of every 2×2 units, so 0.75).
        mask_type: ``'random'`` (MAE: per-sample random units) or ``'uniform'`` (UM-MAE's uniform
            sampling, for any backbone; UMSwin/UMPVT require it).
        secondary_ratio: share of the kept units replaced by a learnable ``mask_token`` (UM-MAE's
            secondary masking, 0.25); they are corrupted input, not reconstruction targets.
        batch_mask: one mask for the whole batch (GreenMIM's official setting) instead of one per
            sample.
        norm_pix: targets are per-patch normalised pixels (MAE's ``norm_pix_loss``).
        target_layout: how a predicted patch is flattened: ``'hwc'`` (MAE) or ``'chw'`` (Hiera's
            official ``decoder_pred``).
        data_preprocessor: ``SelfSupDataPreprocessor`` by default (mmpretrain's).
    """

    def __init__(self, backbone: Dict, neck: Dict, encoder_neck: Optional[Dict] = None,
                 mask_ratio: float = 0.75, mask_type: str = 'random', secondary_ratio: float = 0.0,
                 batch_mask: bool = False, norm_pix: bool = True, target_layout: str = 'hwc',
                 data_preprocessor: Optional[Dict] = None, init_cfg=None):
        name = type(self).__name__
        backbone = mim_backbone(name, 'backbone', backbone)
        if neck is None:
            raise TypeError(f"{name}: neck (the decoder config, e.g. dict(type='MAEDecoder')) is "
                            'required')
        mask_ratio = check_rate(name, 'mask_ratio', mask_ratio)
        secondary_ratio = check_rate(name, 'secondary_ratio', secondary_ratio)
        if mask_type not in MASK_TYPES or target_layout not in TARGET_LAYOUTS:
            raise ValueError(f'{name}: mask_type must be one of {MASK_TYPES} (got {mask_type!r}) '
                             f'and target_layout one of {TARGET_LAYOUTS} (got {target_layout!r})')
        if backbone.mim_mask == 'uniform' and mask_type != 'uniform' and self.needs_dropping:
            raise ValueError(f"{name}: {type(backbone).__name__} compacts UM-MAE's uniform masks "
                             "only; set mask_type='uniform'")
        if not 0.0 <= secondary_ratio < 1.0 or (secondary_ratio and mask_type != 'uniform'):
            raise ValueError(f"{name}: secondary_ratio must be in [0, 1) and goes with "
                             f"mask_type='uniform' (UM-MAE), got {secondary_ratio}")
        if mask_type == 'uniform' and mask_ratio != 0.75:
            raise ValueError(f"{name}: mask_type='uniform' keeps one unit of every 2x2, i.e. "
                             f'mask_ratio=0.75; got {mask_ratio}')
        u = backbone.mim_unit
        if backbone.img_size[0] % u or backbone.img_size[1] % u:
            raise ValueError(f'{name}: the backbone img_size {tuple(backbone.img_size)} is not a '
                             f'multiple of its {u} px mask unit; use a multiple of {u}')
        grid = (backbone.img_size[0] // u, backbone.img_size[1] // u)
        if mask_type == 'uniform' and (grid[0] % 2 or grid[1] % 2):
            raise ValueError(f"{name}: mask_type='uniform' keeps one unit of every 2x2, so the "
                             f'{grid[0]}x{grid[1]} unit grid of img_size '
                             f'{tuple(backbone.img_size)} must have even sides; use a multiple '
                             f'of {2 * u}')
        out = backbone.mim_out
        stages = backbone.mim_stages
        enc = build_with_backbone(encoder_neck, backbone,
                                  in_channels=[s['num_chs'] for s in stages],
                                  unit_tokens=[s['unit_tokens'] for s in stages])
        t = out['unit_tokens']
        grid = tuple(s // backbone.mim_unit * t for s in backbone.img_size)
        dec = build_with_backbone(neck, backbone, embed_dims=out['num_chs'],
                                  patch_size=backbone.mim_unit // t, num_patches=grid,
                                  in_channels=backbone.in_channels,
                                  num_prefix=backbone.num_prefix_tokens,
                                  expand=out.get('units_per_token', 1))
        super().__init__(backbone=backbone, neck=dec, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.encoder_neck = enc
        self.mask_ratio, self.mask_type, self.secondary_ratio = mask_ratio, mask_type, secondary_ratio
        self.batch_mask, self.norm_pix, self.target_layout = batch_mask, norm_pix, target_layout
        self.unit_tokens = t
        self.pred_stride = backbone.mim_unit // t  # px of one predicted patch
        if self.uses_token:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, backbone.mim_dims))
            nn.init.normal_(self.mask_token, std=0.02)

    needs_dropping = True  # the encoder drops hidden units (SimMIM: False)

    def init_weights(self) -> None:
        """Children first (a ``Pretrained`` backbone or teacher loads), then, unless this model has
        an ``init_cfg``, the official MAE initialisation of what is trained from scratch: every
        Linear xavier-uniform with zero bias and every LayerNorm at (1, 0), in the decoder, the
        encoder neck and a backbone that loads nothing. The stem conv keeps the backbone's own
        initialisation (official Hiera-MAE also makes its 7x7 stem xavier; ViT's already is)."""
        super().init_weights()
        if self.init_cfg:
            return
        parts = [self.neck, self.encoder_neck]
        init = getattr(self.backbone, 'init_cfg', None)
        if not (isinstance(init, dict) and init.get('type') == 'Pretrained'):
            parts.append(self.backbone)
        for part in filter(None, parts):
            init_mae_(part)

    @property
    def uses_token(self) -> bool:
        return self.secondary_ratio > 0

    # ------------------------------------------------------------------------------- masking
    def check_inputs(self, inputs: Union[Tensor, List[Tensor]]) -> Tensor:
        """The (first view of the) batch, checked as the backbone's ``forward_masked`` takes it, so
        a bad batch fails before the mask is drawn for it."""
        x = first_view(inputs)
        self.backbone.check_masked_input(x)
        return x

    def units_hw(self, x: Tensor):
        return self.backbone.unit_grid((x.shape[2], x.shape[3]))

    def draw_mask(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Mask:
        """A fresh mask over the unit grid of x (B, C, H, W); True = visible."""
        hw = self.units_hw(x)
        B = 1 if self.batch_mask else x.shape[0]
        if self.mask_type == 'uniform':
            mask = masking.uniform_mask(B, hw, self.secondary_ratio, x.device, generator)
        else:
            mask = masking.random_mask(B, hw[0] * hw[1], self.mask_ratio, x.device, generator)
        if self.batch_mask:
            mask = Mask(*(None if f is None else f.expand(x.shape[0], -1) for f in mask))
        return mask

    def target_units(self, mask: Mask) -> Tensor:
        """(B, N_units) bool: units whose pixels are reconstruction targets (the hidden ones)."""
        return ~mask.visible

    # ------------------------------------------------------------------------------- forward
    def encode(self, x: Tensor, mask: Mask):
        feats = self.backbone.forward_masked(x, mask, getattr(self, 'mask_token', None))
        return self.encoder_neck(feats) if self.encoder_neck is not None else feats

    def predict_patches(self, x: Tensor, mask: Mask) -> Tensor:
        """(B, C, H, W) + mask -> (B, N_patches, p²·C) predictions, p = ``pred_stride``."""
        return self.neck(self.encode(x, mask), mask, self.units_hw(x))

    def target_patches(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> raw pixel targets (B, N_patches, p²·C) in ``target_layout``."""
        patches = patchify(x, self.pred_stride)  # (B, N, p·p·C)
        if self.target_layout == 'hwc':
            return patches
        B, N, _ = patches.shape
        p, C = self.pred_stride, x.shape[1]
        return patches.view(B, N, p, p, C).permute(0, 1, 4, 2, 3).reshape(B, N, -1)

    def patch_targets(self, mask: Mask, x: Tensor) -> Tensor:
        """(B, N_patches) bool over the prediction patches, True = a reconstruction target."""
        units = self.target_units(mask)
        if self.unit_tokens == 1:
            return units
        return masking.upsample_units(units, self.units_hw(x), self.unit_tokens).flatten(1)

    def reconstruction_loss(self, x: Tensor, pred: Tensor, mask: Mask) -> Tensor:
        """MSE of (normalised) pixels over the target patches only (no other pixel enters)."""
        return masked_mse(pred, self.target_patches(x), ~self.patch_targets(mask, x), self.norm_pix)

    def loss(self, inputs: Union[Tensor, List[Tensor]], data_samples=None, **kwargs
             ) -> Dict[str, Tensor]:
        """inputs: (B, C, H, W) preprocessed images. Returns ``dict(loss=...)``."""
        x = self.check_inputs(inputs)
        mask = self.draw_mask(x)
        return dict(loss=self.reconstruction_loss(x, self.predict_patches(x, mask), mask))

    def no_weight_decay(self) -> set:
        """Full parameter names kept out of weight decay (the backbone declares its own)."""
        return {'mask_token', 'neck.mask_token', 'neck.decoder_pos_embed'}

    def extract_feat(self, inputs: Union[Tensor, List[Tensor]]):
        """All pixels through the backbone's ``forward`` (its tuple of outputs)."""
        return self.backbone(first_view(inputs))

    @torch.no_grad()
    def reconstruct(self, inputs: Tensor, mask: Optional[Mask] = None,
                    generator: Optional[torch.Generator] = None) -> Reconstruction:
        """Predicted image for ``inputs`` (B, C, H, W) under ``mask`` (a fresh one if None)."""
        x = self.check_inputs(inputs)
        mask = mask if mask is not None else self.draw_mask(x, generator)
        p, C = self.pred_stride, x.shape[1]
        pred = self.predict_patches(x, mask).float()
        if self.norm_pix:  # undo the per-patch normalisation with the true patch statistics
            target = self.target_patches(x).float()
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        if self.target_layout == 'chw':
            B, N = pred.shape[:2]
            pred = pred.view(B, N, C, p, p).permute(0, 1, 3, 4, 2).reshape(B, N, -1)
        grid = (x.shape[2] // p, x.shape[3] // p)
        seen = masking.upsample_units(mask.seen, self.units_hw(x), self.unit_tokens).flatten(1)
        vis = seen.float()[..., None].expand(-1, -1, p * p)  # (B, N, p²)
        return Reconstruction(unpatchify(pred, p, grid, C), unpatchify(vis, p, grid, 1))
