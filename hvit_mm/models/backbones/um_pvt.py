"""UM-PVT: the Pyramid Vision Transformer of UM-MAE (Li et al., arXiv 2205.10063), for
uniform-masking pretraining on a compact map and for classification / dense tasks.

What differs from PVT v1 (and why):

* Absolute position is a sin-cos table at the full stride-4 token grid (fixed in pretraining,
  learnable when fine-tuning, as official), added after compaction *compacted with the same
  mask*, so every kept token carries its true position.
* Spatial-reduction attention reduces keys/values by average pooling (``sr_ratio``) followed by a
  1×1 conv and a LayerNorm, not by a strided conv: the ratio has no parameters, so it can differ
  between pretraining on the half-resolution compact map (4, 2, 1, 1) and fine-tuning on full
  images (8, 4, 2, 1) while the weights stay the same.
* Stage transitions are Conv2d(k2, s2) without norm, in the first block of stages 2-4
  (``blocks.k.downsample.proj``), as in the official checkpoints.

Parameter names are the official flat ones (``patch_embed.proj``, ``pos_embed``, ``blocks.k.{norm1,
attn.{q,kv,sr,norm,proj}, norm2, mlp.{fc1,fc2}, downsample.proj}``, ``norm``, ``fc_norm``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ..layers import Attention, DropPath, Mlp, attend, fit_pos_embed, resample_abs, sincos_2d
from .base import check_ints
from .um_swin import PATCH, PatchEmbed, PatchMerge, UMBackbone, init_like_official


class SRAttention(Attention):
    """Global attention with keys/values from an average-pooled map: :class:`Attention` with its
    projections replaced by PVT's ``q``, ``kv``, ``sr`` (1×1 conv) and ``norm`` (LayerNorm, eps
    1e-5 as in the official model); the core and ``proj`` are the shared ones."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        del self.qkv
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.sr = nn.Conv2d(dim, dim, 1)
        self.norm = nn.LayerNorm(dim)

    def split_heads(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """x: (B, H, W, C) -> q (B, heads, H·W, d); k, v (B, heads, M, d), M = ceil(H/r)·ceil(W/r)
        (a partial border window averages the tokens it has)."""
        B, H, W, C = x.shape
        h, d = self.num_heads, self.head_dim
        q = self.q(x).view(B, H * W, h, d).transpose(1, 2)
        r = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        if self.sr_ratio > 1:
            r = F.avg_pool2d(r, self.sr_ratio, ceil_mode=True)
        r = self.norm(self.sr(r).flatten(2).transpose(1, 2))  # (B, M, C)
        k, v = self.kv(r).view(B, -1, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        q, k, v = self.split_heads(x)
        out = attend(q, k, v, None, self.attn_drop if self.training else 0.0)
        return self.merge_heads(out).view(x.shape)


class UMPVTBlock(nn.Module):
    """[downsample ->] x + attn(norm1(x)); x + mlp(norm2(x)) on (B, H, W, C) maps."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: float,
                 qkv_bias: bool = True, drop_path: float = 0.0, norm_layer=nn.LayerNorm,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.downsample = downsample
        self.norm1 = norm_layer(dim)
        self.attn = SRAttention(dim, num_heads, sr_ratio, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


@register_model()
class UMPVT(UMBackbone):
    """UM-MAE's PVT for mmpretrain, mmdet and mmseg.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims, depths, num_heads,
            mlp_ratios`` (per stage).
        img_size: (H, W) or int; ``pos_embed`` is stored at its stride-4 grid (64×64 for 256)
            and resampled bicubically in forward for other sizes.
        in_channels: image channels.
        sr_ratios: per-stage key/value pooling: (4, 2, 1, 1) for pretraining on the compact
            map, (8, 4, 2, 1) for fine-tuning on full images.
        pos_trainable: learn ``pos_embed`` (official fine-tuning) instead of keeping the sin-cos
            table fixed (official pretraining).
        qkv_bias, drop_path_rate, out_indices, out_type, norm_cfg, with_cp, init_cfg: as
            :class:`~hvit_mm.models.backbones.um_swin.UMSwin`.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 2, 2),
                                            num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4))),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 6, 3),
                                             num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4))),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios')
    # out_indices=(3,): MIM reads only the last stage, so no output norm would sit unused
    tiny_cfg = dict(arch=dict(embed_dims=(16, 32, 48, 64), depths=(1, 2, 1, 1),
                              num_heads=(1, 2, 3, 4), mlp_ratios=(2, 2, 2, 2)), img_size=64,
                    out_indices=(3,))

    def __init__(self, arch: Union[str, dict] = 'small', img_size: Union[int, Sequence[int]] = 256,
                 in_channels: int = 3, sr_ratios: Sequence[int] = (4, 2, 1, 1),
                 pos_trainable: bool = False, qkv_bias: bool = True, drop_path_rate: float = 0.0,
                 out_indices: Sequence[int] = (0, 1, 2, 3), out_type: str = 'featmap',
                 norm_cfg: dict = dict(type='LN', eps=1e-6), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        cfg = self.resolve_arch(arch)
        dims = check_ints('UMPVT', 'embed_dims', cfg['embed_dims'])
        depths = check_ints('UMPVT', 'depths', cfg['depths'], len(dims))
        ratios = cfg['mlp_ratios']
        if isinstance(ratios, (str, int, float)) or len(ratios) != len(dims) or \
                not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0
                        for r in ratios):
            raise ValueError(f'UMPVT: mlp_ratios must hold one number > 0 per stage, got '
                             f'{ratios!r}')
        if not len(dims) == len(depths) == len(cfg['num_heads']) == len(cfg['mlp_ratios']) \
                == len(sr_ratios):
            raise ValueError(f'UMPVT: embed_dims, depths, num_heads, mlp_ratios and sr_ratios '
                             f'need one entry per stage, got {cfg} and sr_ratios={sr_ratios}')
        norm_layer = self._setup(img_size, in_channels, depths, out_indices, out_type, norm_cfg,
                                 drop_path_rate, dims, cfg['num_heads'])
        self.sr_ratios = check_ints('UMPVT', 'sr_ratios', sr_ratios, len(depths))
        if dims[0] % 4:
            raise ValueError(f'UMPVT: embed_dims[0]={dims[0]} must be divisible by 4 (2-D sin-cos '
                             'position table)')
        self.pos_grid = (self.img_size[0] // PATCH, self.img_size[1] // PATCH)

        self.patch_embed = PatchEmbed(in_channels, dims[0])
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], dims[0]),
                                      requires_grad=pos_trainable)
        dpr = torch.linspace(0, drop_path_rate, self.depth).tolist()
        self.blocks = nn.ModuleList()
        for s, (start, end) in enumerate(self.stages):
            for i in range(start, end):
                merge = PatchMerge(dims[s - 1], dims[s]) if s and i == start else None
                self.blocks.append(UMPVTBlock(dims[s], cfg['num_heads'][s], self.sr_ratios[s],
                                              cfg['mlp_ratios'][s], qkv_bias, dpr[i],
                                              norm_layer, merge))
        self._build_outputs(dims, norm_layer)
        init_like_official(self)
        self.pos_embed.data.copy_(sincos_2d(self.pos_grid, dims[0]))

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """As :meth:`UMBackbone.adapt_checkpoint`, plus ``pos_embed`` resampled bicubically from
        a square checkpoint grid to :attr:`pos_grid`."""
        sd = super().adapt_checkpoint(sd)
        pe = sd.get('pos_embed')
        if pe is not None and pe.shape[1] != self.pos_grid[0] * self.pos_grid[1]:
            sd['pos_embed'] = fit_pos_embed(pe, self.pos_grid)
        return sd

    def no_weight_decay(self) -> set:
        return {'pos_embed'}

    def stem(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """-> (tokens (B, H/4, W/4, C), position table (1, H/4, W/4, C))."""
        tokens = self.patch_embed(x)
        hw = tuple(tokens.shape[1:3])
        pe = resample_abs(self.pos_embed, hw, self.pos_grid)  # itself at the stored grid
        return tokens, pe.view(1, hw[0], hw[1], -1).to(tokens.dtype)

    def encode(self, x: Tensor, pos: Tensor, keep: Sequence[int]) -> List[Tensor]:
        """Tokens (B, h, w, C) + their positions (Bc, h, w, C) -> raw maps of the stages in
        ``keep``."""
        x = x + pos
        outs = []
        for s, (start, end) in enumerate(self.stages):
            for i in range(start, end):
                x = self.run_block(self.blocks[i], x)
            if s in keep:
                outs.append(x)
        return outs
