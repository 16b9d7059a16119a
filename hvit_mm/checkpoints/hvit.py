"""hvit_mm's own layout (mmengine checkpoints of hvit_mm models: ``backbone.*``, ``neck.*``, ...):
passed through unchanged, so ``to_hvit`` accepts what hvit_mm itself writes."""
from typing import Dict

from .registry import register_converter

TOP_LEVEL = ('backbone.', 'neck.', 'head.', 'teacher.', 'attn_adapters.', 'hidden_adapter.',
             'mask_token', 'data_preprocessor.')


def detect(sd: Dict) -> bool:
    """Namespaced by hvit_mm model attributes, with at least one ``backbone.`` key."""
    return any(k.startswith('backbone.') for k in sd) and all(k.startswith(TOP_LEVEL) for k in sd)


def convert(sd: Dict) -> Dict:
    return dict(sd)


register_converter('hvit', detect, convert)
