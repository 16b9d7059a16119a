"""The model zoo: ``hvit://NAME`` names a published checkpoint; used anywhere a path is accepted.

The manifest is ``model-index.yml`` (OpenMMLab: an ``Import`` list of ``configs/*/metafile.yml``),
whose ``Checkpoints`` sections list each file: ``Name``, ``Weights`` (URL), ``Converter`` (a
registered :mod:`hvit_mm.checkpoints` format), ``License``, ``SHA256`` (full digest, or empty when
the publisher gives none) ... (schema: docs/model_zoo.md). The first use of a name

1. downloads the file with a progress bar under a temporary name, verifies it (the manifest's
   sha256, the publisher's md5 prefix), and only then renames it into the cache;
2. loads it with ``weights_only=True`` (a file holding pickled code is refused, never executed);
3. converts it (``to_hvit(sd, fmt=<Converter>)``) and caches ``{'meta', 'state_dict'}`` atomically;
4. records the sha256 of both files in ``hashes.json``: for a file the publisher gave no sha256
   this is trust on first use (with a warning asking the user to compare it with the publisher's).

Later uses read the cache only and check both files against the record; a file that does not match
is removed and refused. Cache: ``$HVIT_MM_HOME``, else ``torch.hub.get_dir()/hvit_mm``::

    hashes.json                 NAME -> url, sha256, size, converted_sha256, converter, version
    NAME/<published file name>  the file as published
    NAME/NAME.hvit.pth          converted to hvit_mm's layout (backbone.*, neck.*, head.fc.*, ...)

Environment: ``HVIT_MM_OFFLINE=1`` refuses every download (the error names the missing file);
``HVIT_MM_ZOO_URL_PREFIX`` fetches ``<prefix>/<file name>`` instead of the published URL (a mirror,
or a test server; the bytes must still match); ``HVIT_MM_ZOO_INDEX`` reads another manifest.
"""
import difflib
import hashlib
import http.client
import json
import os
import os.path as osp
import pickle
import re
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import yaml

from .io import unwrap
from .registry import CONVERTERS, to_hvit

SCHEME = 'hvit://'
REPO_INDEX = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                      'model-index.yml')
_HEX64 = re.compile(r'^[0-9a-f]{64}$')
_NAME = re.compile(r'^[a-z0-9][a-z0-9._+-]*$')
_CHUNK = 1 << 20
# manifest key -> ZooEntry field; any other key in a Checkpoints entry is refused (typos)
_KEYS = {'Name': 'name', 'Weights': 'url', 'Converter': 'converter', 'License': 'license',
         'SHA256': 'sha256', 'MD5 Prefix': 'md5_prefix', 'Size': 'size', 'File Name': 'file_name',
         'Format': 'format', 'In Collection': 'collection', 'Config': 'config',
         'Pending': 'pending', 'Description': 'description', 'Results': 'results'}
_FREE = ('Metadata', 'Notes')  # free-form, not read by the code


