"""Hooks shared by every codebase."""
import hashlib
import os.path as osp

import torch
import torch.distributed as dist
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.hooks import Hook

from ..registry import register_module


def param_digest(module: torch.nn.Module) -> str:
    """sha256 over every parameter, in name order (bit-exact identity of the trained weights).

    Buffers are left out on purpose: mmengine wraps models in DDP with ``broadcast_buffers=False``,
    so BatchNorm running statistics legitimately differ between ranks unless SyncBN is used.
    """
    h = hashlib.sha256()
    for name, t in sorted(module.named_parameters()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def type_name(cfg) -> str:
    """The class name a config dict's ``type`` names: scope dropped (``mmdet.X`` -> ``X``), a
    class object (lazy-import configs) by its ``__name__``; an already built object (a hook
    instance in ``custom_hooks``) by its class name."""
    if not isinstance(cfg, dict):
        return type(cfg).__name__ if cfg is not None else ''
    t = cfg.get('type', '')
    t = t if isinstance(t, str) else getattr(t, '__name__', '')
    return t.rsplit('.', 1)[-1]


def ensure_hook(cfg, name: str) -> None:
    """Append ``dict(type=name)`` to ``cfg.custom_hooks`` unless a hook of that type is listed
    (a config that configures it keeps its own arguments)."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(type_name(h) == name for h in hooks):
        hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


@register_module('HOOKS')
class ParamConsistencyHook(Hook):
    """After training, checks that every rank of a data-parallel run holds bit-identical parameters.

    Each rank writes ``work_dir/param_digest_rank{R}.txt``; rank 0 compares the gathered digests and
    raises if any differs (a broken all-reduce, an unsynchronised buffer, a rank-dependent init).
    """

    priority = 'VERY_LOW'

    def after_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        digest = param_digest(model)
        with open(osp.join(runner.work_dir, f'param_digest_rank{get_rank()}.txt'), 'w') as f:
            f.write(digest)
        digests = [digest]
        if is_distributed():
            digests = [None] * get_world_size()
            dist.all_gather_object(digests, digest)
        runner.logger.info(f'parameter digests per rank: {digests}')
        if len(set(digests)) != 1:
            raise RuntimeError(f'ranks hold different parameters after training: {digests}')
