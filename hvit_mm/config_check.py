"""Pre-flight checks that turn the usual config mistakes into one clear message.

Without them a typo in ``--cfg-options`` is silently added as a new key, an unknown ``type`` fails
deep inside the runner's lazy build, and a missing dataset fails in the first dataloader worker.
"""
import difflib
import importlib
import inspect
import os.path as osp
import sys
from typing import Dict, Iterator, List, NamedTuple, Optional, Set, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.registry import Registry

TOY_HINT = ('no real dataset here? make the toy set with `python tools/dataset_converters/'
            'make_toy_datasets.py data/toy` and use the configs in configs/toy/ (or point data_root '
            'at it with --cfg-options)')


class ConfigError(ValueError):
    """A problem in the user's config or command line; the message says how to fix it."""


def load_config(path: str, cfg_options: Optional[Dict] = None) -> Config:
    if not osp.isfile(path):
        raise ConfigError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    return cfg


def _close(word: str, choices, cutoff: float = 0.6) -> str:
    near = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f' (did you mean {" / ".join(repr(n) for n in near)}?)' if near else ''


def _one_edit(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by exactly one insertion, deletion, substitution or swap of two
    neighbouring characters (``max_epoch``/``max_epochs``, ``trian_cfg``/``train_cfg``)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = sorted((a, b), key=len)
    i = next((i for i, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    return short[i:] == long_[i + 1:]


def _did_you_mean(word: str, choices) -> List[str]:
    return sorted(c for c in set(choices) if isinstance(c, str) and _one_edit(word, c))


def _warn(message: str) -> None:
    print(f'hvit_mm: warning: {message}', file=sys.stderr)


class _Takes(NamedTuple):
    """What a callable accepts as keyword arguments."""
    name: str
    params: Set[str]
    any_kwargs: bool  # it has **kwargs: it accepts anything


def _signature(obj, extra=()) -> Optional[_Takes]:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):  # builtins without a signature
        return None
    kinds = {p.kind for p in sig.parameters.values()}
    params = {n for n, p in sig.parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return _Takes(getattr(obj, '__name__', str(obj)), params | set(extra),
                  inspect.Parameter.VAR_KEYWORD in kinds)


# keys mmengine's builders read themselves before calling the class
_BUILDER_KEYS = ('type', '_scope_', '_delete_')


def _registered(type_, default_scope: str) -> List[object]:
    """Every object registered as ``type_`` in the registries of its scope (``mmdet.X``) or of the
    config's default scope and mmengine; a class object (lazy-import configs) is itself."""
    if not isinstance(type_, str):
        return [type_] if callable(type_) else []
    scope, _, short = type_.rpartition('.')
    scopes = [scope] if scope else [default_scope, 'mmengine']
    _fill_registries(scopes)
    return [reg.module_dict[short] for s in scopes for reg in _scope_registries(s)
            if short in reg.module_dict]


def _runner_roles(path: Tuple[str, ...], node: dict) -> List[_Takes]:
    """The runner builds a few untyped dicts itself: the config root (``Runner``) and its loops
    (``train_cfg`` -> Epoch/IterBasedTrainLoop by ``by_epoch``, ``val_cfg``, ``test_cfg``)."""
    from mmengine.runner import (EpochBasedTrainLoop, IterBasedTrainLoop, Runner, TestLoop,
                                 ValLoop)
    if not path:
        return [_signature(Runner)]
    if path == ('train_cfg',):
        loop = EpochBasedTrainLoop if node.get('by_epoch', True) else IterBasedTrainLoop
        return [_signature(loop, extra=('by_epoch',))]
    if path in (('val_cfg',), ('test_cfg',)):
        return [_signature(ValLoop if path[0] == 'val_cfg' else TestLoop)]
    return []


def _judge_new_key(key: str, path: Tuple[str, ...], part: str, node: dict, options: Dict,
                   default_scope: str) -> None:
    """``part`` is not in ``node`` (at ``path``): accept it, warn, or refuse a sure typo."""
    where = '.'.join(path) or 'the config root'
    type_ = options.get('.'.join(path + ('type',)), node.get('type'))  # as this command sets it
    if type_ is not None:
        takes = [t for t in map(lambda o: _signature(o, _BUILDER_KEYS),
                                _registered(type_, default_scope)) if t]
    else:
        takes = _runner_roles(path, node) if path in ((), ('train_cfg',), ('val_cfg',),
                                                      ('test_cfg',)) else []
    if takes:
        if any(t.any_kwargs or part in t.params for t in takes):
            return  # e.g. init_cfg of a BaseModule, or a class taking **kwargs
        near = _did_you_mean(part, set(node).union(*(t.params for t in takes)))
        owner = 'the runner' if not path else ' / '.join(sorted({t.name for t in takes}))
        if near:
            raise ConfigError(f'--cfg-options {key}: {owner} takes no {part!r} at {where} '
                              f'(did you mean {" / ".join(map(repr, near))}?)')
        if path:  # a top-level variable the runner ignores is harmless
            _warn(f'--cfg-options {key}: {owner} has no argument {part!r}; building {where} '
                  'may fail')
        return
    near = _did_you_mean(part, node)
    if near:  # nothing to check it against: the dict is read by whoever consumes it
        _warn(f'--cfg-options {key}: new key {part!r} under {where} '
              f'(did you mean {" / ".join(map(repr, near))}?)')


def check_cfg_options(cfg: Config, options: Dict) -> None:
    """Check each dotted ``--cfg-options`` key before mmengine merges it.

    A key along an existing path is fine. A new key is accepted as mmengine accepts it, except
    when it is surely a typo: the dict it goes into is built by a class (its ``type``, resolved
    through the registries, or the runner and its loops for the root and ``train/val/test_cfg``)
    that takes neither the key nor ``**kwargs``, and the key is one edit away from an argument
    the class takes or a key already there. Where nothing says what the dict accepts (e.g.
    ``paramwise_cfg``), a key one edit away from an existing one gets a one-line warning on
    stderr. An index past the end of a list, or a path through a non-dict, is refused (mmengine
    would fail on it too).
    """
    default_scope = cfg.get('default_scope') or 'mmengine'
    for key in options:
        node, parts = cfg._cfg_dict, key.split('.')
        for depth, part in enumerate(parts):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise ConfigError(f'--cfg-options {key}: index {part} out of range '
                                      f'({len(node)} items)')
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f'--cfg-options {key}: {".".join(parts[:depth])} is not a dict')
            if part not in node:
                _judge_new_key(key, tuple(parts[:depth]), part, node, options, default_scope)
                break  # below a new key everything is new: nothing to compare with
            node = node[part]


def _walk_types(node, path: str = '') -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path or '<root>', node['type']
        for k, v in node.items():
            yield from _walk_types(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk_types(v, f'{path}[{i}]')


def _scope_registries(scope: str) -> List[Registry]:
    """The registries of a codebase, each filled from its lazy-import locations as the runner's
    first ``build`` would."""
    try:
        module = importlib.import_module(f'{scope}.registry')
    except ImportError:
        return []
    registries = [v for v in vars(module).values() if isinstance(v, Registry)]
    for reg in registries:
        reg.import_from_location()
    return registries


_FILLED: Set[str] = set()


def _fill_registries(scopes) -> None:
    """Register a codebase's modules as the runner's default scope would (once per scope)."""
    for scope in set(scopes) - _FILLED:
        _FILLED.add(scope)
        try:
            utils = importlib.import_module(f'{scope}.utils')
        except ImportError:
            continue
        if hasattr(utils, 'register_all_modules'):  # what the runner's default scope imports
            utils.register_all_modules(init_default_scope=False)


def _mmcv_ops_names() -> set:
    """mmdet resolves RoI layers and NMS by attribute of ``mmcv.ops`` (``roi_layer.type``,
    ``nms.type``), not through a registry."""
    try:
        ops = importlib.import_module('mmcv.ops')
    except ImportError:
        return set()
    return {n for n in dir(ops) if not n.startswith('_')}


def check_types(cfg: Config) -> None:
    """Every ``type='X'`` must name a class in some registry of the config's scope (or of the
    scope written in front of it, ``mmdet.X``). The registries are first filled by importing the
    codebase's modules, as the runner would."""
    default = cfg.get('default_scope') or 'mmengine'
    scopes = {default, 'mmengine', 'mmcv'}
    scopes |= {name.rpartition('.')[0] for _, name in _walk_types(cfg._cfg_dict)} - {''}
    _fill_registries(scopes)
    known = {scope: {n for reg in _scope_registries(scope) for n in reg.module_dict}
             for scope in scopes}
    everything = set().union(*known.values()) | _mmcv_ops_names()
    for path, name in _walk_types(cfg._cfg_dict):
        scope, _, short = name.rpartition('.')
        pool = known.get(scope, set()) if scope else everything
        if short not in pool and name not in pool:
            raise ConfigError(f'unknown type {name!r} at {path}{_close(short, pool)}; check the '
                              "spelling, and that custom_imports lists the package registering it "
                              "(custom_imports = dict(imports=['hvit_mm']))")


def _datasets(node) -> Iterator[dict]:
    if isinstance(node, dict):
        if 'data_root' in node or 'ann_file' in node or 'data_prefix' in node:
            yield node
        for key in ('dataset', 'datasets'):
            inner = node.get(key)
            for item in inner if isinstance(inner, (list, tuple)) else [inner]:
                yield from _datasets(item)


def check_data(cfg: Config, phases=('train', 'val', 'test')) -> None:
    """The data roots and annotation files of the dataloaders that will run must exist."""
    for phase in phases:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for ds in _datasets(loader.get('dataset')):
            root = ds.get('data_root') or ''
            if root and not osp.isdir(root):
                raise ConfigError(f'{phase}_dataloader: dataset root {root!r} does not exist; '
                                  f'{TOY_HINT}')
            ann = ds.get('ann_file')
            if ann and not osp.isfile(osp.join(root, ann)):
                raise ConfigError(f'{phase}_dataloader: annotation file {osp.join(root, ann)!r} '
                                  f'does not exist; {TOY_HINT}')


def preflight(cfg: Config, phases=('train', 'val', 'test')) -> None:
    check_types(cfg)
    check_data(cfg, phases)


__all__ = ['ConfigError', 'ConfigDict', 'load_config', 'check_cfg_options', 'check_types',
           'check_data', 'preflight']
