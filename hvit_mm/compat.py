"""What ``import hvit_mm`` changes in mmengine, so mmengine / mmcv 2.1 / mmdet 3.3 / mmseg 1.2 run
on PyTorch >= 2.6 and numpy 2. Nothing in site-packages is edited.

Every change is one entry of :data:`PATCHES`, applied only for the mmengine versions known to need
it (``versions``: from 0.8.3, the oldest that mmpretrain 1.2 accepts, to 0.10.7, the newest release
checked; the sources of these releases have the same faulty code). A newer mmengine gets none of
them (and a warning) until it is checked; :data:`APPLIED` lists what this process got.

1. ``weights_only``: torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine
   <= 0.10.7 calls ``torch.load`` without the argument, so resuming from, or ``load_from``-ing,
   the runner's own checkpoints fails (``Unsupported global: ...HistoryBuffer``). Rather than turn
   the safety off (as mmengine's main branch did after 0.10.7: ``weights_only=False``), the
   plain-data types mmengine writes into checkpoints (``HistoryBuffer``, numpy arrays, dtypes,
   scalars: :func:`checkpoint_globals`) are allow-listed process-wide, and ``HistoryBuffer`` no
   longer pickles its statistics functions. hvit_mm's own loads
   (``hvit_mm.checkpoints.load_state_dict_file``) allow the same list around each load, so they
   read runner checkpoints on every mmengine.
2. ``collate_scope``: a ``collate_fn=dict(type=..., _scope_=...)`` inherited from a package base
   (``mmpretrain::...``) reaches ``functools.partial(collate_fn, _scope_=...)`` in
   ``Runner.build_dataloader`` and fails on the first batch; the ``_scope_`` key is dropped.
3. ``cpu_distributed``: ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` and DDP gets
   ``device_ids`` even when mmengine's own ``get_device()`` is ``'cpu'``, so ``dist_train.sh``
   cannot run on CPU. Only then is the process group initialised with ``gloo`` and
   ``device_ids`` dropped; CUDA, NPU, MLU and MUSA keep mmengine's path.
4. ``atomic_checkpoints``: ``LocalBackend.put``/``put_text`` write in place, so a job killed while
   saving leaves a truncated ``epoch_N.pth`` (and ``last_checkpoint`` pointing at it). Local
   writes go through a temp file in the same folder + fsync + ``os.replace``; the file gets the
   mode a plain ``open`` gives it (umask-derived when new, unchanged when overwritten).
5. ``resume_lookup``: ``find_latest_checkpoint`` returns whatever ``last_checkpoint`` names. When
   that is a local file that does not exist (the save never completed), the newest complete
   ``iter_N.pth``/``epoch_N.pth`` of the folder is taken instead; otherwise mmengine's answer
   stands (remote URIs and a missing ``last_checkpoint`` included).
"""
import functools
import glob
import os
import os.path as osp
import re
import secrets
import stat
import warnings
from typing import Callable, List, NamedTuple, Optional, Tuple

import mmengine
import numpy as np
import torch
from packaging.version import Version

MMENGINE = Version(mmengine.__version__)
# hvit_mm's oldest supported mmengine (mmpretrain 1.2 requires >= 0.8.3) and the newest release
# whose source was checked for each problem below
OLDEST, NEWEST_CHECKED = '0.8.3', '0.10.7'


class Patch(NamedTuple):
    name: str
    apply: Callable[[], None]
    versions: Tuple[str, str]  # inclusive range of mmengine versions known to need it
    why: str


@functools.lru_cache(maxsize=None)
def _numpy_globals():
    """The globals numpy arrays, dtypes and scalars pickle through (numpy 1.x and 2.x names)."""
    found = [np.ndarray, np.dtype]
    multiarray = getattr(np, '_core', None) or np.core
    found += [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar]
    # a pickled dtype refers to its concrete class, e.g. numpy.dtypes.Float64DType
    found += [type(np.dtype(t)) for t in np.sctypeDict.values() if isinstance(t, type)]
    return tuple(dict.fromkeys(found))


def checkpoint_globals() -> list:
    """What mmengine's runner writes into checkpoints besides tensors (numpy, ``HistoryBuffer``):
    plain data, safe for ``weights_only=True`` loads."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return list(_numpy_globals()) + [HistoryBuffer]


def _history_buffer_getstate(self) -> dict:
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)  # functions: rebuilt from the class in __setstate__
    return state


def allow_mmengine_checkpoints():
    """Allow-list :func:`checkpoint_globals` process-wide, for mmengine's own ``torch.load``; and
    stop ``HistoryBuffer`` from pickling its statistics functions (mmengine's ``__getstate__``
    puts the class-level ``_statistics_methods`` into every saved buffer: a ``getattr`` global
    that no weights_only load accepts, and ``__setstate__`` restores them from the class anyway)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(checkpoint_globals())


