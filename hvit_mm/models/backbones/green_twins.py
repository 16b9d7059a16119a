"""GreenTwins: Twins-SVT (ALTGVT) that drops masked patches (GreenMIM, Huang et al., NeurIPS 2022).

Written for hvit_mm from the papers and the published architecture facts. Parameters carry the
official Twins / timm names (``patch_embeds.i.{proj, norm}``, ``blocks.i.j.{norm1, attn.{qkv, proj}
(LSA) or attn.{q, kv, proj, sr, norm} (GSA), norm2, mlp.fc1, mlp.fc2}``, ``pos_block.i.proj.0``,
``norm``), so timm's ``twins_svt_*`` weights load unrenamed (a classifier ``head`` is dropped).

Two paths, one set of weights:

* :meth:`GreenTwins.forward`: timm's Twins on the full image (LSA windows zero-padded to multiples
  of the window, as there), NCHW maps at strides 4, 8, 16, 32; the last stage through ``norm``.
* :meth:`GreenTwins.forward_masked`: only the visible 32 px units enter. Tokens are kept unit-major
  (``ids_keep`` order, each unit's t×t tokens in raster order, t = 8, 4, 2, 1), so every token's
  (h, w) follows from ``ids_keep``. Locally-grouped attention runs on the visible tokens of each
  window, packed into equal-size groups (``plan_windows`` of
  :mod:`hvit_mm.models.layers.group_attention`, planned once per stage); the global sub-sampled
  attention's keys/values and the stage transitions (k = s = 2) are sparse convolutions
  (:mod:`hvit_mm.models.layers.sparse_conv`) over the visible sites, the PEG (depthwise 3×3) a
  submanifold one. With ``sr_ratios`` (8, 4, 2, 1) an sr cell is one 32 px unit, so every key is a
  fully visible cell and each sample has the same number of them: GSA needs no mask. Every sample
  may have its own mask.

Masked neighbours read zeros in every convolution (the dense convolution of the zero-scattered map,
as the official GreenMIM code computes its PEG). The two paths agree with nothing masked when every
stage's map is a multiple of its window (224 with window 7; 128 with window 4); elsewhere the dense
path's zero padding takes part in LSA (as in timm) while the sparse path has no padding tokens.
"""
import re
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from ...registry import register_model
from ..layers import Attention, DropPath, Mlp, attend, init_conv_fan_out_
from ..layers.group_attention import GroupPlan, plan_windows
from ..layers.sparse_conv import dense_conv_at, sparse_conv
from ..layers.window import window_partition, window_unpartition
from ..masking import Mask
from .base import (Backbone, MaskedFeatures, check_heads, check_int, check_ints, check_out_indices,
                   check_rate, check_size)

PATCH = 4  # stride of the first patch embedding; later ones are 2


class SparseStage(NamedTuple):
    """The visible tokens of one stage, shared by all its blocks.

    sites: (B·N, 3) long (b, h, w) of the tokens, in the row order of the (B, N, C) tokens.
    shape: (B, H, W) of the stage's full map.
    plan: LSA's grouping (one host-device sync per stage); allowed: (G, 1, g, g) bool, True = the
        pair shares a window (attention mask of the grouped tokens).
    kv_sites: (B·K', 3) long sites of GSA's sr-conv outputs (the fully visible cells), None when
        ``sr_ratio`` is 1 (keys are the tokens themselves).
    """
    sites: Tensor
    shape: Tuple[int, int, int]
    plan: GroupPlan
    allowed: Tensor
    kv_sites: Optional[Tensor]


