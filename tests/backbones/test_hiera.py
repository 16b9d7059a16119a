"""hvit_mm's Hiera against the official package (``hiera-transformer``) and timm, same weights:
logits, spatial-order features at 1024² and non-square sizes, masked encoding, contracts."""
import warnings

import pytest
import timm
import torch

from hvit_mm.checkpoints.hiera import convert
from hvit_mm.models.backbones.hiera import Hiera
from hvit_mm.models.layers import resample_abs
from hvit_mm.models.masking import mask_from_visible, random_mask

with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # the package imports timm.models.layers (deprecated alias)
    import hiera as official

TINY = dict(embed_dims=32, num_heads=1, stages=(1, 2, 3, 2))


def perturbed(model, seed=0):
    """Non-trivial weights everywhere (biases, norms, tiny head init) so differences show up."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def official_tiny(arch=TINY, **kw):
    kw.setdefault('num_classes', 10)
    return perturbed(official.Hiera(embed_dim=arch['embed_dims'], num_heads=arch['num_heads'],
                                    stages=arch['stages'], **kw)).train()  # train: logits, no softmax


def ours_from(ref, arch=TINY, **kw):
    model = Hiera(arch, **kw)
    sd = model.adapt_checkpoint(convert(ref.state_dict()))  # the backbone.* part
    if not hasattr(model, 'norm'):
        sd = {k: v for k, v in sd.items() if not k.startswith('norm.')}
    model.load_state_dict(sd, strict=True)
    return model.eval()


def logits(model, head, x):
    return torch.nn.functional.linear(model(x)[0], head.weight, head.bias)


def max_diff(a, b):
    return (a - b).abs().max().item()


def close(a, b, tol=1e-5):
    """Feature maps: abs diff <= tol relative to their scale (activations here reach ~10)."""
    return max_diff(a, b) <= tol * max(1.0, a.abs().max().item())


@pytest.mark.parametrize('kw', [dict(), dict(mask_unit_attn=(True, False, False, False)),
                                dict(q_pool=2), dict(arch=dict(embed_dims=32, num_heads=2,
                                                               stages=(2, 1, 2, 1)))])
def test_logits_equal_official_tiny(kw):
    arch = kw.pop('arch', TINY)
    ref = official_tiny(arch, input_size=(128, 128), **kw)
    ours = ours_from(ref, arch, img_size=128, out_indices=(3,), out_type='avg_featmap', **kw)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert max_diff(ref(x), logits(ours, ref.head.projection, x)) <= 1e-5


def test_logits_equal_official_and_timm_real_tiny():
    """The real Hiera-T at 224² (official builder, timm's hiera_tiny_224), one weight set."""
    ref = perturbed(official.hiera_tiny_224(pretrained=False), seed=1).train()
    ours = ours_from(ref, 'tiny', out_indices=(3,), out_type='avg_featmap')
    tm = timm.create_model('hiera_tiny_224', pretrained=False).eval()
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith(('norm.', 'head.'))}
    sd.update({'head.norm.' + k[5:]: v for k, v in ref.state_dict().items() if k.startswith('norm.')})
    sd.update({'head.fc.' + k[16:]: v for k, v in ref.state_dict().items()
               if k.startswith('head.projection.')})
    tm.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours_logits = logits(ours, ref.head.projection, x)
        assert max_diff(ref(x), ours_logits) <= 1e-5
        assert max_diff(tm(x), ours_logits) <= 1e-5


def test_logits_equal_timm_tiny_width():
    tm = perturbed(timm.create_model('hiera_tiny_224', pretrained=False, img_size=(96, 160),
                                     embed_dim=32, num_heads=2, stages=(1, 1, 2, 1),
                                     num_classes=7)).eval()
    ours = Hiera(dict(embed_dims=32, num_heads=2, stages=(1, 1, 2, 1)), img_size=(96, 160),
                 out_indices=(3,), out_type='avg_featmap')
    ours.load_state_dict(ours.adapt_checkpoint(convert(tm.state_dict())), strict=True)
    ours.eval()
    x = torch.randn(2, 3, 96, 160)
    with torch.no_grad():
        assert max_diff(tm(x), logits(ours, tm.head.fc, x)) <= 1e-5


