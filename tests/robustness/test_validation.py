"""Every hvit_mm module checks its arguments when it is built and its input when it runs: a bad one
fails in one ValueError / KeyError / TypeError that names the parameter, the value and what works,
never later, silently (wrapped indices, a patch size of 0 read as 16) or as a torch shape dump.

Backbones and algorithms are taken from the registry (``tiny_cfg``), so a new one is covered.
"""
import os.path as osp
import re

import pytest
import torch
from mmpretrain.registry import MODELS

import hvit_mm  # noqa: F401
from hvit_mm.models import masking
from hvit_mm.models.backbones.base import Backbone, check_out_indices
from hvit_mm.models.layers import fit_pos_embed, sincos_2d
from hvit_mm.models.masking import Mask

BACKBONES = sorted(n for n, c in MODELS.module_dict.items()
                   if isinstance(c, type) and issubclass(c, Backbone))
MIM = Backbone.mim_names()
DECODER = dict(type='MAEDecoder', decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2)
VIT = dict(type='ViT', arch=dict(embed_dims=32, depth=2, num_heads=2), img_size=64, patch_size=16)
CLEAR = (ValueError, KeyError, TypeError)


def build(name, **kw):
    torch.manual_seed(0)
    return MODELS.build(dict(dict(type=name, **MODELS.get(name).tiny_cfg), **kw))


def num_outputs(model) -> int:
    """How many entries ``out_indices`` can name: stages, or blocks for the plain ViTs."""
    for attr in ('num_stages', 'pool_after', 'stages'):
        if hasattr(model, attr):
            v = getattr(model, attr)
            return v if isinstance(v, int) else len(v) + (attr == 'pool_after')
    return model.depth


def mae(backbone, algo='MaskedAutoencoder', **kw):
    if backbone.mim_mask == 'uniform' and MODELS.get(algo).needs_dropping:
        kw.setdefault('mask_type', 'uniform')
    return MODELS.build(dict(type=algo, backbone=backbone, neck=DECODER, **kw))


# ------------------------------------------------------------------------------- out_indices
@pytest.mark.parametrize('name', BACKBONES)
def test_out_of_range_out_indices_raise_instead_of_wrapping(name):
    n = num_outputs(build(name))
    with pytest.raises(ValueError, match=rf'out_indices \[{n}\] out of range .* -{n}\.\.{n - 1}'):
        build(name, out_indices=(0, n))
    with pytest.raises(ValueError, match='out_indices'):
        build(name, out_indices=(0, -n - 1))
    with pytest.raises(ValueError, match='twice'):
        build(name, out_indices=(n - 1, -1))
    with pytest.raises(TypeError, match='out_indices'):
        build(name, out_indices='last')
    assert len(build(name, out_indices=(0, n - 1)).feature_info) == (2 if n > 1 else 1)


def test_vit_out_indices_0_2_with_depth_2_raises():
    with pytest.raises(ValueError, match=r'ViT: out_indices \[2\] out of range for 2 blocks'):
        MODELS.build(dict(VIT, out_indices=(0, 2)))
    assert check_out_indices('X', -1, 4) == (3,)


# --------------------------------------------------------------------------- build arguments
@pytest.mark.parametrize('name', BACKBONES)
@pytest.mark.parametrize('rate', [-0.1, 1.0, 2, 'x', float('nan')])
def test_drop_path_rate_outside_0_1_raises_at_build(name, rate):
    with pytest.raises(CLEAR, match=rf'{name}: drop_path_rate must be .*\[0, 1\)'):
        build(name, drop_path_rate=rate)


@pytest.mark.parametrize('name', BACKBONES)
def test_unknown_arch_lists_the_valid_names(name):
    with pytest.raises(KeyError, match='unknown arch .*choose from') as err:
        build(name, arch='no-such-arch')
    assert repr(sorted(MODELS.get(name).arch_zoo)) in str(err.value)


