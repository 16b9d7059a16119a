"""What tools/train.py and tools/test.py share: work dir, launcher, AMP, resume, errors.

Bad input (a config value, a data path, a checkpoint file) ends the tools with one line,
``hvit_mm: error: <what, where, how to fix>``, and exit status 2; ``--debug`` or
``HVIT_MM_DEBUG=1`` gives the traceback instead. What counts as bad input: :class:`ConfigError`,
:class:`CheckpointError`, the zoo's errors, and the ValueError / KeyError / TypeError /
AssertionError / FileNotFoundError raised while the runner is built and loads its weights (our
modules validate their arguments with these types; mmengine's registry raises them for a bad
``type``; OpenMMLab constructors assert on theirs). The same types raised once training or testing
has started are bugs and keep their traceback, as does any other type.
"""
import argparse
import ast
import contextlib
import linecache
import os
import os.path as osp
import re
import shutil
import sys
import traceback
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook

from .checkpoints.io import CheckpointError, as_state_dict, mismatches, read_checkpoint, unwrap
from .checkpoints.registry import converter_hint
from .checkpoints.zoo import SCHEME, ZooError, resolve_path
from .config_check import ConfigError, walk_types

# raised while building the runner or loading weights, these are the user's input, not a bug
# (an AssertionError there is a constructor's argument check in mmengine / mmpretrain / mmdet)
BAD_INPUT = (ValueError, KeyError, TypeError, AssertionError, FileNotFoundError, ZooError)
DEBUG_ENV = 'HVIT_MM_DEBUG'
DEBUG_HINT = f'(--debug or {DEBUG_ENV}=1 shows the traceback)'


def fail(error) -> None:
    """One line on stderr and exit status 2, instead of a traceback, for a user mistake."""
    sys.stdout.flush()
    text = error if isinstance(error, str) else one_line(error)
    print(f'hvit_mm: error: {text}', file=sys.stderr)
    sys.exit(2)


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a KeyError's text without its repr quotes, the lines
    of a multi-line message joined)."""
    text = error.args[0] if isinstance(error, KeyError) and len(error.args) == 1 and \
        isinstance(error.args[0], str) else str(error)
    if len(text) > 1 and text[0] == text[-1] and text[0] in '"\'':  # a KeyError quoted again
        try:
            text = str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            pass
    out = ''
    for line in (ln.strip() for ln in text.splitlines()):
        if line:
            out += ('' if not out else ' ' if out.endswith(':') else '; ') + line
    return out or type(error).__name__


def debug_enabled(args=None) -> bool:
    """``--debug`` or ``HVIT_MM_DEBUG`` set to anything but '' / '0'."""
    return bool(getattr(args, 'debug', False)) or os.environ.get(DEBUG_ENV, '') not in ('', '0')


class ToolParser(argparse.ArgumentParser):
    """argparse, with its errors in the tools' ``hvit_mm: error:`` form (still exit status 2)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        fail(message)


class CfgOptions(DictAction):
    """mmengine's ``--cfg-options`` parser, refusing an item without ``=`` by name (mmengine's own
    fails with a bare 'not enough values to unpack')."""

    def __call__(self, parser, namespace, values, option_string=None):
        for kv in values if isinstance(values, (list, tuple)) else [values]:
            if '=' not in kv or kv.startswith('='):
                raise argparse.ArgumentError(
                    self, f'{kv!r} is not KEY=VALUE; write e.g. train_cfg.max_iters=10 (no spaces '
                    'around =; quote values with spaces)')
        super().__call__(parser, namespace, values, option_string)


def add_common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--cfg-options', nargs='+', action=CfgOptions, default={},
                   help='override config keys, e.g. train_cfg.max_iters=10')
    p.add_argument('--debug', action='store_true',
                   help=f'show the full traceback of a configuration or checkpoint error '
                        f'(also: {DEBUG_ENV}=1)')


