"""The toy datasets of tools/dataset_converters/make_toy_datasets.py, read by the STOCK OpenMMLab classes.

Each dataset is built with its real class and loading pipeline, its content is checked, and the stock
metrics are run with the ground truth as prediction (COCO AP == 1, mIoU == 100) plus a wrong prediction
as a control.
"""
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

ROOT = Path(__file__).resolve().parents[2]
# pycocotools 2.0.11's RLE objects predate numpy 2's __array__(copy=...) protocol: harmless, but noisy
pytestmark = pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')
SCRIPT = ROOT / 'tools' / 'dataset_converters' / 'make_toy_datasets.py'


def _load_module():
    spec = importlib.util.spec_from_file_location('make_toy_datasets', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


toy = _load_module()


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return toy.make_toy_datasets(tmp_path_factory.mktemp('toy'), seed=0)


def _hashes(root):
    root = Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


# ----------------------------------------------------------------------------------- generator itself
def test_deterministic_and_cached(data, tmp_path):
    ref = _hashes(data['out_dir'])
    assert len(ref) > 100 and '.toy_manifest.json' in ref
    again = toy.make_toy_datasets(tmp_path / 'a', seed=0)
    assert again['regenerated'] and _hashes(again['out_dir']) == ref
    t0 = time.time()
    cached = toy.make_toy_datasets(tmp_path / 'a', seed=0)
    assert not cached['regenerated'] and time.time() - t0 < 0.5
    other = _hashes(toy.make_toy_datasets(tmp_path / 'b', seed=1)['out_dir'])
    assert other.keys() == ref.keys()
    assert sum(other[k] != ref[k] for k in ref) > 100
    # a parameter change regenerates and leaves no stale files behind
    small = toy.make_toy_datasets(tmp_path / 'a', seed=0, num_train=4, num_val=2, size=64)
    assert small['regenerated']
    assert len(list((tmp_path / 'a/imagenet/train').rglob('*.JPEG'))) == 4
    assert len(list((tmp_path / 'a/cityscapes/leftImg8bit').rglob('*.png'))) == 6


def test_cli(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / 'cli'), '--seed', '3', '--num-train', '4',
                          '--num-val', '4', '--size', '96'], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / 'cli' / '.toy_manifest.json').read_text())
    assert manifest['params']['seed'] == 3 and manifest['params']['size'] == 96
    assert all((tmp_path / 'cli' / f).is_file() for f in manifest['files'])


