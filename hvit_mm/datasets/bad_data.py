"""Bad training samples: skip unreadable images, clip polygons that leave the image, report both.

How it fits mmengine: ``BaseDataset.__getitem__`` (training, ``test_mode=False``) already refetches a
random other sample, up to ``max_refetch`` times, when the pipeline returns ``None``; mmcv's
``LoadImageFromFile(ignore_empty=True)`` returns ``None`` only when reading *raises*, while a file that
OpenCV cannot decode (random bytes, a truncated JPEG/PNG) comes back as ``None`` and fails mmcv's
``assert img is not None`` deep inside a dataloader worker. ``SafeLoadImageFromFile`` turns every
read or decode failure into ``None`` (so the stock refetch replaces the sample) and, in detection
data, clips COCO polygons to the image before ``LoadAnnotations`` rasterises them (a NaN or far-away
vertex makes pycocotools allocate without bound; a polygon wholly outside gives an empty mask under
a non-empty box).

Counting across dataloader workers: each event is appended as one line to a small report file that
the transform creates when it is built, in the main process, before any worker starts (forked and
spawned workers inherit its path). ``O_APPEND`` writes of one short line are atomic, so workers need
no lock, no shared-memory counter and no queue that could fill up and block a worker while the main
process waits for its batch. ``BadDataHook`` reads the new lines before every iteration: one warning
per (file, problem) in the run's log, a count at the end of every epoch (or every pass over the data
of an iteration-based loop), or :class:`BadDataError` naming the file when ``on_bad='raise'``.
"""
import os
import os.path as osp
import tempfile
import weakref
from collections import Counter
from typing import List, Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from ..registry import register_module
from .checks import DataError

KINDS = ('image', 'polygon')


class BadDataError(DataError):
    """A bad training sample met under ``BadDataHook(on_bad='raise')`` (or all samples unreadable)."""


def _unlink(path: str, owner_pid: int) -> None:
    # forked workers inherit this finalizer: only the process that created the file removes it
    if os.getpid() == owner_pid and osp.exists(path):
        os.remove(path)


