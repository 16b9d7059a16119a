"""Plain ViT (MAE / MAE-Lite / timm layout) for classification, dense tasks and MIM pretraining.

Parameter names are timm's (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.*``,
``norm``, ``fc_norm``), so official MAE and timm ViT weights load without renaming; MAE-Lite files only
lose their ``module.model.`` prefix (see ``hvit_mm.checkpoints``).

Token layout: one cls token followed by the H/p × W/p patch tokens in raster order,
``(B, 1 + N, C)``. ``pos_embed`` is the fixed 2-D sin-cos table of official MAE, stored at the
``img_size`` grid as ``(1, 1 + N, C)`` (the shape of the official files) and resampled bicubically in
forward when the input grid differs.

:class:`ViTDet` is the same encoder for dense tasks (same stem, same checkpoints): no cls token; the
patch tokens stay a (B, H/p, W/p, C) map and every block is a :class:`~hvit_mm.models.layers.MapBlock`
attending in ``window_size``² windows, except ``global_blocks`` (ViTDet-B: 2, 5, 8, 11), optionally
with decomposed relative position (``rel_pos_bias=True``). A single stride-16 map comes out;
``SimpleFeaturePyramid`` builds the pyramid. Any input size works (windows are padded; position
tables are resampled).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ...checkpoints import select_prefix
from ...registry import register_model
from ..layers import Attention, Block, MapBlock, fit_pos_embed, init_mae_, resample_abs, sincos_2d
from ..masking import Mask, gather_tokens
from .base import (Backbone, MaskedFeatures, block_depth, check_heads, check_int,
                   check_out_indices, check_rate, check_size)

NUM_PREFIX = 1  # the cls token


def relative_position_index(grid_hw: Tuple[int, int]) -> Tensor:
    """BEiT-style index into a relative-position table for ``1 + H·W`` tokens (cls first).

    Patch pairs index the ``(2H-1)·(2W-1)`` relative offsets; the last three rows of the table are
    the cls→patch, patch→cls and cls→cls biases. Returns (1 + H·W, 1 + H·W) long.
    """
    h, w = grid_hw
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + (h - 1)  # (N, N) in [0, 2h-2]
    dx = xs[:, None] - xs[None, :] + (w - 1)
    num_rel = (2 * h - 1) * (2 * w - 1)
    index = torch.empty(h * w + 1, h * w + 1, dtype=torch.long)
    index[1:, 1:] = dy * (2 * w - 1) + dx
    index[0, :] = num_rel        # cls attends to patches
    index[:, 0] = num_rel + 1    # patches attend to cls
    index[0, 0] = num_rel + 2
    return index


class RelPosAttention(Attention):
    """:class:`Attention` plus a learned per-head relative position bias (MAE-Lite's RPE variant).

    The table sits at ``attn.relative_position_bias_table`` as in timm's Beit. The bias is computed
    by :meth:`position_bias` and handed to the shared core through ``bias=``; no second core.
    """

    def __init__(self, dim: int, num_heads: int, grid_hw: Tuple[int, int], qkv_bias: bool = True):
        super().__init__(dim, num_heads, qkv_bias=qkv_bias)
        self.grid_hw = tuple(grid_hw)
        num_rel = (2 * grid_hw[0] - 1) * (2 * grid_hw[1] - 1) + 3
        # zero init: the model starts as the plain ViT it was pretrained as
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_rel, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(grid_hw),
                             persistent=False)

    def position_bias(self, grid_hw: Tuple[int, int], ids_keep: Optional[Tensor] = None) -> Tensor:
        """Bias for the cls token plus all patches (``ids_keep`` None) or the kept ones.

        Returns (1, heads, 1+N, 1+N) or, with ``ids_keep`` (B, K), (B, heads, 1+K, 1+K).
        """
        if tuple(grid_hw) != self.grid_hw:
            raise ValueError(f'relative position bias was built for a {self.grid_hw} grid, got '
                             f'{tuple(grid_hw)}; use img_size matching the input')
        index = self.relative_position_index
        if ids_keep is None:
            return self.relative_position_bias_table[index].permute(2, 0, 1)[None]
        rows = torch.cat([ids_keep.new_zeros(ids_keep.shape[0], 1), ids_keep + NUM_PREFIX], 1)
        sub = index[rows[:, :, None], rows[:, None, :]]  # (B, 1+K, 1+K)
        return self.relative_position_bias_table[sub].permute(0, 3, 1, 2)


@register_model()
class ViT(Backbone):
    """Plain Vision Transformer with MAE's fixed sin-cos position embedding.

    Args:
        arch: a key of :attr:`arch_zoo` or a dict with ``embed_dims``, ``depth``, ``num_heads``
            (optional ``mlp_ratio``, ``patch_size``). ``tiny``/``small`` are DeiT's sizes (3 / 6
            heads, timm's ``vit_tiny``/``vit_small``); MAE-Lite's 12-head variants are
            ``mae-lite-tiny``/``mae-lite-small``.
        img_size: image size the position table is stored for (int or (H, W)).
        patch_size: patch side; the arch's (16; 14 for huge) when None.
        in_channels: image channels.
        drop_path_rate: stochastic depth, increasing linearly over the blocks up to this rate.
        out_indices: blocks whose outputs :meth:`forward` returns (negative counts from the end).
        out_type: ``'featmap'`` (B, C, H/p, W/p) maps, ``'cls_token'`` (B, C) after ``norm``, or
            ``'avg_featmap'`` (B, C): mean of the patch tokens through ``fc_norm`` (MAE fine-tuning).
        final_norm: keep ``norm`` after the last block (MAE drops it when fine-tuning globally pooled).
        rel_pos_bias: BEiT's per-block relative position bias table (MAE-Lite's RPE fine-tuning),
            zero-initialised.
        qkv_bias: bias on the qkv projections.
        norm_eps: LayerNorm epsilon (1e-6 in MAE and timm).
        frozen_stages: freeze the stem and the first ``frozen_stages`` blocks (``depth``: all, for
            linear probing; then ``norm`` too; larger values freeze all as well).
        with_cp: activation checkpointing of every block while training.
        init_cfg: ``dict(type='Pretrained', checkpoint=..., prefix=...)`` loads a checkpoint of any
            registered format strictly (see :meth:`Backbone.init_weights`).
    """
    arch_zoo = {
        # DeiT / timm sizes: a timm vit_tiny / vit_small file loads into these and computes the same
        **dict.fromkeys(['t', 'tiny', 'deit-tiny'], dict(embed_dims=192, depth=12, num_heads=3)),
        **dict.fromkeys(['s', 'small', 'deit-small'], dict(embed_dims=384, depth=12, num_heads=6)),
        # MAE-Lite: DeiT's widths with 12 heads (head dim 16 / 32)
        'mae-lite-tiny': dict(embed_dims=192, depth=12, num_heads=12),
        'mae-lite-small': dict(embed_dims=384, depth=12, num_heads=12),
        **dict.fromkeys(['b', 'base'], dict(embed_dims=768, depth=12, num_heads=12)),
        **dict.fromkeys(['l', 'large'], dict(embed_dims=1024, depth=24, num_heads=16)),
        **dict.fromkeys(['h', 'huge'], dict(embed_dims=1280, depth=32, num_heads=16, patch_size=14)),
    }
    arch_keys = ('embed_dims', 'depth', 'num_heads')
    OUT_TYPES = ('featmap', 'cls_token', 'avg_featmap')
    num_prefix_tokens = NUM_PREFIX
    attn_logits = True
    masked_modeling = True
    tiny_cfg = dict(arch=dict(embed_dims=32, depth=2, num_heads=2), img_size=64, patch_size=16)

    def __init__(self, arch: Union[str, Dict] = 'base', img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: Optional[int] = None, in_channels: int = 3,
                 drop_path_rate: float = 0.0, out_indices: Union[int, Sequence[int]] = -1,
                 out_type: str = 'featmap', final_norm: bool = True, rel_pos_bias: bool = False,
                 qkv_bias: bool = True, norm_eps: float = 1e-6, frozen_stages: int = -1,
                 with_cp: bool = False, init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        super().__init__(with_cp=with_cp, init_cfg=init_cfg)
        arch = self.resolve_arch(arch)
        name = type(self).__name__
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'{name}: out_type must be one of {self.OUT_TYPES}, got {out_type!r}')
        self.embed_dims = C = check_int(name, 'embed_dims', arch['embed_dims'])
        if C % 4:
            raise ValueError(f'{name}: embed_dims={C} must be divisible by 4 (2-D sin-cos table)')
        self.depth = depth = check_int(name, 'depth', arch['depth'])
        self.num_heads = check_heads(name, C, arch['num_heads'])
        p = arch.get('patch_size', 16) if patch_size is None else patch_size
        self.patch_size = p = check_int(name, 'patch_size', p)
        self.in_channels = check_int(name, 'in_channels', in_channels)
        self.img_size = check_size(name, 'img_size', img_size, p,
                                   f' (at least one {p} px patch; use a multiple of {p})')
        self.grid_size = (self.img_size[0] // p, self.img_size[1] // p)
        self.out_type = out_type
        self.out_indices = list(check_out_indices(name, out_indices, depth, 'blocks'))
        check_rate(name, 'drop_path_rate', drop_path_rate)
        # >= depth freezes everything (a linear-probing config keeps its value on a smaller arch)
        check_int(name, 'frozen_stages (-1: none)', frozen_stages, minimum=-1)
        self.frozen_stages = frozen_stages
        self.rel_pos_bias = rel_pos_bias
        self.num_layers = depth + 2
        # MIM contract: one token per patch-sized unit; forward wants whole patches too
        self.mim_unit, self.mim_dims = p, C
        self.input_multiple = self.min_input = p
        self.mim_out = dict(num_chs=C, unit_tokens=1, units_per_token=1)

        norm = lambda dim: nn.LayerNorm(dim, eps=norm_eps)  # noqa: E731
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, C, p, stride=p)
        self.cls_token = self._make_cls_token(C)
        # fixed, yet a parameter (not a buffer) so checkpoints carry it as the official files do
        self.pos_embed = nn.Parameter(sincos_2d(self.grid_size, C, NUM_PREFIX), requires_grad=False)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        mlp_ratio = arch.get('mlp_ratio', 4.0)
        self.blocks = nn.ModuleList(self._make_block(i, C, mlp_ratio, qkv_bias, dpr[i], norm)
                                    for i in range(depth))
        self.norm = norm(C) if final_norm else nn.Identity()
        self.fc_norm = norm(C) if out_type == 'avg_featmap' else nn.Identity()
        self.feature_info = [dict(num_chs=C, reduction=p, module=f'blocks.{i}')
                             for i in self.out_indices]
        self._init_mae()
        self._freeze()

    def _make_cls_token(self, dim: int) -> Optional[nn.Parameter]:
        return nn.Parameter(torch.zeros(1, 1, dim))

    def _make_block(self, i: int, dim: int, mlp_ratio: float, qkv_bias: bool, drop_path: float,
                    norm) -> nn.Module:
        blk = Block(dim, self.num_heads, mlp_ratio, qkv_bias, drop_path, norm)
        if self.rel_pos_bias:
            blk.attn = RelPosAttention(dim, self.num_heads, self.grid_size, qkv_bias)
        return blk

    # ------------------------------------------------------------------ init / loading
    def _init_mae(self) -> None:
        """Official MAE initialisation (xavier-uniform linears and patch projection, cls N(0, .02))."""
        init_mae_(self)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))  # as a linear over flattened patches
        nn.init.zeros_(self.patch_embed.proj.bias)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)

    def pretrained_allowances(self):
        """``fc_norm`` / relative position tables may be new; a dropped ``norm``, a fine-tuned
        file's ``fc_norm`` or a cls token this model does not use may be extra."""
        own = self.state_dict()
        missing = [k for k in ('fc_norm.',) if k + 'weight' in own]
        missing += [k for k in own
                    if k.endswith(('relative_position_bias_table', 'rel_pos_h', 'rel_pos_w'))]
        unexpected = [] if 'norm.weight' in own else ['norm.']
        if self.cls_token is None:
            unexpected.append('cls_token')
        if 'fc_norm.weight' not in own:
            unexpected.append('fc_norm.')  # a fine-tuned file loaded for dense tasks
        return missing, unexpected

    def adapt_checkpoint(self, sd: Dict) -> Dict:
        """Converted (``backbone.*``-namespaced or bare) dict -> this backbone's keys, with
        ``pos_embed`` resampled from the checkpoint's grid to ``img_size``'s. Input not mutated."""
        if any(k.startswith('backbone.') for k in sd):
            sd = select_prefix(sd, 'backbone.')
        sd = {k: v for k, v in sd.items() if not k.startswith('head.')}
        pe = sd.get('pos_embed')
        if pe is not None and pe.shape[1] != self.pos_embed.shape[1]:
            sd['pos_embed'] = fit_pos_embed(pe, self.grid_size, NUM_PREFIX)
        return sd

    def _freeze(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed, *self.blocks[:self.frozen_stages]]
        if self.frozen_stages >= self.depth:
            frozen.append(self.norm)
        for m in frozen:
            m.eval()
            for param in m.parameters():
                param.requires_grad = False
        if self.cls_token is not None:
            self.cls_token.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()  # frozen parts stay in eval (no dropout / drop path)
        return self

    # ------------------------------------------------------------------ optimiser contract
    def layer_depth(self, name: str) -> int:
        """cls_token / pos_embed / patch_embed -> 0, ``blocks.i`` -> i + 1, the rest -> depth + 1."""
        return block_depth(name, self.depth, stem=('patch_embed', 'pos_embed', 'cls_token'))

    def no_weight_decay(self) -> set:
        """Parameter names (no prefix) excluded from weight decay."""
        names = {'pos_embed'} if self.cls_token is None else {'pos_embed', 'cls_token'}
        if self.rel_pos_bias:
            names |= {f'{n}' for n, _ in self.named_parameters()
                      if n.endswith(('relative_position_bias_table', 'rel_pos_h', 'rel_pos_w'))}
        return names

    # ------------------------------------------------------------------ forward
    def embed(self, x: Tensor, replaced: Optional[Tensor] = None, token: Optional[Tensor] = None
              ) -> Tuple[Tensor, Tuple[int, int]]:
        """Shared stem. x: (B, C_in, H, W) -> patch tokens with position added (B, N, C), grid
        (h, w). Patches where ``replaced`` (B, N) bool is True become ``token`` (1, 1, C) first."""
        x = self.patch_embed.proj(x)  # (B, C, h, w)
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)  # (B, N, C)
        if replaced is not None:
            x = torch.where(replaced[..., None], token.to(x.dtype), x)
        pos = resample_abs(self.pos_embed, hw, self.grid_size, NUM_PREFIX)
        return x + pos[:, NUM_PREFIX:], hw

    def _with_cls(self, patches: Tensor) -> Tensor:
        """(B, K, C) -> (B, 1 + K, C) with the cls token (plus its position row) in front."""
        cls = (self.cls_token + self.pos_embed[:, :NUM_PREFIX]).expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1)

    def _run_blocks(self, x: Tensor, hw: Tuple[int, int], ids_keep: Optional[Tensor] = None,
                    logit_blocks: Sequence[int] = (), taps: Sequence[int] = ()
                    ) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
        """The block loop. Only blocks in ``logit_blocks`` take the explicit attention path (and
        return their pre-softmax logits); the others stay fused. Returns the last tokens, the logits
        (B, heads, T, T) of ``logit_blocks`` and the outputs (B, T, C) of blocks in ``taps``."""
        logits, outs = [], []
        for i, blk in enumerate(self.blocks):
            bias = blk.attn.position_bias(hw, ids_keep) if self.rel_pos_bias else None
            if i in logit_blocks:
                x, lg = blk.forward_with_logits(x, bias)
                logits.append(lg)
            else:
                x = self.run_block(blk, x, bias)
            if i in taps:
                outs.append(self.norm(x) if i == self.depth - 1 else x)
        return x, logits, outs

    def _format(self, x: Tensor, hw: Tuple[int, int]) -> Tensor:
        """(B, 1 + N, C) tokens of one out index -> the ``out_type`` tensor."""
        if self.out_type == 'cls_token':
            return x[:, 0]
        if self.out_type == 'avg_featmap':
            return self.fc_norm(x[:, NUM_PREFIX:].mean(dim=1))
        B, _, C = x.shape
        return x[:, NUM_PREFIX:].transpose(1, 2).reshape(B, C, hw[0], hw[1])  # (B, C, h, w)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """x: (B, C_in, H, W), H and W multiples of the patch size.

        Returns one tensor per ``out_indices`` entry: (B, C, H/p, W/p) for ``'featmap'``, (B, C) for
        ``'cls_token'`` / ``'avg_featmap'``. The last block's output goes through ``norm`` first.
        """
        self.check_input(x)
        patches, hw = self.embed(x)
        _, _, outs = self._run_blocks(self._with_cls(patches), hw, taps=self.out_indices)
        return tuple(self._format(o, hw) for o in outs)

    def forward_masked(self, x: Tensor, mask: Mask, token: Optional[Tensor] = None,
                       logit_blocks: Sequence[int] = ()) -> MaskedFeatures:
        """MAE encoder: only the visible patches (``mask.visible``) are embedded and attended.

        Args:
            x: (B, C_in, H, W). mask: a :class:`Mask` over the (H/p)·(W/p) patches.
            token: (1, 1, C) put in place of the patches in ``mask.replaced``.
            logit_blocks: blocks whose pre-softmax attention logits are returned.
        Returns:
            MaskedFeatures: tokens (B, K, C) after ``norm``, the visible patches in ``ids_keep``
            order (one per unit), prefix (B, 1, C) the cls token, logits (B, heads, 1+K, 1+K).
        """
        self.check_mask(x, mask, token, logit_blocks)
        patches, hw = self.embed(x, mask.replaced, token)
        patches = gather_tokens(patches, mask.ids_keep)  # (B, K, C)
        want = {i % self.depth for i in logit_blocks}
        tokens, logits, _ = self._run_blocks(self._with_cls(patches), hw, mask.ids_keep, want)
        tokens = self.norm(tokens)
        return MaskedFeatures(tokens[:, NUM_PREFIX:], tokens[:, :NUM_PREFIX], logits=tuple(logits))


@register_model()
class ViTDet(ViT):
    """ViT for dense tasks (ViTDet): the plain ViT's stem, blocks and checkpoints, tokens kept as a
    (B, H/p, W/p, C) map, windowed attention except in ``global_blocks``. No cls token (its position
    row stays in the table so the table keeps the checkpoints' shape).

    Args (besides :class:`ViT`'s, which has no ``out_type`` here: the outputs are maps):
        window_size: window side in tokens (ViTDet: 14).
        global_blocks: blocks that attend over the whole map (ViTDet-B: 2, 5, 8, 11).
        rel_pos_bias: ViTDet's decomposed relative position (``attn.rel_pos_h/w``), zero-initialised.
    """
    attn_logits = False
    masked_modeling = False  # a dense-task encoder: pretrain the plain ViT instead
    tiny_cfg = dict(arch=dict(embed_dims=32, depth=2, num_heads=2), img_size=64, patch_size=16,
                    window_size=2, global_blocks=(1,))

    def __init__(self, arch: Union[str, Dict] = 'base', img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: Optional[int] = None, in_channels: int = 3,
                 drop_path_rate: float = 0.0, out_indices: Union[int, Sequence[int]] = -1,
                 window_size: int = 14, global_blocks: Sequence[int] = (),
                 rel_pos_bias: bool = False, qkv_bias: bool = True, norm_eps: float = 1e-6,
                 frozen_stages: int = -1, with_cp: bool = False,
                 init_cfg: Optional[Union[Dict, List[Dict]]] = None):
        depth = check_int('ViTDet', 'depth', self.resolve_arch(arch)['depth'])
        if isinstance(window_size, int) and not isinstance(window_size, bool) and window_size <= 0:
            raise ValueError(f'ViTDet: window_size must be > 0, got {window_size} (use ViT for a '
                             'plain global-attention encoder)')
        # read by _make_block during ViT.__init__
        self.window_size = check_int('ViTDet', 'window_size', window_size)
        self.global_blocks = list(check_out_indices('ViTDet', global_blocks, depth, 'blocks',
                                                    'global_blocks', allow_empty=True))
        super().__init__(arch, img_size, patch_size, in_channels, drop_path_rate, out_indices,
                         'featmap', True, rel_pos_bias, qkv_bias, norm_eps, frozen_stages, with_cp,
                         init_cfg)
        self.mim_unit = None  # a detection/segmentation encoder: pretrain the plain ViT instead
        self.input_multiple = 1  # windows are padded: any size of at least one patch

    def _make_cls_token(self, dim: int) -> None:
        return None  # an unused parameter would break DDP

    def _make_block(self, i, dim, mlp_ratio, qkv_bias, drop_path, norm) -> nn.Module:
        window = 0 if i in self.global_blocks else self.window_size
        rel_size = (window, window) if window else self.grid_size
        return MapBlock(dim, self.num_heads, mlp_ratio, qkv_bias, drop_path, norm, window,
                        rel_size if self.rel_pos_bias else None)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, C_in, H, W) -> one (B, C, H/p, W/p) map per ``out_indices`` entry."""
        self.check_input(x)
        patches, (h, w) = self.embed(x)
        x = patches.view(patches.shape[0], h, w, -1)  # (B, N, C) -> (B, h, w, C)
        outs = []
        for i, blk in enumerate(self.blocks):
            x = self.run_block(blk, x)
            if i in self.out_indices:
                out = self.norm(x) if i == self.depth - 1 else x
                outs.append(out.permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW
        return tuple(outs)
