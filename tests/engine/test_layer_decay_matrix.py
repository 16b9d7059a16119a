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

CASES = {  # backbone -> (an mmdet config, an mmseg config)
    'ViT': ('vitdet/mask-rcnn_vit-base-p16_16xb4-amp-lsj-100e_coco.py',
            'vitdet/upernet_vit-base-p16_8xb2-160k_ade20k-512x512.py'),
    'HPViT': ('hpvit/mask-rcnn_hpvit-base-p16_16xb4-amp-lsj-100e_coco.py',
              'hpvit/upernet_hpvit-base-p16_8xb2-160k_ade20k-512x512.py'),
    'Hiera': ('hiera/mask-rcnn_hiera-base-p4_fpn_16xb4-amp-lsj-100e_coco.py',
              'hiera/upernet_hiera-base-p4_8xb2-160k_ade20k-512x512.py'),
}
PARAMS = [(b, c) for b, pair in CASES.items() for c in pair]


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
    depth = len(model.backbone.blocks)
    stem = next(n for n in groups if n.startswith('backbone.patch_embed.'))
    chain = [stem] + [next(n for n in groups if n.startswith(f'backbone.blocks.{i}.'))
                      for i in range(depth)]
    lrs = [groups[n]['lr'] for n in chain]
    assert all(a < b for a, b in zip(lrs, lrs[1:])), dict(zip(chain, lrs))
    for name, g in groups.items():
        layer_id, num_layers = model.backbone.get_layer_depth(name, 'backbone.')
        assert g['lr'] == pytest.approx(base_lr * rate ** (num_layers - 1 - layer_id)), name
        block = re.match(r'backbone\.blocks\.(\d+)\.', name)
        if block:  # every parameter of block i (its rel-pos tables too) shares block i's lr
            assert g['lr'] == pytest.approx(lrs[int(block.group(1)) + 1]), name
        if not name.startswith('backbone.'):
            assert g['lr'] == pytest.approx(base_lr), name  # neck and heads: no decay
    assert any(not n.startswith('backbone.') for n in groups)
    # position tables get no weight decay (the backbone's no_weight_decay())
    for n in model.backbone.no_weight_decay():
        if f'backbone.{n}' in groups:
            assert groups[f'backbone.{n}']['weight_decay'] == 0.0