# ------------------------------------------------------------------------------------------ ImageNet
def test_imagenet(data):
    from mmpretrain.datasets import ImageNet
    info = data['imagenet']
    root, classes_file = info['data_root'], info['classes_file']
    pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=64), dict(type='PackInputs')]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        train = ImageNet(data_root=root, split='train', metainfo=dict(classes=classes_file), pipeline=pipeline)
        by_file = ImageNet(data_root=root, ann_file='meta/train.txt', data_prefix='train',
                           classes=classes_file, pipeline=pipeline)
        folders = ImageNet(data_root=root, data_prefix='train', metainfo=dict(classes=toy.IMAGENET_CLASSES))
        val = ImageNet(data_root=root, split='val', metainfo=dict(classes=classes_file), pipeline=pipeline)
        val_plain = ImageNet(data_root=root, split='val')  # no override: 1000 ImageNet names, labels 0..3
    assert tuple(train.CLASSES) == tuple(by_file.CLASSES) == ('circle', 'square', 'triangle', 'star')
    assert len(train) == 32 and len(val) == 8 and len(val_plain.CLASSES) == 1000
    labels = train.get_gt_labels()
    assert labels.min() == 0 and labels.max() == 3 and np.bincount(labels).min() >= 8
    np.testing.assert_array_equal(labels, by_file.get_gt_labels())
    # folder layout (no ann_file) gives the same label for every image path
    by_path = {folders.get_data_info(i)['img_path']: folders.get_data_info(i)['gt_label'] for i in range(len(folders))}
    assert by_path == {train.get_data_info(i)['img_path']: int(labels[i]) for i in range(len(train))}
    assert sorted(val.get_gt_labels().tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    for ds in (train, val):
        for i in (0, len(ds) - 1):
            item = ds[i]
            assert tuple(item['inputs'].shape) == (3, 64, 64) and item['inputs'].dtype == torch.uint8
            assert int(item['data_samples'].gt_label) == int(ds.get_gt_labels()[i])


# ---------------------------------------------------------------------------------------------- COCO
def _coco(data, split, pipeline=None, **kwargs):
    from mmdet.datasets import CocoDataset
    if pipeline is None:
        pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    with DefaultScope.overwrite_default_scope('mmdet'):
        return CocoDataset(data_root=data['coco']['data_root'], ann_file=f'annotations/instances_{split}.json',
                           data_prefix=dict(img=f'{split}/'), pipeline=pipeline, **kwargs)


def test_coco_dataset(data):
    raw = json.loads(Path(data['coco']['train_ann']).read_text())
    kinds = [('poly' if isinstance(a['segmentation'], list) else
              'rle-list' if isinstance(a['segmentation']['counts'], list) else 'rle-str')
             for a in raw['annotations']]
    assert {'poly', 'rle-list', 'rle-str'} <= set(kinds) and kinds.count('poly') > len(kinds) / 2
    assert all(a['iscrowd'] == 0 for a in raw['annotations']) and len(raw['categories']) == 80
    ds = _coco(data, 'train2017', metainfo=dict(classes=toy.COCO_CLASSES))
    assert len(ds) == 16 and ds.metainfo['classes'] == toy.COCO_CLASSES
    n_inst, labels = 0, set()
    for i in range(len(ds)):
        r = ds[i]
        boxes, masks = r['gt_bboxes'].tensor.numpy(), r['gt_masks'].masks
        assert r['img'].shape == (128, 128, 3) and masks.shape == (len(boxes), 128, 128)
        assert 2 <= len(boxes) <= 5 and not r['gt_ignore_flags'].any()
        img = r['img'].astype(np.float64)
        for box, m in zip(boxes, masks):
            ys, xs = np.nonzero(m)
            assert len(ys) >= 30
            np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            # the shape is painted exactly on its mask: it stands out from its surroundings
            x0, y0, x1, y1 = np.clip(box.astype(int) + [-3, -3, 3, 3], 0, 128)
            ring = np.zeros_like(m, bool)
            ring[y0:y1, x0:x1] = True
            ring &= m == 0
            assert np.linalg.norm(img[m > 0].mean(0) - img[ring].mean(0)) > 20
        n_inst += len(boxes)
        labels |= set(r['gt_bboxes_labels'].tolist())
    assert n_inst == len(raw['annotations']) and labels == {0, 1, 2, 3}
    # default 80-class metainfo: labels are the usual COCO indices of the four categories
    full = _coco(data, 'train2017', test_mode=True, pipeline=[])
    full_labels = {inst['bbox_label'] for i in range(len(full)) for inst in full.get_data_info(i)['instances']}
    assert full_labels == {full.metainfo['classes'].index(c) for c in toy.COCO_CLASSES} == {32, 33, 62, 74}


def _coco_predictions(ds, wrong=False):
    samples = []
    for i in range(len(ds)):
        r = ds[i]
        labels = torch.as_tensor(r['gt_bboxes_labels'], dtype=torch.long)
        samples.append(dict(img_id=r['img_id'], ori_shape=r['ori_shape'], pred_instances=dict(
            bboxes=r['gt_bboxes'].tensor.clone(), scores=torch.ones(len(labels)),
            labels=(labels + 1) % 4 if wrong else labels, masks=torch.from_numpy(r['gt_masks'].masks.astype(bool)))))
    return samples


def test_coco_metric_perfect(data):
    from mmdet.evaluation import CocoMetric
    ds = _coco(data, 'val2017', metainfo=dict(classes=toy.COCO_CLASSES), test_mode=True)
    assert len(ds) == 8
    results = {}
    for wrong in (False, True):
        metric = CocoMetric(ann_file=data['coco']['val_ann'], metric=['bbox', 'segm'])
        metric.dataset_meta = ds.metainfo
        metric.process({}, _coco_predictions(ds, wrong))
        results[wrong] = metric.evaluate(len(ds))
    assert results[False]['coco/bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
    assert results[False]['coco/segm_mAP'] == pytest.approx(1.0, abs=1e-3)
    assert results[False]['coco/bbox_mAP_50'] == pytest.approx(1.0, abs=1e-3)
    assert results[True]['coco/bbox_mAP'] < 0.1 and results[True]['coco/segm_mAP'] < 0.1


# -------------------------------------------------------------------------------- ADE20K / Cityscapes
def _seg(data, name, split):
    from mmseg.datasets import ADE20KDataset, CityscapesDataset
    cls, img_dir, ann_dir = {
        'ade': (ADE20KDataset, f'images/{split}', f'annotations/{split}'),
        'cityscapes': (CityscapesDataset, f'leftImg8bit/{split}', f'gtFine/{split}')}[name]
    with DefaultScope.overwrite_default_scope('mmseg'):
        return cls(data_root=data[name]['data_root'], data_prefix=dict(img_path=img_dir, seg_map_path=ann_dir),
                   pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])


def _miou(ds, wrong=False):
    from mmseg.evaluation import IoUMetric
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    samples = []
    for i in range(len(ds)):
        gt = torch.from_numpy(ds[i]['gt_seg_map'].astype(np.int64))[None]
        pred = torch.zeros_like(gt) if wrong else torch.where(gt == 255, 0, gt)
        samples.append(dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt)))
    metric.process({}, samples)
    return metric.evaluate(len(ds))


@pytest.mark.parametrize('name', ['ade', 'cityscapes'])
def test_segmentation(data, name):
    import cv2
    if name == 'ade':
        splits, shape, n = ('training', 'validation'), (128, 128), (16, 8)
        stuff = {toy.ADE_BACKGROUND - 1}
        things = {v - 1 for v in toy.ADE_SHAPE_IDS.values()}  # after reduce_zero_label
    else:
        splits, shape, n = ('train', 'val'), (64, 128), (8, 4)
        stuff, things = set(toy.CITYSCAPES_STUFF), set(toy.CITYSCAPES_SHAPE_IDS.values())
    for split, count in zip(splits, n):
        ds = _seg(data, name, split)
        assert len(ds) == count and len(ds.metainfo['classes']) == (150 if name == 'ade' else 19)
        assert ds.reduce_zero_label == (name == 'ade')
        seen = set()
        for i in range(len(ds)):
            r = ds[i]
            seg, raw = r['gt_seg_map'], cv2.imread(r['seg_map_path'], cv2.IMREAD_UNCHANGED)
            assert r['img'].shape == shape + (3,) and seg.shape == shape and raw.dtype == np.uint8
            values = set(np.unique(seg).tolist())
            assert 255 in values and values <= stuff | things | {255}
            assert len(values & things) >= 1
            if name == 'ade':  # 0 ("other") -> 255, k -> k - 1
                np.testing.assert_array_equal(seg, np.where(raw == 0, 255, raw.astype(np.int64) - 1))
            else:
                np.testing.assert_array_equal(seg, raw)
            seen |= values
        assert things <= seen and stuff <= seen
        res = _miou(ds)
        assert res['mIoU'] == pytest.approx(100.0) and res['aAcc'] == pytest.approx(100.0)
    assert _miou(ds, wrong=True)['mIoU'] < 50
