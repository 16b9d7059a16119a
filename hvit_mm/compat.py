"""Fixes that let mmengine 0.10.7 / mmcv 2.1 / mmdet 3.3 / mmseg 1.2 run on PyTorch >= 2.6 and numpy 2.

Applied once, on ``import hvit_mm``; nothing in site-packages is edited.

* ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and mmengine 0.10.7 calls it
  without the argument, so resuming from, or ``load_from``-ing, the runner's own checkpoints fails
  (``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``). Rather than turn the
  safety off, the few plain-data types mmengine writes into its checkpoints are allow-listed, so every
  load, of downloaded files too, stays ``weights_only=True``.
"""
import glob
import os
import os.path as osp
import re
import tempfile

import numpy as np
import torch


def _numpy_globals():
    """The globals numpy arrays, dtypes and scalars pickle through (numpy 1.x and 2.x names)."""
    found = [np.ndarray, np.dtype]
    multiarray = getattr(np, '_core', None) or np.core
    found += [multiarray.multiarray._reconstruct, multiarray.multiarray.scalar]
    # a pickled dtype refers to its concrete class, e.g. numpy.dtypes.Float64DType
    found += [type(np.dtype(t)) for t in np.sctypeDict.values() if isinstance(t, type)]
    return list(dict.fromkeys(found))


def _mmengine_globals():
    from mmengine.logging.history_buffer import HistoryBuffer
    return [HistoryBuffer]


def _history_buffer_getstate(self) -> dict:
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)  # functions: rebuilt from the class in __setstate__
    return state


def allow_mmengine_checkpoints():
    """Allow-list what mmengine's runner writes into checkpoints for ``weights_only=True`` loads."""
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    torch.serialization.add_safe_globals(_numpy_globals() + _mmengine_globals())


def atomic_write(path: str, data, mode: str = 'wb', encoding=None) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
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


def find_latest_checkpoint(path: str):
    """mmengine's lookup, made safe: the file named in ``last_checkpoint`` if it exists, else the
    newest ``iter_N.pth`` / ``epoch_N.pth`` in ``path``; None when there is none."""
    save_file = osp.join(path, 'last_checkpoint')
    if osp.exists(save_file):
        with open(save_file) as f:
            last = f.read().strip()
        if last and osp.isfile(last):
            return last
    found = []
    for ckpt in glob.glob(osp.join(path, '*.pth')):
        m = re.fullmatch(r'(?:iter|epoch)_(\d+)\.pth', osp.basename(ckpt))
        if m:
            found.append((int(m.group(1)), ckpt))
    return max(found)[1] if found else None


def _safe_resume_lookup():
    import mmengine.runner.checkpoint as checkpoint
    import mmengine.runner.runner as runner
    checkpoint.find_latest_checkpoint = find_latest_checkpoint
    runner.find_latest_checkpoint = find_latest_checkpoint


def _cpu_aware_init_dist():
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_hvit_mm', False):
        return

    def init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        torch.distributed.init_process_group(backend='gloo' if backend == 'nccl' else backend,
                                             **kwargs)

    init_dist_pytorch._hvit_mm = True
    dist_utils._init_dist_pytorch = init_dist_pytorch

    from mmengine.model.wrappers.distributed import MMDistributedDataParallel
    ddp_init = MMDistributedDataParallel.__init__

    def __init__(self, *args, **kwargs):
        if not torch.cuda.is_available():  # device_ids must be None for CPU modules
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        ddp_init(self, *args, **kwargs)

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


allow_mmengine_checkpoints()
_collate_without_scope()
_cpu_aware_init_dist()
_atomic_local_backend()
_safe_resume_lookup()