@pytest.mark.parametrize('hw', [(1024, 1024), (96, 160)])
def test_features_spatial_order_vs_official_reroll(hw):
    """Our maps at an input size other than the stored 224² (pos_embed resampled from 56²) equal
    the official intermediates (rerolled to NHWC) of a model built for that size with the same
    resampled table."""
    arch = dict(embed_dims=16, num_heads=1, stages=(1, 1, 1, 1)) if hw[0] == 1024 else TINY
    ours = perturbed(Hiera(arch, img_size=224)).eval()
    ref = official.Hiera(embed_dim=arch['embed_dims'], num_heads=arch['num_heads'],
                         stages=arch['stages'], input_size=hw, num_classes=3).eval()
    sd = dict(ours.state_dict(), pos_embed=resample_abs(ours.pos_embed, (hw[0] // 4, hw[1] // 4)))
    ref.load_state_dict(sd, strict=False)  # ref's norm/head are unused for intermediates
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        _, inter = ref(x, return_intermediates=True)
        feats = ours(x)
    for r, f, info in zip(inter, feats, ours.feature_info):
        assert f.shape == (1, info['num_chs'], hw[0] // info['reduction'], hw[1] // info['reduction'])
        assert close(r.permute(0, 3, 1, 2), f)


def test_masked_encoding_equals_official():
    ref = official_tiny(input_size=(128, 128), q_pool=2)
    ours = ours_from(ref, img_size=128, q_pool=2)
    x = torch.randn(2, 3, 128, 128)
    mask = random_mask(2, 16, 0.6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, inter = ref(x, mask=mask.visible, return_intermediates=True)  # official: 1 = keep too
        out = ours.forward_masked(x, mask)
    feats = out.stages
    assert [f.shape[2] for f in feats] == [8, 4, 2, 2] and out.unit_tokens == 2
    assert torch.equal(out.units(), feats[-1]) and out.prefix.shape == (2, 0, feats[-1].shape[-1])
    for r, f in zip(inter, feats):
        assert r.shape == f.shape and close(r, f)


def test_all_visible_masked_path_matches_forward_and_masked_pixels_do_not_leak():
    model = perturbed(Hiera(TINY, img_size=64)).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        maps = model(x)
        feats = model.forward_masked(x, mask_from_visible(torch.ones(2, 6, dtype=torch.bool))).stages
    for m, f in zip(maps, feats):  # (B, K, u, u, C) units of a (2, 3) unit grid -> NCHW
        B, K, u, _, C = f.shape
        f = f.view(B, 2, 3, u, u, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, 2 * u, 3 * u)
        assert close(m, f)
    visible = torch.tensor([[True, False, True, False, True, False]] * 2)
    mask = mask_from_visible(visible)
    x2 = x.clone()
    x2[:, :, :32, 32:64] += 5.0  # unit 1 (row 0, col 1) is hidden
    with torch.no_grad():
        a = model.forward_masked(x, mask).stages
        b = model.forward_masked(x2, mask).stages
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    x2[:, :, 10, 40] = float('nan')  # not multiplied away: replaced, so no NaN reaches a token
    with torch.no_grad():
        c = model.forward_masked(x2, mask).stages
    assert all(torch.equal(p, q) for p, q in zip(a, c))


def test_feature_info_strides_and_errors():
    model = Hiera(TINY, q_pool=2, out_indices=(0, 3))
    assert [(i['num_chs'], i['reduction']) for i in model.feature_info] == [(32, 4), (256, 16)]
    assert [i['module'] for i in model.stage_info] == ['blocks.0', 'blocks.2', 'blocks.5',
                                                       'blocks.7']
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape for o in outs] == [(1, 32, 16, 16), (1, 256, 4, 4)]
    with pytest.raises(ValueError, match='multiple of 32'):
        model(torch.randn(1, 3, 64, 48))
    with pytest.raises(ValueError, match='avg_featmap'):
        Hiera(TINY, out_type='avg_featmap')
    with pytest.raises(KeyError, match='unknown arch'):
        Hiera('gigantic')
    a = Hiera.arch_zoo
    assert [(a[k]['embed_dims'], a[k]['num_heads'], a[k]['stages']) for k in
            ('tiny', 'small', 'base', 'base_plus', 'large', 'huge')] == [
        (96, 1, (1, 2, 7, 2)), (96, 1, (1, 2, 11, 2)), (96, 1, (2, 3, 16, 3)),
        (112, 2, (2, 3, 16, 3)), (144, 2, (2, 6, 36, 4)), (256, 4, (2, 6, 36, 4))]


def test_param_count_matches_official_base():
    ours = Hiera('base', out_indices=(3,), out_type='avg_featmap')
    ref = official.hiera_base_224(pretrained=False)
    n_ref = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith('head.'))
    assert sum(p.numel() for p in ours.parameters()) == n_ref


def test_layer_depth_no_weight_decay_drop_path_and_checkpointing():
    model = Hiera(TINY, drop_path_rate=0.2)
    n = len(model.blocks) + 2
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.patch_embed.proj.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.blocks.3.attn.qkv.weight', 'backbone.') == (4, n)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)
    assert model.no_weight_decay() == {'pos_embed'}
    assert [round(b.drop_path.p, 4) for b in model.blocks][::7] == [0.0, 0.2]
    model.drop_path_rate = 0
    for b in model.blocks:
        b.drop_path.p = 0.0
    model.train()
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for cp in (False, True):
        model.with_cp = cp
        model.zero_grad()
        sum(o.square().mean() for o in model(x)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert max_diff(*grads) <= 1e-6 and grads[0].abs().sum() > 0


def test_init_matches_official_statistics():
    model = Hiera(TINY)
    model.init_weights()
    assert torch.all(model.blocks[0].norm1.bias == 0.02) and torch.all(model.blocks[0].attn.qkv.bias == 0.02)
    assert 0.01 < model.pos_embed.std().item() < 0.03


def test_registered_in_all_three_codebases():
    for scope in ('mmpretrain', 'mmdet', 'mmseg'):
        registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
        net = registry.build(dict(type='Hiera', arch=TINY, out_indices=(1, 2)))
        assert isinstance(net, Hiera)