class ZooError(RuntimeError):
    """A zoo checkpoint that cannot be had or must not be used; the message says what to do."""


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint (a ``Checkpoints`` item of a metafile)."""
    name: str
    url: str
    converter: str
    license: str
    sha256: str = ''  # '' = the publisher gives none: trust on first use
    md5_prefix: str = ''  # MAE's README publishes md5 prefixes
    size: Optional[int] = None  # bytes, when known
    file_name: str = ''
    format: str = ''
    collection: str = ''
    config: Optional[str] = None  # repo-relative config that reproduces or evaluates it
    pending: Optional[str] = None  # why its converter is not in this version yet
    description: str = ''
    results: Tuple = ()
    source: str = ''  # the metafile it came from

    @property
    def filename(self) -> str:
        """The name the file is cached (and mirrored) under: ``File Name``, else the URL's last
        path part when it has an extension, else ``NAME.pth`` (Google-Drive URLs)."""
        if self.file_name:
            return self.file_name
        base = osp.basename(urllib.parse.urlparse(self.url).path)
        return base if '.' in base and not base.startswith('.') else f'{self.name}.pth'

    @property
    def drive(self) -> bool:
        return 'drive.google.com' in self.url


# ------------------------------------------------------------------------------------ manifest
def _read_yaml(path: str):
    with open(path, encoding='utf-8') as f:
        return yaml.load(f, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader)) or {}


def _parse_entry(item, path: str) -> ZooEntry:
    if not isinstance(item, dict) or 'Name' not in item:
        raise ZooError(f'{path}: every Checkpoints item needs a Name, got {item!r:.120}')
    name = str(item['Name'])
    where = f'{path}: {name}'
    unknown = sorted(set(item) - set(_KEYS) - set(_FREE))
    if unknown:
        raise ZooError(f'{where}: unknown keys {unknown}; allowed: {sorted(_KEYS) + list(_FREE)}')
    missing = [k for k in ('Weights', 'Converter', 'License') if not item.get(k)]
    if missing:
        raise ZooError(f'{where}: missing {missing}')
    if not _NAME.match(name):
        raise ZooError(f'{where}: names are lower-case letters, digits and ._+- only')
    fields = {_KEYS[k]: v for k, v in item.items() if k in _KEYS}
    sha = str(fields.get('sha256') or '').strip().lower()
    if sha and not _HEX64.match(sha):
        raise ZooError(f'{where}: SHA256 {sha!r} is not a full sha256 (64 hex digits); a prefix '
                       'cannot be verified safely: give the whole digest or leave it empty')
    md5 = str(fields.get('md5_prefix') or '').strip().lower()
    if md5 and not re.fullmatch(r'[0-9a-f]{1,32}', md5):
        raise ZooError(f'{where}: MD5 Prefix {md5!r} is not hexadecimal')
    file_name = str(fields.get('file_name') or '')
    if file_name and (osp.basename(file_name) != file_name or file_name.startswith('.')):
        raise ZooError(f'{where}: File Name {file_name!r} must be a plain file name')
    size = fields.get('size')
    if size is not None and (not isinstance(size, int) or size <= 0):
        raise ZooError(f'{where}: Size must be a positive number of bytes or empty')
    fields.update({k: str(fields[k]) for k in ('name', 'url', 'converter', 'license')})
    fields.update(sha256=sha, md5_prefix=md5, results=tuple(fields.get('results') or ()),
                  source=path)
    return ZooEntry(**{k: v for k, v in fields.items() if v is not None})


def _collect(path: str, out: Dict[str, ZooEntry], stack: Tuple[str, ...]) -> None:
    path = osp.abspath(path)
    if path in stack:
        raise ZooError(f'{path}: imports itself (via {" -> ".join(stack)})')
    if not osp.isfile(path):
        raise ZooError(f'zoo manifest {path} not found' + (f' (imported by {stack[-1]})' if stack
                       else '; set HVIT_MM_ZOO_INDEX to a model-index.yml'))
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ZooError(f'{path}: a manifest is a mapping (Import, Collections, Models, '
                       'Checkpoints)')
    for rel in data.get('Import') or []:  # relative to this file's folder, as OpenMMLab's
        _collect(osp.join(osp.dirname(path), rel), out, stack + (path,))
    for item in data.get('Checkpoints') or []:
        entry = _parse_entry(item, path)
        if entry.name in out:
            raise ZooError(f'checkpoint name {entry.name!r} is in both {out[entry.name].source} '
                           f'and {path}')
        out[entry.name] = entry


def load_manifest(index: Optional[str] = None) -> Dict[str, ZooEntry]:
    """All checkpoints of the manifest ``index`` (default ``$HVIT_MM_ZOO_INDEX``, else the repo's
    ``model-index.yml``), by name. Raises :class:`ZooError` on a malformed entry (unknown key, short
    sha256, duplicate name)."""
    out: Dict[str, ZooEntry] = {}
    _collect(index or os.environ.get('HVIT_MM_ZOO_INDEX') or REPO_INDEX, out, ())
    return out


def get_entry(name: str, index: Optional[str] = None) -> ZooEntry:
    """The entry of ``NAME`` or ``hvit://NAME``."""
    name = name[len(SCHEME):] if name.startswith(SCHEME) else name
    entries = load_manifest(index)
    if name not in entries:
        near = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
        raise ZooError(f'{SCHEME}{name} is not in the model zoo'
                       + (f' (did you mean {", ".join(near)}?)' if near else '')
                       + '; list the names with: python tools/model_converters/download.py --list')
    return entries[name]


# -------------------------------------------------------------------------------- cache files
def cache_dir() -> str:
    return os.environ.get('HVIT_MM_HOME') or osp.join(torch.hub.get_dir(), 'hvit_mm')


def _offline() -> bool:
    return os.environ.get('HVIT_MM_OFFLINE', '').lower() not in ('', '0', 'false', 'no')


def _paths(entry: ZooEntry) -> Tuple[str, str]:
    """(published file, converted file) in the cache."""
    folder = osp.join(cache_dir(), entry.name)
    return osp.join(folder, entry.filename), osp.join(folder, f'{entry.name}.hvit.pth')