class LocallyGroupedAttn(Attention):
    """LSA: attention inside ws×ws windows, no position bias (``attn.qkv``, ``attn.proj``)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads, attn_drop=attn_drop, proj_drop=proj_drop)
        self.window_size = window_size

    def forward(self, x: Tensor, stage: Optional[SparseStage] = None) -> Tensor:
        """Dense: x (B, H, W, C) -> (B, H, W, C), zero padding to window multiples attends (timm).
        Sparse: x (B, N, C) visible tokens with ``stage`` -> (B, N, C)."""
        ws = self.window_size
        if stage is None:
            windows, padded = window_partition(x, ws)  # (B·nW, ws², C)
            out = super().forward(windows)
            return window_unpartition(out, ws, padded, x.shape[1:3])
        B, N, C = x.shape
        plan = stage.plan
        G, g = plan.rel_index.shape[:2]
        qkv = self.qkv(x).reshape(B * N, -1)
        if plan.index is not None:
            qkv = qkv.index_select(0, plan.index)  # (G·g, 3C): windows packed, padded
        q, k, v = qkv.view(G, g, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, stage.allowed, self.attn_drop if self.training else 0.0)
        out = out.transpose(1, 2).reshape(G * g, -1)
        if plan.inverse is not None:
            out = out.index_select(0, plan.inverse)  # back to (B·N, C), padding dropped
        return self.proj_drop(self.proj(out.view(B, N, -1)))


class GlobalSubSampleAttn(Attention):
    """GSA: every token attends to the map sub-sampled by a k = s = ``sr_ratio`` conv + LayerNorm
    (``attn.q``, ``attn.kv``, ``attn.sr``, ``attn.norm``, ``attn.proj``); the core is the shared
    one."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__(dim, num_heads, attn_drop=attn_drop, proj_drop=proj_drop)
        del self.qkv
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.sr_ratio = sr_ratio
        self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio) if sr_ratio > 1 else None
        self.norm = nn.LayerNorm(dim) if sr_ratio > 1 else None  # eps 1e-5, as timm

    def forward(self, x: Tensor, stage: Optional[SparseStage] = None) -> Tensor:
        """Dense: x (B, H, W, C) -> (B, H, W, C). Sparse: x (B, N, C) with ``stage`` -> (B, N, C),
        keys/values from the sparse sr conv of the visible tokens (K' cells per sample)."""
        B, C = x.shape[0], x.shape[-1]
        h, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(B, -1, h, d).transpose(1, 2)  # (B, heads, N, d)
        r = x.reshape(B, -1, C)
        if self.sr is not None:
            if stage is None:  # (B, H, W, C) -> (B, C, H/sr, W/sr) -> (B, M, C)
                r = self.sr(x.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
            else:
                r, _ = sparse_conv(self.sr, r.reshape(-1, C), stage.sites, stage.shape,
                                   stage.kv_sites)
            r = self.norm(r.reshape(B, -1, C))
        k, v = self.kv(r).reshape(B, -1, 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, None, self.attn_drop if self.training else 0.0)
        return self.merge_heads(out).view(x.shape)


class TwinsBlock(nn.Module):
    """Pre-norm block: x + drop_path(attn(norm1 x)); x + drop_path(mlp(norm2 x)); the attention is
    LSA when ``window_size`` else GSA. Tokens dense (B, H, W, C) or sparse (B, N, C) with a
    :class:`SparseStage`; the output has the input's shape."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float,
                 sr_ratio: int, window_size: int = 0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = (LocallyGroupedAttn(dim, num_heads, window_size) if window_size
                     else GlobalSubSampleAttn(dim, num_heads, sr_ratio))
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, stage: Optional[SparseStage] = None) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), stage))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PosConv(nn.Module):
    """PEG: x + depthwise 3×3 conv(x) (``pos_block.i.proj.0``), after each stage's first block."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1, groups=dim))

    def forward(self, x: Tensor, stage: Optional[SparseStage] = None) -> Tensor:
        """Dense x (B, H, W, C) or sparse x (B, N, C) with ``stage``; same shape out. Sparse: the
        submanifold conv at the visible sites, masked neighbours reading zeros, computed as the
        dense conv of the zero-scattered map (as the official GreenMIM code): for a depthwise 3×3
        that beats gathering 9 neighbours per site (~2-5× less CPU time at 25% visible)."""
        if stage is None:
            return x + self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        out = dense_conv_at(self.proj[0], x.reshape(-1, x.shape[-1]), stage.sites, stage.shape)
        return x + out.view(x.shape)


class PatchEmbed(nn.Module):
    """k = s = ``patch`` conv + LayerNorm (eps 1e-5, as timm): (B, C_in, H, W) -> (B, H/p, W/p, C)
    (floor, as ``nn.Conv2d``)."""

    def __init__(self, in_channels: int, embed_dims: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch, stride=patch)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


def unit_sites(uh: Tensor, uw: Tensor, t: int) -> Tensor:
    """Unit coordinates (B, K) -> (B, K·t·t, 3) long (b, h, w) of the t×t tokens of each unit
    (unit-major, raster inside a unit) on the map with t tokens per unit side."""
    B, K = uh.shape
    r = torch.arange(t, device=uh.device)
    h = (uh[..., None, None] * t + r[:, None]).expand(B, K, t, t)
    w = (uw[..., None, None] * t + r[None, :]).expand(B, K, t, t)
    b = torch.arange(B, device=uh.device)[:, None, None, None].expand(B, K, t, t)
    return torch.stack([b, h, w], -1).view(B, K * t * t, 3)


@register_model()
class GreenTwins(Backbone):
    """Twins-SVT (ALTGVT) with a sparse masked path for GreenMIM pretraining.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims``, ``depths``, ``num_heads``
            (one entry per stage).
        img_size: size (int or (H, W)) the model is built for (decoders' position tables); any
            input works for ``forward``, multiples of 32 for ``forward_masked``.
        in_channels: image channels.
        window_size: LSA window, one int or one per stage (timm's ``wss``; 7 in Twins-SVT).
        sr_ratios: GSA's sub-sampling per stage; for ``forward_masked`` each must divide the
            stage's tokens per 32 px unit (8, 4, 2, 1).
        mlp_ratio: MLP hidden / dim.
        drop_path_rate: stochastic depth, linear from 0 over all blocks.
        out_indices: stages whose maps :meth:`forward` returns (the last one through ``norm``).
        with_cp: activation checkpointing of every block while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=...)``.
    """

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['s', 'small'], dict(embed_dims=(64, 128, 256, 512), depths=(2, 2, 10, 4),
                                             num_heads=(2, 4, 8, 16))),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=(96, 192, 384, 768), depths=(2, 2, 18, 2),
                                            num_heads=(3, 6, 12, 24))),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=(128, 256, 512, 1024),
                                             depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))),
    }
    arch_keys = ('embed_dims', 'depths', 'num_heads')
    masked_modeling = True
    # two blocks per stage: LSA + GSA (with its sr conv in stages 0-2); norm serves both paths
    tiny_cfg = dict(arch=dict(embed_dims=(16, 32, 48, 64), depths=(2, 2, 2, 2),
                              num_heads=(1, 2, 3, 4)), img_size=64, window_size=4)

    def __init__(self, arch: Union[str, dict] = 'large',
                 img_size: Union[int, Sequence[int]] = 224, in_channels: int = 3,
                 window_size: Union[int, Sequence[int]] = 7,
                 sr_ratios: Sequence[int] = (8, 4, 2, 1), mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.0, out_indices: Sequence[int] = (0, 1, 2, 3),
                 with_cp: bool = False, init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        arch = self.resolve_arch(arch.lower() if isinstance(arch, str) else arch)
        name = 'GreenTwins'
        dims = self.embed_dims = check_ints(name, 'embed_dims', arch['embed_dims'])
        n = self.num_stages = len(dims)
        self.depths = check_ints(name, 'depths', arch['depths'], n)
        self.num_heads = check_ints(name, 'num_heads', arch['num_heads'], n)
        for i, (d, h) in enumerate(zip(dims, self.num_heads)):
            check_heads(name, d, h, f'num_heads[{i}]', f'embed_dims[{i}]')
        ws = (window_size,) * n if isinstance(window_size, int) else window_size
        self.window_sizes = check_ints(name, 'window_size', ws, n)
        self.sr_ratios = check_ints(name, 'sr_ratios', sr_ratios, n)
        if min(self.window_sizes) < 2:
            raise ValueError(f'GreenTwins: window_size (LSA windows) must be >= 2, got '
                             f'{self.window_sizes}')
        self.out_indices = check_out_indices(name, out_indices, n)
        check_rate(name, 'drop_path_rate', drop_path_rate)
        self.in_channels = check_int(name, 'in_channels', in_channels)
        self.img_size = check_size(name, 'img_size', img_size)
        # forward floors every stride: stage i's map (H / 4·2^i) must hold a token, and a GSA
        # sub-sampling conv (odd blocks) a whole sr_ratio cell
        self.min_input = max(PATCH * 2 ** i * (sr if sr > 1 and self.depths[i] > 1 else 1)
                             for i, sr in enumerate(self.sr_ratios[:max(self.out_indices) + 1]))
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.patch_embeds, self.blocks, self.pos_block = nn.ModuleList(), nn.ModuleList(), \
            nn.ModuleList()
        for i in range(n):
            self.patch_embeds.append(PatchEmbed(dims[i - 1] if i else in_channels, dims[i],
                                                2 if i else PATCH))
            first = sum(self.depths[:i])
            self.blocks.append(nn.ModuleList(  # even blocks LSA, odd ones GSA (timm's ALTGVT)
                TwinsBlock(dims[i], self.num_heads[i], mlp_ratio, dpr[first + j],
                           self.sr_ratios[i], 0 if j % 2 else self.window_sizes[i])
                for j in range(self.depths[i])))
            self.pos_block.append(PosConv(dims[i]))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.feature_info = [dict(num_chs=dims[i], reduction=PATCH * 2 ** i, module=f'blocks.{i}')
                             for i in self.out_indices]
        self.num_layers = sum(self.depths) + 2
        # MIM contract: 32 px units, one last-stage token per unit
        self.mim_unit = PATCH * 2 ** (n - 1)
        self.mim_dims = dims[0]
        self.mim_out = dict(num_chs=dims[-1], unit_tokens=1, units_per_token=1)
        self.mim_stages = ()
        self.apply(self._init_twins)

    @staticmethod
    def _init_twins(m: nn.Module) -> None:
        """timm's Twins initialisation: trunc-normal(0.02) linears with zero bias, unit norms,
        He-normal (fan-out) convolutions with zero bias."""
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            init_conv_fan_out_(m)

    # ----------------------------------------------------------------------------------- forward
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x: (B, C_in, H, W) -> one (B, C_i, H // s_i, W // s_i) map per ``out_indices`` entry
        (``feature_info``, s_i = 4·2^i), as timm's ``forward_intermediates``; the last stage's map
        is normalised by ``norm`` (timm's ``forward_features``). Stages after the last requested
        one are not run."""
        self.check_input(x)
        outs = []
        for i in range(max(self.out_indices) + 1):
            x = self.patch_embeds[i](x)  # (B, H_i, W_i, C_i)
            for j, blk in enumerate(self.blocks[i]):
                x = self.run_block(blk, x)
                if j == 0:
                    x = self.pos_block[i](x)  # PEG after the first block, as timm
            if i == self.num_stages - 1:
                x = self.norm(x)
            x = x.permute(0, 3, 1, 2).contiguous()  # NCHW: output and next patch embedding
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _sparse_stage(self, i: int, sites: Tensor, hw: Tuple[int, int], uh: Tensor, uw: Tensor,
                      t: int) -> SparseStage:
        """Everything the blocks of stage ``i`` share: LSA's grouping plan, GSA's kv sites."""
        B, N, _ = sites.shape
        ws, sr = self.window_sizes[i], self.sr_ratios[i]
        plan, = plan_windows(sites[..., 1:], hw, ws, (0,), ws, self.embed_dims[i])
        allowed = (plan.rel_index != (2 * ws - 1) ** 2)[:, None]  # (G, 1, g, g), no bias in LSA
        kv_sites = None
        if sr > 1 and self.depths[i] > 1:
            if t % sr:
                raise ValueError(f'GreenTwins.forward_masked: sr_ratio {sr} of stage {i} does not '
                                 f'divide its {t} tokens per {self.mim_unit} px unit')
            kv_sites = unit_sites(uh, uw, t // sr).view(-1, 3)  # fully visible cells
        return SparseStage(sites.view(B * N, 3), (B,) + hw, plan, allowed, kv_sites)

    def forward_masked(self, x: Tensor, mask: Mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """Encoder on the visible 32 px units only (GreenMIM).

        Args:
            x: (B, C_in, H, W), H and W multiples of 32.
            mask: over the (H/32)·(W/32) units, raster order, True = visible, K visible units per
                sample (each sample its own mask).
            token: (1, 1, C_0) replacing the (normalised) patch embedding of the units in
                ``mask.replaced`` (SimMIM with every unit visible).
        Returns:
            MaskedFeatures with tokens (B, K, C_last): the last stage through ``norm``, one token
            per visible unit in ``mask.ids_keep`` order; no prefix.
        """
        gh, gw = self.check_mask(x, mask, token, logit_blocks)
        B, Cin, u, K = x.shape[0], x.shape[1], self.mim_unit, mask.num_keep
        units = x.reshape(B, Cin, gh, u, gw, u).permute(0, 2, 4, 1, 3, 5)
        units = units.reshape(B, gh * gw, Cin, u, u)
        units = units[torch.arange(B, device=x.device)[:, None], mask.ids_keep]  # (B, K, Cin, u, u)
        t = u // PATCH  # tokens per unit side at this stage
        x = self.patch_embeds[0](units.reshape(B * K, Cin, u, u)).reshape(B, K, t, t, -1)
        if mask.replaced is not None:
            rep = mask.replaced.gather(1, mask.ids_keep)[:, :, None, None, None]
            x = torch.where(rep, token.reshape(1, 1, 1, 1, -1).to(x.dtype), x)
        x = x.reshape(B, K * t * t, -1)
        uh, uw = mask.ids_keep // gw, mask.ids_keep % gw  # (B, K) unit coordinates
        stage = None
        for i in range(self.num_stages):
            sites = unit_sites(uh, uw, t)  # (B, N, 3)
            if i:  # stage transition: k = s = 2 conv onto the (fully visible) 2×2 cells
                out, _ = sparse_conv(self.patch_embeds[i].proj, x.reshape(-1, x.shape[-1]),
                                     stage.sites, stage.shape, sites.view(-1, 3))
                x = self.patch_embeds[i].norm(out).view(B, sites.shape[1], -1)
            stage = self._sparse_stage(i, sites, (gh * t, gw * t), uh, uw, t)
            for j, blk in enumerate(self.blocks[i]):
                x = self.run_block(blk, x, stage)
                if j == 0:
                    x = self.pos_block[i](x, stage)
            t //= 2
        x = self.norm(x)  # (B, K, C_last), t = 1
        return MaskedFeatures(x, x.new_zeros(B, 0, x.shape[-1]), unit_tokens=1)

    # ----------------------------------------------------------------------- training contracts
    def layer_depth(self, name: str) -> int:
        """``patch_embeds.0`` 0; ``blocks.i.j`` its flat index + 1; ``pos_block.i`` with
        ``blocks.i.0`` (it follows it); ``patch_embeds.i`` (i > 0) with the last block of stage
        i - 1 (Swin's patch merging rule); ``norm`` ``num_layers - 1``."""
        m = re.match(r'blocks\.(\d+)\.(\d+)\.', name)
        if m:
            return sum(self.depths[:int(m.group(1))]) + int(m.group(2)) + 1
        m = re.match(r'(patch_embeds|pos_block)\.(\d+)\.', name)
        if m:
            i = int(m.group(2))
            return sum(self.depths[:i]) + (m.group(1) == 'pos_block')
        return self.num_layers - 1

    def no_weight_decay(self) -> set:
        """The PEG convolutions, as timm's Twins."""
        return {n for n, _ in self.named_parameters() if n.startswith('pos_block.')}

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Converted dict (``backbone.*`` or bare, timm / official Twins names) -> this backbone's
        keys; a classifier ``head`` is dropped. Pure."""
        sd = super().adapt_checkpoint(sd)
        return {k: v for k, v in sd.items() if not k.startswith('head.')}
