"""Config rewrite that turns the data guards on (idempotent; a config that sets them is kept)."""
from typing import Iterator

from ..engine.hooks import ensure_hook, type_name

LOADER, SAFE_LOADER, CHECKED, HOOK = ('LoadImageFromFile', 'SafeLoadImageFromFile', 'CheckedDataset',
                                      'BadDataHook')
DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _pipeline_steps(dataset) -> Iterator[dict]:
    if not isinstance(dataset, dict):
        return
    for step in dataset.get('pipeline') or []:
        if isinstance(step, dict):
            yield step
    yield from _pipeline_steps(dataset.get('dataset'))
    for sub in dataset.get('datasets') or []:
        yield from _pipeline_steps(sub)


def _check_leaves(dataset):
    """Put every leaf dataset config (one that wraps no other) under ``CheckedDataset``."""
    if not isinstance(dataset, dict) or type_name(dataset) == CHECKED:
        return dataset
    if isinstance(dataset.get('dataset'), dict):
        dataset['dataset'] = _check_leaves(dataset['dataset'])
        return dataset
    if isinstance(dataset.get('datasets'), (list, tuple)):
        dataset['datasets'] = [_check_leaves(d) for d in dataset['datasets']]
        return dataset
    return dict(type=CHECKED, dataset=dataset)


def add_data_guards(cfg):
    """Turn on the bad-data guards in a runner config (in place; returns it):

    - the training pipelines load images with ``SafeLoadImageFromFile`` (unless one already does):
      a bad image is skipped and another sample fetched, polygons are clipped to the image;
    - ``BadDataHook`` (``on_bad='skip'``) in ``custom_hooks`` reports them, unless one is listed;
    - every leaf dataset of the train/val/test dataloaders is built through ``CheckedDataset``,
      so an empty annotation file or image folder is an ``EmptyDatasetError`` naming it.
    """
    train = cfg.get('train_dataloader')
    train_ds = train.get('dataset') if isinstance(train, dict) else None
    if isinstance(train_ds, dict):
        steps = list(_pipeline_steps(train_ds))
        if not any(type_name(s) == SAFE_LOADER for s in steps):
            for step in steps:
                t = step.get('type')
                if isinstance(t, str) and t.rsplit('.', 1)[-1] == LOADER:
                    scope = t.rsplit('.', 1)[0] if '.' in t else ''
                    # mmcv's own registry does not hold the safe loader; the codebases' ones do
                    step['type'] = SAFE_LOADER if scope in ('', 'mmcv') else f'{scope}.{SAFE_LOADER}'
        ensure_hook(cfg, HOOK)
    for key in DATALOADERS:
        loader = cfg.get(key)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'), dict):
            loader['dataset'] = _check_leaves(loader['dataset'])
    return cfg