def _records_path() -> str:
    return osp.join(cache_dir(), 'hashes.json')


def read_records() -> Dict[str, Dict]:
    """``hashes.json``: what this cache accepted, by name."""
    path = _records_path()
    if not osp.isfile(path):
        return {}
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except ValueError as e:  # a half-edited record must not silently drop the recorded hashes
        raise ZooError(f'{path} is not valid JSON ({e}); fix it or delete it (the files of the '
                       'checkpoints without a published sha256 are then trusted afresh)') from e


def _write_record(name: str, record: Optional[Dict]) -> None:
    from ..compat import atomic_write
    records = read_records()
    if record is None:
        records.pop(name, None)
    else:
        records[name] = record
    text = json.dumps(records, indent=1, sort_keys=True) + '\n'
    atomic_write(_records_path(), text, 'w', 'utf-8')


def _atomic_save(obj, path: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(path), prefix='.' + osp.basename(path) + '.',
                               suffix='.part')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)


_VERIFIED: Dict[Tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def _sha256(path: str) -> str:
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(_CHUNK), b''):
                h.update(block)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def _md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            h.update(block)
    return h.hexdigest()


def _remove(*paths: str) -> None:
    for p in paths:
        if osp.exists(p):
            os.unlink(p)


# ---------------------------------------------------------------------------------- download
class _SimpleBar:
    """Progress on stderr when tqdm is not installed."""

    def __init__(self, total: Optional[int], desc: str):
        self.total, self.desc, self.n, self.shown = total, desc, 0, time.monotonic()

    def update(self, n: int) -> None:
        self.n += n
        if time.monotonic() - self.shown > 0.5:  # at most two lines a second
            self.shown = time.monotonic()
            self._print()

    def _print(self) -> None:
        done = f'{self.n / 2**20:.1f}'
        if self.total:
            done += f'/{self.total / 2**20:.1f} MiB ({100 * self.n // self.total}%)'
        sys.stderr.write(f'\r{self.desc}: {done}')
        sys.stderr.flush()

    def close(self) -> None:
        self._print()
        sys.stderr.write('\n')


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: Optional[int], desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
        return tqdm(total=total, desc=desc, unit='B', unit_scale=True, unit_divisor=1024)
    except ImportError:
        return _SimpleBar(total, desc)


def _download(url: str, dst: str, entry: ZooEntry, expected: Dict[str, str],
              progress: bool) -> Tuple[str, int]:
    """``url`` -> ``dst``, verified before it gets that name. Returns (sha256, size)."""
    os.makedirs(osp.dirname(dst), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(dst), prefix='.' + osp.basename(dst) + '.',
                               suffix='.part')
    sha, md5, got, head = hashlib.sha256(), hashlib.md5(), 0, b''
    try:
        request = urllib.request.Request(url, headers={'User-Agent': 'hvit_mm'})
        with os.fdopen(fd, 'wb') as f, urllib.request.urlopen(request, timeout=60) as resp:
            if 'text/html' in resp.headers.get('Content-Type', ''):
                raise ZooError(_html_message(entry, url, dst))
            total = int(resp.headers.get('Content-Length') or 0) or None
            bar = _bar(total, f'{SCHEME}{entry.name}', progress)
            try:
                for block in iter(lambda: resp.read(_CHUNK), b''):
                    head = head or block[:64]
                    f.write(block)
                    sha.update(block)
                    md5.update(block)
                    got += len(block)
                    bar.update(len(block))
            finally:
                bar.close()
        if total is not None and got != total:
            raise ZooError(f'{SCHEME}{entry.name}: the download from {url} stopped after {got} of '
                           f'{total} bytes; nothing was kept, run again to start over')
        if head.lstrip().lower().startswith((b'<!doctype html', b'<html')):  # mislabelled page
            raise ZooError(_html_message(entry, url, dst))
        _check(entry, sha.hexdigest(), md5.hexdigest(), expected, url)
        os.replace(tmp, dst)
    except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, reset connections
        raise ZooError(f'{SCHEME}{entry.name}: could not download {url}: {e}; nothing was kept, '
                       'run again to start over' + _drive_hint(entry, dst)) from e
    finally:
        _remove(tmp)
    return sha.hexdigest(), got


def _drive_hint(entry: ZooEntry, dst: str) -> str:
    if not entry.drive:
        return ''
    file_id = urllib.parse.parse_qs(urllib.parse.urlparse(entry.url).query).get('id', ['?'])[0]
    return (f'. Google Drive often needs a browser for large files: open '
            f'https://drive.google.com/file/d/{file_id}/view, download the file and save it as '
            f'{dst}; the next use verifies and converts it')


