"""Stock mmdet / mmseg / mmpretrain models train and evaluate on the toy data via tools/train.py."""
import re

import pytest

from tests.conftest import run_tool

pytestmark = pytest.mark.slow


def _train(cfg, work_dir, *options):
    return run_tool('tools/train.py', cfg, '--work-dir', work_dir, '--cfg-options',
                    'default_hooks.logger.interval=1', *options).stdout


def test_mask_rcnn_trains_and_reports_coco_ap(toy_root, tmp_path):
    out = _train('configs/toy/mask-rcnn_r50_fpn_1xb2-toy_coco.py', tmp_path,
                 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                 'train_dataloader.dataset.indices=4')
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', out), out[-3000:]
    assert re.search(r'coco/bbox_mAP: [\d.]+', out) and re.search(r'coco/segm_mAP: [\d.]+', out), \
        out[-3000:]


def test_upernet_trains_and_reports_miou(toy_root, tmp_path):
    out = _train('configs/toy/upernet_r50_1xb2-toy_ade20k.py', tmp_path,
                 'train_cfg.max_iters=2', 'train_cfg.val_interval=2')
    assert re.search(r'Iter\(train\) \[2/2\]', out), out[-3000:]
    assert re.search(r'mIoU: [\d.]+', out), out[-3000:]


def test_classifier_trains_and_reports_top1(toy_root, tmp_path):
    out = _train('configs/toy/resnet18_1xb16-toy_in1k.py', tmp_path,
                 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1')
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', out), out[-3000:]
    assert re.search(r'accuracy/top1: [\d.]+', out), out[-3000:]
