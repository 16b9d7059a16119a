"""Hiera: a hierarchical ViT without bells and whistles (Ryali et al., ICML 2023).

Written for hvit_mm from the paper and the published architecture facts; parameter names equal the
official checkpoints' (``patch_embed.proj``, ``pos_embed``, ``blocks.i.{norm1, attn.qkv, attn.proj,
norm2, mlp.fc1, mlp.fc2, proj}``, ``norm``), so official and timm files load after a key-only
conversion (``hvit_mm.checkpoints.hiera``).

Token layout. Tokens live in an *unrolled* order: for a token grid (H, W) and L = num_stages - 1
levels of 2×2 strides, the flat index runs over ``(sy1, sx1, sy2, sx2, ..., syL, sxL, H/2^L, W/2^L)``
(slowest first), where row ``y = ((y_L·2 + sy_L)·2 + ...)·2 + sy1``. Two consequences:
* a 2×2 max-pool is a max over the leading 4 positions of the sequence (a free ``view``);
* the trailing ``H/2^L · W/2^L`` positions index the mask units (2^L × 2^L tokens, 32×32 px), so
  mask-unit attention is a reshape and dropping masked units is a gather on that axis.
The order is derived from the input size at forward time by reshapes (no stored index tables), so any
input whose sides are multiples of 32 works; the position embedding is resampled bicubically from the
grid it was stored at.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from ...registry import register_model
from ..layers import Attention, DropPath, Mlp, attend, fit_pos_embed, resample_abs
from ..masking import Mask, upsample_units
from .base import (Backbone, MaskedFeatures, block_depth, check_heads, check_int, check_ints,
                   check_out_indices, check_rate, check_size)

PATCH_STRIDE = 4  # 7×7 conv, stride 4, padding 3
Q_STRIDE = 4      # flattened 2×2 pooling window


def unroll(x: Tensor, levels: int) -> Tensor:
    """Spatial (B, H, W, C) -> unrolled (B, H·W, C), order (sy1, sx1, ..., syL, sxL, H/2^L, W/2^L).

    H and W must be multiples of 2^levels.
    """
    B, H, W, C = x.shape
    s = 2 ** levels
    # dims: 0 B | 1 H/s | 2..L+1 sy_L..sy_1 | L+2 W/s | L+3..2L+2 sx_L..sx_1 | 2L+3 C
    x = x.view(B, H // s, *([2] * levels), W // s, *([2] * levels), C)
    perm = [0]
    for j in range(levels):  # level 1 (the first pooled) outermost
        perm += [1 + levels - j, 2 + 2 * levels - j]
    perm += [1, 2 + levels, 3 + 2 * levels]
    return x.permute(perm).reshape(B, H * W, C)


def reroll_units(x: Tensor, levels: int) -> Tensor:
    """Unrolled (B, 4^levels · K, C) with ``levels`` strides left -> (B, K, u, u, C), u = 2^levels.

    K is the number of mask units present (all, or the visible ones); each unit's u×u tokens come out
    in spatial (row-major) order.
    """
    B, N, C = x.shape
    r = levels
    x = x.view(B, *([2] * (2 * r)), N // 4 ** r, C)  # dims 1+2m: sy, 2+2m: sx of remaining level m
    perm = [0, 2 * r + 1] + [1 + 2 * m for m in reversed(range(r))] \
        + [2 + 2 * m for m in reversed(range(r))] + [2 * r + 2]
    return x.permute(perm).reshape(B, N // 4 ** r, 2 ** r, 2 ** r, C)


def reroll(x: Tensor, levels: int, units_hw: Tuple[int, int]) -> Tensor:
    """Unrolled (B, N, C) with ``levels`` strides left, all mask units present -> (B, C, H, W).

    ``units_hw`` is the mask-unit grid (H/2^levels, W/2^levels of the current token grid).
    """
    B, N, C = x.shape
    r, (Hm, Wm) = levels, units_hw
    x = x.view(B, *([2] * (2 * r)), Hm, Wm, C)
    # to (B, C, Hm, sy_L..sy_1, Wm, sx_L..sx_1): rows and columns big-endian
    perm = [0, 2 * r + 3, 2 * r + 1] + [1 + 2 * m for m in reversed(range(r))] \
        + [2 * r + 2] + [2 + 2 * m for m in reversed(range(r))]
    return x.permute(perm).reshape(B, C, Hm * 2 ** r, Wm * 2 ** r)


def pool_tokens(x: Tensor, stride: int) -> Tensor:
    """2×2 max-pool of unrolled tokens: (B, N, C) -> (B, N/stride, C)."""
    if stride == 1:
        return x
    B, N, C = x.shape
    return x.view(B, stride, N // stride, C).amax(dim=1)


class HieraBlock(nn.Module):
    """Pre-norm block with optional widening, q-pooling and mask-unit attention.

    Args:
        dim, dim_out: input/output channels; when they differ, the residual is ``proj(norm1(x))``
            (pooled like q), as at every stage transition.
        num_heads: attention heads (of ``dim_out``).
        q_stride: 4 to max-pool queries and the residual 2×2, 1 otherwise.
        window: tokens per mask unit *after* this block's pooling; used when ``mask_unit_attn``.
        mask_unit_attn: attend within mask units (windows) instead of globally.
    Tokens are unrolled (B, N, C) -> (B, N / q_stride, dim_out).
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, mlp_ratio: float, q_stride: int,
                 window: int, mask_unit_attn: bool, drop_path: float, norm_layer):
        super().__init__()
        self.q_stride, self.window, self.mask_unit_attn = q_stride, window, mask_unit_attn
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, dim_out=dim_out)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim_out)
        self.mlp = Mlp(dim_out, int(dim_out * mlp_ratio))

    def attention(self, x: Tensor) -> Tensor:
        """(B, N, dim) normalised tokens -> (B, N / q_stride, dim_out)."""
        attn = self.attn
        B, N, _ = x.shape
        heads, hd = attn.num_heads, attn.head_dim
        nw = N // (self.q_stride * self.window) if self.mask_unit_attn else 1
        T = N // nw  # tokens per window; the window index is the fastest axis of the sequence
        qkv = attn.qkv(x).view(B, T, nw, 3, heads, hd)
        # windows folded into the batch, so the core gets 4-D contiguous (B·nw, heads, T, hd)
        q, k, v = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, B * nw, heads, T, hd).unbind(0)
        if self.q_stride > 1:  # pooled positions are the leading q_stride blocks of T
            q = q.view(B * nw, heads, self.q_stride, T // self.q_stride, hd).amax(dim=2)
        out = attend(q, k, v, dropout_p=attn.attn_drop if self.training else 0.0)
        Tq = out.shape[2]
        out = out.view(B, nw, heads, Tq, hd).permute(0, 3, 1, 2, 4).reshape(B, Tq * nw, heads * hd)
        return attn.proj_drop(attn.proj(out))

    def forward(self, x: Tensor) -> Tensor:
        x_norm = self.norm1(x)
        if hasattr(self, 'proj'):
            x = pool_tokens(self.proj(x_norm), self.q_stride)
        x = x + self.drop_path(self.attention(x_norm))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """7×7 stride-4 conv: (B, C_in, H, W) -> (B, C, H/4, W/4) (parameter ``patch_embed.proj``)."""

    def __init__(self, in_channels: int, embed_dims: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, 7, stride=PATCH_STRIDE, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


@register_model()
class Hiera(Backbone):
    """Hiera backbone for mmpretrain, mmdet and mmseg.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims``, ``num_heads``, ``stages``.
        img_size: size (int or (H, W)) the position embedding is stored for (224: a 56×56 grid,
            as in the official checkpoints); other input sizes resample it at forward time.
        in_channels: image channels.
        q_pool: number of stage transitions that pool 2×2 (3 for fine-tuning, 2 for Hiera-MAE,
            whose last stage then stays at stride 16).
        mask_unit_attn: per stage, mask-unit (True) or global attention. A stage's first block uses
            the previous stage's setting (the pooling block attends within units).
        out_indices: stages whose outputs :meth:`forward` returns.
        out_type: ``'featmap'``: (B, C_i, H_i, W_i) maps in spatial order, for FPN/UperNet;
            ``'avg_featmap'``: one (B, C) vector, the last stage mean-pooled then ``norm``-ed (the
            official classifier's pre-logits; needs ``out_indices`` = last stage). Only this type
            builds the final ``norm``.
        drop_path_rate: stochastic depth, linear from 0 over all blocks.
        mlp_ratio: MLP hidden / dim.
        norm_cfg: norm of every block (mmcv config).
        with_cp: activation checkpointing of every block while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads official, timm or
            hvit_mm files strictly (converted by ``hvit_mm.checkpoints``) over the official
            initialisation made at construction (trunc-normal 0.02, Linear/LayerNorm biases 0.02).
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=96, num_heads=1, stages=(1, 2, 7, 2))),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=96, num_heads=1, stages=(1, 2, 11, 2))),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=96, num_heads=1, stages=(2, 3, 16, 3))),
        **dict.fromkeys(['b+', 'base_plus'],
                        dict(embed_dims=112, num_heads=2, stages=(2, 3, 16, 3))),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=144, num_heads=2, stages=(2, 6, 36, 4))),
        **dict.fromkeys(['h', 'huge'], dict(embed_dims=256, num_heads=4, stages=(2, 6, 36, 4))),
    }
    arch_keys = ('embed_dims', 'num_heads', 'stages')
    masked_modeling = True
    tiny_cfg = dict(arch=dict(embed_dims=16, num_heads=1, stages=(1, 1, 1, 1)), img_size=64)

    def __init__(self, arch: Union[str, dict] = 'base', img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3, q_pool: int = 3,
                 mask_unit_attn: Sequence[bool] = (True, True, False, False),
                 out_indices: Sequence[int] = (0, 1, 2, 3), out_type: str = 'featmap',
                 drop_path_rate: float = 0.0, mlp_ratio: float = 4.0,
                 norm_cfg: dict = dict(type='LN', eps=1e-6), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        arch = self.resolve_arch(arch.lower() if isinstance(arch, str) else arch)
        stages = check_ints('Hiera', 'stages', arch['stages'])  # every stage needs a block
        check_heads('Hiera', check_int('Hiera', 'embed_dims', arch['embed_dims']),
                    arch['num_heads'])
        in_channels = check_int('Hiera', 'in_channels', in_channels)
        check_rate('Hiera', 'drop_path_rate', drop_path_rate)
        self.num_stages = len(stages)
        self.levels = self.num_stages - 1  # unroll levels; a mask unit is 2^levels tokens a side
        if not isinstance(q_pool, int) or not 0 <= q_pool <= self.levels or \
                len(mask_unit_attn) != self.num_stages:
            raise ValueError(f'Hiera: for the {self.num_stages} stages of arch, q_pool must be in '
                             f'[0, {self.levels}] (got {q_pool!r}) and mask_unit_attn have '
                             f'{self.num_stages} entries (got {len(mask_unit_attn)})')
        self.out_indices = check_out_indices('Hiera', out_indices, self.num_stages)
        if out_type not in ('featmap', 'avg_featmap'):
            raise ValueError(f"Hiera: out_type must be 'featmap' or 'avg_featmap', not {out_type!r}")
        if out_type == 'avg_featmap' and self.out_indices != (self.num_stages - 1,):
            raise ValueError("Hiera: out_type='avg_featmap' pools the last stage: set "
                             f'out_indices=({self.num_stages - 1},)')
        self.out_type, self.q_pool, self.in_channels = out_type, q_pool, in_channels
        self.unit_px = PATCH_STRIDE * 2 ** self.levels  # 32 px mask units
        self.img_size = check_size('Hiera', 'img_size', img_size, self.unit_px,
                                   f' (one {self.unit_px} px mask unit)')
        self._check_size(self.img_size)
        self.input_multiple = self.min_input = self.unit_px
        self.pos_grid = (self.img_size[0] // PATCH_STRIDE, self.img_size[1] // PATCH_STRIDE)
        norm_layer = lambda d: build_norm_layer(norm_cfg, d)[1]  # noqa: E731

        C, heads = arch['embed_dims'], arch['num_heads']
        self.patch_embed = PatchEmbed(in_channels, C)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], C))
        depth = sum(stages)
        self.stage_ends = [sum(stages[:i + 1]) - 1 for i in range(self.num_stages)]
        pool_blocks = {end + 1 for end in self.stage_ends[:q_pool]}
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        window = 4 ** self.levels  # tokens per mask unit at the current resolution
        self.blocks = nn.ModuleList()
        stage, self.stage_info = 0, []
        for i in range(depth):
            dim_out, unit_attn = C, mask_unit_attn[stage]  # read before the switch: the lag
            if i - 1 in self.stage_ends:
                dim_out, heads, stage = 2 * C, 2 * heads, stage + 1
                if i in pool_blocks:
                    window //= Q_STRIDE
            self.blocks.append(HieraBlock(
                C, dim_out, heads, mlp_ratio, Q_STRIDE if i in pool_blocks else 1, window,
                unit_attn, dpr[i], norm_layer))
            C = dim_out
            if i in self.stage_ends:
                stride = PATCH_STRIDE * 2 ** min(stage, q_pool)
                self.stage_info.append(dict(num_chs=C, reduction=stride, module=f'blocks.{i}'))
        # channels and stride of each output of forward(); stage_info describes every stage
        self.feature_info = [self.stage_info[i] for i in self.out_indices]
        self.embed_dims = C
        if out_type == 'avg_featmap':
            self.norm = norm_layer(C)
        self.num_layers = depth + 2
        # MIM contract: 32 px mask units; a stage's tokens per unit side = its stride within a unit
        self.mim_unit, self.mim_dims = self.unit_px, arch['embed_dims']
        self.mim_stages = tuple(
            dict(num_chs=info['num_chs'], unit_tokens=self.unit_px // info['reduction'])
            for info in self.stage_info)
        self.mim_out = dict(self.mim_stages[-1], units_per_token=1)
        if out_type == 'avg_featmap':  # a classifier: its final norm would sit unused in MIM
            self.mim_unit = None
        self._init_official()

    # ----------------------------------------------------------------------------------- helpers
    def _check_size(self, hw: Tuple[int, int]) -> None:
        if hw[0] % self.unit_px or hw[1] % self.unit_px:
            raise ValueError(f'Hiera: input {hw[0]}x{hw[1]} must be a multiple of {self.unit_px} '
                             f'on both sides (pad it, e.g. pad_size_divisor={self.unit_px})')

    def _remaining_levels(self, stage: int) -> int:
        """Unroll levels still folded in the sequence after ``stage`` (min(stage, q_pool) pooled)."""
        return self.levels - min(stage, self.q_pool)

    def embed(self, x: Tensor, mask: Optional[Mask] = None, token: Optional[Tensor] = None
              ) -> Tensor:
        """Stem shared by :meth:`forward` and :meth:`forward_masked`.

        x: (B, C_in, H, W), H and W multiples of 32. mask: over the (H/32)·(W/32) units, raster
        order, True = visible; pixels of units the encoder must not see (hidden or replaced) are
        zeroed *before* the overlapping 7×7 conv so none leaks into a visible token; replaced
        units' tokens become ``token`` (1, 1, C); hidden units are dropped.
        Returns unrolled tokens (B, T·K, C), T = 4^levels tokens per unit, K kept units in
        ``mask.ids_keep`` order (all units, raster, without a mask).
        """
        B, _, H, W = x.shape
        self._check_size((H, W))
        units_hw = (H // self.unit_px, W // self.unit_px)
        if mask is not None:
            # replaced, not multiplied: a NaN or Inf in a hidden unit must not reach any token
            seen = upsample_units(mask.seen, units_hw, self.unit_px)
            x = torch.where(seen, x, torch.zeros((), dtype=x.dtype, device=x.device))
        x = self.patch_embed(x).permute(0, 2, 3, 1)  # (B, h, w, C)
        h, w = x.shape[1:3]
        if mask is not None and mask.replaced is not None:
            tok = upsample_units(mask.replaced, units_hw, self.unit_px // PATCH_STRIDE)
            x = torch.where(tok[:, 0, :, :, None], token.to(x.dtype), x)
        pos = resample_abs(self.pos_embed, (h, w), self.pos_grid)  # (1, h·w, C)
        x = unroll(x + pos.view(1, h, w, -1), self.levels)  # (B, T·NU, C)
        if mask is None:
            return x
        T, C = 4 ** self.levels, x.shape[-1]
        x = x.view(B, T, -1, C)  # unit index fastest
        ids = mask.ids_keep.view(B, 1, -1, 1).expand(B, T, mask.num_keep, C)
        return x.gather(2, ids).reshape(B, -1, C)

    # ----------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x: (B, C_in, H, W) -> one tensor per ``out_indices``: (B, C_i, H/s_i, W/s_i) maps in
        spatial order (``featmap``; C_i, s_i as in :attr:`feature_info`), or the pooled, normalised
        (B, C) vector (``avg_featmap``)."""
        self.check_input(x)
        H, W = x.shape[2:]
        x = self.embed(x)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = self.run_block(blk, x)
            if i not in self.stage_ends:
                continue
            stage = self.stage_ends.index(i)
            if stage not in self.out_indices:
                continue
            if self.out_type == 'avg_featmap':
                outs.append(self.norm(x.mean(dim=1)))
            else:
                r = self._remaining_levels(stage)
                stride = self.stage_info[stage]['reduction'] * 2 ** r
                outs.append(reroll(x, r, (H // stride, W // stride)))
        return tuple(outs)

    def forward_masked(self, x: Tensor, mask: Mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """Encoder on the visible mask units only (Hiera-MAE).

        Args:
            x: (B, C_in, H, W); mask: over the (H/32)·(W/32) units, True = visible, K visible
                units per sample; token: (1, 1, C) for the units in ``mask.replaced``.
        Returns:
            MaskedFeatures: tokens (B, K·t², C_last) of the last stage, t = ``mim_out
            ['unit_tokens']`` (1 for q_pool=3, 2 for q_pool=2), visible units in ``ids_keep``
            order; stages: one (B, K, u_i, u_i, C_i) per stage (all stages, whatever
            ``out_indices``), each unit's u_i×u_i tokens in spatial order (u_i = 8, 4, 2, 1 for
            q_pool=3; 8, 4, 2, 2 for 2); no prefix tokens.
        """
        self.check_mask(x, mask, token, logit_blocks)
        x = self.embed(x, mask, token)
        feats = []
        for i, blk in enumerate(self.blocks):
            x = self.run_block(blk, x)
            if i in self.stage_ends:
                feats.append(reroll_units(x, self._remaining_levels(self.stage_ends.index(i))))
        last = feats[-1]
        return MaskedFeatures(last.flatten(1, 3), last.new_zeros(last.shape[0], 0, last.shape[-1]),
                              unit_tokens=last.shape[2], stages=tuple(feats))

    # ----------------------------------------------------------------------- training contracts
    def layer_depth(self, name: str) -> int:
        """Stem and position embedding 0, ``blocks.i`` i+1, the rest depth+1."""
        return block_depth(name, len(self.blocks), stem=('patch_embed', 'pos_embed'))

    def no_weight_decay(self) -> set:
        return {'pos_embed'}

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Converted checkpoint (``backbone.*``-namespaced or bare) -> this backbone's keys, with
        ``pos_embed`` resampled from the checkpoint's grid to this model's stored grid. Pure."""
        sd = super().adapt_checkpoint(sd)
        if 'pos_embed' in sd and sd['pos_embed'].shape != self.pos_embed.shape:
            sd['pos_embed'] = fit_pos_embed(sd['pos_embed'], self.pos_grid)
        return sd

    def pretrained_allowances(self):
        """A dense backbone has no final norm; a classifier from an MAE file starts a fresh one."""
        norm = ('norm.',)
        return (norm, ()) if hasattr(self, 'norm') else ((), norm)

    def _init_official(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                trunc_normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.constant_(m.bias, 0.02)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0.02)
