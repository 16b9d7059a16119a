"""GreenMIM checkpoints (LayneH/GreenMIM) and official Swin files -> hvit_mm, and hvit_mm's
GreenSwin -> stock Swin of mmdet / mmseg / mmpretrain.

GreenMIM files are ``{'model': ...}`` (unwrapped by ``load_state_dict_file``): the Swin encoder in
the official Swin layout under ``encoder.`` (``patch_embed.proj/norm``, ``layers.i.blocks.j.*``,
``layers.i.downsample.{norm, reduction}``, ``norm``) and an MAE decoder (``mask_token``,
``decoder_pos_embed``, ``decoder_embed``, ``decoder_blocks.N``, ``decoder_norm``, ``decoder_pred``).

* :func:`convert` (format ``greenmim``): encoder -> ``backbone.*`` (``GreenSwin``; the final
  ``norm`` becomes the last stage's output norm ``norm3``), decoder -> ``neck.<same name>`` (as the
  MAE converter). The released checkpoints were trained with the old merge order [TL, TR, BL, BR];
  the ``downsample`` norm and reduction input blocks are permuted to Swin's [TL, BL, TR, BR], so the
  weights compute the same function in Swin. Format ``greenmim-swin-order`` skips the permutation
  (checkpoints of the fixed code, LayneH/GreenMIM b981012 and later). ``relative_position_index``,
  ``attn_mask`` and ``relative_coords_table`` buffers are dropped. A file cut by GreenMIM's
  ``util/extract_backbone.py`` (no ``encoder.`` prefix, no decoder) needs ``fmt='greenmim'``:
  nothing in it tells it from an official Swin file.
* ``swin``: official Swin / SimMIM fine-tuned files (bare layout, classifier ``head`` ->
  ``head.fc``), no permutation.
* :func:`to_mmdet` / :func:`to_mmpretrain`: hvit_mm / GreenSwin dict -> ``backbone.``-prefixed
  keys of the stock ``SwinTransformer`` of mmdet and mmseg / of mmpretrain (one layout:
  ``patch_embed.projection``, ``stages.i.blocks.j.attn.w_msa.*``, ``ffn.layers.{0.0,1}``,
  ``stages.i.downsample.*`` in ``nn.Unfold``'s channel-major order, ``norm{i}``). Load with their
  ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (``convert_weights=False`` in mmdet/mmseg).
  GreenSwin's own dict (official Swin names) also loads through mmdet's ``convert_weights=True``.
* :func:`to_official`: hvit_mm -> GreenMIM's file layout (tests, round trips).

All functions are pure: the input is not mutated, tensors are shared or new.
"""
import re
from typing import Dict

import torch
from torch import Tensor

from .registry import register_converter

_ENCODER = re.compile(
    r'^(patch_embed\.(proj|norm)\.(weight|bias)'
    r'|layers\.\d+\.blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)'
    r'\.(weight|bias)'
    r'|layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table'
    r'|layers\.\d+\.downsample\.(norm\.weight|norm\.bias|reduction\.weight))$')
_BUFFERS = re.compile(r'(relative_position_index|attn_mask|relative_coords_table)$')
_DECODER = ('mask_token', 'decoder_pos_embed', 'decoder_embed.', 'decoder_blocks.',
            'decoder_norm.', 'decoder_pred.')
_TABLE = 'layers.0.blocks.0.attn.relative_position_bias_table'


