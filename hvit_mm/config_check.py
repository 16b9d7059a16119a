"""Pre-flight checks that turn the usual config mistakes into one clear message.

Without them a typo in ``--cfg-options`` is silently added as a new key, an unknown ``type`` fails
deep inside the runner's lazy build, and a missing dataset fails in the first dataloader worker.
"""
import difflib
import importlib
import os.path as osp
from typing import Dict, Iterator, List, Optional, Tuple

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


# keys the runner reads that a config may legitimately add at the top level
RUNNER_KEYS = {'custom_hooks', 'load_from', 'resume', 'work_dir', 'randomness', 'auto_scale_lr',
               'experiment_name', 'launcher', 'env_cfg', 'log_level', 'default_scope', 'cfg'}


def _close(word: str, choices, cutoff: float = 0.6) -> str:
    near = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f' (did you mean {" / ".join(repr(n) for n in near)}?)' if near else ''


def check_cfg_options(cfg: Config, options: Dict) -> None:
    """Each dotted key must extend an existing path; a new leaf that looks like a typo of an
    existing one (``max_iter`` for ``max_iters``) is refused."""
    for key in options:
        node, parts = cfg._cfg_dict, key.split('.')
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise ConfigError(f'--cfg-options {key}: index {part} out of range '
                                      f'({len(node)} items)')
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f'--cfg-options {key}: {".".join(parts[:depth])} is not a dict')
            if part not in node:
                if last and depth == 0 and part in RUNNER_KEYS:
                    break
                # a new leaf is fine unless it is a near-copy of an existing key (a typo)
                hint = _close(part, node.keys(), 0.6 if not last else 0.8)
                if not last or hint:
                    raise ConfigError(f'--cfg-options {key}: no key {part!r} under '
                                      f'{".".join(parts[:depth]) or "the config"}{hint}')
                break
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
    for scope in scopes:
        try:
            utils = importlib.import_module(f'{scope}.utils')
        except ImportError:
            continue
        if hasattr(utils, 'register_all_modules'):  # what the runner's default scope imports
            utils.register_all_modules(init_default_scope=False)
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