def _html_message(entry: ZooEntry, url: str, dst: str) -> str:
    return (f'{SCHEME}{entry.name}: {url} answered with a web page, not a checkpoint'
            + (_drive_hint(entry, dst) if entry.drive else '; check the URL in ' + entry.source))


def _check(entry: ZooEntry, sha: str, md5: str, expected: Dict[str, str], what: str) -> None:
    """Refuse a file whose sha256 differs from the manifest's / the recorded one, or whose md5 does
    not start with the publisher's prefix."""
    want = expected.get('sha256')
    if want and sha != want:
        raise ZooError(f'{SCHEME}{entry.name}: {what} has sha256 {sha}, expected {want} ('
                       f'{expected["origin"]}); the file is corrupt or not the published one and '
                       'was refused (removed from the cache). Run again to download it afresh; if '
                       'this repeats, the published file changed: compare it with the publisher\'s')
    if entry.md5_prefix and not md5.startswith(entry.md5_prefix):
        raise ZooError(f'{SCHEME}{entry.name}: {what} has md5 {md5}, but the publisher lists '
                       f'{entry.md5_prefix}...; the file was refused (removed from the cache)')


# -------------------------------------------------------------------------------- the pipeline
def _expected(entry: ZooEntry, record: Optional[Dict]) -> Dict[str, str]:
    if entry.sha256:
        return dict(sha256=entry.sha256, origin=f'the manifest, {entry.source}')
    if record and record.get('sha256'):
        return dict(sha256=record['sha256'],
                    origin=f'recorded on first download, {record.get("recorded", "?")}')
    return dict(sha256='', origin='')


def _safe_load(path: str, entry: ZooEntry) -> Dict:
    """weights_only load; a file that needs anything else is removed and refused, not executed."""
    try:
        return unwrap(torch.load(path, map_location='cpu', weights_only=True))
    except pickle.UnpicklingError as e:
        _remove(path)
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or ['?']
        reason = next((ln for ln in lines if 'Unsupported' in ln or 'GLOBAL' in ln), lines[0])[:200]
        raise ZooError(f'{SCHEME}{entry.name}: {path} holds pickled code or objects other than '
                       f'tensors and plain containers ({reason}). It was refused without running '
                       'it and removed from the cache.') from e
    except Exception as e:  # truncated zip, not a torch file, ...
        _remove(path)
        raise ZooError(f'{SCHEME}{entry.name}: {path} is not a readable checkpoint ({e}); it was '
                       'removed from the cache, run again to download it afresh') from e


def _cached(entry: ZooEntry, record: Optional[Dict]) -> Optional[str]:
    """The converted file when the cache holds a good one; verifies both files against the record
    and removes (then refuses) one that does not match."""
    from .. import __version__
    raw, converted = _paths(entry)
    if not (record and osp.isfile(converted)):
        return None
    if entry.sha256 and record.get('sha256') != entry.sha256:  # trusted on first use, now pinned
        _remove(raw, converted)
        _write_record(entry.name, None)
        raise ZooError(f'{SCHEME}{entry.name}: the cache holds a file with sha256 '
                       f'{record.get("sha256")}, but {entry.source} now pins {entry.sha256}; it '
                       'was refused (removed from the cache). Run again to download the published '
                       'file.')
    for path, key in ((raw, 'sha256'), (converted, 'converted_sha256')):
        if osp.isfile(path) and _sha256(path) != record.get(key):
            _remove(path)
            if path == raw:
                _remove(converted)  # made from a file we can no longer vouch for
            raise ZooError(f'{SCHEME}{entry.name}: the cached {path} does not match the sha256 '
                           f'recorded when it was stored ({record.get(key)}); it was modified '
                           'after download and was refused (removed from the cache). Run again '
                           'to download it afresh.')
    if record.get('converter') != entry.converter or record.get('version') != __version__:
        if osp.isfile(raw):  # converted by another converter / hvit_mm version: redo from raw
            _remove(converted)
            return None
    return converted


def fetch(name: str, url_prefix: Optional[str] = None, index: Optional[str] = None,
          progress: bool = True) -> str:
    """Path of the converted checkpoint of ``NAME`` / ``hvit://NAME`` (``{'meta', 'state_dict'}``,
    hvit_mm's layout), downloading, verifying and converting it on first use (module docstring).
    Under torch.distributed, rank 0 fills the cache before the other ranks read it."""
    from mmengine.dist import barrier, get_dist_info
    rank, world = get_dist_info()
    if world > 1 and rank != 0:
        barrier()
    try:
        return _fetch(get_entry(name, index), url_prefix, progress)
    finally:
        if world > 1 and rank == 0:
            barrier()