def _new_file_mode(path: str) -> int:
    """The permission bits ``open(path, 'w')`` leaves: an overwritten file keeps its own."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return -1  # a new file: the kernel applies the umask (and default ACLs) at creation


def atomic_write(path: str, data, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one; the file
    gets the same permission bits as with a plain ``open(path, mode)``."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    keep = _new_file_mode(path)
    while True:  # own temp name: tempfile.mkstemp would force mode 0600
        tmp = osp.join(directory, f'.{osp.basename(path)}.{secrets.token_hex(6)}.tmp')
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_BINARY', 0),
                         0o666)
            break
        except FileExistsError:
            continue
    try:
        if keep >= 0:
            os.chmod(tmp, keep)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_local_backend():
    from mmengine.fileio.backends.local_backend import LocalBackend

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), obj, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(str(filepath), obj, 'w', encoding)

    LocalBackend.put, LocalBackend.put_text = put, put_text


def _is_local(path: str) -> bool:
    return '://' not in path  # s3://, petrel://, http://: mmengine's other file backends


def find_latest_checkpoint(path: str) -> Optional[str]:
    """mmengine's lookup, except when ``last_checkpoint`` names a local file that does not exist:
    then the newest ``iter_N.pth`` / ``epoch_N.pth`` in ``path`` (None when there is none)."""
    last = _mmengine_find_latest_checkpoint(path)
    if not last or not _is_local(last) or osp.isfile(last):
        return last
    found = []
    for ckpt in glob.glob(osp.join(glob.escape(path), '*.pth')):
        m = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(ckpt))
        if m:
            found.append((int(m.group(1)), ckpt))
    return max(found)[1] if found else None


def _mmengine_find_latest_checkpoint(path: str) -> Optional[str]:
    import mmengine.runner.checkpoint as checkpoint
    original = checkpoint.find_latest_checkpoint
    return getattr(original, '__wrapped__', original)(path)


def _safe_resume_lookup():
    import mmengine.runner.checkpoint as checkpoint
    import mmengine.runner.runner as runner
    if checkpoint.find_latest_checkpoint is not find_latest_checkpoint:
        find_latest_checkpoint.__wrapped__ = checkpoint.find_latest_checkpoint
    checkpoint.find_latest_checkpoint = find_latest_checkpoint
    runner.find_latest_checkpoint = find_latest_checkpoint


def _on_cpu() -> bool:
    """mmengine's own device choice (cuda / npu / mlu / musa / mps / cpu), not "no CUDA"."""
    from mmengine import device
    return device.get_device() == 'cpu'


def _cpu_aware_init_dist():
    import mmengine.dist.utils as dist_utils
    if getattr(dist_utils._init_dist_pytorch, '_hvit_mm', False):
        return

    def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if not _on_cpu() or init_backend != 'torch':
            return init_dist_pytorch.__wrapped__(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend='gloo' if backend == 'nccl' else backend,
                                             **kwargs)

    init_dist_pytorch.__wrapped__ = dist_utils._init_dist_pytorch
    init_dist_pytorch._hvit_mm = True
    dist_utils._init_dist_pytorch = init_dist_pytorch

    from mmengine.model.wrappers.distributed import MMDistributedDataParallel

    def __init__(self, *args, **kwargs):
        if _on_cpu():  # device_ids must be None for CPU modules
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        __init__.__wrapped__(self, *args, **kwargs)

    __init__.__wrapped__ = MMDistributedDataParallel.__init__
    __init__._hvit_mm = True
    MMDistributedDataParallel.__init__ = __init__


def _collate_without_scope():
    from mmengine.runner import Runner
    original = Runner.build_dataloader
    if getattr(original, '_hvit_mm', False):
        return

    def build_dataloader(dataloader, seed=None, diff_rank_seed=False):
        collate = dataloader.get('collate_fn') if isinstance(dataloader, dict) else None
        if isinstance(collate, dict) and '_scope_' in collate:
            dataloader = dict(dataloader)
            dataloader['collate_fn'] = {k: v for k, v in collate.items() if k != '_scope_'}
        return original(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)

    build_dataloader._hvit_mm = True
    Runner.build_dataloader = staticmethod(build_dataloader)


_KNOWN = (OLDEST, NEWEST_CHECKED)
# Each ``versions`` range is where the faulty code was read in mmengine's release sources; ``why``
# says what fails there (details in the module docstring).
PATCHES: List[Patch] = [
    # 0.8.3-0.10.7 call torch.load(...) bare; fixed upstream after 0.10.7 (#1670, not released)
    Patch('weights_only', allow_mmengine_checkpoints, _KNOWN,
          'calls torch.load without weights_only, which torch >= 2.6 defaults to True'),
    # 0.8.3-0.10.7 (and main): build_dataloader passes every collate_fn key but 'type' on
    Patch('collate_scope', _collate_without_scope, _KNOWN,
          'passes an inherited collate_fn _scope_ to the collate function'),
    # 0.8.3-0.10.7 (and main): the non-NPU/MLU/MUSA branch is CUDA-only
    Patch('cpu_distributed', _cpu_aware_init_dist, _KNOWN,
          'calls torch.cuda.set_device and passes DDP device_ids on CPU-only hosts'),
    # 0.8.3-0.10.7 (and main): LocalBackend.put is open(path, 'wb').write
    Patch('atomic_checkpoints', _atomic_local_backend, _KNOWN,
          'writes checkpoints in place: a killed save leaves a truncated file'),
    # 0.8.3-0.10.7 (and main): find_latest_checkpoint returns last_checkpoint's text unchecked
    Patch('resume_lookup', _safe_resume_lookup, _KNOWN,
          'resumes from last_checkpoint even when it names a file that was never completed'),
]


def patches_for(version) -> List[Patch]:
    """The patches a given mmengine version needs."""
    v = Version(str(version))
    return [p for p in PATCHES if Version(p.versions[0]) <= v <= Version(p.versions[1])]


def _apply() -> List[str]:
    applied = patches_for(MMENGINE)
    for patch in applied:
        patch.apply()
    if MMENGINE > Version(NEWEST_CHECKED):
        warnings.warn(f'hvit_mm.compat: mmengine {MMENGINE} is newer than {NEWEST_CHECKED}, the '
                      'newest release its fixes were checked against; none is applied '
                      f'({", ".join(p.name for p in PATCHES)}). See hvit_mm/compat.py.',
                      stacklevel=2)
    return [p.name for p in applied]


APPLIED: List[str] = _apply()
