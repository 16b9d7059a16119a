"""hvit_mm's own files, passed through unchanged, so ``to_hvit`` accepts what hvit_mm itself writes.

A dict is hvit_mm's own when

* it was read from an mmengine file (``{'meta': ..., 'state_dict': ...}``: ``io.unwrap`` gives an
  ``io.StateDict`` carrying the meta) whose meta says an hvit_mm model wrote it: the runner's
  ``meta['cfg']`` (the config text; parsed with ``ast``, never executed) builds a ``model`` with a
  type that hvit_mm registers, or ``meta['hvit_mm']`` is set (the zoo's converted files). The keys
  are then that model's own, whatever its attribute names (``backbone.*``, ``neck.*``, a
  pretraining algorithm's tokens and heads, ...);
* or, for a dict without such a meta (a converter's output, ``model.state_dict()``), its keys are
  namespaced by model attributes and the ``backbone.*`` part is a backbone layout that another
  converter recognises (hvit_mm backbones keep the timm / official parameter names).
"""
import ast
import re
from typing import Dict, Optional, Set

from .registry import CONVERTERS, register_converter

NAME = 'hvit'
_ATTRIBUTE_PATH = re.compile(r'^[A-Za-z_]\w*(\.\w+)*$')  # attr.sub.0.weight


def _hvit_mm_model_types() -> Set[str]:
    """Names of the model classes hvit_mm registers into mmpretrain / mmdet / mmseg."""
    from ..registry import CODEBASES, _registries
    return {name for _, reg in _registries('MODELS', CODEBASES)
            for name, cls in reg.module_dict.items()
            if getattr(cls, '__module__', '').split('.')[0] == 'hvit_mm'}


def _config_model_types(cfg_text: str) -> Optional[Set[str]]:
    """Every ``type='X'`` string under the top-level ``model = ...`` of a config text (the runner's
    ``meta['cfg']``); None when the text has no parsable model."""
    try:
        tree = ast.parse(cfg_text)
    except (SyntaxError, ValueError):
        return None
    model = next((node.value for node in tree.body if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == 'model' for t in node.targets)), None)
    if model is None:
        return None
    found = set()
    for node in ast.walk(model):
        if isinstance(node, ast.keyword) and node.arg == 'type':
            value = node.value
        elif isinstance(node, ast.Dict):
            value = next((v for k, v in zip(node.keys, node.values)
                          if isinstance(k, ast.Constant) and k.value == 'type'), None)
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.add(value.value.rpartition('.')[2])  # 'mmpretrain.X' -> 'X'
    return found


def written_by_hvit_mm(meta: Optional[Dict]) -> bool:
    """Whether an mmengine checkpoint's ``meta`` says an hvit_mm model wrote it."""
    if not isinstance(meta, dict):
        return False
    if meta.get('hvit_mm'):
        return True
    types = _config_model_types(meta['cfg']) if isinstance(meta.get('cfg'), str) else None
    return bool(types and types & _hvit_mm_model_types())


def _backbone_recognised(sd: Dict) -> bool:
    backbone = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    return bool(backbone) and any(c.detect(backbone) for c in CONVERTERS if c.name != NAME)


def detect(sd: Dict) -> bool:
    if written_by_hvit_mm(getattr(sd, 'meta', None)):
        return True
    return all(isinstance(k, str) and _ATTRIBUTE_PATH.match(k) for k in sd) \
        and not any(k.startswith('module.') for k in sd) and _backbone_recognised(sd)


def convert(sd: Dict) -> Dict:
    return dict(sd)


register_converter(NAME, detect, convert, priority=100)
