"""Checkpoints that survive faults: atomic writes, exact resume, fallback past a corrupt checkpoint.

What a SIGKILL can leave, and what happens on ``tools/train.py --resume``:

- **Atomic files.** ``hvit_mm.compat`` (patch ``atomic_checkpoints``) makes mmengine's local
  ``LocalBackend.put`` write a temp file in the same folder, fsync it and ``os.replace`` it, so an
  ``epoch_N.pth``/``iter_N.pth`` is either absent or complete. mmengine's ``CheckpointHook`` then
  writes ``last_checkpoint`` with a plain ``open(.., 'w')``, which truncates first: importing this
  module routes that one ``open`` through the same atomic write (:func:`_atomic_last_checkpoint`).
  Every codebase's run goes through both: mmpretrain, mmdet and mmseg all save through mmengine's
  ``Runner.save_checkpoint`` -> ``save_checkpoint`` -> ``LocalBackend.put`` and the stock hook.
- **Exact state.** mmengine saves model, optimizer (AMP scaler included), schedulers and message
  hub, but not the random number generators: ``Runner.resume`` re-applies the initial seed, so the
  masks, dropout and augmentations after a resume differ from an uninterrupted run.
  :class:`ResumeStateHook` saves the torch (CPU, and CUDA once initialised), numpy and python RNG
  states in each checkpoint and restores them right before the first batch after the resume is
  loaded (after mmengine's re-seeding and after ``IterBasedTrainLoop`` has advanced the dataloader
  past the batches already trained on). :func:`enable_exact_resume` adds the hook to every run of
  ``tools/train.py`` and, when the config leaves ``randomness.seed`` unset, pins it to the
  checkpoint's seed, so the sampler order and the dataloader workers' seeds are those of the first
  run too.
- **Fallback.** :func:`find_resume_checkpoint` checks the newest checkpoint (non-empty, a zip whose
  CRCs match, loadable with ``weights_only=True``, holds ``meta`` and ``state_dict``); a corrupt
  one is reported by name on one ``hvit_mm: warning:`` line and the previous one is tried. When
  checkpoints were written but none is complete, it raises :class:`ConfigError`.

What is exact: the losses after a resume equal an uninterrupted run's, with ``num_workers=0``
(tests/engine/test_resume_faults.py) and with workers (each worker is seeded by mmengine's
``worker_init_fn`` from the pinned seed, and the dataloader advance replays the skipped batches
through the same workers in the same order), and in distributed runs resumed with the same number
of processes (each rank gets its own states back); the last two were checked by hand on CPU
(2 persistent workers; 2 gloo processes). Not covered: a resume with another world size (the
states are not restored, mmengine re-seeds); an ``EpochBasedTrainLoop`` resumed from a mid-epoch
(``by_epoch=False``) checkpoint restarts that epoch (mmengine's loop), so its data differ whatever
the RNG; non-deterministic kernels (cuDNN autotuning, atomics) differ run to run regardless. Note
that mmengine's advance loads every batch since iteration 0 again, which takes a while late in a
long iteration-based run.
"""
import glob
import io
import os
import os.path as osp
import random
import re
import zipfile
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from .. import compat
from ..config_check import ConfigError, warn
from .hooks import ensure_hook
from ..registry import register_module

_CKPT_NAME = re.compile(r'(?P<prefix>.*?)(?P<step>\d+)\.pth')


# ---------------------------------------------------------------- atomic ``last_checkpoint``
class _AtomicFile:
    """What ``open(path, 'w')`` returns, except that the content lands with :func:`atomic_write`
    when the ``with`` block ends without an error (nothing is written otherwise)."""

    def __init__(self, path: str, mode: str, encoding: Optional[str]):
        self._path, self._mode, self._encoding = path, mode, encoding
        self._buf = io.BytesIO() if 'b' in mode else io.StringIO()

    def write(self, data):
        return self._buf.write(data)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            compat.atomic_write(self._path, self._buf.getvalue(), self._mode, self._encoding)


def _open(file, mode='r', *args, encoding=None, **kwargs):
    if isinstance(file, (str, os.PathLike)) and mode in ('w', 'wb', 'wt'):
        return _AtomicFile(os.fspath(file), mode.replace('t', ''), encoding)
    return open(file, mode, *args, encoding=encoding, **kwargs)


def _atomic_last_checkpoint() -> None:
    """``CheckpointHook`` writes ``last_checkpoint`` with the builtin ``open``; a module global of
    that name takes precedence, so only that module's writes change."""
    from mmengine.hooks import checkpoint_hook
    checkpoint_hook.open = _open


if compat.patches_for(compat.MMENGINE):  # the mmengine releases whose CheckpointHook was read
    _atomic_last_checkpoint()


