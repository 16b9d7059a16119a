"""SimpleFeaturePyramid (ViTDet): strides/channels of every level, the branch of each scale factor,
the channel LayerNorm, registry builds in mmdet and mmseg, and a plain ViT feeding it."""
import pytest
import torch
import torch.nn.functional as F

from hvit_mm.models.backbones.vit import ViT, ViTDet
from hvit_mm.models.necks.simple_fpn import LayerNorm2d, SimpleFeaturePyramid


def perturbed(model):
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize('hw', [(8, 8), (7, 5)])
def test_levels_strides_and_channels(hw):
    neck = SimpleFeaturePyramid(32, 16, num_outs=5).eval()
    x = torch.randn(2, 32, *hw)
    outs = neck((torch.randn(2, 32, 1, 1), x))  # reads the last map by default
    h, w = hw
    want = [(h * 4, w * 4), (h * 2, w * 2), (h, w), (h // 2, w // 2)]
    want.append(((want[-1][0] + 1) // 2, (want[-1][1] + 1) // 2))  # the extra pooled level
    assert [o.shape for o in outs] == [(2, 16, *s) for s in want]


def test_each_branch_is_what_vitdet_builds():
    neck = perturbed(SimpleFeaturePyramid(32, 16, scale_factors=(4.0, 2.0, 1.0, 0.5)))
    x = torch.randn(1, 32, 6, 6)
    with torch.no_grad():
        p4, p8, p16, p32 = neck((x,))
        head = lambda i, y: neck.fpn_convs[i](neck.lateral_convs[i](y))  # noqa: E731
        up4 = neck.stages[0]
        assert [type(m).__name__ for m in up4] == ['ConvTranspose2d', 'LayerNorm2d', 'GELU',
                                                   'ConvTranspose2d']
        assert up4[0].out_channels == 16 and up4[3].out_channels == 8  # C/2, C/4 as ViTDet
        assert torch.allclose(p16, head(2, x), atol=1e-6)
        assert torch.allclose(p32, head(3, F.max_pool2d(x, 2)), atol=1e-6)
        assert torch.allclose(p8, head(1, neck.stages[1](x)), atol=1e-6)
    # no conv bias before a norm; the norms are channel LayerNorms
    lat = neck.lateral_convs[0]
    assert lat.conv.bias is None and isinstance(lat.norm, LayerNorm2d)


def test_layer_norm_2d_normalises_channels():
    ln = LayerNorm2d(8, eps=1e-6)
    ln.weight.data.normal_()
    ln.bias.data.normal_()
    x = torch.randn(2, 8, 3, 5)
    want = F.layer_norm(x.permute(0, 2, 3, 1), (8,), ln.weight, ln.bias, 1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(ln(x), want, atol=1e-6)


def test_builds_in_mmdet_and_mmseg_with_other_norms():
    import hvit_mm  # noqa: F401
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    from mmengine.registry import DefaultScope
    for scope, registry in (('mmdet', DET), ('mmseg', SEG)):
        with DefaultScope.overwrite_default_scope(scope):
            neck = registry.build(dict(type='SimpleFeaturePyramid', in_channels=32, out_channels=16,
                                       norm_cfg=dict(type='GN', num_groups=4)))
            assert type(neck.lateral_convs[0].norm).__name__ == 'GroupNorm'
            ln = registry.build(dict(type='SimpleFeaturePyramid', in_channels=32, out_channels=16))
            assert isinstance(ln.fpn_convs[0].norm, LayerNorm2d)
    with pytest.raises(ValueError, match='scale factor'):
        SimpleFeaturePyramid(32, 16, scale_factors=(3.0,))
    with pytest.raises(ValueError, match='num_outs'):
        SimpleFeaturePyramid(32, 16, num_outs=2)


def test_plain_vit_into_the_pyramid_trains():
    vit = ViTDet(dict(embed_dims=32, depth=2, num_heads=2), img_size=64, window_size=2,
              global_blocks=(1,), rel_pos_bias=True)
    neck = SimpleFeaturePyramid(32, 16, num_outs=5)
    outs = neck(vit(torch.randn(2, 3, 64, 96)))
    assert [o.shape[-2:] for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]
    sum(o.mean() for o in outs).backward()
    assert vit.patch_embed.proj.weight.grad.abs().sum() > 0
    assert neck.stages[0][0].weight.grad.abs().sum() > 0