@pytest.mark.parametrize('name', BACKBONES)
@pytest.mark.parametrize('value', [0, '64', (64,), -32])
def test_bad_img_size_raises_naming_it(name, value):
    with pytest.raises(CLEAR, match='img_size'):
        build(name, img_size=value)


@pytest.mark.parametrize('name', BACKBONES)
def test_in_channels_must_be_a_positive_int(name):
    for value in (0, '3'):
        with pytest.raises(CLEAR, match='in_channels'):
            build(name, in_channels=value)


@pytest.mark.parametrize('kw,match', [
    (dict(patch_size=0), 'patch_size must be an int >= 1, got 0'),
    (dict(patch_size='16'), 'patch_size'),
    (dict(img_size=8), r'img_size=8 is too small.*16 px patch'),
    (dict(img_size='64'), 'img_size must be an int or an .H, W. pair'),
    (dict(frozen_stages=-2), 'frozen_stages'),
    (dict(arch=dict(embed_dims=30, depth=2, num_heads=2)), 'embed_dims=30'),
    (dict(arch=dict(embed_dims=32, depth=2, num_heads=3)), 'num_heads=3 does not divide'),
    (dict(arch=dict(embed_dims=32, depth=0, num_heads=2)), 'depth must be an int >= 1'),
])
def test_vit_arguments(kw, match):
    with pytest.raises(CLEAR, match=match):
        MODELS.build(dict(VIT, **kw))


@pytest.mark.parametrize('name,kw,match', [
    ('HPViT', dict(patch_stride=0), 'patch_stride must be an int >= 1, got 0'),
    ('HPViT', dict(window_size=0), 'window_size'),
    ('HPViT', dict(pool_after=(2, 0)), 'pool_after'),
    ('Hiera', dict(arch=dict(embed_dims=16, num_heads=1, stages=(1, 0, 1, 1))), 'stages'),
    ('Hiera', dict(q_pool=5), 'q_pool'),
    ('Hiera', dict(img_size=48), 'multiple of 32'),
    ('ViTDet', dict(window_size=0), 'window_size'),
    ('ViTDet', dict(global_blocks=(2,)), 'global_blocks'),
    ('GreenSwin', dict(window_size=0), 'window_size'),
    ('GreenSwin', dict(arch=dict(embed_dims=16, depths=(1, 1), num_heads=(1, 2, 4))), 'num_heads'),
    ('UMSwin', dict(arch=dict(embed_dims=16, depths=(2, 0, 2, 2), num_heads=(1, 2, 4, 8))),
     'depths'),
    ('UMPVT', dict(sr_ratios=(4, 2)), 'sr_ratios'),
    ('GreenTwins', dict(window_size=1), 'window_size'),
    ('GreenTwins', dict(sr_ratios=(8, 4, 0, 1)), 'sr_ratios'),
])
def test_family_specific_arguments(name, kw, match):
    with pytest.raises(CLEAR, match=match):
        build(name, **kw)


# ---------------------------------------------------------------------------------- inputs
def _odd_inputs(c):
    return {'empty batch': (torch.randn(0, c, 64, 64), 'empty batch'),
            'unbatched': (torch.randn(c, 64, 64), r'add the batch dimension: x\[None\]'),
            'uint8': (torch.zeros(1, c, 64, 64, dtype=torch.uint8), 'dtype torch.uint8'),
            'channels': (torch.randn(1, c + 1, 64, 64), f'in_channels={c}'),
            'not a tensor': ([[0.0]], 'must be a .B, C, H, W. tensor')}


