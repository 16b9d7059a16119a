"""Official MAE checkpoints (facebookresearch/mae) -> hvit_mm.

Files are ``{'model': state_dict}`` with timm ViT names (unwrapped by ``load_state_dict_file``):
encoder-only pretrained files (``mae_pretrain_vit_*.pth``), ``*_full.pth`` / visualisation files that
add the decoder (``decoder_*``, ``mask_token``), and fine-tuned files (``fc_norm``, ``head``).

Output is the layout of hvit_mm's models: encoder -> ``backbone.<same name>`` (``ViT``), decoder ->
``neck.<same name>`` (``MAEDecoder``), classifier -> ``head.fc.*`` (mmpretrain ``LinearClsHead``).
A key that fits none of these raises ValueError listing it.
"""
import re
from typing import Dict, Iterable

import torch

from .registry import register_converter

_ENCODER = re.compile(
    r'^(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|(fc_)?norm\.(weight|bias)'
    r'|blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)'
    r'|blocks\.\d+\.attn\.relative_position_bias_table)$')
_DECODER = re.compile(r'^(mask_token|decoder_pos_embed|decoder_(embed|norm|pred)\.(weight|bias)'
                      r'|decoder_blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)'
                      r'\.(weight|bias))$')
# buffers some ViT variants save; hvit_mm recomputes them
_DROPPED = re.compile(r'^blocks\.\d+\.attn\.relative_position_index$')
_QV_BIAS = re.compile(r'^(blocks\.\d+\.attn)\.(q_bias|v_bias)$')


def is_vit_encoder(sd: Dict) -> bool:
    """timm-named plain ViT weights (MAE, MAE-Lite after its prefix, timm, DeiT)."""
    return 'patch_embed.proj.weight' in sd and 'blocks.0.attn.qkv.weight' in sd


def _merge_qv_bias(sd: Dict) -> Dict:
    """BEiT-style ``attn.q_bias`` / ``attn.v_bias`` (k has no bias) -> one ``attn.qkv.bias``."""
    out = {k: v for k, v in sd.items() if not _QV_BIAS.match(k)}
    for k in sd:
        m = _QV_BIAS.match(k)
        if m and m.group(2) == 'q_bias':
            q, v = sd[k], sd[f'{m.group(1)}.v_bias']
            out[f'{m.group(1)}.qkv.bias'] = torch.cat([q, torch.zeros_like(q), v])
    return out


def map_vit(sd: Dict, encoder_prefix: str = 'backbone.', decoder_prefix: str = 'neck.',
            head_prefix: str = 'head.fc.', what: str = 'MAE') -> Dict:
    """Rename timm/MAE ViT keys to hvit_mm's layout (pure; values shared, dict new)."""
    sd = _merge_qv_bias(sd)
    out, unknown = {}, []
    for k, v in sd.items():
        if _ENCODER.match(k):
            out[encoder_prefix + k] = v
        elif _DECODER.match(k):
            out[decoder_prefix + k] = v
        elif k in ('head.weight', 'head.bias'):
            out[head_prefix + k.split('.')[1]] = v
        elif not _DROPPED.match(k):
            unknown.append(k)
    raise_unknown(unknown, what)
    return out


def raise_unknown(keys: Iterable[str], what: str) -> None:
    keys = sorted(keys)
    if keys:
        raise ValueError(f'{what} checkpoint: {len(keys)} keys have no counterpart in hvit_mm '
                         f'(not a plain ViT of this kind?): {keys[:20]}')


def detect(sd: Dict) -> bool:
    """timm-named ViT encoder that is not a timm classifier: no head (pretrained), a decoder
    (``_full``) or ``fc_norm`` (MAE fine-tuned with global pooling)."""
    return is_vit_encoder(sd) and ('head.weight' not in sd or 'fc_norm.weight' in sd
                                   or 'decoder_embed.weight' in sd)


def convert(sd: Dict) -> Dict:
    return map_vit(sd, what='MAE')


register_converter('mae', detect, convert, priority=20)  # any timm-named ViT encoder
