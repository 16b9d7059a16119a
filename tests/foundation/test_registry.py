"""One registration serves mmpretrain, mmdet and mmseg configs by the bare type name."""
import pytest
import torch
from mmengine.registry import init_default_scope
from torch import nn

from hvit_mm.registry import register_model


@register_model()
class _ToyBackbone(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return (self.conv(x), )


@pytest.mark.parametrize('scope', ['mmpretrain', 'mmdet', 'mmseg'])
def test_bare_name_builds_in_every_scope(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    init_default_scope(scope)
    model = registry.build(dict(type='_ToyBackbone', width=5))
    assert isinstance(model, _ToyBackbone)
    assert model(torch.zeros(1, 3, 8, 8))[0].shape == (1, 5, 6, 6)


def test_cross_scope_name_from_mmdet():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    assert isinstance(MODELS.build(dict(type='mmpretrain._ToyBackbone')), _ToyBackbone)


def test_custom_imports_is_all_a_config_needs(tmp_path):
    from mmengine.config import Config
    cfg_file = tmp_path / 'c.py'
    cfg_file.write_text("custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)\n"
                        "default_scope = 'mmseg'\n")
    cfg = Config.fromfile(str(cfg_file))
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
    init_default_scope(cfg.default_scope)
    assert OPTIM_WRAPPER_CONSTRUCTORS.get('LayerDecayOptimWrapperConstructor') is not None
