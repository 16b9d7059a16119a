#!/usr/bin/env python
"""Write tiny, learnable toy datasets in the real on-disk formats of ImageNet, COCO, ADE20K and Cityscapes.

Every image shows coloured shapes (circle / square / triangle / star, random colour, position, scale and
rotation) on a random texture (noise, gradient or stripes); the class is given by the shape only.  Masks and
label maps are rasterised from the very polygons that are painted, so annotations match pixels exactly.
The stock OpenMMLab classes read the output unchanged (``OUT`` below is the output directory)::

    ImageNet     mmpretrain ImageNet(data_root=OUT/imagenet, split='train'|'val',
                 metainfo=dict(classes=OUT/imagenet/classes.txt))            -> num_classes=4
                 (or ann_file='meta/train.txt', data_prefix='train'; val: 'meta/val.txt', 'val')
    COCO         mmdet CocoDataset(data_root=OUT/coco, ann_file='annotations/instances_train2017.json',
                 data_prefix=dict(img='train2017/'), metainfo=dict(classes=COCO_CLASSES))  -> num_classes=4
                 (all 80 COCO categories are listed, so the default 80-class metainfo also works)
    ADE20K       mmseg ADE20KDataset(data_root=OUT/ade/ADEChallengeData2016,
                 data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))
                 -> num_classes=150, reduce_zero_label=True (PNG 0 = unlabeled -> 255)
    Cityscapes   mmseg CityscapesDataset(data_root=OUT/cityscapes,
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'))  -> 19 classes

Same arguments give byte-identical files.  A finished set is recorded in ``OUT/.toy_manifest.json``
(written last, atomically); a later call with the same parameters returns at once.
Usage: python make_toy_datasets.py OUT_DIR [--seed S] [--num-train N] [--num-val M] [--size PX] [--no-progress]
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys
import time

import cv2
import numpy as np
from pycocotools import mask as mask_utils

VERSION = 1
SHAPES = ('circle', 'square', 'triangle', 'star')
DATASETS = ('imagenet', 'coco', 'ade', 'cityscapes')
DEFAULT_NUM = {'imagenet': (32, 8), 'coco': (16, 8), 'ade': (16, 8), 'cityscapes': (8, 4)}
# ImageNet: class k <-> synthetic wnid folder n0000000k (sorted folders == label order), names in classes.txt
IMAGENET_CLASSES = SHAPES
IMAGENET_WNIDS = tuple(f'n{k:08d}' for k in range(len(SHAPES)))
# COCO: real category names/ids; the subset tuple is in COCO-id order, as mmdet's cat2label follows the ids
_COCO_NAMES = (
    'person|bicycle|car|motorcycle|airplane|bus|train|truck|boat|traffic light|fire hydrant|stop sign|'
    'parking meter|bench|bird|cat|dog|horse|sheep|cow|elephant|bear|zebra|giraffe|backpack|umbrella|handbag|'
    'tie|suitcase|frisbee|skis|snowboard|sports ball|kite|baseball bat|baseball glove|skateboard|surfboard|'
    'tennis racket|bottle|wine glass|cup|fork|knife|spoon|bowl|banana|apple|sandwich|orange|broccoli|carrot|'
    'hot dog|pizza|donut|cake|chair|couch|potted plant|bed|dining table|toilet|tv|laptop|mouse|remote|'
    'keyboard|cell phone|microwave|oven|toaster|sink|refrigerator|book|clock|vase|scissors|teddy bear|'
    'hair drier|toothbrush').split('|')
_COCO_IDS = [k for k in range(1, 91) if k not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_CATEGORIES = [dict(id=i, name=n, supercategory='object') for i, n in zip(_COCO_IDS, _COCO_NAMES)]
COCO_SHAPE_TO_NAME = {'circle': 'sports ball', 'triangle': 'kite', 'square': 'tv', 'star': 'clock'}
COCO_CLASSES = ('sports ball', 'kite', 'tv', 'clock')  # ids 37, 38, 72, 85
# ADE20K: PNG value = ADE index + 1 (0 = unlabeled); background is 'wall'
ADE_BACKGROUND = 1  # 'wall' -> 0 after reduce_zero_label
ADE_SHAPE_IDS = {'circle': 120, 'square': 42, 'triangle': 115, 'star': 150}  # ball, box, tent, flag
# Cityscapes trainIds: road 0, building 2, sky 10 as stuff; 255 = ignore (ego-vehicle strip at the bottom)
CITYSCAPES_SHAPE_IDS = {'circle': 6, 'square': 13, 'triangle': 7, 'star': 11}  # light, car, sign, person
CITYSCAPES_STUFF = (10, 2, 0)  # sky, building, road from top to bottom


# ----------------------------------------------------------------------------------------- drawing
def shape_polygon(shape, cx, cy, r, rot):
    """Vertices (n, 2) of a shape, rounded to 0.01 px so the JSON reproduces the raster exactly."""
    n, radii = {'circle': (48, (1.0,)), 'square': (4, (1.0,)), 'triangle': (3, (1.0,)),
                'star': (10, (1.0, 0.45))}[shape]
    ang = rot + 2 * np.pi * np.arange(n) / n
    rr = r * np.array([radii[i % len(radii)] for i in range(n)])
    return np.round(np.stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)], 1), 2)


def rasterize(poly, h, w):
    """Polygon -> bool mask with pycocotools, i.e. exactly as COCO tools (and mmdet) decode it."""
    rle = mask_utils.merge(mask_utils.frPyObjects([poly.ravel().tolist()], h, w))
    return mask_utils.decode(rle).astype(bool)


def texture(rng, h, w):
    """Random background: smooth noise, linear gradient or stripes between two colours, plus pixel noise."""
    kind = int(rng.integers(3))
    c0, c1 = rng.uniform(0, 255, (2, 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:
        g = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)))).astype(np.float32)
        t = np.clip(cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1).astype(np.float64)
    elif kind == 1:
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
    else:
        a, f = rng.uniform(0, np.pi), rng.uniform(0.15, 0.6)
        t = 0.5 + 0.5 * np.sin(f * (xx * np.cos(a) + yy * np.sin(a)))
    return c0 + (c1 - c0) * t[..., None] + rng.normal(0, 6, (h, w, 3))


def place_objects(rng, h, w, shape_ids, rmin, rmax, no_overlap):
    """Random shapes fully inside the image; [(shape_id, polygon, mask)].  Gives up on a shape after 50 tries."""
    objs, occupied = [], np.zeros((h, w), bool)
    for sid in shape_ids:
        for _ in range(50):
            r = rng.uniform(rmin, rmax) * min(h, w)
            cx, cy, rot = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1), rng.uniform(0, 2 * np.pi)
            poly = shape_polygon(SHAPES[sid], cx, cy, r, rot)
            m = rasterize(poly, h, w)
            grown = cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            if m.sum() < 30 or (no_overlap and (grown & occupied).any()):
                continue
            occupied |= m
            objs.append((int(sid), poly, m))
            break
    return objs


def paint(rng, img, objs):
    """Paint each object's mask with a random colour that contrasts with what is underneath (in order)."""
    for _, _, m in objs:
        under = img[m].mean(0)
        for _ in range(20):
            col = rng.uniform(0, 255, 3)
            if np.linalg.norm(col - under) > 110:
                break
        img[m] = col + rng.normal(0, 5, (int(m.sum()), 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_image(path, img, jpeg=False):
    os.makedirs(osp.dirname(path), exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode('.jpg' if jpeg else '.png', img, params)
    assert ok, path
    with open(path, 'wb') as f:
        f.write(buf.tobytes())


def write_text(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', newline='\n') as f:
        f.write(text)


def _rng(seed, dataset, split, index):
    return np.random.default_rng([seed, DATASETS.index(dataset), split, index])


def _mixed_shapes(rng, index, lo, hi):
    """First shape cycles through the classes (every class is present), the others are random."""
    n = int(rng.integers(lo, hi + 1))
    return [index % len(SHAPES)] + [int(s) for s in rng.integers(len(SHAPES), size=n - 1)]


# ---------------------------------------------------------------------------------------- datasets
def make_imagenet(root, seed, n_train, n_val, size, tick=lambda: None):
    lines = {'train': [], 'val': []}
    for split_i, (split, n) in enumerate((('train', n_train), ('val', n_val))):
        for i in range(n):
            rng, label = _rng(seed, 'imagenet', split_i, i), i % len(SHAPES)
            objs = place_objects(rng, size, size, [label], 0.22, 0.4, True)
            img = paint(rng, texture(rng, size, size), objs)
            wnid = IMAGENET_WNIDS[label]
            rel = f'{wnid}/{wnid}_{i:05d}.JPEG' if split == 'train' else f'ILSVRC2012_val_{i + 1:08d}.JPEG'
            write_image(osp.join(root, split, rel), img, jpeg=True)
            lines[split].append(f'{rel} {label}\n')
            tick()
    for split in lines:
        write_text(osp.join(root, 'meta', f'{split}.txt'), ''.join(lines[split]))
    write_text(osp.join(root, 'classes.txt'), ''.join(c + '\n' for c in IMAGENET_CLASSES))


def uncompressed_rle(m):
    """COCO uncompressed RLE: column-major run lengths, starting with a run of zeros."""
    flat = m.flatten(order='F').astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(bounds).tolist()
    return {'size': list(m.shape), 'counts': ([0] + counts) if flat[0] else counts}


def make_coco(root, seed, n_train, n_val, size, tick=lambda: None):
    name_to_id = {c['name']: c['id'] for c in COCO_CATEGORIES}
    ann_id = 0
    for split_i, (split, n) in enumerate((('train2017', n_train), ('val2017', n_val))):
        images, anns = [], []
        for i in range(n):
            rng, img_id = _rng(seed, 'coco', split_i, i), split_i * 500000 + i + 1
            objs = place_objects(rng, size, size, _mixed_shapes(rng, i, 2, 5), 0.08, 0.2, True)
            img = paint(rng, texture(rng, size, size), objs)
            file_name = f'{img_id:012d}.jpg'
            write_image(osp.join(root, split, file_name), img, jpeg=True)
            images.append(dict(id=img_id, file_name=file_name, height=size, width=size))
            for sid, poly, m in objs:
                ann_id += 1
                rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
                kind = ann_id % 6  # 4: uncompressed RLE, 5: compressed RLE, else polygon (all iscrowd=0)
                if kind == 4:
                    seg = uncompressed_rle(m)
                elif kind == 5:
                    seg = {'size': list(m.shape), 'counts': rle['counts'].decode('ascii')}
                else:
                    seg = [[float(v) for v in poly.ravel()]]
                anns.append(dict(id=ann_id, image_id=img_id, category_id=name_to_id[COCO_SHAPE_TO_NAME[SHAPES[sid]]],
                                 segmentation=seg, area=float(mask_utils.area(rle)),
                                 bbox=[float(v) for v in mask_utils.toBbox(rle)], iscrowd=0))
            tick()
        data = dict(info=dict(description='hvit_mm toy COCO', version=str(VERSION), year=2017), licenses=[],
                    images=images, annotations=anns, categories=COCO_CATEGORIES)
        write_text(osp.join(root, 'annotations', f'instances_{split}.json'), json.dumps(data))


def make_ade(root, seed, n_train, n_val, size, tick=lambda: None):
    for split_i, (split, tag, n) in enumerate((('training', 'train', n_train), ('validation', 'val', n_val))):
        for i in range(n):
            rng = _rng(seed, 'ade', split_i, i)
            objs = place_objects(rng, size, size, _mixed_shapes(rng, i, 2, 5), 0.1, 0.25, False)
            img = paint(rng, texture(rng, size, size), objs)
            seg = np.full((size, size), ADE_BACKGROUND, np.uint8)
            for sid, _, m in objs:
                seg[m] = ADE_SHAPE_IDS[SHAPES[sid]]
            seg[:2], seg[-2:], seg[:, :2], seg[:, -2:] = 0, 0, 0, 0  # unlabeled frame (0 = "other")
            name = f'ADE_{tag}_{i + 1:08d}'
            write_image(osp.join(root, 'images', split, name + '.jpg'), img, jpeg=True)
            write_image(osp.join(root, 'annotations', split, name + '.png'), seg)
            tick()


def make_cityscapes(root, seed, n_train, n_val, size, tick=lambda: None):
    h, w = size // 2, size
    for split_i, (split, cities, n) in enumerate((('train', ('aachen', 'bochum'), n_train),
                                                  ('val', ('frankfurt',), n_val))):
        for i in range(n):
            rng = _rng(seed, 'cityscapes', split_i, i)
            y1, y2 = int(rng.uniform(0.15, 0.35) * h), int(rng.uniform(0.5, 0.7) * h)
            img, seg = np.zeros((h, w, 3)), np.zeros((h, w), np.uint8)
            for (a, b), tid in zip(((0, y1), (y1, y2), (y2, h)), CITYSCAPES_STUFF):
                img[a:b], seg[a:b] = texture(rng, h, w)[a:b], tid
            objs = place_objects(rng, h, w, _mixed_shapes(rng, i, 2, 4), 0.15, 0.3, False)
            img = paint(rng, img, objs)
            for sid, _, m in objs:
                seg[m] = CITYSCAPES_SHAPE_IDS[SHAPES[sid]]
            ego = max(2, h // 16)  # ego-vehicle strip: dark pixels, ignored (255)
            img[-ego:], seg[-ego:] = 20, 255
            city = cities[i % len(cities)]
            stem = f'{city}_{i:06d}_000019'
            write_image(osp.join(root, 'leftImg8bit', split, city, stem + '_leftImg8bit.png'), img)
            write_image(osp.join(root, 'gtFine', split, city, stem + '_gtFine_labelTrainIds.png'), seg)
            tick()


_MAKERS = {'imagenet': (make_imagenet, 'imagenet'), 'coco': (make_coco, 'coco'),
           'ade': (make_ade, osp.join('ade', 'ADEChallengeData2016')), 'cityscapes': (make_cityscapes, 'cityscapes')}


def _counts(num, name, which):
    if num is None:
        return DEFAULT_NUM[name][which]
    return int(num[name] if isinstance(num, dict) else num)


def _progress(name, total, enabled):
    """The per-image callback of one dataset: an mmengine progress bar (count, rate, ETA) or nothing."""
    if not enabled or not total:
        return lambda: None
    from mmengine.utils import ProgressBar  # only when asked: the plain generator needs no mmengine
    print(f'{name}: {total} images', flush=True)
    bar, step, done = ProgressBar(total), max(1, total // 50), [0]

    def tick():  # redrawn ~50 times per dataset, so a log file (no terminal) stays short
        done[0] += 1
        if done[0] % step == 0 or done[0] == total:
            bar.update(done[0] - bar.completed)
    return tick


def make_toy_datasets(out_dir, seed=0, num_train=None, num_val=None, size=128, force=False,
                      progress=False):
    """Write all four toy datasets under ``out_dir`` and return their paths and class lists.

    ``num_train`` / ``num_val``: None (per-dataset defaults, see DEFAULT_NUM), an int for all datasets, or a
    dict by dataset name.  ``size``: an int for all datasets or a dict by dataset name (every name).
    ``progress``: a progress bar per dataset on stdout.  Returns a dict with absolute paths;
    ``result['regenerated']`` is False when a complete set with the same parameters was already there.
    """
    out_dir = osp.abspath(out_dir)
    counts = {d: [_counts(num_train, d, 0), _counts(num_val, d, 1)] for d in DATASETS}
    if isinstance(size, dict):
        missing = [d for d in DATASETS if d not in size]
        if missing:
            raise KeyError(f'make_toy_datasets: size has no entry for {missing}; give an int or a '
                           f'dict with every one of {DATASETS}')
        sizes = {d: int(size[d]) for d in DATASETS}
        size = sizes  # recorded per dataset in the manifest
    else:
        size = int(size)
        sizes = dict.fromkeys(DATASETS, size)
    params = dict(version=VERSION, seed=int(seed), size=size, counts=counts)
    manifest_path = osp.join(out_dir, '.toy_manifest.json')
    result = dict(
        out_dir=out_dir, manifest=manifest_path, params=params,
        imagenet=dict(data_root=osp.join(out_dir, 'imagenet'), classes=IMAGENET_CLASSES,
                      classes_file=osp.join(out_dir, 'imagenet', 'classes.txt'), wnids=IMAGENET_WNIDS),
        coco=dict(data_root=osp.join(out_dir, 'coco'), classes=COCO_CLASSES,
                  train_ann=osp.join(out_dir, 'coco', 'annotations', 'instances_train2017.json'),
                  val_ann=osp.join(out_dir, 'coco', 'annotations', 'instances_val2017.json')),
        ade=dict(data_root=osp.join(out_dir, 'ade', 'ADEChallengeData2016'),
                 label_ids=dict(ADE_SHAPE_IDS, background=ADE_BACKGROUND)),
        cityscapes=dict(data_root=osp.join(out_dir, 'cityscapes'),
                        train_ids=dict(CITYSCAPES_SHAPE_IDS, sky=10, building=2, road=0)))
    if not force and osp.isfile(manifest_path):
        try:
            with open(manifest_path) as f:
                old = json.load(f)
            if old.get('params') == params and all(osp.isfile(osp.join(out_dir, p)) for p in old['files']):
                return dict(result, regenerated=False)
        except (ValueError, KeyError, TypeError):
            pass
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    for name in DATASETS:  # remove only our own sub-trees, so no stale files survive a parameter change
        shutil.rmtree(osp.join(out_dir, name), ignore_errors=True)
    for name in DATASETS:
        maker, sub = _MAKERS[name]
        tick = _progress(name, sum(counts[name]), progress)
        maker(osp.join(out_dir, sub), int(seed), *counts[name], sizes[name], tick)
        if progress and sum(counts[name]):
            print(flush=True)  # end the bar's line
    files = sorted(osp.relpath(osp.join(d, f), out_dir) for name in DATASETS
                   for d, _, fs in os.walk(osp.join(out_dir, name)) for f in fs)
    tmp = manifest_path + '.tmp'
    write_text(tmp, json.dumps(dict(params=params, files=files), indent=1, sort_keys=True))
    os.replace(tmp, manifest_path)
    return dict(result, regenerated=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out_dir')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=None, help='images per train split (default: per dataset)')
    p.add_argument('--num-val', type=int, default=None, help='images per val split (default: per dataset)')
    p.add_argument('--size', type=int, default=128, help='image side (Cityscapes: size/2 x size)')
    p.add_argument('--force', action='store_true', help='regenerate even if a matching set exists')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    args = p.parse_args(argv)
    t0 = time.time()
    res = make_toy_datasets(args.out_dir, args.seed, args.num_train, args.num_val, args.size, args.force,
                            progress=not args.no_progress)
    state = 'written' if res['regenerated'] else 'up to date'
    print(f"toy datasets {state} in {res['out_dir']} ({time.time() - t0:.2f}s)")
    for name in DATASETS:
        print(f"  {name:10s} {res[name]['data_root']}  train/val = {res['params']['counts'][name]}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
