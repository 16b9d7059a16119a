"""Build-time check that a dataset has samples, naming the annotation file or image folder.

Today an empty source fails far from its cause: mmengine serialises the empty sample list with
``np.concatenate`` ("need at least one array to concatenate", for mmpretrain, mmdet and mmseg alike),
a 0-byte COCO json gives json's "Expecting value: line 1 column 1", and an iteration-based loop over
an unserialised empty dataset spins forever in mmengine's ``InfiniteSampler``.

``CheckedDataset`` is a registered *builder function*, not a wrapper class: it builds the dataset it
is given and returns that very object, so the runner, the evaluators and every hook see the stock
dataset. Only on failure (or an empty result) does it build the dataset once more, lazily, to tell
which of "empty file", "not JSON", "lists no images" or "filter_cfg removed everything" happened.
"""
import json
import os.path as osp
from typing import Optional

from mmengine.registry import DATASETS

from ..registry import register_module


class DataError(ValueError):
    """Unusable data (file named in the message); tools/train.py shows it as one line."""


class EmptyDatasetError(DataError):
    """A dataset built without a single sample."""


def _image_dir(ds) -> str:
    prefix = getattr(ds, 'data_prefix', None) or {}
    if isinstance(prefix, dict):
        for key in ('img_path', 'img', 'img_prefix'):
            if prefix.get(key):
                return prefix[key]
        return next((v for v in prefix.values() if v), getattr(ds, 'data_root', '') or '')
    return str(prefix)


def diagnose_empty(cfg: dict) -> Optional[str]:
    """Why the dataset of ``cfg`` has no samples, or None when it has some (or cannot tell)."""
    try:
        ds = DATASETS.build({**cfg, 'lazy_init': True})
    except Exception:  # noqa: BLE001  (the original error is the one to show then)
        return None
    name = type(ds).__name__
    ann = getattr(ds, 'ann_file', '') or ''
    fix = 'check data_root / ann_file / data_prefix in the dataset config'
    if ann and osp.isfile(ann) and osp.getsize(ann) == 0:
        return f'{name}: annotation file {ann} is empty (0 bytes); {fix}'
    try:
        raw = ds.load_data_list()
    except json.JSONDecodeError as e:
        return f'{name}: annotation file {ann} is not valid JSON ({e}); {fix}'
    except Exception:  # noqa: BLE001
        return None
    source = f'annotation file {ann}' if ann else f'image folder {_image_dir(ds)}'
    if not raw:
        what = 'lists no images' if ann else 'holds no images the dataset recognises'
        return f'{name}: {source} {what}; {fix}'
    ds.data_list = raw
    try:
        kept = ds.filter_data()
    except Exception:  # noqa: BLE001
        return None
    if not kept:
        return (f'{name}: filter_cfg={getattr(ds, "filter_cfg", None)} removed all {len(raw)} '
                f'samples of {source} (e.g. images without annotations); fix the annotations or '
                'relax filter_cfg')
    return None


@register_module('DATASETS', name='CheckedDataset')
def checked_dataset(dataset: dict):
    """Build ``dataset`` (a config dict) and return it; :class:`EmptyDatasetError` if it has no
    samples. Lazily initialised datasets (``lazy_init=True``) are returned unchecked."""
    if not isinstance(dataset, dict):
        return dataset
    try:
        ds = DATASETS.build(dataset)
    except DataError:
        raise
    except ValueError as e:  # json.JSONDecodeError included
        problem = diagnose_empty(dataset)
        if problem:
            raise EmptyDatasetError(problem) from e
        raise
    if getattr(ds, '_fully_initialized', True) and len(ds) == 0:
        raise EmptyDatasetError(diagnose_empty(dataset) or f'{type(ds).__name__} has no samples; '
                                'check data_root / ann_file / data_prefix in the dataset config')
    return ds