def swap_middle_blocks(w: Tensor) -> Tensor:
    """Last dim 4C as 4 blocks of C: [a, b, c, d] -> [a, c, b, d]. Turns GreenMIM's old
    [TL, TR, BL, BR] merge layout into Swin's [TL, BL, TR, BR] (and back: it is an involution)."""
    return w.unflatten(-1, (4, w.shape[-1] // 4))[..., [0, 2, 1, 3], :].flatten(-2)


def swin_to_unfold(w: Tensor) -> Tensor:
    """Swin's block layout [TL, BL, TR, BR] × C -> ``nn.Unfold``'s channel-major C × [TL, TR, BL,
    BR] (the patch merging of mmcv / mmpretrain / mmdet), along the last dim."""
    return swap_middle_blocks(w).unflatten(-1, (4, w.shape[-1] // 4)).transpose(-1, -2).flatten(-2)


def unfold_to_swin(w: Tensor) -> Tensor:
    """Inverse of :func:`swin_to_unfold`."""
    return swap_middle_blocks(w.unflatten(-1, (w.shape[-1] // 4, 4)).transpose(-1, -2).flatten(-2))


def _last_stage(keys) -> int:
    return max(int(m.group(1)) for k in keys for m in [re.match(r'layers\.(\d+)\.', k)] if m)


def _encoder(sd: Dict[str, Tensor], old_merge_order: bool, what: str) -> Dict[str, Tensor]:
    """Bare official-layout Swin encoder (+ optional ``head``) -> hvit_mm keys."""
    last, out, unknown = _last_stage(sd), {}, []
    for k, v in sd.items():
        if _BUFFERS.search(k):
            continue
        if k.startswith('norm.'):
            out[f'backbone.norm{last}.{k[5:]}'] = v
        elif k in ('head.weight', 'head.bias'):
            out['head.fc.' + k[5:]] = v
        elif _ENCODER.match(k):
            if old_merge_order and '.downsample.' in k:
                v = swap_middle_blocks(v)
            out['backbone.' + k] = v
        else:
            unknown.append(k)
    if unknown:
        raise ValueError(f'{what} checkpoint: {len(unknown)} keys have no counterpart in '
                         f'hvit_mm GreenSwin: {sorted(unknown)[:20]}')
    return out


def detect(sd: Dict) -> bool:
    """A GreenMIM pretraining file: Swin encoder under ``encoder.`` and an MAE decoder."""
    return 'encoder.' + _TABLE in sd and 'decoder_pred.weight' in sd


def convert(sd: Dict[str, Tensor], old_merge_order: bool = True) -> Dict[str, Tensor]:
    """GreenMIM file (or its encoder without the prefix) -> ``backbone.*`` + ``neck.*``."""
    prefixed = any(k.startswith('encoder.') for k in sd)
    enc = {k[len('encoder.'):]: v for k, v in sd.items() if k.startswith('encoder.')} \
        if prefixed else {k: v for k, v in sd.items() if not k.startswith(_DECODER)}
    out = _encoder(enc, old_merge_order, 'GreenMIM')
    rest = [k for k in sd if not k.startswith('encoder.') and (prefixed or k.startswith(_DECODER))]
    bad = [k for k in rest if not k.startswith(_DECODER)]
    if bad:
        raise ValueError(f'GreenMIM checkpoint: unknown keys outside the encoder: '
                         f'{sorted(bad)[:20]}')
    out.update({'neck.' + k: sd[k] for k in rest})
    return out


def convert_swin_order(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return convert(sd, old_merge_order=False)


def detect_swin(sd: Dict) -> bool:
    """Official Swin layout without prefix (Swin classifiers, SimMIM fine-tuned)."""
    return _TABLE in sd and 'patch_embed.proj.weight' in sd


def convert_swin(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    return _encoder(sd, False, 'Swin')


def _backbone(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    if any(k.startswith('backbone.') for k in sd):
        return {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    return dict(sd)


_STOCK = ((r'^patch_embed\.proj\.', 'patch_embed.projection.'),
          (r'^layers\.(\d+)\.blocks\.(\d+)\.attn\.', r'stages.\1.blocks.\2.attn.w_msa.'),
          (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.', r'stages.\1.blocks.\2.ffn.layers.0.0.'),
          (r'^layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.', r'stages.\1.blocks.\2.ffn.layers.1.'),
          (r'^layers\.', 'stages.'))


def to_mmdet(sd: Dict[str, Tensor], index_buffers: bool = False) -> Dict[str, Tensor]:
    """hvit_mm (``backbone.*``) or bare GreenSwin dict -> ``backbone.*`` keys of the stock
    ``SwinTransformer`` of mmdet and mmseg (``init_cfg=dict(type='Pretrained', checkpoint=...)``,
    ``convert_weights=False``). Their loader resizes bias tables of another window itself and
    rebuilds the ``relative_position_index`` buffers, which are therefore not written (a buffer
    of another window would fail its load) unless ``index_buffers``."""
    out = {}
    for k, v in _backbone(sd).items():
        if _BUFFERS.search(k):
            continue
        if '.downsample.' in k:
            v = swin_to_unfold(v)
        for pattern, repl in _STOCK:
            k, n = re.subn(pattern, repl, k)
            if n:
                break
        out['backbone.' + k] = v
        if index_buffers and k.endswith('relative_position_bias_table'):
            T = (int(round(v.shape[0] ** 0.5)) + 1) // 2
            out['backbone.' + k.replace('bias_table', 'index')] = swin_relative_index(T)
    return out


def to_mmpretrain(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """As :func:`to_mmdet` for mmpretrain's ``SwinTransformer`` (same layout), with the
    ``relative_position_index`` buffers: its loader deletes them when it resizes a table."""
    return to_mmdet(sd, index_buffers=True)


def swin_relative_index(window: int) -> Tensor:
    """Swin's (ws², ws²) ``relative_position_index``: (dh + ws-1)·(2ws-1) + dw + ws-1."""
    r = torch.arange(window)
    code = (r[:, None] * (2 * window - 1) + r[None, :]).reshape(-1)
    return code[:, None] - code[None, :] + (window - 1) * 2 * window


def to_official(sd: Dict[str, Tensor], old_merge_order: bool = True) -> Dict[str, Tensor]:
    """hvit_mm GreenMIM dict (``backbone.*`` GreenSwin + ``neck.*`` decoder) -> GreenMIM's file
    layout (wrap it in ``{'model': ...}``): the inverse of :func:`convert`."""
    enc = _backbone(sd)
    norms = sorted(k for k in enc if re.match(r'^norm\d+\.', k))
    last = _last_stage(enc)
    out = {}
    for k, v in enc.items():
        if k.startswith(f'norm{last}.'):
            out['encoder.norm.' + k.split('.', 1)[1]] = v
        elif k not in norms:
            out['encoder.' + k] = swap_middle_blocks(v) if old_merge_order and '.downsample.' in k \
                else v
    out.update({k[len('neck.'):]: v for k, v in sd.items() if k.startswith('neck.')})
    return out


# namespace + decoder marker; the fixed-order variant is chosen by name only; a bare Swin layout
# (also the backbone part of hvit_mm's own GreenSwin files) below both
register_converter('greenmim', detect, convert, priority=65)
register_converter('greenmim-swin-order', lambda sd: False, convert_swin_order, priority=64)
register_converter('swin', detect_swin, convert_swin, priority=57)
