"""``init_cfg=dict(type='Pretrained', checkpoint=...)`` for hvit_mm backbones, with strict key checks.

mmengine's own ``PretrainedInit`` loads with ``strict=False`` and only warns, so a checkpoint of the
wrong arch silently leaves random weights. hvit_mm backbones route ``Pretrained`` here instead.
"""
from typing import Callable, Dict, Iterable, Optional

from mmengine.logging import MMLogger
from torch import nn

from .io import load_state_dict_file, strict_load
from .registry import to_hvit


def select_prefix(state_dict: Dict, prefix: Optional[str]) -> Dict:
    """Keys under ``prefix`` with the prefix removed. With ``prefix=None``, a full-model dict
    (mmengine runner checkpoint: ``backbone.*``, ``neck.*``, ...) gives its backbone; any other dict
    is returned unchanged."""
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    if not prefix:
        return dict(state_dict)
    out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not out:
        raise KeyError(f'no key starts with {prefix!r} (first keys: {sorted(state_dict)[:6]}); '
                       "fix init_cfg.prefix")
    return out


def load_pretrained(module: nn.Module, checkpoint: str, prefix: Optional[str] = None,
                    fmt: str = 'auto', sha256: Optional[str] = None,
                    adapt: Optional[Callable[[Dict], Dict]] = None,
                    allow_missing: Iterable[str] = (), allow_unexpected: Iterable[str] = ()) -> Dict:
    """Load ``checkpoint`` into ``module``: read (weights_only), convert the format to hvit_mm names,
    ``adapt`` (e.g. resample position embeddings to the model's grid), then a strict load where only
    the listed key prefixes may be missing/unexpected. Logs the new keys.

    ``prefix``: where the weights sit in the file, taken before conversion (e.g. ``'module.'``).
    None: the whole file is converted (formats are recognised by all their keys: an encoder with
    its decoder, a runner checkpoint of any hvit_mm model), and its ``backbone.*`` part is used
    when it has one.

    Returns the state dict that was loaded.
    """
    sd = load_state_dict_file(checkpoint, sha256)
    if prefix is None:
        sd = select_prefix(to_hvit(sd, fmt), None)
    else:
        sd = to_hvit(select_prefix(sd, prefix), fmt)
    if adapt is not None:
        sd = adapt(sd)
    strict_load(module, sd, allow_missing, allow_unexpected, what=f'checkpoint {checkpoint}')
    new = sorted(k for k in module.state_dict() if k not in sd)
    logger = MMLogger.get_current_instance()
    logger.info(f'loaded {checkpoint} into {type(module).__name__}: {len(sd)} tensors'
                + (f'; newly initialised: {new}' if new else ''))
    return sd