# ------------------------------------------------------------------------------ the work dir
class _WorkDirState:
    """What the work dir held before this run: on a bad-input failure, :meth:`restore` removes
    what the run created (the runner's timestamped log dir, its config dump) and puts back small
    top-level files it overwrote (a previous run's config dump), with their times."""
    _KEEP_BYTES = 1 << 20

    def __init__(self, work_dir: str):
        self.root = osp.abspath(work_dir)
        self.existed = osp.isdir(self.root)
        self.stats: Dict[str, os.stat_result] = {}
        self.saved: Dict[str, bytes] = {}
        if not self.existed:
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = osp.join(dirpath, name)
                self.stats[path] = os.lstat(path)
        self.stats[self.root] = os.lstat(self.root)
        for name in os.listdir(self.root):
            path = osp.join(self.root, name)
            if osp.isfile(path) and not osp.islink(path) and \
                    self.stats[path].st_size <= self._KEEP_BYTES:
                with open(path, 'rb') as f:
                    self.saved[path] = f.read()

    def restore(self) -> None:
        from mmengine.dist import get_dist_info
        if get_dist_info()[0] != 0:  # one process tidies up (the others would race it)
            return
        if not self.existed:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        for dirpath, dirnames, filenames in os.walk(self.root, topdown=True):
            for name in list(dirnames):
                path = osp.join(dirpath, name)
                if path not in self.stats:
                    shutil.rmtree(path, ignore_errors=True)
                    dirnames.remove(name)
            for name in filenames:
                path = osp.join(dirpath, name)
                if path not in self.stats:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
        for path, data in self.saved.items():
            st, now = self.stats[path], os.lstat(path) if osp.lexists(path) else None
            if now is None or (now.st_mtime_ns, now.st_size) != (st.st_mtime_ns, st.st_size):
                with open(path, 'wb') as f:
                    f.write(data)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        for path, st in self.stats.items():  # creating and removing entries touched the folders
            if osp.isdir(path) and not osp.islink(path):
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# --------------------------------------------------------------------------- where it failed
# the Runner's build steps -> the config key they read
_STEPS = {'build_model': 'model', 'wrap_model': 'model_wrapper_cfg',
          '_init_model_weights': 'the init_cfg of model', 'build_optim_wrapper': 'optim_wrapper',
          'build_param_scheduler': 'param_scheduler', 'build_train_loop': 'train_cfg',
          'build_val_loop': 'val_cfg', 'build_test_loop': 'test_cfg',
          'build_visualizer': 'visualizer', 'build_log_processor': 'log_processor',
          'register_default_hooks': 'default_hooks', 'register_custom_hooks': 'custom_hooks',
          'load_or_resume': 'load_from / resume', 'setup_env': 'env_cfg'}
_LOOP_PHASE = {'build_train_loop': 'train', 'build_val_loop': 'val', 'build_test_loop': 'test'}


def _failed_step(error: BaseException) -> Tuple[Optional[str], Optional[str]]:
    """(config key, class) being built when ``error`` was raised, read from its traceback: the
    runner's build step (a dataloader is named by its loop) and the innermost class that
    mmengine's registry was building."""
    from mmengine.runner import Runner
    step, phase, cls = None, None, None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        name, local = frame.f_code.co_name, frame.f_locals
        if isinstance(local.get('self'), Runner) and name in _STEPS:
            step = step or _STEPS[name]
            phase = _LOOP_PHASE.get(name, phase)
        elif name in ('build_dataloader', 'build_evaluator') and phase:
            step = f'{phase}_{name[6:]}'  # the loop's dataloader / evaluator
        elif name == 'build_from_cfg' and \
                frame.f_globals.get('__name__', '').startswith('mmengine'):
            built = local.get('obj_cls') or local.get('obj_type')
            cls = getattr(built, '__name__', built if isinstance(built, str) else cls)
    return step, cls


def _where(cfg: Optional[Config], step: Optional[str], cls: Optional[str]) -> str:
    """'model.backbone (ViT)': the config path of the class that failed, within ``step``."""
    if cls and cfg is not None:
        root = step if step and step.isidentifier() else None
        paths = [p for p, t in walk_types(cfg._cfg_dict) if t.rpartition('.')[2] == cls and
                 (root is None or re.split(r'[.\[]', p)[0] == root)]
        if paths:
            return f'{paths[0]} ({cls})'
    if step and cls:
        return f'{step} ({cls})'
    return step or (cls or '')


def describe(error: BaseException, cfg: Optional[Config] = None) -> str:
    """One line for a bad-input error: where (the config key, from the traceback) and what. Our
    own errors already say what to do; for any other type its name and the --debug hint follow."""
    text = one_line(error)
    if isinstance(error, ConfigError):
        return text
    where = _where(cfg, *_failed_step(error))
    if isinstance(error, (CheckpointError, ZooError)):
        return f'{where}: {text}' if where else text
    where = f'while building {where}: ' if where else ''
    if isinstance(error, AssertionError):  # often bare: the check itself says what was wrong
        last = traceback.extract_tb(error.__traceback__)[-1]
        lines = range(last.lineno, (getattr(last, 'end_lineno', None) or last.lineno) + 1)
        code = ' '.join(' '.join(linecache.getline(last.filename, n).split()) for n in lines)
        check = f'`{code[:240]}` failed ({osp.basename(last.filename)}:{last.lineno})'
        text = f'{text}; {check}' if error.args else check
    return f'{where}{type(error).__name__}: {text} {DEBUG_HINT}'


class _Started(Hook):
    """Notes that training / testing began: errors from then on are not about the input."""
    priority = 'HIGHEST'

    def __init__(self):
        self.started = False

    def _begin(self, runner) -> None:
        self.started = True

    before_train = before_val = before_test = _begin


def _run_stops():
    """Errors by which the training guards end a run that has started (too many non-finite
    steps, bad data under ``on_bad='raise'``, a dataset without samples): one line at any time."""
    from .datasets import DataError
    from .engine.guards import NonFiniteError
    return NonFiniteError, DataError


