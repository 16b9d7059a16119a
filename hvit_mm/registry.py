"""One registration point for every OpenMMLab codebase hvit_mm serves.

``@register_model()`` puts a module into the MODELS registry of mmpretrain, mmdet and mmseg, so a
config of any of them builds it by its bare name (``type='HPViT'``) under its own ``default_scope``,
and cross-scope names (``type='mmpretrain.HPViT'``) keep working. Codebases that are not installed are
skipped: hvit_mm needs only mmpretrain (its pretraining algorithms live there).
"""
import importlib
from typing import Callable, Iterable, Optional, Tuple

CODEBASES = ('mmpretrain', 'mmdet', 'mmseg')


def _registries(kind: str, scopes: Iterable[str]):
    for scope in scopes:
        try:
            module = importlib.import_module(f'{scope}.registry')
        except ImportError:
            continue
        yield scope, getattr(module, kind)


def register_module(kind: str = 'MODELS', scopes: Tuple[str, ...] = CODEBASES,
                    name: Optional[str] = None) -> Callable:
    """Class decorator: register into ``<scope>.registry.<kind>`` for every installed scope.

    Args:
        kind: registry name in the codebases' ``registry.py`` (``MODELS``,
            ``OPTIM_WRAPPER_CONSTRUCTORS``, ``HOOKS``, ...).
        scopes: codebases to register into; a backbone goes everywhere, an MIM algorithm only into
            ``('mmpretrain',)``.
        name: registered name; the class name by default.
    """

    def wrap(cls):
        for _, registry in _registries(kind, scopes):
            registry.register_module(name=name or cls.__name__, module=cls, force=True)
        return cls

    return wrap


def register_model(scopes: Tuple[str, ...] = CODEBASES, name: Optional[str] = None) -> Callable:
    """``register_module('MODELS', ...)``: backbones, necks, heads, algorithms, losses."""
    return register_module('MODELS', scopes, name)