@pytest.mark.parametrize('name', BACKBONES)
def test_odd_inputs_fail_clearly_in_forward_and_masked_forward(name):
    """Empty batches are refused (a clear error rather than an empty output: several stems
    reshape with -1 and an empty batch is always a pipeline fault)."""
    model = build(name).eval()
    for what, (x, match) in _odd_inputs(model.in_channels).items():
        with pytest.raises(CLEAR, match=rf'{name}.forward: .*{match}'):
            model(x)
        if model.mim_unit is not None:
            with pytest.raises(CLEAR, match=rf'{name}.forward_masked: .*{match}'):
                model.forward_masked(x, masking.random_mask(1, 4, 0.5))
    with pytest.raises(CLEAR, match=f'{name}.forward: a 2x2 input does not fit; sizes that work'):
        model(torch.randn(1, model.in_channels, 2, 2)) if model.min_input > 2 else \
            model.check_input(torch.randn(1, model.in_channels, 2, 2), 4, 4)


@pytest.mark.parametrize('name', MIM)
def test_masked_modeling_losses_refuse_odd_batches(name):
    model = mae(build(name))
    u = model.backbone.mim_unit
    for what, (x, match) in _odd_inputs(model.backbone.in_channels).items():
        with pytest.raises(CLEAR, match=match):
            model.loss(x)
    with pytest.raises(ValueError, match=f'multiple of its {u} px mask unit'):
        model.loss(torch.randn(1, 3, 2 * u + 8, 2 * u))
    with pytest.raises(ValueError, match='empty list of views'):
        model.loss([])


# --------------------------------------------------------------------------------- algorithms
@pytest.mark.parametrize('name', [n for n in BACKBONES if n not in MIM] + ['Hiera'])
def test_mae_with_a_backbone_that_cannot_mask_names_the_capable_ones(name):
    kw = dict(out_type='avg_featmap', out_indices=(3,)) if name == 'Hiera' else {}
    with pytest.raises(TypeError, match=rf'backbone {name} does not support masked image modeling'
                                        rf'.*backbones that do: .*ViT') as err:
        MODELS.build(dict(type='MaskedAutoencoder', backbone=build(name, **kw), neck=DECODER))
    assert str(list(MIM)) in str(err.value)


@pytest.mark.parametrize('ratio,error', [(1.0, ValueError), (-0.1, ValueError), ('abc', TypeError),
                                         ([0.5], TypeError), (True, TypeError),
                                         (float('nan'), ValueError)])
def test_mask_ratio_must_be_a_number_in_0_1(ratio, error):
    with pytest.raises(error, match=r'mask_ratio must be (a number )?in \[0, 1\)'):
        MODELS.build(dict(type='MaskedAutoencoder', backbone=VIT, neck=DECODER, mask_ratio=ratio))
    with pytest.raises(error, match='mask_ratio'):
        masking.random_mask(1, 4, ratio)


