"""Pre-flight checks that turn the usual config mistakes into one clear message.

Without them a typo in ``--cfg-options`` is silently added as a new key, an unknown ``type`` fails
deep inside the runner's lazy build, and a missing dataset fails in the first dataloader worker.
"""
import difflib
import importlib
import importlib.util
import inspect
import os
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
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as e:  # mmengine's message names the file and the line
        raise ConfigError(f'config {path}: {e}') from e
    except ImportError as e:  # custom_imports of a package that is not installed
        raise ConfigError(f'config {path}: {e}; check custom_imports (pip install the package, '
                          'or fix its name)') from e
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


def warn(message: str) -> None:
    """One ``hvit_mm: warning:`` line on stderr, from rank 0 only (every rank runs the checks)."""
    if int(os.environ.get('RANK', '0')) == 0:
        print(f'hvit_mm: warning: {message}', file=sys.stderr, flush=True)


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
            warn(f'--cfg-options {key}: {owner} has no argument {part!r}; building {where} '
                  'may fail')
        return
    near = _did_you_mean(part, node)
    if near:  # nothing to check it against: the dict is read by whoever consumes it
        warn(f'--cfg-options {key}: new key {part!r} under {where} '
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
    would fail on it too). A value that replaces an existing one must be of a kind that can stand
    in its place (:func:`_check_value_fits`).
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
        else:
            _check_value_fits(key, node, options[key])


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_parsed(value):
    """A value as DictAction parses command-line text ('0.5' -> 0.5, 'true' -> True, 'None' ->
    None), so values given in Python (tests, scripts) are judged as the command line's would be."""
    if isinstance(value, str):
        from mmengine.config import DictAction
        return DictAction._parse_int_float_bool(value)
    return value


def _check_value_fits(key: str, old, new) -> None:
    """``--cfg-options key=new`` replaces ``old``: refuse what cannot stand in its place (text for a
    number or a flag, a single value for a component ``dict(type=...)``, a list for a float),
    which would otherwise fail deep inside a build with a message that does not name the key.
    Lists for ints stay allowed (``scale=224`` -> ``scale=(224, 256)``), as do None
    (``val_cfg=None``) and a name for a plain dict (``arch=dict(...)`` -> ``arch=small``)."""
    new = _as_parsed(new)
    if new is None or old is None:
        return
    if isinstance(old, dict) and 'type' in old and not isinstance(new, (dict, list, tuple)):
        # a component the runner builds (a plain dict such as a ViT ``arch`` may become a name)
        raise ConfigError(f'--cfg-options {key}={new!r}: {key} is a component '
                          f'(dict(type={old["type"]!r}, ...)), not a value; set its fields '
                          f'instead, e.g. {key}.type={new}')
    if isinstance(old, bool) and isinstance(new, (str, list, tuple, dict)):
        raise ConfigError(f'--cfg-options {key}={new!r}: {key} is a flag ({old}); give True or '
                          'False')
    if _is_number(old) and isinstance(new, str):
        raise ConfigError(f'--cfg-options {key}={new!r}: {key} is a number ({old!r}), not text; '
                          f'give a number, e.g. {key}={old!r}')
    if isinstance(old, float) and not _is_number(new):
        raise ConfigError(f'--cfg-options {key}={new!r}: {key} is one number ({old!r}), not a '
                          f'{type(new).__name__}; give a number, e.g. {key}={old!r}')


