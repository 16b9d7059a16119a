"""GreenSwin: a Swin Transformer that drops masked patches (GreenMIM, Huang et al., NeurIPS 2022).

Written for hvit_mm from the papers and the published architecture facts. Parameters carry the
official Swin names (``patch_embed.proj``, ``patch_embed.norm``, ``layers.i.blocks.j.{norm1,
attn.qkv, attn.proj, attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``,
``layers.i.downsample.{norm, reduction}``) plus mmdet's per-output ``norm{i}``, so the weights go
to stock mmdet/mmseg/mmpretrain Swin by a key mapping (``hvit_mm.checkpoints.greenmim``).

Two paths, one set of weights:

* :meth:`GreenSwin.forward`: stock Swin on the full image (cyclic shift, region mask, zero padding
  to window multiples), NCHW maps for detection / segmentation / classification.
* :meth:`GreenSwin.forward_masked`: only the visible 32 px units enter. Their tokens are kept
  unit-major (``ids_keep`` order, each unit's t×t tokens in raster order, t = 8, 4, 2, 1), so the
  (h, w) of every token follows from ``ids_keep`` and patch merging is a reshape: a 32 px unit
  holds whole 2×2 merge cells at every stage. Window attention runs on the visible tokens only,
  packed into equal-size groups (:mod:`hvit_mm.models.layers.group_attention`); every sample may
  have its own mask.

The two agree when every stage's map is a multiple of its window or no larger than it (224 with
window 7 or 14, 64 with window 4...): elsewhere the dense path's zero padding takes part in
attention (as in stock Swin) while the sparse path has no padding tokens.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from ...registry import register_model
from ..layers import DropPath, Mlp
from ..layers.group_attention import MapPlan, WindowAttention, map_rel_index, plan_windows
from ..masking import Mask
from .base import (Backbone, MaskedFeatures, check_heads, check_int, check_ints, check_out_indices,
                   check_rate, check_size, nested_block_depth)

PATCH = 4  # stride of the patch embedding


class SwinBlock(nn.Module):
    """Pre-norm Swin block: x + drop_path(W-MSA(norm1 x)); x + drop_path(mlp(norm2 x)).

    Tokens are sparse (B, N, C) with a ``GroupPlan`` or a dense (B, H, W, C) map with a
    ``MapPlan``; the output has the input's shape.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: float,
                 drop_path: float, norm_layer):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, plan) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), plan))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2×2 cells -> one token: concat in Swin's [TL, BL, TR, BR] order, LN(4C), Linear(4C, 2C)."""

    def __init__(self, dim: int, norm_layer):
        super().__init__()
        self.norm = norm_layer(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, cells: Tensor) -> Tensor:
        """cells: (..., 2 (dy), 2 (dx), C) -> (..., 2C)."""
        x = cells.transpose(-3, -2).flatten(-3)  # (dx, dy) order: TL, BL, TR, BR
        return self.reduction(self.norm(x))


class SwinStage(nn.Module):
    """``blocks`` and the ``downsample`` (patch merging) at the stage's end (None for the last)."""

    def __init__(self, blocks: nn.ModuleList, downsample: Optional[PatchMerging]):
        super().__init__()
        self.blocks = blocks
        self.downsample = downsample


