"""Checkpoint formats: one pure converter module per external format, safe loading, the zoo.

Each converter module exposes ``detect(state_dict) -> bool`` and ``convert(state_dict) -> dict``
(pure: no I/O, input not mutated) and registers them with a priority; :func:`to_hvit` uses the
highest-priority converter that detects the dict (``registry.priorities()``), never import order.
"""
from .io import load_state_dict_file, load_url_verified, sha256sum, strict_load, unwrap
from .registry import CONVERTERS, priorities, register_converter, to_hvit

__all__ = ['load_state_dict_file', 'load_url_verified', 'sha256sum', 'strict_load', 'unwrap',
           'CONVERTERS', 'priorities', 'register_converter', 'to_hvit']
from .pretrained import load_pretrained, select_prefix  # noqa: E402

__all__ += ['load_pretrained', 'select_prefix']
# converters register on import, each with its detection priority (import order does not matter)
from . import hvit, hiera, mae_lite, mae, timm_vit  # noqa: F401,E402
# GreenMIM and official Swin files (GreenSwin -> stock Swin), timm Twins, official UM-MAE Swin / PVT
from . import greenmim, twins, um_mae  # noqa: F401,E402
# hvit://NAME checkpoints; registers mmengine's hvit:// CheckpointLoader scheme
from . import zoo  # noqa: F401,E402
