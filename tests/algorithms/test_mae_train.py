"""End to end through tools/train.py: a small MAE pretrains on the toy ImageNet (the loss after 100
iterations is clearly below the start), then the ViT-B fine-tuning config, shrunk, loads that
checkpoint strictly and trains."""
import re

import pytest
from mmengine.config import Config

from tests.conftest import REPO, run_tool
from tests.configs.tiny import tiny_override

PRETRAIN = 'configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py'
FINETUNE = 'configs/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'
ARCH = dict(embed_dims=64, depth=2, num_heads=4)


def losses(log: str):
    return [float(v) for v in re.findall(r'Iter\(train\).*?\sloss: ([0-9.]+)', log)]


@pytest.mark.slow
def test_mae_pretrains_on_toy_imagenet_then_finetune_loads_it(toy_root, tmp_path):
    work = tmp_path / 'pretrain'
    log = run_tool('tools/train.py', PRETRAIN, '--work-dir', work, '--cfg-options',
                   f'train_dataloader.dataset.dataset.data_root={toy_root}/imagenet',
                   'model.backbone.arch.embed_dims=64', 'model.backbone.arch.depth=2',
                   'train_dataloader.batch_size=16', 'train_cfg.max_iters=100',
                   'default_hooks.checkpoint.interval=100').stdout
    curve = losses(log)
    assert len(curve) >= 10, log[-3000:]
    assert curve[-1] < 0.6 * curve[0], curve  # e.g. 1.45 -> 0.5 in practice
    ckpt = work / 'iter_100.pth'
    assert ckpt.is_file()

    cfg = tiny_override(Config.fromfile(str(REPO / FINETUNE)), str(toy_root))
    cfg.model.backbone.update(arch=ARCH, patch_size=8, img_size=64, init_cfg=dict(
        type='Pretrained', checkpoint=str(ckpt), prefix='backbone.'))
    cfg.model.head.in_channels = ARCH['embed_dims']
    path = tmp_path / 'finetune.py'
    cfg.dump(str(path))
    log = run_tool('tools/train.py', path, '--work-dir', tmp_path / 'finetune').stdout
    assert f'loaded {ckpt} into ViT' in log, log[-3000:]
    assert "newly initialised: ['fc_norm.bias', 'fc_norm.weight']" in log