def clip_polygon(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clip of one polygon (n, 2) in pixels to the box [0, width] x [0, height].

    Clipping, not clamping each vertex: a clamped vertex moves the edges through it and changes the
    covered area inside the image, a clipped polygon rasterises to the same pixels there.
    Returns (m, 2); m < 3 when nothing of the polygon is inside.
    """
    pts = [tuple(p) for p in xy]
    for axis, bound, upper in ((0, 0.0, False), (0, float(width), True),
                               (1, 0.0, False), (1, float(height), True)):
        if not pts:
            break
        inside = [(p[axis] <= bound) if upper else (p[axis] >= bound) for p in pts]
        out = []
        for i, (cur, cur_in) in enumerate(zip(pts, inside)):
            prev, prev_in = pts[i - 1], inside[i - 1]
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append(tuple(prev[j] + t * (cur[j] - prev[j]) for j in range(2)))
            if cur_in:
                out.append(cur)
        pts = out
    # intersections can land a rounding error outside the box
    return np.clip(np.asarray(pts, dtype=np.float64).reshape(-1, 2), 0, (width, height))


def _area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def clip_instances(instances: list, height: int, width: int) -> List[str]:
    """Clip the polygon masks of mmdet ``instances`` (in place) to the image; returns one note per
    instance changed. Non-finite vertices drop their polygon; an instance left without any polygon
    inside the image is removed (its box would supervise an empty mask). RLE masks are untouched."""
    notes, keep = [], []
    for k, inst in enumerate(instances):
        seg = inst.get('mask') if isinstance(inst, dict) else None
        if not isinstance(seg, list) or not seg:
            keep.append(inst)
            continue
        polys, problems = [], set()
        for poly in seg:
            try:
                arr = np.asarray(poly, dtype=np.float64)
            except (TypeError, ValueError):
                arr = np.zeros(1)
            if arr.ndim != 1 or arr.size < 6 or arr.size % 2:
                polys.append(poly)  # malformed: mmdet's LoadAnnotations already ignores these
                continue
            if not np.isfinite(arr).all():
                problems.add('has non-finite coordinates')
                continue
            xy = arr.reshape(-1, 2)
            if (xy >= 0).all() and (xy[:, 0] <= width).all() and (xy[:, 1] <= height).all():
                polys.append(poly)
                continue
            problems.add('extends outside the image')
            clipped = clip_polygon(xy, width, height)
            if len(clipped) >= 3 and _area(clipped) > 0:
                polys.append([float(v) for v in np.round(clipped, 2).ravel()])
        if not problems:
            keep.append(inst)
            continue
        what = ' and '.join(sorted(problems))
        if not any(isinstance(p, list) and len(p) >= 6 for p in polys):
            notes.append(f'instance {k}: polygon {what}; instance dropped (no polygon left inside the '
                         'image)')
            continue
        inst['mask'] = polys
        if 'bbox' in inst:
            x1, y1, x2, y2 = inst['bbox']
            inst['bbox'] = [min(max(x1, 0), width), min(max(y1, 0), height),
                            min(max(x2, 0), width), min(max(y2, 0), height)]
        notes.append(f'instance {k}: polygon {what}; clipped to the image')
        keep.append(inst)
    instances[:] = keep
    return notes


@register_module('TRANSFORMS')
class SafeLoadImageFromFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` that returns ``None`` (mmengine refetches another sample) for a
    missing, empty, truncated or undecodable image, clips polygon annotations to the image, and
    records both for ``BadDataHook``. Same arguments as ``LoadImageFromFile``, plus:

    Args:
        max_consecutive: failures in a row (in one process) after which the data is deemed
            misconfigured rather than damaged: raises :class:`BadDataError` naming the last file.
        clip_polygons: clip mmdet polygon masks to the image (see :func:`clip_instances`).
    """

    def __init__(self, *args, max_consecutive: int = 100, clip_polygons: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_consecutive = int(max_consecutive)
        self.clip_polygons = bool(clip_polygons)
        self._failures = 0
        fd, self.report_path = tempfile.mkstemp(prefix='hvit_mm_bad_data_', suffix='.tsv')
        os.close(fd)
        weakref.finalize(self, _unlink, self.report_path, os.getpid())

    def record(self, kind: str, path: str, note: str) -> None:
        line = '\t'.join(' '.join(str(s).split()) for s in (kind, path, note)) + '\n'
        with open(self.report_path, 'a') as f:  # one write() of one line: atomic with O_APPEND
            f.write(line)

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            out = super().transform(results)
            problem = None if out is not None else 'unreadable'
        except Exception as e:  # noqa: BLE001  (any read/decode failure makes the sample unusable)
            out, problem = None, self._describe(filename, e)
        if out is None:
            self._failures += 1
            self.record('image', filename, problem)
            if self._failures >= self.max_consecutive:
                raise BadDataError(
                    f'{self._failures} training images in a row could not be read, the last '
                    f'{filename} ({problem}): check data_root / data_prefix / ann_file')
            return None
        self._failures = 0
        if self.clip_polygons and out.get('instances'):
            h, w = out['img'].shape[:2]
            for note in clip_instances(out['instances'], h, w):
                self.record('polygon', filename, note)
        return out

    @staticmethod
    def _describe(filename: str, error: Exception) -> str:
        if isinstance(filename, str) and osp.isfile(filename) and osp.getsize(filename) == 0:
            return 'empty file (0 bytes)'
        if isinstance(error, FileNotFoundError):
            return 'file not found'
        if isinstance(error, AssertionError):
            return 'cannot be decoded (truncated, corrupt or not an image)'
        first = str(error).strip().splitlines()
        return f'{type(error).__name__}: {first[-1][:200] if first else "unreadable"}'


def find_safe_loaders(dataset) -> List[SafeLoadImageFromFile]:
    """Every ``SafeLoadImageFromFile`` in the pipelines of a (possibly wrapped) dataset."""
    found, stack, seen = [], [dataset], set()
    while stack:
        ds = stack.pop()
        if id(ds) in seen:
            continue
        seen.add(id(ds))
        stack.extend(getattr(ds, 'datasets', None) or [])
        if getattr(ds, 'dataset', None) is not None:
            stack.append(ds.dataset)
        for t in getattr(getattr(ds, 'pipeline', None), 'transforms', None) or []:
            if isinstance(t, SafeLoadImageFromFile):
                found.append(t)
    return found


@register_module('HOOKS')
class BadDataHook(Hook):
    """Reports what ``SafeLoadImageFromFile`` skipped or fixed, in every dataloader worker.

    Args:
        on_bad: ``'skip'``: one warning per (file, problem) and a count at the end of every epoch
            (every pass over the data for an iteration-based loop); ``'raise'``: stop the run with
            :class:`BadDataError` naming the first bad file, before the batch is trained on.
    """

    priority = 'NORMAL'

    def __init__(self, on_bad: str = 'skip') -> None:
        if on_bad not in ('skip', 'raise'):
            raise ValueError(f"BadDataHook: on_bad must be 'skip' or 'raise', got {on_bad!r}")
        self.on_bad = on_bad
        self.counts = Counter()  # kind -> events since the last summary
        self.files = {k: set() for k in KINDS}  # kind -> distinct files since the last summary
        self.total = Counter()
        self.summaries: List[dict] = []  # one per epoch / pass: {'when', kind: events, ...}
        self._warned = set()
        self._offsets = {}
        self._paths: List[str] = []

    def before_train(self, runner) -> None:
        self._paths = sorted({t.report_path for t in find_safe_loaders(
            runner.train_dataloader.dataset)})
        if not self._paths:
            runner.logger.warning('BadDataHook: the training pipeline has no SafeLoadImageFromFile, '
                                  'so nothing is reported')
        self._poll(runner)  # workers of an iteration-based loop start before before_train

    def _poll(self, runner) -> None:
        for path in self._paths:
            start = self._offsets.get(path, 0)
            try:
                if os.stat(path).st_size <= start:
                    continue
                with open(path, 'rb') as f:
                    f.seek(start)
                    chunk = f.read()
            except FileNotFoundError:
                continue
            complete = chunk[:chunk.rfind(b'\n') + 1]  # a line being written stays for next time
            self._offsets[path] = start + len(complete)
            for line in complete.decode('utf-8', 'replace').splitlines():
                kind, file, note = (line.split('\t') + ['', ''])[:3]
                self._event(runner, kind, file, note)

    def _event(self, runner, kind: str, file: str, note: str) -> None:
        self.counts[kind] += 1
        self.total[kind] += 1
        self.files.setdefault(kind, set()).add(file)
        if self.on_bad == 'raise':
            raise BadDataError(f'bad training sample {file}: {note} (BadDataHook on_bad="raise"; '
                               'fix or remove the file, or set on_bad="skip" to skip such samples)')
        if (kind, file, note) not in self._warned:
            self._warned.add((kind, file, note))
            action = 'sample skipped' if kind == 'image' else 'annotation fixed'
            runner.logger.warning(f'BadDataHook: {file}: {note}; {action}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._poll(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            per_pass = len(runner.train_dataloader)
            if per_pass and (runner.iter + 1) % per_pass == 0:
                self._summary(runner, f'pass {(runner.iter + 1) // per_pass} over the training data')

    def after_train_epoch(self, runner) -> None:
        self._summary(runner, f'epoch {runner.epoch + 1}')

    def after_train(self, runner) -> None:
        self._poll(runner)
        if sum(self.total.values()):
            runner.logger.warning(
                f'BadDataHook: in this run {self.total["image"]} unreadable image(s) skipped, '
                f'{self.total["polygon"]} polygon annotation(s) clipped or dropped')

    def _summary(self, runner, when: str) -> None:
        self._poll(runner)
        summary = dict(when=when, **{k: self.counts[k] for k in KINDS},
                       **{f'{k}_files': len(self.files.get(k, ())) for k in KINDS})
        self.summaries.append(summary)
        if self.counts['image'] or self.counts['polygon']:
            runner.logger.warning(
                f'BadDataHook: {when}: {summary["image"]} unreadable image(s) skipped '
                f'({summary["image_files"]} distinct files), {summary["polygon"]} polygon '
                f'annotation(s) outside the image clipped or dropped ({summary["polygon_files"]} '
                'files)')
        self.counts.clear()
        self.files = {k: set() for k in KINDS}
