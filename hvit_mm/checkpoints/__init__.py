"""Checkpoint formats: one pure converter module per external format, safe loading, the zoo.

Each converter module exposes ``detect(state_dict) -> bool`` and ``convert(state_dict) -> dict``
(pure: no I/O, input not mutated). :func:`to_hvit` dispatches over the registered converters in order.
"""
from .io import load_state_dict_file, load_url_verified, sha256sum, strict_load, unwrap
from .registry import CONVERTERS, register_converter, to_hvit

__all__ = ['load_state_dict_file', 'load_url_verified', 'sha256sum', 'strict_load', 'unwrap',
           'CONVERTERS', 'register_converter', 'to_hvit']
from .pretrained import load_pretrained, select_prefix  # noqa: E402

__all__ += ['load_pretrained', 'select_prefix']
# converters register on import; order = detection priority (hvit's own layout first)
from . import hvit, hiera, mae_lite, mae, timm_vit  # noqa: F401,E402  (hiera before mae: a Hiera dict also looks like a ViT encoder)
