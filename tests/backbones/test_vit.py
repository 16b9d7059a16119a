"""hvit_mm's plain ViT: shapes vs feature_info, out types, masked path, RPE vs timm's Beit,
layer-decay contract, frozen stages, position-table resampling."""
import pytest
import timm
import torch

from hvit_mm.models.backbones.vit import ViT, relative_position_index
from hvit_mm.models.masking import Mask, mask_from_visible, random_mask

TINY = dict(embed_dims=32, depth=3, num_heads=4)


def perturbed(model):
    """Random non-trivial weights everywhere (norms, biases, the rel-pos tables) for comparisons."""
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def max_diff(a, b):
    return (a - b).abs().max().item()


def masked(model, x, mask, **kw):
    """forward_masked as (B, 1 + K, C) tokens (cls first) plus the MaskedFeatures."""
    f = model.forward_masked(x, mask, **kw)
    return torch.cat([f.prefix, f.tokens], dim=1), f


def test_arch_zoo_sizes():
    for name, (c, d, h, p) in {'tiny': (192, 12, 3, 16), 'mae-lite-tiny': (192, 12, 12, 16),
                               'small': (384, 12, 6, 16), 'deit-small': (384, 12, 6, 16),
                               'mae-lite-small': (384, 12, 12, 16),
                               'base': (768, 12, 12, 16), 'large': (1024, 24, 16, 16),
                               'huge': (1280, 32, 16, 14)}.items():
        a = ViT.arch_zoo[name]
        assert (a['embed_dims'], a['depth'], a['num_heads'], a.get('patch_size', 16)) == (c, d, h, p)
    with pytest.raises(KeyError, match='unknown arch'):
        ViT('gigantic')
    with pytest.raises(KeyError, match='lacks'):
        ViT(dict(embed_dims=32, depth=2))


