"""Hiera checkpoints: official (``model_state``; classifier and MAE files) and timm <-> hvit_mm.

hvit_mm's Hiera keeps the official encoder names, so conversion only moves the heads:

* encoder ``patch_embed.*``, ``pos_embed``, ``blocks.*`` (all three formats) -> ``backbone.*``;
* final norm: official ``norm.*``, timm ``head.norm.*`` -> ``backbone.norm.*``;
* classifier: official ``head.projection.*``, timm ``head.fc.*`` -> ``head.fc.*`` (the
  mmpretrain ``LinearClsHead`` of an ``ImageClassifier``);
* official MAE files: ``encoder_norm.*``, ``multi_scale_fusion_heads.*`` -> ``encoder_neck.*``
  (the ``MultiScaleFusion`` neck), ``mask_token``, ``decoder_*`` -> ``neck.*`` (the shared
  ``MAEDecoder``), names otherwise unchanged (timm ships no decoder).

* :func:`convert` gives the whole hvit_mm model (a classifier or a ``MaskedAutoencoder`` with a
  Hiera backbone), for ``load_from``,
  ``tools/test.py`` and ``init_cfg=dict(type='Pretrained')`` (``Hiera.adapt_checkpoint`` takes the
  ``backbone.*`` part). An MAE file's ``encoder_norm`` stays with the fusion neck: a classifier
  fine-tuned from it starts a fresh final ``norm``, as the official fine-tuning does (timm instead
  reuses ``encoder_norm``).
* :func:`to_official` goes back to the official names (wrap the result in ``{'model_state': ...}``).

All functions are pure: the input dict is not mutated, tensors are shared, not copied.
"""
import re
from typing import Dict

from torch import Tensor

from .registry import register_converter

_TRANSITION = re.compile(r'^blocks\.\d+\.proj\.weight$')
_ENCODER = ('patch_embed.', 'blocks.')
_FUSION = ('encoder_norm.', 'multi_scale_fusion_heads.')
_DECODER = ('mask_token', 'decoder_')
_MAE = _FUSION + _DECODER
_UNSUPPORTED = ('pos_embed_spatial', 'pos_embed_temporal', 'pos_embed_win', 'pos_embed_abs')


def detect(sd: Dict[str, Tensor]) -> bool:
    """True for official, timm and hvit_mm Hiera encoder dicts: a ``pos_embed`` and the stage
    transitions' ``blocks.i.proj`` (no other hvit_mm backbone has both)."""
    return ('pos_embed' in sd or any(k in sd for k in _UNSUPPORTED)) \
        and 'cls_token' not in sd and any(_TRANSITION.match(k) for k in sd)


def _check(sd: Dict[str, Tensor]) -> None:
    bad = [k for k in sd if k.startswith(_UNSUPPORTED)]
    if bad:
        raise ValueError(f'Hiera checkpoint uses {bad[:3]}: video (separate space/time) and '
                         'abs-win position embeddings are not supported by hvit_mm.Hiera')


def convert(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Official / timm / bare hvit_mm Hiera dict -> hvit_mm model dict: ``backbone.*`` plus
    ``head.fc.*`` for a classifier, or plus the ``HieraMAE`` keys (official names) for an MAE file."""
    bad = [k for k in sd if k.startswith(_UNSUPPORTED)]
    if bad:
        raise ValueError(f'Hiera checkpoint uses {bad[:3]}: video (separate space/time) and '
                         'abs-win position embeddings are not supported by hvit_mm.Hiera')
    out = {}
    for k, v in sd.items():
        if k == 'pos_embed' or k.startswith(_ENCODER + ('norm.',)):
            out['backbone.' + k] = v
        elif k.startswith('head.norm.'):  # timm keeps the final norm inside its head
            out['backbone.norm.' + k[len('head.norm.'):]] = v
        elif k.startswith(('head.projection.', 'head.fc.')):
            out['head.fc.' + k.split('.', 2)[2]] = v
        elif k.startswith(_FUSION):
            out['encoder_neck.' + k] = v
        elif k.startswith(_DECODER):
            out['neck.' + k] = v
        else:
            raise KeyError(f'Hiera converter: unknown key {k!r}')
    if any(k.startswith(_MAE) for k in sd) and any(k.startswith('head.fc.') for k in out):
        raise ValueError('Hiera converter: a dict with both an MAE decoder and a classifier head')
    return out


def to_official(sd: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """hvit_mm model (``backbone.*``, ``head.fc.*``, ``encoder_neck.*``, ``neck.*``) or backbone
    dict -> official Hiera names (``norm``, ``head.projection``, top-level MAE keys)."""
    out = {}
    owners = {'backbone.': _ENCODER + ('norm.', 'pos_embed'), 'encoder_neck.': _FUSION,
              'neck.': _DECODER}
    for k, v in sd.items():
        owner = next((o for o in owners if k.startswith(o)), None)
        if owner is not None and k[len(owner):].startswith(owners[owner]):
            out[k[len(owner):]] = v
        elif k.startswith('head.fc.'):
            out['head.projection.' + k[len('head.fc.'):]] = v
        elif k == 'pos_embed' or k.startswith(_ENCODER + ('norm.',) + _MAE):
            out[k] = v
        else:
            raise KeyError(f'to_official: {k!r} is not a Hiera key')
    return out


# above the plain-ViT formats: a Hiera encoder also has patch_embed.proj and blocks.N
register_converter('hiera', detect, convert, priority=60)
