"""MAE-Lite checkpoints (wangsr126/mae-lite) -> hvit_mm.

Their files are ``{'model': DDP state_dict, 'optimizer', ...}``; keys carry ``module.`` (DDP) and the
experiment's attribute names: ``module.model.<timm ViT / MAE key>`` for the student (encoder and
decoder), and for distilled runs ``module.tch_model.<key>`` (the MAE-B teacher) and
``module.attn_adapter.adapter<block>.weight`` (1×1 conv over heads; block 0-based). These were
inferred from the save/load code (the Drive files could not be inspected), so unknown keys raise a
ValueError listing them rather than being dropped.

Output: student -> ``backbone.*`` / ``neck.*`` / ``head.fc.*``, teacher encoder -> ``teacher.*``
(its decoder is dropped: D-MAE's teacher is encoder-only), adapters -> ``attn_adapters.<block>.weight``
and ``hidden_adapter.weight`` (``DistilledMAE``'s names).
"""
import re
from typing import Dict

from .mae import _DECODER, map_vit, raise_unknown
from .registry import register_converter

_ATTN_ADAPTER = re.compile(r'^attn_adapter\.adapter(\d+)\.weight$')
_HIDDEN_ADAPTER = re.compile(r'^hidden_adapter\.adapter\d+\.weight$')


def _strip(k: str) -> str:
    return k[len('module.'):] if k.startswith('module.') else k


def detect(sd: Dict) -> bool:
    return any(_strip(k).startswith(('model.', 'tch_model.')) for k in sd) and \
        all(k.startswith('module.') for k in sd)


def convert(sd: Dict) -> Dict:
    student, teacher, out, unknown = {}, {}, {}, []
    for k, v in sd.items():
        k2 = _strip(k)
        if k2.startswith('model.'):
            student[k2[len('model.'):]] = v
        elif k2.startswith('tch_model.'):
            key = k2[len('tch_model.'):]
            if not _DECODER.match(key):
                teacher[key] = v
        elif _ATTN_ADAPTER.match(k2):
            out[f'attn_adapters.{_ATTN_ADAPTER.match(k2).group(1)}.weight'] = v
        elif _HIDDEN_ADAPTER.match(k2):
            out['hidden_adapter.weight'] = v
        else:
            unknown.append(k)
    raise_unknown(unknown, 'MAE-Lite')
    out.update(map_vit(student, what='MAE-Lite student'))
    if teacher:
        out.update(map_vit(teacher, encoder_prefix='teacher.', what='MAE-Lite teacher'))
    return out


register_converter('mae_lite', detect, convert, priority=55)  # by its module.model. prefix
