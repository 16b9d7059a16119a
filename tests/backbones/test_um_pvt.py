"""UM-PVT: compaction (tokens and their sin-cos positions) against a naive per-sample reference,
spatial-reduction attention against its formula, shapes, masks, gradients, checkpoints."""
import math

import pytest
import torch

from hvit_mm.models.backbones.um_pvt import SRAttention, UMPVT
from hvit_mm.models.layers import sincos_2d
from hvit_mm.models.masking import Mask, random_mask, uniform_mask

T = 4  # stem tokens per 16 px unit side


def tiny(**kw):
    torch.manual_seed(0)
    return UMPVT(**dict(UMPVT.tiny_cfg, **kw)).eval()


def naive_compact(stem, ids, units_hw, grid_hw):
    """One sample, a loop over grids: (H, W, C) -> (gh·T, gw·T, C), unit ids[k] at cell k."""
    w, gw = units_hw[1], grid_hw[1]
    out = stem.new_zeros(grid_hw[0] * T, gw * T, stem.shape[-1])
    for k, unit in enumerate(ids.tolist()):
        (gi, gj), (uh, uw) = divmod(k, gw), divmod(unit, w)
        block = stem[uh * T:(uh + 1) * T, uw * T:(uw + 1) * T]
        out[gi * T:(gi + 1) * T, gj * T:(gj + 1) * T] = block
    return out


