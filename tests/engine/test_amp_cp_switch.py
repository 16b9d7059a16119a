"""The AMP and activation-checkpointing switches of every dense config (mmdet/mmseg) in configs/.

On this CPU machine: ``with_cp=True`` is accepted by each config's backbone and really checkpoints
(every block goes through ``torch.utils.checkpoint``) in a training forward/backward; ``--amp``
fails with the clear error (a CUDA machine instead gets ``AmpOptimWrapper``, bf16 where supported);
a bf16 ``torch.autocast`` CPU forward of a ViTDet detector's backbone + neck is finite. Full
2-iteration training with ``with_cp=True`` is the config matrix's ViTDet/HPViT/Hiera LSJ cases.
"""
import argparse
import sys

import pytest
import torch
import torch.utils.checkpoint
from mmengine.config import Config
from mmengine.registry import DefaultScope

from hvit_mm.config_check import ConfigError
from hvit_mm.launch import prepare_runner_cfg
from tests.conftest import REPO, run_tool
from tests.configs.tiny import tiny_override

def _hvit_backbones():
    import hvit_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    from hvit_mm.models.backbones.base import Backbone
    return {n for n, c in MODELS.module_dict.items() if isinstance(c, type) and issubclass(c, Backbone)}


BACKBONES = _hvit_backbones()


def dense_configs():
    """Every mmdet/mmseg config under configs/ whose backbone is an hvit_mm one (the toy ResNet
    configs are mmdet's/mmseg's own switches)."""
    out = []
    for p in sorted((REPO / 'configs').rglob('*.py')):
        if '_base_' in p.parts:
            continue
        cfg = Config.fromfile(str(p))
        if cfg.get('default_scope') in ('mmdet', 'mmseg') and \
                cfg.model.get('backbone', {}).get('type') in BACKBONES:
            out.append(p)
    return out


CONFIGS = dense_configs()
IDS = [str(p.relative_to(REPO / 'configs')) for p in CONFIGS]


def tiny_cfg(path):
    import hvit_mm  # noqa: F401
    return tiny_override(Config.fromfile(str(path)), '/nonexistent-toy-root')


def test_the_dense_backbones_have_dense_configs():
    kinds = {tiny_cfg(p).model.backbone.type for p in CONFIGS}
    assert {'ViTDet', 'HPViT', 'Hiera'} <= kinds, kinds


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_with_cp_switch_checkpoints_every_block(path, monkeypatch):
    cfg = tiny_cfg(path)
    cfg.model.backbone.with_cp = True
    registry = __import__(f'{cfg.default_scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = registry.build(cfg.model.backbone)
    calls = []
    real = torch.utils.checkpoint.checkpoint

    def counting(fn, *args, **kwargs):
        calls.append(fn)
        return real(fn, *args, **kwargs)
    monkeypatch.setattr(torch.utils.checkpoint, 'checkpoint', counting)
    module = sys.modules[type(backbone).__module__]  # a backbone that imported the name itself
    for name, value in vars(module).items():
        if value is real:
            monkeypatch.setattr(module, name, counting)
    backbone.train()
    outs = backbone(torch.randn(1, 3, 64, 64))
    sum(o.float().mean() for o in outs).backward()
    assert len(calls) == len(backbone.blocks), f'{len(calls)} checkpointed calls'
    assert backbone.patch_embed.proj.weight.grad is not None
    calls.clear()
    backbone.eval()
    with torch.no_grad():
        backbone(torch.randn(1, 3, 64, 64))
    assert not calls  # inference never checkpoints


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_amp_switch(path):
    cfg = Config.fromfile(str(path))
    args = argparse.Namespace(launcher='none', work_dir='/tmp/unused', amp=True, resume=None)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match='--amp needs a CUDA GPU'):
            prepare_runner_cfg(cfg, args, str(path))
        return
    cfg = prepare_runner_cfg(cfg, args, str(path))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    if torch.cuda.is_bf16_supported() and cfg.optim_wrapper.get('dtype'):
        assert cfg.optim_wrapper.dtype == 'bfloat16'


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU error path; CUDA: test_amp_switch')
def test_amp_on_cpu_cli_gives_the_clear_error(tmp_path):
    path = REPO / 'configs' / 'vitdet' / 'upernet_vit-base-p16_8xb2-160k_ade20k-512x512.py'
    out = run_tool('tools/train.py', path, '--amp', '--work-dir', tmp_path, check=False)
    assert out.returncode == 2, out.stdout[-2000:]
    assert '--amp needs a CUDA GPU' in out.stdout and 'Traceback' not in out.stdout


def test_bf16_autocast_cpu_forward_of_a_vitdet_detector():
    cfg = tiny_cfg(REPO / 'configs' / 'vitdet' / 'mask-rcnn_vit-base-p16_16xb4-amp-lsj-100e_coco.py')
    from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model).eval()
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        ref = model.extract_feat(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            feats = model.extract_feat(x)
    assert len(feats) == len(ref) == 5
    assert all(f.dtype == torch.bfloat16 and torch.isfinite(f.float()).all() for f in feats)
    # bf16 keeps ~3 significant digits: the pyramid stays close to the fp32 one
    for f, r in zip(feats, ref):
        assert (f.float() - r).abs().max() < 0.1 * r.abs().max() + 0.1
