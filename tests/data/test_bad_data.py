"""Bad data: unreadable images are skipped with one warning each and counted per epoch (also across
dataloader workers), or raise naming the file; empty annotation sources fail at build time naming
the file; COCO polygons outside the image are clipped (or their instance dropped), never a crash."""
import json
import os
import re
import shutil
import uuid

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope
from mmengine.runner import Runner
from pycocotools import mask as mask_utils

from hvit_mm.datasets import (BadDataError, BadDataHook, EmptyDatasetError, SafeLoadImageFromFile,
                              add_data_guards, clip_polygon)
from tests.conftest import REPO

pytestmark = pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')
COCO_CATS = [dict(id=37, name='sports ball'), dict(id=38, name='kite')]


def corrupt_imagenet(toy_root, tmp_path, n=12):
    """n toy ImageNet images in tmp_path; entries 1, 4, 7, 10 of meta/train.txt are bad files."""
    import cv2
    root = tmp_path / 'imagenet'
    lines = (toy_root / 'imagenet/meta/train.txt').read_text().splitlines()[:n]
    for line in lines:
        rel = line.split()[0]
        (root / 'train' / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(toy_root / 'imagenet/train' / rel, root / 'train' / rel)
    good = (root / 'train' / lines[0].split()[0]).read_bytes()
    png = cv2.imencode('.png', cv2.imdecode(np.frombuffer(good, np.uint8), 1))[1].tobytes()
    bad = {'zero.JPEG': b'', 'random.JPEG': np.random.default_rng(0).bytes(3000),
           'truncated.JPEG': good[:len(good) // 2], 'truncated.png': png[:len(png) // 2]}
    for i, (name, data) in enumerate(bad.items()):
        (root / 'train/n00000000' / name).write_bytes(data)
        lines[1 + 3 * i] = f'n00000000/{name} 0'
    (root / 'meta').mkdir()
    (root / 'meta/train.txt').write_text('\n'.join(lines) + '\n')
    return root, sorted(str(root / 'train/n00000000' / name) for name in bad)


def resnet_cfg(data_root, work_dir, num_workers):
    cfg = Config.fromfile(str(REPO / 'configs/toy/resnet18_1xb16-toy_in1k.py'))
    cfg.model.backbone.update(depth=18, stem_channels=8, base_channels=8)
    cfg.model.head.in_channels = 64
    ds = cfg.train_dataloader.dataset
    ds.update(data_root=str(data_root), ann_file='meta/train.txt', data_prefix='train')
    ds.pipeline[1].scale = 32
    cfg.train_dataloader.update(batch_size=4, num_workers=num_workers,
                                persistent_workers=num_workers > 0)
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg', 'test_dataloader', 'test_evaluator',
                'test_cfg'):
        cfg[key] = None
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=100)
    cfg.default_hooks.checkpoint.interval = 100
    cfg.update(work_dir=str(work_dir), experiment_name=f'bad_data_{uuid.uuid4().hex}')
    return cfg


def bad_data_hook(runner) -> BadDataHook:
    return next(h for h in runner.hooks if isinstance(h, BadDataHook))


@pytest.mark.parametrize('num_workers', [0, 2])
def test_corrupt_images_are_skipped_warned_once_and_counted(toy_root, tmp_path, num_workers):
    root, bad = corrupt_imagenet(toy_root, tmp_path)
    cfg = add_data_guards(resnet_cfg(root, tmp_path / 'work', num_workers))
    runner = Runner.from_cfg(cfg)
    runner.train()  # 2 epochs of 3 iterations: every bad image is met at least once per epoch
    hook = bad_data_hook(runner)
    assert [s['image_files'] for s in hook.summaries] == [4, 4], hook.summaries
    assert all(s['image'] >= 4 for s in hook.summaries)  # refetches may meet a bad one again
    log = open(os.path.join(runner.log_dir, os.path.basename(runner.log_dir) + '.log')).read()
    for path in bad:
        assert len(re.findall(f'BadDataHook: {re.escape(path)}: .*; sample skipped', log)) == 1, path
    assert 'empty file (0 bytes)' in log and 'cannot be decoded' in log
    first = hook.summaries[0]
    assert (f'BadDataHook: epoch 1: {first["image"]} unreadable image(s) skipped (4 distinct files)'
            in log), log[-3000:]


def test_raise_mode_names_the_file(toy_root, tmp_path):
    root, bad = corrupt_imagenet(toy_root, tmp_path)
    cfg = resnet_cfg(root, tmp_path / 'work', 0)
    cfg.custom_hooks = [dict(type='BadDataHook', on_bad='raise')]
    runner = Runner.from_cfg(add_data_guards(cfg))
    with pytest.raises(BadDataError, match='bad training sample') as exc:
        runner.train()
    assert '\n' not in str(exc.value) and any(f'{p}: ' in str(exc.value) for p in bad), exc.value
    with pytest.raises(ValueError, match="on_bad must be 'skip' or 'raise'"):
        BadDataHook(on_bad='warn')


def test_all_images_unreadable_is_one_clear_error(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'')
    load = SafeLoadImageFromFile(max_consecutive=3)
    for _ in range(2):
        assert load(dict(img_path=str(tmp_path / 'a.png'))) is None
    with pytest.raises(BadDataError, match=r'3 training images in a row .*a\.png \(empty file'):
        load(dict(img_path=str(tmp_path / 'a.png')))


def _build(scope, cfg):
    init_default_scope(scope)
    return DATASETS.build(dict(type='CheckedDataset', dataset=cfg))


def test_empty_annotation_sources_fail_at_build_naming_the_file(toy_root, tmp_path):
    (tmp_path / 'img').mkdir()
    (tmp_path / 'train.txt').write_text('')
    (tmp_path / 'zero.json').write_text('')
    (tmp_path / 'broken.json').write_text('{"images": [')
    (tmp_path / 'noimg.json').write_text(json.dumps(dict(images=[], annotations=[],
                                                         categories=COCO_CATS)))
    (tmp_path / 'noann.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='a.jpg', height=8, width=8)], annotations=[],
        categories=COCO_CATS)))
    coco = dict(type='CocoDataset', data_root=str(tmp_path), data_prefix=dict(img='img/'),
                filter_cfg=dict(filter_empty_gt=True), pipeline=[])
    cases = [
        ('mmpretrain', dict(type='ImageNet', data_root=str(tmp_path), ann_file='train.txt',
                            data_prefix='img', metainfo=dict(classes=('a', 'b')), pipeline=[]),
         'train.txt is empty (0 bytes)'),
        ('mmdet', dict(coco, ann_file='noimg.json'), 'noimg.json lists no images'),
        ('mmdet', dict(coco, ann_file='zero.json'), 'zero.json is empty (0 bytes)'),
        ('mmdet', dict(coco, ann_file='broken.json'), 'broken.json is not valid JSON'),
        ('mmdet', dict(coco, ann_file='noann.json'), 'removed all 1 samples of annotation file'),
        ('mmseg', dict(type='ADE20KDataset', data_root=str(tmp_path),
                       data_prefix=dict(img_path='img', seg_map_path='img'), pipeline=[]),
         f'image folder {tmp_path}/img holds no images'),
    ]
    for scope, cfg, expected in cases:
        with pytest.raises(EmptyDatasetError) as exc:
            _build(scope, cfg)
        assert expected in str(exc.value) and '\n' not in str(exc.value), (scope, exc.value)
    ds = _build('mmpretrain', dict(type='ImageNet', data_root=str(toy_root / 'imagenet'),
                                   split='train', pipeline=[]))
    assert type(ds).__name__ == 'ImageNet' and len(ds) == 32  # the stock object, not a wrapper