def walk_types(node, path: str = '') -> Iterator[Tuple[str, str]]:
    """(config path, type name) of every dict with a ``type`` string under ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path or '<root>', node['type']
        for k, v in node.items():
            yield from walk_types(v, f'{path}.{k}' if path else str(k))
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from walk_types(v, f'{path}[{i}]')


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
    scopes |= {name.rpartition('.')[0] for _, name in walk_types(cfg._cfg_dict)} - {''}
    _fill_registries(scopes)
    known = {scope: {n for reg in _scope_registries(scope) for n in reg.module_dict}
             for scope in scopes}
    everything = set().union(*known.values()) | _mmcv_ops_names()
    for path, name in walk_types(cfg._cfg_dict):
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
            if root and not any(True for _ in os.scandir(root)):
                raise ConfigError(f'{phase}_dataloader: dataset root {root!r} is empty; copy or '
                                  f'link the dataset there, or point data_root elsewhere; '
                                  f'{TOY_HINT}')
            ann = ds.get('ann_file')
            if ann and not osp.isfile(osp.join(root, ann)):
                raise ConfigError(f'{phase}_dataloader: annotation file {osp.join(root, ann)!r} '
                                  f'does not exist; {TOY_HINT}')


# OpenMMLab codebases a config's default_scope may name (those installed are offered)
_CODEBASES = ('mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg', 'mmdet3d', 'mmpose', 'mmaction',
              'mmocr', 'mmagic', 'mmrotate', 'mmyolo', 'mmtrack', 'mmselfsup', 'mmcls')


def _has_registry(scope: str) -> bool:
    try:
        return importlib.util.find_spec(f'{scope}.registry') is not None
    except (ImportError, ValueError):  # the package itself is missing
        return False


def check_scope(cfg: Config) -> None:
    """``default_scope`` names the codebase whose registries build every ``type``: an unknown one
    would show up as a misleading "unknown type" for the first model class."""
    scope = cfg.get('default_scope')
    if scope is None:
        return
    if isinstance(scope, str) and scope and _has_registry(scope):
        return
    valid = [c for c in _CODEBASES if _has_registry(c)]
    raise ConfigError(f'default_scope {scope!r} is not an installed OpenMMLab codebase'
                      f'{_close(str(scope), valid)}; valid scopes here: {", ".join(valid)} '
                      '(hvit_mm registers its models into mmpretrain, mmdet and mmseg)')


def _integer(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer())


def _check_number(key: str, value, integer: bool, low, why: str, example) -> None:
    """``value`` (at config ``key``) must be an int (or a number) ``>= low`` (``> 0`` for low=1)."""
    ok = _integer(value) if integer else _is_number(value)
    if ok and (low is None or value >= low):
        return
    kind = {0: 'an integer >= 0', 1: 'a positive integer'}.get(low, 'an integer') if integer \
        else ('a number >= 0' if low == 0 else 'a number')
    raise ConfigError(f'{key} = {value!r}: must be {kind} ({why}); e.g. --cfg-options '
                      f'{key}={example}')


def check_values(cfg: Config) -> None:
    """The values the runner itself reads with ``int()`` / ``float()`` (loop lengths, seed, batch
    size, optimizer settings): text where a number belongs fails late with an error that does
    not name the key, and ``max_iters <= 0`` trains nothing yet exits 0."""
    train = cfg.get('train_cfg')
    if isinstance(train, dict):
        for name, why in (('max_iters', 'training iterations'), ('max_epochs', 'training epochs'),
                          ('val_interval', 'how often to validate')):
            if name in train:
                _check_number(f'train_cfg.{name}', train[name], True, 1, why, 10)
        if 'val_begin' in train:
            _check_number('train_cfg.val_begin', train['val_begin'], True, 0,
                          'the first epoch/iteration to validate at', 1)
    randomness = cfg.get('randomness')
    if isinstance(randomness, dict):
        seed = randomness.get('seed')
        if seed is not None and not (_integer(seed) and 0 <= seed < 2 ** 32):
            raise ConfigError(f'randomness.seed = {seed!r}: must be None or an integer in '
                              '[0, 2**32); e.g. --cfg-options randomness.seed=0')
        for flag in ('deterministic', 'diff_rank_seed'):
            if flag in randomness and not isinstance(randomness[flag], bool):
                raise ConfigError(f'randomness.{flag} = {randomness[flag]!r}: must be True or '
                                  'False')
    wrapper = cfg.get('optim_wrapper')
    optimizer = wrapper.get('optimizer') if isinstance(wrapper, dict) else None
    if isinstance(optimizer, dict):
        for name, low in (('lr', 0), ('weight_decay', 0), ('momentum', 0), ('eps', 0)):
            if name in optimizer:
                _check_number(f'optim_wrapper.optimizer.{name}', optimizer[name], False, low,
                              f'the optimizer\'s {name}', 0.001 if name == 'lr' else 0)
    for phase in ('train', 'val', 'test'):
        loader = cfg.get(f'{phase}_dataloader')
        if not isinstance(loader, dict):
            continue
        if 'batch_size' in loader:
            _check_number(f'{phase}_dataloader.batch_size', loader['batch_size'], True, 1,
                          'samples per GPU', 16)
        if 'num_workers' in loader:
            _check_number(f'{phase}_dataloader.num_workers', loader['num_workers'], True, 0,
                          'dataloader worker processes', 2)


def preflight(cfg: Config, phases=('train', 'val', 'test')) -> None:
    check_scope(cfg)
    check_values(cfg)
    check_types(cfg)
    check_data(cfg, phases)


__all__ = ['ConfigError', 'ConfigDict', 'load_config', 'check_cfg_options', 'check_types',
           'check_data', 'check_scope', 'check_values', 'preflight', 'warn']