@pytest.mark.parametrize('mode', ['uniform', 'all_visible'])
def test_compact_encoder_matches_a_naive_per_sample_reference(mode):
    net = tiny(img_size=(64, 128))
    B, H, W = 3, 64, 128
    units_hw = (H // 16, W // 16)
    x = torch.randn(B, 3, H, W)
    token = torch.randn(1, 1, 16)
    g = torch.Generator().manual_seed(0)
    if mode == 'uniform':
        mask, grid = uniform_mask(B, units_hw, 0.25, generator=g), (2, 4)
    else:
        N = units_hw[0] * units_hw[1]
        hidden = ~random_mask(B, N, 0.6, generator=g).visible
        mask, grid = Mask(torch.ones_like(hidden), torch.arange(N).expand(B, N), hidden), units_hw
    pos = sincos_2d((H // 4, W // 4), 16).view(H // 4, W // 4, 16)  # the fixed table, full grid
    with torch.no_grad():
        feats = net.forward_masked(x, mask, token)
        assert feats.tokens.shape == (B, grid[0] * grid[1] // 4, 64) and feats.compact_hw == grid
        for b in range(B):
            stem = net.patch_embed(x[b:b + 1])[0]
            for u in mask.replaced[b].nonzero()[:, 0].tolist():  # PVT: the raw token
                uh, uw = divmod(u, units_hw[1])
                stem[uh * T:(uh + 1) * T, uw * T:(uw + 1) * T] = token[0, 0]
            comp = naive_compact(stem, mask.ids_keep[b], units_hw, grid)
            comp_pos = naive_compact(pos, mask.ids_keep[b], units_hw, grid)
            ref = net.norm(net.encode(comp[None], comp_pos[None], keep=(3,))[0])
            torch.testing.assert_close(feats.tokens[b], ref.reshape(-1, 64), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('hw,sr', [((8, 8), 4), ((8, 8), 1), ((6, 10), 4)])
def test_spatial_reduction_attention_matches_its_formula(hw, sr):
    torch.manual_seed(0)
    attn = SRAttention(16, 2, sr).eval()
    x = torch.randn(2, *hw, 16)
    B, H, W, C = x.shape
    with torch.no_grad():
        q = attn.q(x).view(B, H * W, 2, 8).transpose(1, 2)
        r = x.permute(0, 3, 1, 2)
        rows = [r[:, :, i:i + sr].mean(2, keepdim=True) for i in range(0, H, sr)]  # partial borders
        r = torch.cat(rows, 2)
        r = torch.cat([r[..., j:j + sr].mean(3, keepdim=True) for j in range(0, W, sr)], 3)
        r = attn.norm(attn.sr(r).flatten(2).transpose(1, 2))
        k, v = attn.kv(r).view(B, -1, 2, 2, 8).permute(2, 0, 3, 1, 4)
        w = (q @ k.transpose(-2, -1) / math.sqrt(8)).softmax(-1)
        ref = attn.proj((w @ v).transpose(1, 2).reshape(B, H * W, C)).view(B, H, W, C)
        torch.testing.assert_close(attn(x), ref, atol=1e-5, rtol=1e-5)
    assert attn.norm.eps == 1e-5  # the official SRA norm is a plain LayerNorm


def test_sr_ratio_changes_without_changing_the_weights():
    pre, ft = tiny(sr_ratios=(4, 2, 1, 1)), tiny(sr_ratios=(8, 4, 2, 1))
    ft.load_state_dict(pre.state_dict(), strict=True)
    assert [b.attn.sr_ratio for b in ft.blocks] == [8, 4, 4, 2, 1]


@pytest.mark.parametrize('hw', [(64, 96), (100, 70)])
def test_forward_shapes_match_feature_info(hw):
    net = tiny(out_indices=(0, 1, 2, 3), sr_ratios=(8, 4, 2, 1))
    outs = net(torch.randn(2, 3, *hw))
    assert [o.shape[1] for o in outs] == [i['num_chs'] for i in net.feature_info]
    assert [i['num_chs'] for i in net.feature_info] == [16, 32, 48, 64]
    side = [math.ceil(s / 4) for s in hw]
    for s, (o, info) in enumerate(zip(outs, net.feature_info)):
        assert list(o.shape[2:]) == side and info['reduction'] == 4 * 2 ** s
        side = [math.ceil(n / 2) for n in side]


def test_position_table_is_resampled_for_other_sizes():
    net = tiny()
    tokens, pos = net.stem(torch.randn(1, 3, 96, 64))
    assert tokens.shape == (1, 24, 16, 16) and pos.shape == (1, 24, 16, 16)
    at_grid = net.stem(torch.randn(1, 3, 64, 64))[1]
    torch.testing.assert_close(at_grid.reshape(1, -1, 16), sincos_2d((16, 16), 16))
    other = tiny(img_size=128)
    sd = other.adapt_checkpoint({f'backbone.{k}': v for k, v in tiny().state_dict().items()})
    assert sd['pos_embed'].shape == (1, 32 * 32, 16)
    other.load_state_dict(sd)


def test_all_visible_forward_masked_equals_forward():
    net = tiny()
    x = torch.randn(2, 3, 64, 96)
    N = 4 * 6
    with torch.no_grad():
        feats = net.forward_masked(x, Mask(torch.ones(2, N, dtype=torch.bool),
                                           torch.arange(N).expand(2, N)))
        last = net(x)[-1]
    torch.testing.assert_close(feats.tokens, last.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_masks_are_per_sample_and_backward_reaches_every_parameter():
    net = tiny(pos_trainable=True).train()
    x = torch.randn(2, 3, 64, 64)
    mask = uniform_mask(2, (4, 4), 0.25, generator=torch.Generator().manual_seed(3))
    token = (0.02 * torch.randn(1, 1, 16)).requires_grad_()
    out = net.forward_masked(x, mask, token).tokens
    with torch.no_grad():
        for b in range(2):
            one = net.forward_masked(x[b:b + 1], Mask(*(f[b:b + 1] for f in mask)), token).tokens
            torch.testing.assert_close(out[b:b + 1], one, atol=1e-5, rtol=1e-5)
    out.square().mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []
    assert token.grad.abs().sum() > 0
    frozen = tiny()
    assert not frozen.pos_embed.requires_grad and frozen.no_weight_decay() == {'pos_embed'}
    dense = tiny(out_indices=(0, 1, 2, 3), drop_path_rate=0.1).train()
    sum(o.square().mean() for o in dense(torch.randn(2, 3, 64, 64))).backward()
    assert [n for n, p in dense.named_parameters() if p.requires_grad and p.grad is None] == []


def test_uniform_masks_only():
    with pytest.raises(ValueError, match='uniform mask'):
        tiny().forward_masked(torch.randn(2, 3, 64, 64), random_mask(2, 16, 0.5))


def test_layer_depth_is_the_official_flat_block_rule():
    net = tiny(out_indices=(0, 1, 2, 3))
    depth = len(net.blocks)
    for name, _ in net.named_parameters():
        expected = 0 if name.startswith(('patch_embed', 'pos_embed')) else \
            int(name.split('.')[1]) + 1 if name.startswith('blocks') else depth + 1
        assert net.get_layer_depth('backbone.' + name, 'backbone.') == (expected, depth + 2)


def test_arch_small_size():
    net = UMPVT(arch='small', sr_ratios=(8, 4, 2, 1), out_indices=(3,))
    assert [len(range(*s)) for s in net.stages] == [3, 4, 6, 3]
    assert 20 < sum(p.numel() for p in net.parameters()) / 1e6 < 22  # PVT-S with 1x1 sr convs
