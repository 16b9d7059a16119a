"""Safe checkpoint I/O: every load is ``weights_only=True``; downloads are sha256-verified."""
import contextlib
import hashlib
import os
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional

import torch
from torch import nn

# wrappers that training scripts put around the weights, outermost first
_WRAPPERS = ('state_dict', 'model', 'model_state', 'module')


_HEX64 = re.compile(r'^[0-9a-f]{64}$')
_ZIP_MAGIC = b'PK\x03\x04'


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (unreadable, not a checkpoint, refused as unsafe, or
    not fitting the model); the message names the file and what to do."""


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


def check_sha256(sha256: str, what: str) -> str:
    """``sha256`` lower-cased; ValueError unless it is a full digest (64 hex digits): a prefix
    (or ``'5'``) would accept almost any file as verified."""
    digest = str(sha256).strip().lower()
    if not _HEX64.match(digest):
        raise ValueError(f'{what}: sha256 {sha256!r} is not a full sha256 digest (64 hex digits); '
                         'give the whole digest (`sha256sum FILE` prints it)')
    return digest


def _unsafe_global(message: str) -> Optional[str]:
    """The class or function a refused pickle asked for (torch's weights-only unpickler says
    ``GLOBAL module.name``), or None when the refusal was something else."""
    found = re.search(r'GLOBAL ([\w.]+)', message)
    return found.group(1) if found else None


def read_checkpoint(path: str, mmap: bool = False):
    """``torch.load(path, weights_only=True)`` on CPU, every failure a :class:`CheckpointError`
    naming the file and the likely cause (empty, truncated, not a PyTorch file, or refused because
    it holds pickled code: that payload never runs). ``mmap=True`` maps a zip-format file instead
    of reading its tensors (to look at keys and shapes cheaply). Returns the object as stored."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError as e:  # a directory, no permission, ...
        raise CheckpointError(f'checkpoint {path} cannot be read: {e.strerror or e}') from e
    if not head:
        raise CheckpointError(f'checkpoint {path} is empty (0 bytes): the save was interrupted or '
                              'the copy failed; use another checkpoint or save/download it again')
    is_zip = head == _ZIP_MAGIC
    try:
        with _allow_runner_globals():  # a runner checkpoint also holds its message hub (numpy, ...)
            return torch.load(path, map_location='cpu', weights_only=True, mmap=mmap and is_zip)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001  (a weights-only read: every failure is the file's)
        unsafe = _unsafe_global(str(e))
        if unsafe:
            raise CheckpointError(
                f'checkpoint {path} was refused: it needs {unsafe} to load, which a weights-only '
                'load does not run (a pickled object can execute code). Load it only if you trust '
                'its origin, and then re-save its tensors as a plain state dict '
                '(torch.save(model.state_dict(), ...))') from e
        if is_zip:
            why = 'is truncated or corrupt (its zip archive cannot be read)'
        elif head[:1] == b'\x80' or isinstance(e, EOFError):
            why = 'is truncated or corrupt, or was written by plain pickle instead of torch.save'
        else:
            why = 'is not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)'
        raise CheckpointError(f'checkpoint {path} {why}; use another checkpoint or save/download '
                              'it again') from e


def as_state_dict(obj, path: str) -> Dict:
    """The weights of a loaded checkpoint (:func:`unwrap`); CheckpointError naming ``path`` when
    it holds no dict of tensors (a bare tensor, a list, a dict of plain values)."""
    sd = unwrap(obj)
    if not isinstance(sd, dict):
        raise CheckpointError(f'checkpoint {path} holds a {type(obj).__name__}, not a state dict '
                              '(a dict of tensors, maybe inside {"state_dict": ...}); save '
                              'model.state_dict() instead')
    if not any(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f'checkpoint {path} holds no tensors (keys: '
                              f'{sorted(map(str, sd))[:8]}); it is not a model checkpoint')
    return sd


def load_state_dict_file(path: str, sha256: Optional[str] = None) -> Dict:
    """Load a local checkpoint with ``weights_only=True`` and unwrap it.

    Raises FileNotFoundError naming the path, ValueError when ``sha256`` is not a full digest or
    does not match, and :class:`CheckpointError` (a ValueError) when the file cannot be read or
    holds no state dict.
    """
    path = __import__(__package__ + '.zoo', fromlist=['zoo']).resolve_path(path)  # hvit://NAME: zoo
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if sha256:
        expected = check_sha256(sha256, path)
        digest = sha256sum(path)
        if digest != expected:
            raise ValueError(f'{path}: sha256 {digest} does not match the expected {expected}; the '
                             'file is corrupt or not the published one, download it again')
    return as_state_dict(read_checkpoint(path), path)


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
    """Download (once, into the torch hub cache) and load a checkpoint, refusing a sha256 mismatch.

    ``sha256`` must be the full digest (ValueError otherwise). A cached file that fails the check
    or cannot be read is deleted before the error is raised, so that downloading again can succeed.
    """
    if not sha256:
        raise ValueError(f'refusing to download {url} without an expected sha256')
    sha256 = check_sha256(sha256, url)
    cache_dir = cache_dir or os.path.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, os.path.basename(url.split('?')[0]))
    if not os.path.isfile(path):
        torch.hub.download_url_to_file(url, path, progress=True)  # writes via a temp file
    try:
        return load_state_dict_file(path, sha256)
    except ValueError as e:  # wrong digest or unreadable: never serve it from the cache again
        os.remove(path)
        raise ValueError(f'{e} (removed {path} from the cache: run again to download it '
                         'afresh)') from e