class PatchEmbed(nn.Module):
    """4×4 stride-4 conv + norm: (B, C_in, H, W) -> (B, H/4, W/4, C) (``patch_embed.proj/norm``)."""

    def __init__(self, in_channels: int, embed_dims: int, norm_layer):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, PATCH, stride=PATCH)
        self.norm = norm_layer(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


@register_model()
class GreenSwin(Backbone):
    """Swin Transformer with a sparse masked path for GreenMIM pretraining.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims``, ``depths``, ``num_heads``.
        img_size: size (int or (H, W)) the windows are planned for: as in official Swin, a stage
            whose map at this size is no larger than ``window_size`` gets a window (and bias
            table) of the map's size and no shift. Other input sizes work too (multiples of 32
            for ``forward_masked``; any size for ``forward``).
        in_channels: image channels.
        window_size: Swin's window (7 or 14 in GreenMIM).
        mlp_ratio: MLP hidden / dim.
        drop_path_rate: stochastic depth, linear from 0 over all blocks.
        out_indices: stages whose (normalised, ``norm{i}``) outputs :meth:`forward` returns.
        norm_cfg: every norm (mmcv config); ``dict(type='LN', eps=1e-6)`` for GreenMIM's files.
        with_cp: activation checkpointing of every block while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads GreenMIM, official Swin or
            hvit_mm files strictly, through ``hvit_mm.checkpoints``.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], dict(embed_dims=96, depths=(2, 2, 6, 2),
                                            num_heads=(3, 6, 12, 24))),
        **dict.fromkeys(['s', 'small'], dict(embed_dims=96, depths=(2, 2, 18, 2),
                                             num_heads=(3, 6, 12, 24))),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=128, depths=(2, 2, 18, 2),
                                            num_heads=(4, 8, 16, 32))),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=192, depths=(2, 2, 18, 2),
                                             num_heads=(6, 12, 24, 48))),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    masked_modeling = True
    # out_indices=(3,): a masked-modeling run then uses every parameter (norm0-2 serve forward only)
    tiny_cfg = dict(arch=dict(embed_dims=16, depths=(2, 2, 1, 1), num_heads=(1, 2, 4, 8)),
                    img_size=64, window_size=4, out_indices=(3,))

    def __init__(self, arch: Union[str, dict] = 'base', img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3, window_size: int = 7, mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.1, out_indices: Sequence[int] = (0, 1, 2, 3),
                 norm_cfg: dict = dict(type='LN'), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        arch = self.resolve_arch(arch.lower() if isinstance(arch, str) else arch)
        name = 'GreenSwin'
        self.depths = check_ints(name, 'depths', arch['depths'])
        n = self.num_stages = len(self.depths)
        self.num_heads = check_ints(name, 'num_heads', arch['num_heads'], n)
        C = check_int(name, 'embed_dims', arch['embed_dims'])
        for i, heads in enumerate(self.num_heads):
            check_heads(name, C * 2 ** i, heads, f'num_heads[{i}]', f'stage {i} width')
        self.out_indices = check_out_indices(name, out_indices, n)
        check_rate(name, 'drop_path_rate', drop_path_rate)
        self.in_channels = check_int(name, 'in_channels', in_channels)
        self.window_size = check_int(name, 'window_size', window_size)
        self.img_size = check_size(name, 'img_size', img_size)
        norm_layer = lambda d: build_norm_layer(norm_cfg, d)[1]  # noqa: E731
        C = arch['embed_dims']
        self.patch_embed = PatchEmbed(in_channels, C, norm_layer)
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.layers, self.table_windows, self.stage_info = nn.ModuleList(), [], []
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            stride = PATCH * 2 ** i
            map_side = min(self.img_size[0] // stride, self.img_size[1] // stride)
            T = max(1, min(window_size, map_side))  # official Swin's window clip at img_size
            first = sum(self.depths[:i])
            blocks = nn.ModuleList(
                SwinBlock(C, heads, T, mlp_ratio, dpr[first + j], norm_layer) for j in range(depth))
            merge = PatchMerging(C, norm_layer) if i < n - 1 else None
            self.layers.append(SwinStage(blocks, merge))
            self.table_windows.append(T)
            self.stage_info.append(dict(num_chs=C, reduction=stride, module=f'layers.{i}'))
            if i < n - 1:
                C *= 2
        for i in self.out_indices:
            self.add_module(f'norm{i}', norm_layer(self.stage_info[i]['num_chs']))
        self.feature_info = [self.stage_info[i] for i in self.out_indices]
        self.num_layers = sum(self.depths) + 2
        # MIM contract: 32 px units, one last-stage token per unit
        self.mim_unit = PATCH * 2 ** (n - 1)
        self.mim_dims = arch['embed_dims']
        self.mim_out = dict(num_chs=C, unit_tokens=1, units_per_token=1)
        self._init_swin()

    def _init_swin(self) -> None:
        """Official Swin initialisation: trunc-normal(0.02) linears with zero bias, unit norms."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ----------------------------------------------------------------------------------- helpers
    def stage_window(self, i: int, hw: Tuple[int, int]) -> Tuple[int, int]:
        """(window, shift) of stage ``i`` on an (H, W) map: the stage's window, clipped to the map
        with no shift when the map is no larger (official Swin, mmpretrain). mmdet's Swin pads
        such maps to the window and shifts; it agrees whenever every map exceeds the window."""
        T = self.table_windows[i]
        if min(hw) <= T:
            return min(hw), 0
        return T, T // 2

    def _shifts(self, i: int, shift: int) -> Tuple[int, ...]:
        return (0, shift) if shift and self.depths[i] > 1 else (0,)

    # ----------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x: (B, C_in, H, W), any size (padded bottom/right to multiples of 4 and of each merge, as
        mmdet's Swin) -> one (B, C_i, ceil(H/s_i), ceil(W/s_i)) map per ``out_indices`` entry
        (``feature_info``), normalised by ``norm{i}``."""
        self.check_input(x)
        H, W = x.shape[2:]
        x = self.patch_embed(F.pad(x, (0, (-W) % PATCH, 0, (-H) % PATCH)))  # (B, h, w, C)
        outs = []
        for i, stage in enumerate(self.layers):
            hw = x.shape[1:3]
            window, shift = self.stage_window(i, hw)
            padded = tuple(-(-s // window) * window for s in hw)  # up to window multiples
            plans = [MapPlan(window, s, map_rel_index(padded, window, s, self.table_windows[i],
                                                      x.device)) for s in self._shifts(i, shift)]
            for j, blk in enumerate(stage.blocks):
                x = self.run_block(blk, x, plans[j % len(plans)])
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).permute(0, 3, 1, 2).contiguous())
            if stage.downsample is not None:
                x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
                B, h, w, C = x.shape
                cells = x.view(B, h // 2, 2, w // 2, 2, C).permute(0, 1, 3, 2, 4, 5)
                x = stage.downsample(cells)  # (B, h/2, w/2, 2C)
        return tuple(outs)

    def forward_masked(self, x: Tensor, mask: Mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """Encoder on the visible 32 px units only (GreenMIM).

        Args:
            x: (B, C_in, H, W), H and W multiples of 32.
            mask: over the (H/32)·(W/32) units, raster order, True = visible, K visible units per
                sample (each sample its own mask).
            token: (1, 1, C) replacing the (normalised) patch embedding of the units in
                ``mask.replaced`` (SimMIM with every unit visible).
        Returns:
            MaskedFeatures with tokens (B, K, C_last): the last stage's tokens through its
            ``norm{i}`` (when built), one per visible unit in ``mask.ids_keep`` order; no prefix.
        """
        gh, gw = self.check_mask(x, mask, token, logit_blocks)
        B, Cin, u, K = x.shape[0], x.shape[1], self.mim_unit, mask.num_keep
        units = x.reshape(B, Cin, gh, u, gw, u).permute(0, 2, 4, 1, 3, 5)
        units = units.reshape(B, gh * gw, Cin, u, u)
        units = units[torch.arange(B, device=x.device)[:, None], mask.ids_keep]  # (B, K, Cin, u, u)
        t = u // PATCH  # tokens per unit side at this stage
        x = self.patch_embed(units.reshape(B * K, Cin, u, u)).reshape(B, K, t, t, -1)
        if mask.replaced is not None:
            rep = mask.replaced.gather(1, mask.ids_keep)[:, :, None, None, None]
            x = torch.where(rep, token.reshape(1, 1, 1, 1, -1).to(x.dtype), x)
        uh, uw = mask.ids_keep // gw, mask.ids_keep % gw  # (B, K) unit coordinates
        for i, stage in enumerate(self.layers):
            r = torch.arange(t, device=x.device)
            coords = torch.stack([(uh[..., None, None] * t + r[:, None]).expand(B, K, t, t),
                                  (uw[..., None, None] * t + r[None, :]).expand(B, K, t, t)], -1)
            hw = (gh * t, gw * t)
            window, shift = self.stage_window(i, hw)
            plans = plan_windows(coords.view(B, K * t * t, 2), hw, window, self._shifts(i, shift),
                                 self.table_windows[i], x.shape[-1])
            x = x.reshape(B, K * t * t, -1)
            for j, blk in enumerate(stage.blocks):
                x = self.run_block(blk, x, plans[j % len(plans)])
            if stage.downsample is not None:
                cells = x.view(B, K, t // 2, 2, t // 2, 2, -1).permute(0, 1, 2, 4, 3, 5, 6)
                x = stage.downsample(cells)  # (B, K, t/2, t/2, 2C)
                t //= 2
        last = f'norm{self.num_stages - 1}'
        if hasattr(self, last):
            x = getattr(self, last)(x)
        return MaskedFeatures(x, x.new_zeros(B, 0, x.shape[-1]), unit_tokens=1)

    # ----------------------------------------------------------------------- training contracts
    def layer_depth(self, name: str) -> int:
        """Patch embedding 0; block j of stage i its flat index + 1 (a stage's patch merging with
        its last block); output norms ``num_layers - 1``."""
        return nested_block_depth(name, self.depths, stem=('patch_embed',))

    def no_weight_decay(self) -> set:
        return {n for n, _ in self.named_parameters() if n.endswith('relative_position_bias_table')}

    def pretrained_allowances(self):
        """Pretrained files carry the last stage's norm only: the other output norms start fresh."""
        last = self.num_stages - 1
        return tuple(f'norm{i}.' for i in self.out_indices if i != last), ()

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Converted dict (``backbone.*`` or bare) -> this backbone's keys; bias tables of another
        window are resized bicubically (Swin's fine-tuning recipe); a classifier head and a final
        norm this backbone does not output are dropped. Pure."""
        sd = super().adapt_checkpoint(sd)
        own = dict(self.named_parameters())
        out = {}
        for k, v in sd.items():
            if k.startswith('head.') or (k.startswith('norm') and k not in own):
                continue
            if k.endswith('relative_position_bias_table') and k in own and v.shape != own[k].shape:
                v = resize_bias_table(v, own[k].shape[0])
            out[k] = v
        return out


def resize_bias_table(table: Tensor, length: int) -> Tensor:
    """((2T-1)², heads) -> (length, heads), bicubic over the (2T-1)×(2T-1) offset grid."""
    s, heads = int(round(table.shape[0] ** 0.5)), table.shape[1]
    n = int(round(length ** 0.5))
    grid = table.T.reshape(1, heads, s, s).float()
    grid = F.interpolate(grid, size=(n, n), mode='bicubic', align_corners=False)
    return grid.reshape(heads, n * n).T.to(table.dtype).contiguous()