def _fetch(entry: ZooEntry, url_prefix: Optional[str], progress: bool) -> str:
    from .. import __version__
    raw, converted = _paths(entry)
    record = read_records().get(entry.name)
    if record and record.get('url') != entry.url:  # the manifest points at another file now
        _remove(raw, converted)
        _write_record(entry.name, None)
        record = None
    hit = _cached(entry, record)
    if hit:
        return hit
    if entry.converter not in {c.name for c in CONVERTERS}:
        raise ZooError(f'{SCHEME}{entry.name}: its converter {entry.converter!r} is not in this '
                       f'version of hvit_mm ({entry.pending or "see " + entry.source}); known: '
                       f'{sorted(c.name for c in CONVERTERS)}')
    expected = _expected(entry, record)
    if osp.isfile(raw):  # downloaded before, or placed by hand (Google Drive)
        try:
            _check(entry, _sha256(raw), _md5(raw) if entry.md5_prefix else '', expected, raw)
        except ZooError:
            _remove(raw, converted)
            raise
        sha, size = _sha256(raw), osp.getsize(raw)
    elif _offline():
        raise ZooError(f'{SCHEME}{entry.name}: HVIT_MM_OFFLINE is set and the cache lacks {raw} '
                       f'(published at {entry.url}). Fetch it where there is a network '
                       f'(python tools/model_converters/download.py {entry.name}) and copy '
                       f'{osp.dirname(raw)} and {_records_path()} here, or unset HVIT_MM_OFFLINE'
                       + _drive_hint(entry, raw))
    else:
        prefix = url_prefix or os.environ.get('HVIT_MM_ZOO_URL_PREFIX')
        url = f'{prefix.rstrip("/")}/{entry.filename}' if prefix else entry.url
        sha, size = _download(url, raw, entry, expected, progress)
    try:
        sd = to_hvit(_safe_load(raw, entry), fmt=entry.converter)
    except (KeyError, ValueError) as e:  # the file is intact (verified): the converter disagrees
        raise ZooError(f'{SCHEME}{entry.name}: converter {entry.converter!r} cannot convert {raw}: '
                       f'{e}') from e
    meta = dict(zoo_name=entry.name, source_url=entry.url, source_sha256=sha,
                converter=entry.converter, hvit_mm=__version__, license=entry.license)
    _atomic_save({'meta': meta, 'state_dict': dict(sd)}, converted)  # plain dict: weights_only
    if not expected['sha256']:
        warnings.warn(f'{SCHEME}{entry.name}: the publisher gives no sha256 for {entry.url}; this '
                      f'cache now trusts the file it downloaded, sha256 {sha} ({size} bytes), and '
                      'checks it on every later load: compare it with the publisher\'s if you can '
                      f'(and add it as SHA256 to {entry.source}).', stacklevel=3)
    _write_record(entry.name, dict(
        url=entry.url, sha256=sha, size=size, converted_sha256=_sha256(converted),
        converter=entry.converter, version=__version__,
        trust='manifest' if entry.sha256 else 'first use',
        recorded=time.strftime('%Y-%m-%d %H:%M:%S')))
    return converted


def load(name: str, **kwargs) -> Dict:
    """The converted state dict of ``NAME`` (hvit_mm layout), through :func:`fetch`."""
    return unwrap(torch.load(fetch(name, **kwargs), map_location='cpu', weights_only=True))


def resolve_path(path):
    """``hvit://NAME`` -> its cached converted file (see :func:`fetch`); anything else unchanged."""
    return fetch(path) if isinstance(path, str) and path.startswith(SCHEME) else path


def list_entries(index: Optional[str] = None) -> List[ZooEntry]:
    return sorted(load_manifest(index).values(), key=lambda e: (e.collection, e.name))


def load_from_hvit(filename: str, map_location=None) -> Dict:
    """mmengine ``CheckpointLoader`` scheme: ``load_from='hvit://NAME'`` and mmengine's own
    ``Pretrained`` init read the converted file (``{'meta', 'state_dict'}``)."""
    return torch.load(fetch(filename), map_location=map_location, weights_only=True)


def _register_mmengine_scheme() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=SCHEME, loader=load_from_hvit, force=True)


_register_mmengine_scheme()
