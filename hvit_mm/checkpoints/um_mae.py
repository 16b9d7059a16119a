"""Official UM-MAE checkpoints (implus/UM-MAE: Swin and PVT) -> hvit_mm.

Files are ``{'model': state_dict}`` (unwrapped by ``load_state_dict_file``) with flat keys:

* encoder: ``patch_embed.{proj,norm}``, ``blocks.k.{norm1, norm2, mlp.fc1, mlp.fc2,
  downsample.{norm,proj}}`` plus Swin's ``attn.{qkv,proj,posmlp.0,posmlp.2}`` or PVT's
  ``pos_embed`` and ``attn.{q,kv,sr,norm,proj}``; ``norm`` (pretraining only);
* pretraining (``models_mae_{swin,pvt}``): ``vis_mask_token`` (secondary masking), ``mask_token``
  and ``decoder_{embed,pos_embed,blocks,norm,pred}``; the SimMIM baselines
  (``models_simmim_*``) instead have an encoder-side ``mask_token`` and one ``decoder_pred``;
* fine-tuned classifiers (``models_{swin,pvt}``): ``fc_norm`` and ``head``, no ``norm``.

hvit_mm's :class:`~hvit_mm.models.backbones.UMSwin` / ``UMPVT`` keep the official encoder names,
so the conversion only moves namespaces:

* encoder -> ``backbone.<same>``; ``fc_norm`` -> ``backbone.fc_norm`` (``out_type='avg_featmap'``);
  ``head`` -> ``head.fc`` (mmpretrain ``LinearClsHead`` of an ``ImageClassifier``);
* UM-MAE decoder -> ``neck.<same>`` (``MAEDecoder``: its ``decoder_embed`` is the official
  Linear(C_last, 4·512) before the PixelShuffle), ``mask_token`` -> ``neck.mask_token``;
  ``vis_mask_token`` -> ``mask_token`` (the algorithm's, replacing the secondary-masked units);
* SimMIM baseline: ``mask_token`` (encoder width) -> ``mask_token``, ``decoder_pred`` ->
  ``neck.decoder_pred`` (a linear + PixelShuffle head hvit_mm does not build: only the backbone
  of such a file is meant to be loaded).

Any other key raises ValueError listing it. All functions are pure (input not mutated, tensors
shared). :func:`to_official` is the inverse, for tests and exports.
"""
import re
from typing import Dict

from torch import Tensor

from .registry import register_converter

_SWIN_ATTN = r'attn\.(qkv|proj|posmlp\.0|posmlp\.2)'
_PVT_ATTN = r'attn\.(q|kv|sr|norm|proj)'
_ENCODER = re.compile(
    r'^(pos_embed|patch_embed\.(proj|norm)\.(weight|bias)|norm\.(weight|bias)'
    rf'|blocks\.\d+\.(norm1|norm2|mlp\.fc1|mlp\.fc2|downsample\.norm|downsample\.proj'
    rf'|{_SWIN_ATTN}|{_PVT_ATTN})\.(weight|bias))$')
_DECODER = re.compile(r'^(decoder_pos_embed|decoder_(embed|norm|pred)\.(weight|bias)'
                      r'|decoder_blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)'
                      r'\.(weight|bias))$')
_CLASSIFIER = re.compile(r'^(fc_norm|head)\.(weight|bias)$')


def detect(sd: Dict) -> bool:
    """Flat UM-MAE encoder keys: a Swin ``blocks.0.attn.posmlp`` or a PVT ``blocks.0.attn.sr``
    next to a flat ``patch_embed.proj`` (no ``backbone.`` namespace)."""
    return 'patch_embed.proj.weight' in sd and (
        'blocks.0.attn.posmlp.0.weight' in sd or 'blocks.0.attn.sr.weight' in sd)


def convert(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Official UM-MAE / UM-MAE-repo SimMIM dict -> hvit_mm model dict (see module docstring)."""
    simmim = 'mask_token' in sd and 'decoder_embed.weight' not in sd
    out, unknown = {}, []
    for k, v in sd.items():
        if _ENCODER.match(k):
            out['backbone.' + k] = v
        elif k.startswith('fc_norm.') and _CLASSIFIER.match(k):
            out['backbone.' + k] = v
        elif k.startswith('head.') and _CLASSIFIER.match(k):
            out['head.fc.' + k[len('head.'):]] = v
        elif k == 'vis_mask_token':
            out['mask_token'] = v
        elif k == 'mask_token':
            out['mask_token' if simmim else 'neck.mask_token'] = v
        elif _DECODER.match(k):
            out['neck.' + k] = v
        else:
            unknown.append(k)
    if unknown:
        raise ValueError(f'UM-MAE checkpoint: {len(unknown)} keys have no counterpart in hvit_mm '
                         f'(not an official UM-MAE Swin/PVT file?): {sorted(unknown)[:20]}')
    if 'vis_mask_token' in sd and simmim:
        raise ValueError('UM-MAE checkpoint: vis_mask_token and an encoder mask_token together')
    return out


def to_official(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """hvit_mm dict (``backbone.*``, ``head.fc.*``, ``neck.*``, ``mask_token``) -> official UM-MAE
    names (wrap the result in ``{'model': ...}``). A top-level ``mask_token`` becomes
    ``vis_mask_token`` next to a decoder, the SimMIM encoder ``mask_token`` otherwise."""
    has_decoder = any(k.startswith('neck.decoder_embed.') for k in sd)
    out = {}
    for k, v in sd.items():
        if k.startswith('backbone.'):
            out[k[len('backbone.'):]] = v
        elif k.startswith('head.fc.'):
            out['head.' + k[len('head.fc.'):]] = v
        elif k.startswith('neck.'):
            out[k[len('neck.'):]] = v
        elif k == 'mask_token':
            out['vis_mask_token' if has_decoder else 'mask_token'] = v
        else:
            raise KeyError(f'to_official: {k!r} has no UM-MAE counterpart')
    return out


register_converter('um_mae', detect, convert, priority=50)  # above 'mae' (Swin has attn.qkv)