def rasterize(xy, h, w):
    return mask_utils.decode(mask_utils.frPyObjects([np.ravel(xy).tolist()], h, w)).astype(bool)


def test_clip_polygon_keeps_the_pixels_inside_the_image():
    rng = np.random.default_rng(0)
    h, w = 64, 80
    for _ in range(30):
        n, c, r = rng.integers(3, 12), rng.uniform(-20, 100, 2), rng.uniform(10, 40)
        a = np.sort(rng.uniform(0, 2 * np.pi, n))
        xy = np.stack([c[0] + r * np.cos(a), c[1] + r * np.sin(a)], 1)
        clipped = clip_polygon(xy, w, h)
        assert ((clipped >= 0).all() and (clipped[:, 0] <= w).all()
                and (clipped[:, 1] <= h).all())
        ref = rasterize(xy, h, w)[..., 0]
        got = rasterize(clipped, h, w)[..., 0] if len(clipped) >= 3 else np.zeros_like(ref)
        assert (ref != got).sum() <= 0.01 * ref.sum() + 8  # pycocotools' border rounding only


def test_polygons_outside_the_image_are_clipped_or_dropped(toy_root, tmp_path):
    src = json.loads((toy_root / 'coco/annotations/instances_train2017.json').read_text())
    image = src['images'][0]
    anns = [a for a in src['annotations']
            if a['image_id'] == image['id'] and isinstance(a['segmentation'], list)][:3]
    assert len(anns) == 3
    xy = np.array(anns[0]['segmentation'][0]).reshape(-1, 2)
    shifted = xy + (image['width'] - xy[:, 0].mean(), 0)
    anns[0]['bbox'][0] += image['width'] - xy[:, 0].mean()  # box and polygon cross the border
    anns[0]['segmentation'] = [shifted.ravel().tolist()]  # crosses the right border
    anns[1]['segmentation'][0][0] = float('nan')  # pycocotools would allocate without bound
    anns[2]['segmentation'] = [[v + 10 * image['width'] for v in anns[2]['segmentation'][0]]]
    (tmp_path / 'img').mkdir()
    shutil.copy(toy_root / 'coco/train2017' / image['file_name'], tmp_path / 'img')
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=[image], annotations=anns,
                                                       categories=src['categories'])))
    pipeline = [dict(type='SafeLoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='PackDetInputs')]
    ds = _build('mmdet', dict(type='CocoDataset', data_root=str(tmp_path), ann_file='ann.json',
                              data_prefix=dict(img='img/'), pipeline=pipeline))
    loader = ds.pipeline.transforms[0]
    out = ds[0]['data_samples'].gt_instances
    assert len(out) == 1  # the NaN one and the one wholly outside are dropped
    masks = out.masks.to_ndarray()
    want = rasterize(shifted, image['height'], image['width'])[..., 0]
    assert masks[0].sum() > 0 and (masks[0] != want).sum() <= 0.01 * want.sum() + 8
    assert out.bboxes.tensor[:, 2].max() <= image['width']
    lines = open(loader.report_path).read().splitlines()
    notes = [line.split('\t')[2] for line in lines]
    assert all(line.split('\t')[:2] == ['polygon', str(tmp_path / 'img' / image['file_name'])]
               for line in lines)
    dropped = 'instance dropped (no polygon left inside the image)'
    assert notes == ['instance 0: polygon extends outside the image; clipped to the image',
                     f'instance 1: polygon has non-finite coordinates; {dropped}',
                     f'instance 2: polygon extends outside the image; {dropped}'], notes


def test_a_corrupt_ade_image_is_replaced_by_another_sample(toy_root, tmp_path):
    src = toy_root / 'ade/ADEChallengeData2016'
    for sub in ('images/training', 'annotations/training'):
        (tmp_path / sub).mkdir(parents=True)
        for f in sorted((src / sub).iterdir())[:3]:
            shutil.copy(f, tmp_path / sub)
    bad = sorted((tmp_path / 'images/training').iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:100])
    ds = _build('mmseg', dict(
        type='ADE20KDataset', data_root=str(tmp_path), reduce_zero_label=True,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=[dict(type='SafeLoadImageFromFile'), dict(type='LoadAnnotations'),
                  dict(type='PackSegInputs')]))
    out = ds[0]
    assert out['data_samples'].img_path != str(bad)
    assert open(ds.pipeline.transforms[0].report_path).read().startswith(f'image\t{bad}\t')
