"""Layer-wise lr decay for every backbone in an mmdet and an mmseg config from configs/: the
optimizer built by ``LayerDecayOptimWrapperConstructor`` from the config's ``optim_wrapper`` on the
config's model (tiny override) gives strictly increasing lr from the stem to the last block, each
group's lr is ``lr · rate^(num_layers - 1 - layer_id)`` by the backbone's ``get_layer_depth``, and
necks/heads keep the full lr. No Runner: the registry builds the constructor directly."""
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from tests.conftest import REPO
from tests.configs.tiny import tiny_override

def _layer_decay_cases():
    """backbone type -> (an mmdet config, an mmseg config) with layer decay < 1, found by scanning
    configs/: a new backbone with dense configs is covered without editing this test."""
    import hvit_mm  # noqa: F401
    found = {}
    for p in sorted((REPO / 'configs').rglob('*.py')):
        if '_base_' in p.parts:
            continue
        cfg = Config.fromfile(str(p))
        scope = cfg.get('default_scope')
        rate = cfg.get('optim_wrapper', {}).get('paramwise_cfg', {}).get('layer_decay_rate', 1.0)
        kind = cfg.get('model', {}).get('backbone', {}).get('type')
        if scope in ('mmdet', 'mmseg') and rate < 1.0 and kind:
            found.setdefault(kind, {}).setdefault(scope, str(p.relative_to(REPO / 'configs')))
    return {k: tuple(v.values()) for k, v in found.items()}


CASES = _layer_decay_cases()
PARAMS = [(b, c) for b, pair in sorted(CASES.items()) for c in pair]


def test_every_dense_backbone_has_both_cases():
    assert {'ViTDet', 'HPViT', 'Hiera'} <= set(CASES)
    assert all(len(pair) == 2 for pair in CASES.values()), CASES


def build_groups(config: str):
    import hvit_mm  # noqa: F401
    cfg = tiny_override(Config.fromfile(str(REPO / 'configs' / config)), '/nonexistent-toy-root')
    scope = cfg.default_scope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS'])
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.MODELS.build(cfg.model)
        wrapper_cfg = cfg.optim_wrapper.copy()
        constructor = registry.OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
            type=wrapper_cfg.pop('constructor'), optim_wrapper_cfg=wrapper_cfg,
            paramwise_cfg=wrapper_cfg.pop('paramwise_cfg')))
        wrapper = constructor(model)
    return model, cfg, {g['param_name']: g for g in wrapper.optimizer.param_groups}


@pytest.mark.parametrize('backbone,config', PARAMS, ids=[f'{b}-{c.split("/")[1].split("_")[0]}'
                                                         for b, c in PARAMS])
def test_lr_strictly_increases_from_stem_to_last_block(backbone, config):
    model, cfg, groups = build_groups(config)
    assert type(model.backbone).__name__ == backbone
    base_lr = cfg.optim_wrapper.optimizer.lr
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    assert rate < 1.0, f'{config}: no layer decay to check'
    assert len(groups) == sum(p.requires_grad for p in model.parameters())
    # one lr per depth, strictly increasing from the stem (0) through every block to the top
    by_depth = {}
    for name, g in groups.items():
        layer_id, num_layers = model.backbone.get_layer_depth(name, 'backbone.')
        assert g['lr'] == pytest.approx(base_lr * rate ** (num_layers - 1 - layer_id)), name
        by_depth.setdefault(layer_id, set()).add(round(g['lr'], 12))
        block = re.match(r'backbone\.(?:layers\.\d+\.)?blocks\.(\d+)\.', name)
        if block:  # every parameter of a block (its rel-pos tables too) shares the block's depth
            first = next(n for n in groups if n.startswith(block.group(0)))
            assert g['lr'] == groups[first]['lr'], name
        if not name.startswith('backbone.'):
            assert g['lr'] == pytest.approx(base_lr), name  # neck and heads: no decay
    assert any(not n.startswith('backbone.') for n in groups)
    lrs = [by_depth[d] for d in sorted(by_depth)]
    assert sorted(by_depth)[:2] == [0, 1] and all(len(v) == 1 for v in lrs)
    assert all(min(a) < min(b) for a, b in zip(lrs, lrs[1:])), by_depth
    # position tables get no weight decay (the backbone's no_weight_decay())
    for n in model.backbone.no_weight_decay():
        if f'backbone.{n}' in groups:
            assert groups[f'backbone.{n}']['weight_decay'] == 0.0
