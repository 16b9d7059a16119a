"""LayerDecayOptimWrapperConstructor on HPViT inside an mmdet config: the built param groups."""
import copy

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from tests.conftest import REPO

CONFIG = REPO / 'configs' / 'hpvit' / 'mask-rcnn_hpvit-base-p16_8xb2-1x_coco.py'
TINY = dict(arch=dict(embed_dims=32, depth=4, num_heads=2, pool_after=(0, 1, 2)), window_size=4,
            pool='conv', init_cfg=None)


@pytest.fixture(scope='module')
def groups():
    import hvit_mm  # noqa: F401
    from mmdet.registry import MODELS
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.backbone.update(copy.deepcopy(TINY))
    cfg.model.neck.in_channels = [32] * 4
    with DefaultScope.overwrite_default_scope(cfg.default_scope):  # not left set for other tests
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    by_name = {g['param_name']: g for g in wrapper.optimizer.param_groups}
    assert len(by_name) == sum(1 for p in model.parameters() if p.requires_grad)
    return by_name, base_lr, rate


def test_lr_strictly_increases_from_patch_embed_to_last_block(groups):
    by_name, base_lr, rate = groups
    chain = ['backbone.patch_embed.proj.weight'] + [
        f'backbone.blocks.{i}.attn.qkv.weight' for i in range(4)]
    lrs = [by_name[n]['lr'] for n in chain]
    assert all(a < b for a, b in zip(lrs, lrs[1:])), lrs
    # num_layers = depth + 2 = 6: the stem gets rate^5, blocks.i rate^(4 - i)
    for layer_id, lr in enumerate(lrs):
        assert lr == pytest.approx(base_lr * rate ** (5 - layer_id))
    # every parameter of a block shares its lr; a pool shares the lr of the block it feeds
    assert {by_name[n]['lr'] for n in by_name if n.startswith('backbone.blocks.2.')} == {lrs[3]}
    assert by_name['backbone.pools.0.conv.weight']['lr'] == lrs[2]
    assert by_name['backbone.pos_embed']['lr'] == lrs[0]


def test_necks_heads_and_output_norms_get_the_full_lr(groups):
    by_name, base_lr, _ = groups
    full = [n for n in by_name if not n.startswith('backbone.')
            or n.startswith(('backbone.norm.', 'backbone.out_norms.'))]
    assert any(n.startswith('neck.') for n in full) and any(n.startswith('roi_head.') for n in full)
    assert all(by_name[n]['lr'] == pytest.approx(base_lr) for n in full)


def test_weight_decay_from_no_weight_decay_and_norms(groups):
    by_name, _, _ = groups
    assert by_name['backbone.pos_embed']['weight_decay'] == 0.0  # HPViT.no_weight_decay()
    assert by_name['backbone.blocks.0.norm1.weight']['weight_decay'] == 0.0  # norm_decay_mult
    assert by_name['backbone.blocks.0.attn.qkv.bias']['weight_decay'] == 0.0  # bias_decay_mult
    assert by_name['backbone.blocks.0.attn.qkv.weight']['weight_decay'] == 0.1