# ---------------------------------------------------------------- checking and picking
def zip_damage(path: str) -> Optional[str]:
    """How a zip-format (torch >= 1.6) file is damaged, or None (also for other formats). Every
    record carries a CRC, which torch's reader skips: a flipped byte would otherwise load."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f'is truncated or damaged ({e})'
    return f'is damaged (CRC mismatch in {bad})' if bad is not None else None


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be resumed from, or None when it is a complete training checkpoint."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f'cannot be read ({e.strerror})'
    if size == 0:
        return 'is empty (0 bytes)'
    damage = zip_damage(path)
    if damage:
        return damage
    from ..checkpoints.io import CheckpointError, read_checkpoint
    try:  # mmap: structure and pickle safety without reading the tensors again
        ckpt = read_checkpoint(path, mmap=True)
    except CheckpointError as e:  # its message names the file and the cause, one line
        return str(e).split(f'checkpoint {path} ', 1)[-1]
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or not {'epoch', 'iter'} <= set(meta) or 'state_dict' not in ckpt:
        return 'is not a training checkpoint (it lacks meta.epoch / meta.iter / state_dict)'
    return None


def _remove_stale_temps(folder: str) -> None:
    """Temp files of checkpoint saves that a kill interrupted (``compat.atomic_write`` names them
    ``.<name>.<hex>.tmp``); a half-written ViT-L checkpoint is gigabytes."""
    if int(os.environ.get('RANK', '0')) != 0:
        return
    for tmp in glob.glob(osp.join(glob.escape(folder), '.*.pth.*.tmp')):
        if _CKPT_NAME.fullmatch(osp.basename(tmp)[1:].rsplit('.', 2)[0]):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The newest complete checkpoint that ``work_dir/last_checkpoint`` and its folder hold.

    Candidates are the file ``last_checkpoint`` names, then every ``<prefix>N.pth`` of its folder
    with the same prefix (``iter_``/``epoch_``), newest first. Returns None when there is nothing to
    resume (no ``last_checkpoint`` and no checkpoint; or a remote ``last_checkpoint``, which
    mmengine handles). Raises ConfigError when checkpoints were saved but none is complete.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
        if named and '://' in named:
            return None
    # a work dir moved since (another mount, another machine): look in it, not where it was
    folder = osp.dirname(named) if named and osp.isdir(osp.dirname(named) or '.') else work_dir
    if named and not osp.isfile(named) and osp.isfile(osp.join(folder, osp.basename(named))):
        named = osp.join(folder, osp.basename(named))
    match = _CKPT_NAME.fullmatch(osp.basename(named)) if named else None
    found = []
    for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
        m = _CKPT_NAME.fullmatch(osp.basename(path))
        if m is None or path == named:
            continue
        if match is None and m['prefix'] in ('iter_', 'epoch_') or match is not None and (
                m['prefix'] == match['prefix'] and int(m['step']) < int(match['step'])):
            found.append((int(m['step']), path))  # never newer than last_checkpoint: a stale run's
    candidates = [p for _, p in sorted(found, reverse=True)]
    if named and osp.isfile(named):
        candidates.insert(0, named)
    if not candidates and named is None:
        return None
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            _remove_stale_temps(folder)  # only once resuming: an error leaves the folder as it was
            return path
        rest = candidates[candidates.index(path) + 1:]
        warn(f'checkpoint {path} {problem}; '
              + (f'trying the previous one ({rest[0]})' if rest else 'no older checkpoint left'))
    raise ConfigError(
        f'--resume: no complete checkpoint to resume from in {folder} (last_checkpoint names '
        f'{named or "nothing"}); resume from a checkpoint file with --resume CKPT, or start afresh '
        f'with another --work-dir')


# ---------------------------------------------------------------- RNG state
def rng_state() -> dict:
    """The generators training draws from, as plain tensors/tuples (``weights_only``-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(torch=torch.get_rng_state(), python=random.getstate(),
                 numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                            has_gauss=int(has_gauss), gauss=float(gauss)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`rng_state`; CUDA states are restored for the devices both runs have."""
    torch.set_rng_state(state['torch'].cpu())
    random.setstate(_as_tuple(state['python']))
    n = state['numpy']
    np.random.set_state(('MT19937', n['keys'].numpy().astype(np.uint32), n['pos'], n['has_gauss'],
                         n['gauss']))
    if state.get('cuda') and torch.cuda.is_available():
        for i, s in enumerate(state['cuda'][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s.cpu(), i)


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


class _RestoreBeforeBatch:
    """Stands in for ``IterBasedTrainLoop.dataloader_iterator`` while the loop advances past the
    ``skip`` batches already trained on; restores the RNG before the next one is loaded."""

    def __init__(self, loop, inner, skip: int, state: dict):
        self._loop, self._inner, self._skip, self._state = loop, inner, skip, state

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip > 0:
            self._skip -= 1
        else:
            set_rng_state(self._state)
            self._loop.dataloader_iterator = self._inner
        return next(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@register_module('HOOKS')
class ResumeStateHook(Hook):
    """Saves the RNG states in every checkpoint (``checkpoint['rng']``) and restores them on
    resume, so the iterations after a resume draw the same masks, dropout and augmentations as an
    uninterrupted run. Distributed runs gather every rank's states when the checkpoint hook is
    about to save (only rank 0 writes), and each rank gets its own back on a resume with the same
    world size. Validation is made RNG-neutral (states saved before, restored after), since a
    checkpoint is written before the validation that follows it while the resumed run skips it.
    """

    priority = 'LOW'  # before CheckpointHook (VERY_LOW): the ranks' states are gathered first

    def __init__(self):
        self._pending = None
        self._around_val = None
        self._ranks = None

    @staticmethod
    def _will_save(runner, by_epoch: bool) -> bool:
        """Whether the runner's CheckpointHook saves at the end of this iteration / epoch (its own
        conditions)."""
        from mmengine.hooks import CheckpointHook
        for h in runner.hooks:
            if isinstance(h, CheckpointHook) and h.by_epoch == by_epoch:
                if by_epoch:
                    return h.every_n_epochs(runner, h.interval, h.save_begin) or (
                        h.save_last and h.is_last_train_epoch(runner))
                return h.every_n_train_iters(runner, h.interval, h.save_begin) or (
                    h.save_last and h.is_last_train_iter(runner))
        return False

    def _gather(self, runner, by_epoch: bool) -> None:
        if runner.world_size > 1 and self._will_save(runner, by_epoch):
            from mmengine.dist import all_gather_object
            self._ranks = all_gather_object(rng_state())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._gather(runner, by_epoch=False)

    def after_train_epoch(self, runner) -> None:
        self._gather(runner, by_epoch=True)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # a save during validation (save_best) records the state training goes on from
        state = self._around_val if self._around_val is not None else rng_state()
        checkpoint['rng'] = dict(state, world_size=runner.world_size)
        if self._ranks is not None and len(self._ranks) == runner.world_size:
            checkpoint['rng']['ranks'] = self._ranks
        self._ranks = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        rng = checkpoint.get('rng')
        meta = checkpoint.get('meta') or {}
        if rng is None:
            return
        saved = rng.get('world_size', 1)
        if saved > 1:
            rng = rng['ranks'][runner.rank] if len(rng.get('ranks') or ()) == runner.world_size \
                else None
        if saved != runner.world_size or rng is None:
            runner.logger.warning(
                f'ResumeStateHook: the checkpoint holds the RNG states of {saved} process(es), '
                f'this run has {runner.world_size}: they are not restored (mmengine re-seeds)')
            return
        self._pending = (meta.get('epoch'), meta.get('iter'), rng)

    def _resumed_state(self, runner) -> Optional[dict]:
        """The saved state if this run resumed (not ``load_from``) from that checkpoint."""
        if self._pending is None:
            return None
        epoch, it, rng = self._pending
        self._pending = None
        return rng if (epoch, it) == (runner.epoch, runner.iter) and it else None

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if not hasattr(loop, 'dataloader_iterator'):
            return  # EpochBasedTrainLoop: restored in before_train_epoch
        rng = self._resumed_state(runner)
        if rng is not None:
            loop.dataloader_iterator = _RestoreBeforeBatch(loop, loop.dataloader_iterator,
                                                           runner.iter, rng)

    def before_train_epoch(self, runner) -> None:
        rng = self._resumed_state(runner)
        if rng is not None:
            set_rng_state(rng)

    def before_val(self, runner) -> None:
        self._around_val = rng_state()

    def after_val(self, runner) -> None:
        if self._around_val is not None:
            set_rng_state(self._around_val)
            self._around_val = None


def _checkpoint_seed(path: str) -> Optional[int]:
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ConfigError(f'--resume: checkpoint {path} {problem}; pass a complete checkpoint')
    meta = torch.load(path, map_location='cpu', weights_only=True,
                      mmap=zipfile.is_zipfile(path))['meta']
    return meta.get('seed')


def enable_exact_resume(cfg):
    """Add :class:`ResumeStateHook` to ``cfg.custom_hooks`` (unless there) and, when resuming from
    a file with no seed in the config, pin ``randomness.seed`` to the checkpoint's. Returns cfg."""
    ensure_hook(cfg, 'ResumeStateHook')
    if cfg.get('resume') and cfg.get('load_from') and '://' not in str(cfg.load_from):
        randomness = dict(cfg.get('randomness') or {})
        if randomness.get('seed') is None:
            seed = _checkpoint_seed(cfg.load_from)
            if seed is not None:
                randomness['seed'] = seed
                cfg.randomness = randomness
    return cfg