@pytest.mark.parametrize('kw,error,match', [
    (dict(backbone='ViT'), TypeError, "backbone must be a config dict with a 'type'"),
    (dict(neck=None), TypeError, 'neck'),
    (dict(mask_type='blocks'), ValueError, 'mask_type'),
    (dict(secondary_ratio=1.0), ValueError, 'secondary_ratio'),
    (dict(backbone=dict(VIT, img_size=72)), ValueError, 'img_size .* multiple of its 16 px'),
])
def test_mae_arguments(kw, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(dict(dict(type='MaskedAutoencoder', backbone=VIT, neck=DECODER), **kw))


@pytest.mark.parametrize('kw,error,match', [
    (dict(student_block=7), ValueError, r'student_block=7 is out of range .* -2\.\.1'),
    (dict(student_block=2), ValueError, 'student_block=2'),
    (dict(teacher_block=-3), ValueError, 'teacher_block=-3'),
    (dict(student_block='last'), TypeError, 'student_block'),
    (dict(attn_loss_weight=-1), ValueError, 'attn_loss_weight'),
    (dict(teacher='ViT'), TypeError, 'teacher must be a config dict'),
])
def test_distilled_mae_arguments(kw, error, match):
    cfg = dict(type='DistilledMAE', backbone=VIT, neck=DECODER, teacher=VIT)
    with pytest.raises(error, match=match):
        MODELS.build(dict(cfg, **kw))


def test_logit_blocks_out_of_range_raise_instead_of_wrapping():
    model = MODELS.build(VIT)
    with pytest.raises(ValueError, match=r'logit_blocks \[2\] out of range'):
        model.forward_masked(torch.randn(1, 3, 32, 32), masking.random_mask(1, 4, 0.5),
                             logit_blocks=(2,))


# ------------------------------------------------------------------------------------ NaNs
@pytest.mark.parametrize('name', MIM)
def test_nan_in_hidden_or_replaced_units_never_reaches_visible_features(name):
    model = build(name).eval()
    u, hw = model.mim_unit, (4, 4)
    x = torch.randn(2, model.in_channels, 4 * u, 4 * u)
    gen = torch.Generator().manual_seed(0)
    mask = masking.uniform_mask(2, hw, 0.0, generator=gen) if model.mim_mask == 'uniform' \
        else masking.random_mask(2, 16, 0.75, generator=gen)
    hidden_px = masking.upsample_units(~mask.visible, hw, u)
    x_nan = torch.where(hidden_px, torch.full((), float('nan')), x)
    feats = model.forward_masked(x_nan, mask)
    assert torch.isfinite(feats.tokens).all() and all(torch.isfinite(s).all() for s in feats.stages)
    assert torch.equal(feats.tokens, model.forward_masked(x, mask).tokens)
    # SimMIM's layout: every unit enters, the masked ones as a token instead of their pixels
    ids = torch.arange(16).expand(2, 16)
    dense = Mask(torch.ones_like(mask.visible), ids, ~mask.visible)
    token = torch.zeros(1, 1, model.mim_dims)
    assert torch.isfinite(model.forward_masked(x_nan, dense, token).tokens).all()


@pytest.mark.parametrize('name', MIM)
def test_nan_input_gives_a_nan_loss_not_a_crash(name):
    model = mae(build(name))
    u = model.backbone.mim_unit
    x = torch.randn(1, 3, 4 * u, 4 * u)  # a uniform mask's compact grid must be even too
    x[0, 0, 0, 0] = float('nan')
    loss = model.loss(x)['loss']
    assert loss.ndim == 0 and torch.isnan(loss)


# ------------------------------------------------------------------------------ checkpoints
def test_fit_pos_embed_resamples_square_grids_and_keeps_unknown_ones():
    square = sincos_2d((4, 4), 8, 1)
    assert fit_pos_embed(square, (2, 3), 1).shape == (1, 7, 8)
    wide = sincos_2d((4, 6), 8, 1)  # 24 tokens: 4x6? 3x8? 2x12? unknowable
    assert fit_pos_embed(wide, (4, 4), 1) is wide


def _save(tmp_path, cfg, name):
    model = MODELS.build(cfg)
    path = osp.join(tmp_path, name)
    torch.save({'state_dict': {'backbone.' + k: v for k, v in model.state_dict().items()}}, path)
    return path


@pytest.mark.parametrize('source,target,listed', [
    (dict(VIT, img_size=(64, 96)), VIT, r'shape mismatch: \[.pos_embed: \(1, 25, 32\) vs model '
                                        r'\(1, 17, 32\)'),
    (dict(type='Hiera', **MODELS.get('Hiera').tiny_cfg), VIT, 'unexpected .* keys'),
    (VIT, dict(type='Hiera', **MODELS.get('Hiera').tiny_cfg), 'missing .* keys'),
    (dict(VIT, img_size=(64, 96)), dict(type='HPViT', **MODELS.get('HPViT').tiny_cfg),
     'missing .* keys'),
])
def test_mismatching_checkpoints_reach_the_strict_key_listing(tmp_path, source, target, listed):
    path = _save(str(tmp_path), source, 'source.pth')
    model = MODELS.build(dict(target, init_cfg=dict(type='Pretrained', checkpoint=path)))
    with pytest.raises(KeyError) as err:
        model.init_weights()
    want = rf'{path} does not match {target["type"]}:\n  .*{listed}'
    assert re.search(want, err.value.args[0], re.S)
