"""Safe checkpoint I/O: every load is ``weights_only=True``; downloads are sha256-verified."""
import contextlib
import hashlib
import os
from collections import OrderedDict
from typing import Dict, Iterable, Optional

import torch
from torch import nn

# wrappers that training scripts put around the weights, outermost first
_WRAPPERS = ('state_dict', 'model', 'model_state', 'module')


def sha256sum(path: str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


class StateDict(OrderedDict):
    """A state dict as read from a file, with the ``meta`` dict it was saved next to (mmengine's
    ``{'meta': ..., 'state_dict': ...}``; None for other files): the meta says which program and
    config wrote the weights (``hvit_mm.checkpoints.hvit`` recognises hvit_mm's own files by it)."""
    meta: Optional[Dict] = None


def unwrap(ckpt: Dict) -> Dict:
    """Take the weights out of ``{'state_dict': ...}`` (mmengine), ``{'model': ...}`` (MAE,
    MAE-Lite) or ``{'model_state': ...}`` (Hiera); anything else is returned as is. An mmengine
    file's weights come back as a :class:`StateDict` carrying its ``meta``."""
    meta = None
    while isinstance(ckpt, dict):
        inner = next((ckpt[k] for k in _WRAPPERS if isinstance(ckpt.get(k), dict)), None)
        if inner is None:
            break
        if meta is None and isinstance(ckpt.get('meta'), dict) and inner is ckpt.get('state_dict'):
            meta = ckpt['meta']
        ckpt = inner
    if meta is not None:
        sd = StateDict(ckpt)
        if hasattr(ckpt, '_metadata'):  # per-module versions that load_state_dict reads
            sd._metadata = ckpt._metadata
        sd.meta = meta
        return sd
    return ckpt


def load_state_dict_file(path: str, sha256: Optional[str] = None) -> Dict:
    """Load a local checkpoint with ``weights_only=True`` and unwrap it.

    Raises FileNotFoundError naming the path, or ValueError when ``sha256`` (full or prefix)
    does not match.
    """
    path = __import__(__package__ + '.zoo', fromlist=['zoo']).resolve_path(path)  # hvit://NAME: zoo
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if sha256:
        digest = sha256sum(path)
        if not digest.startswith(sha256.lower()):
            raise ValueError(f'{path}: sha256 {digest} does not match the expected {sha256}; the file '
                             'is corrupt or not the published one, download it again')
    with _allow_runner_globals():  # a runner checkpoint also holds its message hub (numpy, ...)
        return unwrap(torch.load(path, map_location='cpu', weights_only=True))


def _allow_runner_globals():
    """hvit_mm's loads read mmengine runner checkpoints whatever mmengine's version (the
    process-wide allow-list of ``hvit_mm.compat`` is applied only to the versions that need it)."""
    from ..compat import checkpoint_globals
    safe = getattr(torch.serialization, 'safe_globals', None)
    if safe is None:
        return contextlib.nullcontext()
    # only what is not allowed already: leaving the context removes what it added, and must not
    # take the process-wide allow-list (hvit_mm.compat) away with it
    allowed = torch.serialization.get_safe_globals()
    return safe([g for g in checkpoint_globals() if g not in allowed])


def load_url_verified(url: str, sha256: str, cache_dir: Optional[str] = None) -> Dict:
    """Download (once, into the torch hub cache) and load a checkpoint, refusing a sha256 mismatch."""
    if not sha256:
        raise ValueError(f'refusing to download {url} without an expected sha256')
    cache_dir = cache_dir or os.path.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, os.path.basename(url.split('?')[0]))
    if not os.path.isfile(path):
        torch.hub.download_url_to_file(url, path, progress=True)  # writes via a temp file
    return load_state_dict_file(path, sha256)


def strict_load(module: nn.Module, state_dict: Dict, allow_missing: Iterable[str] = (),
                allow_unexpected: Iterable[str] = (), what: str = 'checkpoint') -> None:
    """``load_state_dict`` that names every mismatch and how to fix it.

    Keys listed (as prefixes) in ``allow_missing`` / ``allow_unexpected`` may be absent from /
    extra in ``state_dict`` (a new head, a dropped decoder); anything else raises a KeyError listing
    the keys, and shape mismatches raise listing both shapes.
    """
    own = module.state_dict()
    allowed = lambda key, prefixes: any(key.startswith(p) for p in prefixes)  # noqa: E731
    missing = [k for k in own if k not in state_dict and not allowed(k, allow_missing)]
    unexpected = [k for k in state_dict if k not in own and not allowed(k, allow_unexpected)]
    shapes = [f'{k}: {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        lines = [f'{what} does not match {type(module).__name__}:']
        if missing:
            lines.append(f'  missing {len(missing)} keys: {missing[:20]}')
        if unexpected:
            lines.append(f'  unexpected {len(unexpected)} keys: {unexpected[:20]}')
        if shapes:
            lines.append(f'  shape mismatch: {shapes[:20]}')
        lines.append('  check that the arch matches the checkpoint, or convert it first with '
                     'tools/model_converters/ (see hvit_mm.checkpoints)')
        raise KeyError('\n'.join(lines))
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