@pytest.mark.parametrize('hw', [(64, 64), (48, 80)])
def test_featmaps_match_feature_info(hw):
    model = ViT(TINY, img_size=64, out_indices=(0, -1)).eval()
    outs = model(torch.randn(2, 3, *hw))
    assert len(outs) == len(model.feature_info) == 2
    for out, info in zip(outs, model.feature_info):
        assert out.shape == (2, info['num_chs'], hw[0] // info['reduction'], hw[1] // info['reduction'])
    assert [i['module'] for i in model.feature_info] == ['blocks.0', 'blocks.2']


def test_out_types_and_backward():
    x = torch.randn(2, 3, 64, 64)
    cls = perturbed(ViT(TINY, img_size=64, out_type='cls_token'))
    avg = ViT(TINY, img_size=64, out_type='avg_featmap', final_norm=False)
    avg.load_state_dict({k: v for k, v in cls.state_dict().items() if not k.startswith('norm.')},
                        strict=False)
    avg.eval()
    (c,), (a,) = cls(x), avg(x)
    assert c.shape == a.shape == (2, 32)
    assert 'norm.weight' not in avg.state_dict() and 'fc_norm.weight' in avg.state_dict()
    # avg_featmap = fc_norm(mean of the un-normed patch tokens of the last block)
    tokens, _ = cls.embed(x)
    t = cls._with_cls(tokens)
    for blk in cls.blocks:
        t = blk(t)
    assert max_diff(c, cls.norm(t)[:, 0]) < 1e-6
    assert max_diff(a, avg.fc_norm(t[:, 1:].mean(1))) < 1e-6
    train = ViT(TINY, img_size=64, drop_path_rate=0.2).train()
    train(x)[0].sum().backward()
    assert train.patch_embed.proj.weight.grad is not None and train.pos_embed.grad is None
    with pytest.raises(ValueError, match='out_type'):
        ViT(TINY, out_type='raw')


def test_forward_masked_all_visible_equals_forward_and_keeps_exact_count():
    model = perturbed(ViT(TINY, img_size=64))
    x = torch.randn(2, 3, 64, 64)
    full = mask_from_visible(torch.ones(2, 16, dtype=torch.bool))
    tokens, _ = masked(model, x, full)
    fmap, = model(x)
    assert max_diff(tokens[:, 1:].transpose(1, 2).reshape(2, 32, 4, 4), fmap) < 1e-5
    mask = random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    tokens, feats = masked(model, x, mask)
    ids = mask.ids_keep
    assert tokens.shape == (2, 1 + 4, 32) and feats.unit_tokens == 1 and feats.compact_hw is None
    # the visible tokens equal an encoder that never saw the others: run on the kept patches alone
    patches, _ = model.embed(x)
    kept = torch.stack([patches[b, ids[b]] for b in range(2)])
    t = model._with_cls(kept)
    for blk in model.blocks:
        t = blk(t)
    assert max_diff(tokens, model.norm(t)) < 1e-5


def test_logits_path_agrees_and_is_opt_in():
    model = perturbed(ViT(TINY, img_size=64))
    x = torch.randn(2, 3, 64, 64)
    mask = random_mask(2, 16, 0.5, generator=torch.Generator().manual_seed(1))
    plain, _ = masked(model, x, mask)
    tokens, feats = masked(model, x, mask, logit_blocks=(-1, 0))
    assert max_diff(plain, tokens) < 1e-5
    assert [lg.shape for lg in feats.logits] == [(2, 4, 9, 9)] * 2
    assert masked(model, x, mask)[1].logits == ()


def test_rel_pos_index_layout():
    idx = relative_position_index((2, 3))
    num_rel = 3 * 5
    assert idx.shape == (7, 7)
    assert idx[0, 1:].eq(num_rel).all() and idx[1:, 0].eq(num_rel + 1).all() and idx[0, 0] == num_rel + 2
    # same offset -> same entry; the diagonal is offset (0, 0)
    assert idx[1:, 1:].diagonal().unique().numel() == 1
    assert idx[1, 2] == idx[2, 3] and idx[1, 2] != idx[2, 1]


def test_rel_pos_bias_matches_timm_beit():
    """MAE-Lite's RPE variant = BEiT's per-block relative position bias (+ the absolute table)."""
    ref = timm.models.beit.Beit(img_size=64, patch_size=16, embed_dim=32, depth=3, num_heads=4,
                                use_abs_pos_emb=True, use_rel_pos_bias=True, init_values=None,
                                num_classes=0, global_pool='')
    perturbed(ref)
    model = ViT(TINY, img_size=64, rel_pos_bias=True).eval()
    sd = {}
    for k, v in ref.state_dict().items():
        if k.endswith('relative_position_index'):
            continue
        if k.endswith('attn.q_bias'):
            blk = k[:-len('q_bias')]
            v = torch.cat([v, torch.zeros_like(v), ref.state_dict()[blk + 'v_bias']])
            k = blk + 'qkv.bias'
        elif k.endswith('attn.v_bias'):
            continue
        sd[k] = v
    model.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want = ref.forward_features(x)
        fmap, = model(x)
        got = fmap.flatten(2).transpose(1, 2)
    assert max_diff(got, want[:, 1:]) < 1e-5
    # masked path: the bias is gathered for the kept patches only
    full = mask_from_visible(torch.ones(2, 16, dtype=torch.bool))
    tokens, _ = masked(model, x, full)
    assert max_diff(tokens, want) < 1e-5
    mask = random_mask(2, 16, 0.5, generator=torch.Generator().manual_seed(2))
    lg, = model.forward_masked(x, mask, logit_blocks=(0,)).logits
    assert lg.shape == (2, 4, 9, 9)
    assert 'blocks.2.attn.relative_position_bias_table' in model.no_weight_decay()
    with pytest.raises(ValueError, match='grid'):
        model(torch.randn(1, 3, 96, 96))


def test_layer_depth_and_no_weight_decay():
    model = ViT(TINY)
    assert model.get_layer_depth('backbone.cls_token', 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.patch_embed.proj.weight', 'backbone.') == (0, 5)
    assert model.get_layer_depth('backbone.blocks.1.mlp.fc1.weight', 'backbone.') == (2, 5)
    assert model.get_layer_depth('backbone.norm.weight', 'backbone.') == (4, 5)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (4, 5)
    assert model.no_weight_decay() == {'pos_embed', 'cls_token'}
    assert set(model.no_weight_decay()) <= {n for n, _ in model.named_parameters()}


def test_frozen_stages_and_position_resampling():
    model = ViT(TINY, img_size=64, frozen_stages=3).train()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == []
    assert not model.blocks[0].training
    part = ViT(TINY, img_size=64, frozen_stages=1).train()
    assert all(not p.requires_grad for p in part.blocks[0].parameters())
    assert all(p.requires_grad for p in part.blocks[1].parameters()) and part.blocks[1].training
    # pos_embed is stored at the img_size grid, shaped like the official files, and resampled
    big = ViT(TINY, img_size=224)
    assert big.pos_embed.shape == (1, 197, 32) and not big.pos_embed.requires_grad
    assert big(torch.randn(1, 3, 64, 96))[0].shape == (1, 32, 4, 6)


def test_mask_polarity_in_masked_path():
    """Only the visible patches (True) influence the encoder output."""
    model = perturbed(ViT(TINY, img_size=64))
    visible = torch.zeros(1, 16, dtype=torch.bool)
    visible[0, [1, 5, 6, 15]] = True
    mask = mask_from_visible(visible)
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[:, :, :16, :16] += 5.0  # patch 0 is masked
    a, _ = masked(model, x, mask)
    b, _ = masked(model, y, mask)
    assert max_diff(a, b) == 0.0
    y[:, :, :16, 16:32] += 5.0  # patch 1 is visible
    c, _ = masked(model, y, Mask(mask.visible, mask.ids_keep))
    assert max_diff(a, c) > 1e-3


@pytest.mark.parametrize('name,timm_name', [('small', 'vit_small_patch16_224'),
                                            ('tiny', 'vit_tiny_patch16_224')])
def test_timm_deit_sizes_load_into_plain_names_and_compute_the_same(name, timm_name):
    """``tiny``/``small`` are timm's / DeiT's 3- and 6-head models: a timm file loads strictly and
    gives timm's features (MAE-Lite's 12-head variants were once under these names: a strict load
    succeeded and silently computed something else)."""
    ref = timm.create_model(timm_name, pretrained=False, depth=2, num_classes=0).eval()
    perturbed(ref)
    arch = dict(ViT.arch_zoo[name], depth=2)
    model = ViT(arch, img_size=224).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
        got = model(x)[0].flatten(2).transpose(1, 2)
    assert max_diff(got, want) <= 1e-5
    assert ViT.arch_zoo[name]['num_heads'] == ref.blocks[0].attn.num_heads