class BuildGuard:
    """``with BuildGuard(debug) as guard:`` around a tool's config checks, ``guard.build_runner``,
    the checkpoint check and ``runner.train()`` / ``test()``: bad input before training / testing
    starts ends in :func:`fail` (the work dir as it was before the run); anything else, or
    anything after the start, propagates with its traceback."""

    def __init__(self, debug: bool = False):
        self.debug = debug
        self.cfg: Optional[Config] = None
        self.state: Optional[_WorkDirState] = None
        self.marker = _Started()

    def watch(self, work_dir: str) -> None:
        """Note what ``work_dir`` holds now: a bad-input failure puts it back so."""
        self.state = _WorkDirState(work_dir)

    def build_runner(self, cfg: Config):
        """The runner (``Runner.from_cfg``, or ``runner_type``), after noting the work dir."""
        from mmengine.registry import RUNNERS
        from mmengine.runner import Runner
        self.cfg = cfg
        if cfg.get('work_dir'):
            self.watch(cfg.work_dir)
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        runner.register_hook(self.marker, 'HIGHEST')
        return runner

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is not None and isinstance(error, _run_stops()) and not self.debug:
            fail(error)  # a guard stopped the run on purpose; its message says why and what to do
        if error is None or not isinstance(error, BAD_INPUT) or self.marker.started:
            return False
        if self.state is not None:
            self.state.restore()
        if self.debug:
            return False
        fail(describe(error, self.cfg))


# ------------------------------------------------------------------------ the weights file
def _model_of(runner):
    from mmengine.model import is_model_wrapper
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def check_checkpoint(runner, what: Optional[str] = None) -> None:
    """The file mmengine is about to load (``load_from``, ``--resume FILE``, tools/test.py's
    CHECKPOINT) must be readable (weights-only), fit the built model exactly (mmengine itself only
    warns and goes on with random weights), and for a resume be a checkpoint the runner wrote.
    Remote URLs are left to mmengine; so is auto-resume (``resume=True`` without a file), whose
    file is chosen by mmengine's (patched) lookup. ``what`` names the file's origin in messages
    (default: ``--resume`` or ``load_from``)."""
    path = runner._load_from
    if not isinstance(path, str) or ('://' in path and not path.startswith(SCHEME)):
        return
    what = what or ('--resume' if runner._resume else 'load_from')
    local = resolve_path(path)
    if not osp.exists(local):
        raise CheckpointError(f'{what}: checkpoint not found: {path}')
    raw = read_checkpoint(local, mmap=True)
    if runner._resume:
        from .engine.checkpoint import zip_damage
        damage = zip_damage(local)
        if damage:
            raise CheckpointError(f'--resume {path} {damage}; resume from an earlier checkpoint '
                                  '(or pass --resume alone to pick the newest complete one)')
        meta = raw.get('meta') if isinstance(raw, dict) else None
        if not (isinstance(meta, dict) and {'epoch', 'iter'} <= set(meta) and
                isinstance(raw.get('state_dict'), dict) and 'message_hub' in raw):
            raise CheckpointError(
                f'--resume {path}: not a checkpoint the runner wrote (it needs the meta '
                'epoch/iter, state_dict and message_hub of an epoch_N.pth / iter_N.pth); to '
                f'start from these weights instead, drop --resume and pass --cfg-options '
                f'load_from={path}')
    # what mmengine's load_checkpoint takes as the weights: the 'state_dict', minus 'module.'
    weights = raw.get('state_dict') if isinstance(raw, dict) else None
    weights = weights if isinstance(weights, dict) else raw
    as_state_dict(weights, path)  # a bare tensor, a list, a dict of no tensors: refused by name
    weights = {re.sub(r'^module\.', '', k): v for k, v in weights.items()}
    model = _model_of(runner)
    problems = mismatches(model.state_dict(), weights, limit=6)
    if problems:
        found = unwrap(raw) if isinstance(raw, dict) else weights  # the format, for the hint
        raise CheckpointError(
            f'{what} {path} does not fit the model {type(model).__name__}: '
            f'{"; ".join(problems)}; {converter_hint(found)}')


def prepare_runner_cfg(cfg: Config, args, config_path: str) -> Config:
    """Apply the command-line switches shared by training and testing."""
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        # NCCL needs GPUs: CPU-only machines run distributed jobs over gloo
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if getattr(args, 'amp', False):
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); drop --amp on CPU')
        wrapper = cfg.optim_wrapper if 'optim_wrapper' in cfg else None
        if wrapper is not None and wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
            if torch.cuda.is_bf16_supported():
                wrapper.setdefault('dtype', 'bfloat16')
        elif wrapper is None:
            cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    resume = getattr(args, 'resume', None)
    if resume == 'auto':
        from .engine.checkpoint import find_resume_checkpoint  # newest complete, else ConfigError
        cfg.resume, cfg.load_from = True, find_resume_checkpoint(cfg.work_dir)
    elif resume:
        if not osp.exists(resume):
            raise ConfigError(f'--resume: checkpoint not found: {resume}')
        cfg.resume, cfg.load_from = True, resume
    return cfg