def strict_load(module: nn.Module, state_dict: Dict, allow_missing: Iterable[str] = (),
                allow_unexpected: Iterable[str] = (), what: str = 'checkpoint') -> None:
    """``load_state_dict`` that names every mismatch and how to fix it.

    Keys listed (as prefixes) in ``allow_missing`` / ``allow_unexpected`` may be absent from /
    extra in ``state_dict`` (a new head, a dropped decoder); anything else raises a KeyError listing
    the keys, and shape mismatches raise listing both shapes.
    """
    own = module.state_dict()
    problems = mismatches(own, state_dict, allow_missing, allow_unexpected)
    if problems:
        lines = [f'{what} does not match {type(module).__name__}:']
        lines += [f'  {p}' for p in problems]
        lines.append('  check that the arch matches the checkpoint, or convert it first with '
                     'tools/model_converters/ (see hvit_mm.checkpoints)')
        raise KeyError('\n'.join(lines))
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)


def mismatches(own: Dict, state_dict: Dict, allow_missing: Iterable[str] = (),
               allow_unexpected: Iterable[str] = (), limit: int = 20) -> List[str]:
    """How ``state_dict`` fails to fit a model whose state dict is ``own``: one line per kind
    (missing keys, unexpected keys, shape mismatches; the first ``limit`` of each); empty when it
    fits. Keys under the ``allow_*`` prefixes are not counted."""
    allow_missing, allow_unexpected = tuple(allow_missing), tuple(allow_unexpected)
    missing = [k for k in own if k not in state_dict and not k.startswith(allow_missing)]
    unexpected = [k for k in state_dict if k not in own and not k.startswith(allow_unexpected)]
    shape = lambda v: tuple(v.shape) if hasattr(v, 'shape') else type(v).__name__  # noqa: E731
    shapes = [f'{k}: {shape(state_dict[k])} vs model {shape(own[k])}' for k in own
              if k in state_dict and shape(state_dict[k]) != shape(own[k])]
    lines = []
    if missing:
        lines.append(f'missing {len(missing)} keys: {missing[:limit]}')
    if unexpected:
        lines.append(f'unexpected {len(unexpected)} keys: {unexpected[:limit]}')
    if shapes:
        hint = ''
        if any(s.split(':')[0].split('.')[-1].startswith('pos_embed') for s in shapes):
            hint = (' (a position table of another grid: build the model with the img_size and '
                    'patch_size the checkpoint was trained with)')
        lines.append(f'shape mismatch: {shapes[:limit]}{hint}')
    return lines
