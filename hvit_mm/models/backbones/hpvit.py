"""HPViT: a plain ViT made hierarchical, so off-the-shelf plain-ViT checkpoints serve dense tasks.

Our design (the paper, arXiv 2211.01785, has no public code, so this is hvit_mm's own):

* The plain ViT's blocks are reused unchanged (timm parameter names), all at the ViT width.
* The patch embedding keeps the checkpoint's ``patch_size`` kernel (16×16) but runs at stride 4
  with padding ``(16 - 4) / 2 = 6``, so the token grid is exactly H/4 × W/4 and token (i, j) is
  centred on pixel 4i + 2 — the same centre that bicubic ``align_corners=False`` resampling of the checkpoint's
  14×14 table to 56×56 assigns it, so the resampled position embeddings line up with the tokens.
  The table stays at the checkpoint's grid and is resampled in forward (detectron2's ViTDet does
  the same), so any input size works.
* Three 2× down-samplings after configurable blocks (``pool_after``): ``'avg'`` (no parameters) or
  ``'conv'`` (depthwise 2×2/2 conv initialised to averaging, identical to ``'avg'`` at init, so a
  pretrained checkpoint is not disturbed). Odd maps are replicate-padded first, so both variants
  agree at every size and no border token is dropped (sizes go ceil(H/2)).
* Per-stage attention: ``'global'`` or ``'window'`` (ViTDet-style k×k token windows). Unlike ViTDet,
  padded tokens are masked out of every window's keys, so a window's output does not depend on
  how much padding it received.
* Four NCHW outputs at strides 4/8/16/32, each through a LayerNorm. The last stage's norm is the
  checkpoint's final ``norm`` (pretrained); the others (``out_norms.<stage>``) are new.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from torch import Tensor, nn

from ...checkpoints import select_prefix
from ...registry import register_model
from ..layers import MapBlock, fit_pos_embed, resample_abs, sincos_2d
from .base import (Backbone, block_depth, check_heads, check_int, check_out_indices, check_rate,
                   check_size)
from .vit import ViT

# Keys of plain-ViT checkpoints that HPViT has no use for; dropped (and logged) by the adapter.
_PLAIN_ONLY = ('cls_token', 'fc_norm.', 'head.')


class PatchEmbed(nn.Module):
    """Conv patch embedding, (B, in_channels, H, W) -> (B, H', W', C) with H' = floor(H / stride)
    when ``(kernel - stride)`` is even (padding ``(kernel - stride) / 2``)."""

    def __init__(self, in_channels: int, embed_dims: int, kernel: int, stride: int):
        super().__init__()
        if (kernel - stride) % 2 or stride > kernel:
            raise ValueError(f'HPViT: patch_size={kernel} and patch_stride={stride} need an even, '
                             'non-negative difference for a centred exact H/stride grid')
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel, stride, (kernel - stride) // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, C, H', W') -> (B, H', W', C)


class TokenPool(nn.Module):
    """2× down-sampling of a (B, H, W, C) token map -> (B, ceil(H/2), ceil(W/2), C).

    ``mode='avg'``: 2×2 average, no parameters. ``mode='conv'``: depthwise 2×2 stride-2 conv
    (parameters ``conv.weight`` (C, 1, 2, 2), ``conv.bias``) initialised to the same average.
    """

    def __init__(self, dim: int, mode: str = 'avg'):
        super().__init__()
        if mode not in ('avg', 'conv'):
            raise ValueError(f"HPViT: pool must be 'avg' or 'conv', got {mode!r}")
        self.conv = nn.Conv2d(dim, dim, 2, 2, groups=dim) if mode == 'conv' else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.conv is not None:  # averaging, so 'conv' starts as the same function as 'avg'
            nn.init.constant_(self.conv.weight, 0.25)
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        pad_h, pad_w = x.shape[2] % 2, x.shape[3] % 2
        if pad_h or pad_w:  # edge tokens are averaged with themselves instead of dropped/zeroed
            x = F.pad(x, (0, pad_w, 0, pad_h), mode='replicate')
        x = F.avg_pool2d(x, 2) if self.conv is None else self.conv(x)
        return x.permute(0, 2, 3, 1)  # (B, C, H/2, W/2) -> (B, H/2, W/2, C)


@register_model()
class HPViT(Backbone):
    """Hierarchical plain ViT. Any plain-ViT checkpoint hvit_mm converts loads into it.

    Args:
        arch: key of :attr:`arch_zoo` or a dict with ``embed_dims, depth, num_heads`` (optional
            ``mlp_ratio``, ``patch_size``, ``pool_after``).
        img_size: the plain ViT's (pretraining) size, int or (H, W): ``pos_embed`` is stored at
            its grid, img_size / patch_size (14×14 for 224, as in the checkpoint), and resampled
            in forward to the token grid of the input (56×56 at stride 4 for 224²).
            Storing the coarse grid keeps HPViT-B at 1024² from carrying 256²·768 = 50M
            position parameters; at initialisation the forward-time resampling is the same
            function as resampling the checkpoint once to the stride-4 grid.
        patch_size: kernel of the patch embedding, the checkpoint's patch size (None: the arch's,
            16; 14 for huge).
        patch_stride: stride of the patch embedding; 4 for HPViT, 16 gives the plain ViT's grid.
        in_channels: image channels.
        pool: ``'avg'`` or ``'conv'`` down-sampling.
        pool_after: block indices after which the map is halved (``None``: the arch's default);
            the model has ``len(pool_after) + 1`` stages.
        attn_types: per stage, ``'global'`` or ``'window'``.
        window_size: window side in tokens for ``'window'`` stages.
        out_indices: stages whose (normalised) maps are returned; None: every stage (their count
            follows ``pool_after``).
        drop_path_rate: stochastic depth, linear from 0 to this over the blocks.
        qkv_bias: bias on the qkv projections.
        norm_cfg: ``dict(type='LN', eps=1e-6)``; LayerNorm is the only type (the blocks' norm).
        with_cp: activation checkpointing per block while training (for 1024² inputs).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH, prefix=None, fmt='auto', sha256=None)``
            loads any plain-ViT checkpoint ``hvit_mm.checkpoints`` converts (official MAE,
            MAE-Lite, timm, hvit_mm's own runs) through :meth:`adapt_checkpoint`; an HPViT
            run's own checkpoint loads with ``prefix='', fmt='hvit'``.
    """

    # the plain ViT's sizes (same keys, so a checkpoint of ViT(arch=X) loads into HPViT(arch=X)),
    # with three pools after blocks 1, 3 and depth - 3: stages of 2/2/depth-6/2 blocks as Swin's
    arch_zoo: Dict[str, dict] = {
        name: dict(cfg, pool_after=(1, 3, cfg['depth'] - 3)) for name, cfg in ViT.arch_zoo.items()}
    arch_keys = ViT.arch_keys
    tiny_cfg = dict(arch=dict(embed_dims=32, depth=4, num_heads=2, pool_after=(0, 1, 2)),
                    window_size=4)

    def __init__(self, arch: Union[str, dict] = 'base', img_size: Union[int, Sequence[int]] = 224,
                 patch_size: Optional[int] = None, patch_stride: int = 4, in_channels: int = 3,
                 pool: str = 'avg', pool_after: Optional[Sequence[int]] = None,
                 attn_types: Sequence[str] = ('window', 'window', 'global', 'global'),
                 window_size: int = 14, out_indices: Optional[Sequence[int]] = None,
                 drop_path_rate: float = 0.0, qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN', eps=1e-6), with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        cfg = self.resolve_arch(arch)
        name = 'HPViT'
        dim, depth = check_int(name, 'embed_dims', cfg['embed_dims']), check_int(name, 'depth',
                                                                                 cfg['depth'])
        check_heads(name, dim, cfg['num_heads'])
        patch_size = cfg.get('patch_size', 16) if patch_size is None else patch_size
        patch_size = check_int(name, 'patch_size', patch_size)
        patch_stride = check_int(name, 'patch_stride', patch_stride)
        in_channels = check_int(name, 'in_channels', in_channels)
        window_size = check_int(name, 'window_size', window_size)
        check_rate(name, 'drop_path_rate', drop_path_rate)
        img_hw = check_size(name, 'img_size', img_size, patch_size,
                            f' (at least one {patch_size} px patch of the position table)')
        pool_after = cfg.get('pool_after', ()) if pool_after is None else pool_after
        if isinstance(pool_after, str) or not isinstance(pool_after, Sequence) or \
                not all(isinstance(i, int) and not isinstance(i, bool) for i in pool_after):
            raise TypeError(f'HPViT: pool_after must be a sequence of block indices, got '
                            f'{pool_after!r}')
        pool_after = tuple(pool_after)
        if list(pool_after) != sorted(set(pool_after)) or \
                any(not 0 <= i < depth - 1 for i in pool_after):
            raise ValueError(f'HPViT: pool_after={pool_after} must be increasing block indices '
                             f'in [0, {depth - 2}] (a pool after the last block has no use)')
        num_stages = len(pool_after) + 1
        if len(attn_types) != num_stages or not set(attn_types) <= {'global', 'window'}:
            raise ValueError(f"HPViT: attn_types={attn_types} needs one of 'global'/'window' per "
                             f'stage ({num_stages} stages for pool_after={pool_after})')
        out_indices = tuple(range(num_stages)) if out_indices is None else \
            check_out_indices(name, out_indices, num_stages)
        if not isinstance(norm_cfg, dict) or norm_cfg.get('type') != 'LN':
            raise ValueError(f"HPViT: norm_cfg type must be 'LN' (the ViT blocks' norm), "
                             f'got {norm_cfg}')
        eps = norm_cfg.get('eps', 1e-6)
        norm_layer = lambda d: nn.LayerNorm(d, eps=eps)  # noqa: E731

        self.embed_dims, self.depth, self.num_heads = dim, depth, cfg['num_heads']
        self.pool_after, self.out_indices = pool_after, out_indices
        self.num_layers = depth + 2
        self.patch_stride = patch_stride
        self.in_channels = in_channels
        self.min_input = patch_stride  # the stem's output is floor(H / patch_stride)
        self.pos_grid = (img_hw[0] // patch_size, img_hw[1] // patch_size)

        self.patch_embed = PatchEmbed(in_channels, dim, patch_size, patch_stride)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], dim))
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        # stage of each block, and the window (0 = global) it attends in
        self.block_stage = [sum(i > p for p in pool_after) for i in range(depth)]
        self.block_window = [window_size if attn_types[s] == 'window' else 0
                             for s in self.block_stage]
        self.blocks = nn.ModuleList(
            MapBlock(dim, cfg['num_heads'], cfg.get('mlp_ratio', 4.0), qkv_bias, dpr[i],
                     norm_layer, window=self.block_window[i])
            for i in range(depth))
        self.pools = nn.ModuleList(TokenPool(dim, pool) for _ in pool_after)
        # the last stage reuses the checkpoint's final norm; earlier outputs get new norms
        last = num_stages - 1
        self.out_norms = nn.ModuleDict({str(s): norm_layer(dim) for s in out_indices if s != last})
        self.norm = norm_layer(dim) if last in out_indices else None
        self.feature_info = [
            dict(num_chs=dim, reduction=patch_stride * 2 ** s,
                 module='norm' if s == last else f'out_norms.{s}') for s in out_indices]
        self._init_random()

    # ----------------------------------------------------------------------------- initialisation
    def _init_random(self) -> None:
        self.pos_embed.data.copy_(sincos_2d(self.pos_grid, self.embed_dims))
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a Linear layer, like MAE/timm
        nn.init.zeros_(self.patch_embed.proj.bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, TokenPool):
                m.reset_parameters()

    def pretrained_allowances(self):
        """A plain-ViT checkpoint lacks the pools and new output norms (and the final ``norm`` when
        it has none, e.g. a global-pool fine-tuned one without ``fc_norm``). An HPViT run's own
        checkpoint loads with ``prefix='', fmt='hvit'``; ``init_cfg`` types other than
        ``Pretrained`` are mmengine's (the random initialisation is made at construction)."""
        return ('pools.', 'out_norms.', 'norm.'), ()

    def adapt_checkpoint(self, sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Pure: a converted plain-ViT (or HPViT) state dict, bare or ``backbone.``-namespaced (as
        ``to_hvit`` writes it; ``neck.``/``head.`` keys are then left out) -> this model's keys.

        Drops ``cls_token``, ``head.*`` and (when unused) ``norm.*``; uses ``fc_norm`` as the final
        norm when there is no ``norm``; resamples ``pos_embed`` (cls row removed) bicubically
        from the checkpoint grid to :attr:`pos_grid`. Everything else is left to the strict load,
        so a missing or extra block is an error. Logs what it dropped.
        """
        if any(k.startswith('backbone.') for k in sd):  # converters namespace the encoder
            sd = select_prefix(sd, 'backbone.')
        sd = dict(sd)
        if 'norm.weight' not in sd and 'fc_norm.weight' in sd and self.norm is not None:
            sd['norm.weight'], sd['norm.bias'] = sd['fc_norm.weight'], sd['fc_norm.bias']
        dropped = [k for k in sd if k.startswith(_PLAIN_ONLY)
                   or (self.norm is None and k.startswith('norm.'))]
        num_prefix = 1 if 'cls_token' in sd else 0
        for k in dropped:
            del sd[k]
        if 'pos_embed' in sd:
            pe = sd['pos_embed'][:, num_prefix:]
            if pe.shape[1] != self.pos_grid[0] * self.pos_grid[1]:
                # a grid not readable off the token count stays as it is: the strict load lists it
                pe = fit_pos_embed(pe, self.pos_grid)
            sd['pos_embed'] = pe
        if dropped:
            MMLogger.get_current_instance().info(f'HPViT: dropped checkpoint keys {dropped}')
        return sd

    # ----------------------------------------------------------------------------------- forward
    def _embed(self, x: Tensor) -> Tensor:
        """Images (B, C, H, W) -> tokens with position embeddings (B, H/4, W/4, C)."""
        x = self.patch_embed(x)
        hw = tuple(x.shape[1:3])
        pe = resample_abs(self.pos_embed, hw, self.pos_grid)  # unchanged at the stored grid
        return x + pe.view(1, hw[0], hw[1], -1)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Images (B, C, H, W) -> tuple of normalised maps (B, C_embed, H_s, W_s), one per stage in
        ``out_indices``, stage s at stride ``patch_stride · 2^s``: H_0 = floor(H / 4), then
        H_{s+1} = ceil(H_s / 2) (for 100×148: 25×37, 13×19, 7×10, 4×5)."""
        self.check_input(x)
        x = self._embed(x)
        outs, stage = [], 0
        for i in range(self.depth):
            x = self.run_block(self.blocks[i], x)
            if i in self.pool_after or i == self.depth - 1:
                if stage in self.out_indices:
                    norm = self.norm if i == self.depth - 1 else self.out_norms[str(stage)]
                    outs.append(norm(x).permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW
                if i != self.depth - 1:
                    x = self.pools[stage](x)
                stage += 1
        return tuple(outs)

    # ------------------------------------------------------------- optimiser contract (STYLE 11)
    def layer_depth(self, name: str) -> int:
        """Patch and position embeddings 0, ``blocks.i`` i + 1, a pool after block i i + 2 (it
        feeds block i + 1), the output norms depth + 1."""
        def pool_depth(name: str):
            if name.startswith('pools.'):
                return self.pool_after[int(name.split('.')[1])] + 2
            return None
        return block_depth(name, self.depth, stem=('patch_embed', 'pos_embed'), extra=pool_depth)

    def no_weight_decay(self) -> set:
        """Parameter names (no prefix) excluded from weight decay."""
        return {'pos_embed'}
