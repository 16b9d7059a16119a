"""UM-Swin: compaction + the dense Swin on the compact map against naive per-sample references,
the windowed attention against a per-token loop, shapes, masks, gradients, the layer-decay rule."""
import math

import pytest
import torch

from hvit_mm.models.backbones.um_swin import UMSwin, UMSwinBlock, make_windows, stage_windows
from hvit_mm.models.layers.compact import token_coords
from hvit_mm.models.masking import Mask, random_mask, uniform_mask

T = 4  # stem tokens per 16 px unit side


def tiny(**kw):
    torch.manual_seed(0)
    return UMSwin(**dict(UMSwin.tiny_cfg, **kw)).eval()


def full_mask(B, N, replaced=None):
    return Mask(torch.ones(B, N, dtype=torch.bool), torch.arange(N).expand(B, N), replaced)


def naive_compact(tokens, ids, units_hw, grid_hw):
    """One sample, a loop over grids: (H, W, C) stem map -> compact (gh·T, gw·T, C) map and its
    (row, col) coordinates, unit ids[k] written at cell k."""
    h, w = units_hw
    gh, gw = grid_hw
    out = tokens.new_zeros(gh * T, gw * T, tokens.shape[-1])
    coords = torch.zeros(gh * T, gw * T, 2)
    for k, unit in enumerate(ids.tolist()):
        gi, gj = divmod(k, gw)
        uh, uw = divmod(unit, w)
        out[gi * T:(gi + 1) * T, gj * T:(gj + 1) * T] = tokens[uh * T:(uh + 1) * T,
                                                               uw * T:(uw + 1) * T]
        for a in range(T):
            for b in range(T):
                coords[gi * T + a, gj * T + b] = torch.tensor([uh * T + a, uw * T + b])
    return out, coords


@pytest.mark.parametrize('mode', ['uniform', 'all_visible'])
def test_compact_encoder_matches_a_naive_per_sample_reference(mode):
    net = tiny()
    B, H, W = 3, 64, 128  # 4x8 units; compact 2x4 units = 8x16 tokens, window 4 with shifts
    units_hw = (H // 16, W // 16)
    x = torch.randn(B, 3, H, W)
    token = torch.randn(1, 1, 16)
    g = torch.Generator().manual_seed(0)
    if mode == 'uniform':
        mask = uniform_mask(B, units_hw, 0.25, generator=g)
        grid = (units_hw[0] // 2, units_hw[1] // 2)
    else:  # SimMIM: every unit enters, a random 60% as the token
        hidden = ~random_mask(B, units_hw[0] * units_hw[1], 0.6, generator=g).visible
        mask, grid = full_mask(B, units_hw[0] * units_hw[1], hidden), units_hw
    with torch.no_grad():
        feats = net.forward_masked(x, mask, token)
        assert feats.compact_hw == grid and feats.prefix.shape == (B, 0, 128)
        assert feats.tokens.shape == (B, grid[0] * grid[1] // 4, 128)
        tok = net.patch_embed.norm(token)[0, 0]
        for b in range(B):
            stem = net.patch_embed(x[b:b + 1])[0]
            for u in mask.replaced[b].nonzero()[:, 0].tolist():  # secondary / SimMIM units
                uh, uw = divmod(u, units_hw[1])
                stem[uh * T:(uh + 1) * T, uw * T:(uw + 1) * T] = tok
            comp, coords = naive_compact(stem, mask.ids_keep[b], units_hw, grid)
            ref = net.norm(net.encode(comp[None], coords[None], keep=(3,))[0])
            torch.testing.assert_close(feats.tokens[b], ref.reshape(-1, 128), atol=1e-5, rtol=1e-5)


def naive_block(blk, x, coords, ws, shift):
    """One UM-Swin block, token by token: each query attends to the keys that share its window in
    the rolled (zero-padded) frame and, with a shift, its Swin region; bias = posmlp of
    sign(d)·log(1+|d|), d = key coordinate - query coordinate."""
    H, W, C = x.shape
    Hp, Wp = H + (-H) % ws, W + (-W) % ws
    heads = blk.attn.num_heads
    d = C // heads

    def place(i, j):
        ri, rj = (i - shift) % Hp, (j - shift) % Wp
        band = lambda r, n: (r >= n - ws) + (r >= n - shift) if shift else 0  # noqa: E731
        return ri // ws, rj // ws, band(ri, Hp), band(rj, Wp)

    y = blk.norm1(x)
    q, k, v = blk.attn.qkv(y).view(H, W, 3, heads, d).unbind(2)
    out = torch.zeros(H, W, C)
    for i in range(H):
        for j in range(W):
            keys = [(a, b) for a in range(H) for b in range(W) if place(a, b) == place(i, j)]
            kk = torch.stack([k[a, b] for a, b in keys])  # (n, heads, d)
            vv = torch.stack([v[a, b] for a, b in keys])
            rel = torch.stack([coords[a, b] - coords[i, j] for a, b in keys])  # (n, 2)
            rel = rel.sign() * rel.abs().log1p()
            bias = blk.attn.posmlp[2](blk.attn.posmlp[0](rel.T[None, :, None]).relu())
            logits = torch.einsum('hd,nhd->hn', q[i, j], kk) / math.sqrt(d) + bias[0, :, 0]
            out[i, j] = torch.einsum('hn,nhd->hd', logits.softmax(-1), vv).reshape(C)
    x = x + blk.attn.proj(out)
    return x + blk.mlp(blk.norm2(x))


@pytest.mark.parametrize('hw,ws,shift', [((8, 8), 4, 2), ((6, 10), 4, 2), ((6, 10), 4, 0),
                                         ((8, 12), 4, 0)])
def test_window_attention_matches_a_per_token_loop(hw, ws, shift):
    torch.manual_seed(1)
    blk = UMSwinBlock(8, 2, 4).eval()
    x = torch.randn(1, *hw, 8)
    coords = torch.randint(0, 40, (1, *hw, 2)).float()  # compacted maps: any true positions
    with torch.no_grad():
        out = blk(x, make_windows(coords, ws, shift))[0]
        torch.testing.assert_close(out, naive_block(blk, x[0], coords[0], ws, shift),
                                   atol=1e-5, rtol=1e-5)


def test_windows_follow_the_official_rule_pretrain_and_finetune():
    full = token_coords((64, 64))  # 256² fine-tuning, window 16
    sizes = [(64, 16, 8), (32, 16, 8), (16, 16, 0), (8, 8, 0)]
    for s, (side, ws, shift) in enumerate(sizes):
        c = full[:, ::2 ** s, ::2 ** s] / 2 ** s
        plain, shifted = stage_windows(c, 16, True)
        assert c.shape[1] == side
        assert (plain.window, shifted.window, shifted.shift) == (ws, ws, shift)
    compact = token_coords((32, 32))  # 256² pretraining on the compact map, window 8
    for side, ws, shift in [(32, 8, 4), (16, 8, 4), (8, 8, 0), (4, 4, 0)]:
        c = compact[:, :side, :side]
        assert stage_windows(c, 8, True)[1][:2] == (ws, shift)


@pytest.mark.parametrize('hw', [(64, 96), (100, 70)])
def test_forward_shapes_match_feature_info(hw):
    net = tiny(out_indices=(0, 1, 2, 3))
    outs = net(torch.randn(2, 3, *hw))
    assert [o.shape[1] for o in outs] == [i['num_chs'] for i in net.feature_info]
    assert [i['num_chs'] for i in net.feature_info] == [16, 32, 64, 128]
    for o, info in zip(outs, net.feature_info):
        r = info['reduction']
        side = [math.ceil(hw[0] / 4), math.ceil(hw[1] / 4)]
        for _ in range(int(math.log2(r // 4))):
            side = [math.ceil(s / 2) for s in side]
        assert list(o.shape[2:]) == side


def test_all_visible_forward_masked_equals_forward():
    net = tiny()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = net.forward_masked(x, full_mask(2, 4 * 6))
        last = net(x)[-1]  # (B, C, 2, 3)
    torch.testing.assert_close(feats.tokens, last.flatten(2).transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_masks_are_per_sample():
    net = tiny()
    x = torch.randn(2, 3, 64, 64)
    mask = uniform_mask(2, (4, 4), 0.25, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(mask.ids_keep[0], mask.ids_keep[1])
    token = torch.randn(1, 1, 16)
    with torch.no_grad():
        both = net.forward_masked(x, mask, token).tokens
        for b in range(2):
            one = Mask(*(f[b:b + 1] for f in mask))
            alone = net.forward_masked(x[b:b + 1], one, token).tokens
            torch.testing.assert_close(both[b:b + 1], alone, atol=1e-5, rtol=1e-5)


def test_backward_reaches_every_parameter_and_the_token():
    net = tiny().train()
    token = (0.02 * torch.randn(1, 1, 16)).requires_grad_()
    mask = uniform_mask(2, (4, 4), 0.25)
    net.forward_masked(torch.randn(2, 3, 64, 64), mask, token).tokens.square().mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []
    assert token.grad.abs().sum() > 0
    dense = tiny(out_indices=(0, 1, 2, 3), drop_path_rate=0.1).train()
    sum(o.square().mean() for o in dense(torch.randn(2, 3, 64, 64))).backward()
    assert [n for n, p in dense.named_parameters() if p.grad is None] == []


def test_activation_checkpointing_gives_the_same_output():
    x = torch.randn(2, 3, 64, 64)
    mask = uniform_mask(2, (4, 4), 0.25, generator=torch.Generator().manual_seed(0))
    token = torch.randn(1, 1, 16)
    ref = tiny().train().forward_masked(x, mask, token).tokens
    out = tiny(with_cp=True).train().forward_masked(x.requires_grad_(), mask, token).tokens
    torch.testing.assert_close(out, ref)


def test_masks_it_cannot_compact_are_refused():
    net = tiny()
    x = torch.randn(2, 3, 64, 64)
    with pytest.raises(ValueError, match='grid order'):  # 4 random units of 16: not one per grid
        net.forward_masked(x, random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match='uniform mask'):
        net.forward_masked(x, random_mask(2, 16, 0.5))
    m = uniform_mask(2, (4, 4))
    shuffled = Mask(m.visible, m.ids_keep.flip(1))
    with pytest.raises(ValueError, match='grid order'):
        net.forward_masked(x, shuffled)
    with pytest.raises(ValueError, match='even'):  # 48 px: a 3x3 unit grid
        net.forward_masked(torch.randn(2, 3, 48, 48), full_mask(2, 9))
    with pytest.raises(ValueError, match='token'):
        net.forward_masked(x, m)
    with pytest.raises(TypeError, match='classifier'):
        tiny(out_type='avg_featmap', out_indices=(3,)).forward_masked(x, m, torch.zeros(1, 1, 16))


def test_layer_depth_is_the_official_flat_block_rule():
    net = tiny(out_indices=(0, 1, 2, 3))
    depth = len(net.blocks)  # official: num_layers = len(blocks) + 1, lr scale decay^(that - id)

    def official(name):
        if name.startswith(('patch_embed', 'pos_embed')):
            return 0
        if name.startswith('blocks'):
            return int(name.split('.')[1]) + 1
        return depth + 1

    assert net.num_layers == depth + 2
    for name, _ in net.named_parameters():
        assert net.get_layer_depth('backbone.' + name, 'backbone.') == (official(name), depth + 2)
    assert net.layer_depth('blocks.2.downsample.proj.weight') == 3  # merge = first block of stage 2
    # hvit_mm's constructor scales by rate^(num_layers - 1 - id): the same exponent as official
    assert all((depth + 2) - 1 - i == (depth + 1) - i for i in range(depth + 2))


def test_classifier_pools_the_raw_last_stage_through_fc_norm():
    net = tiny(out_type='avg_featmap', out_indices=(-1,))
    assert net.mim_unit is None and net.feature_info[0]['module'] == 'fc_norm'
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        raw = net.encode(*net.stem(x), keep=(3,))[0]
        torch.testing.assert_close(net(x)[0], net.fc_norm(raw.mean(dim=(1, 2))))
    with pytest.raises(ValueError, match='avg_featmap'):
        tiny(out_type='avg_featmap', out_indices=(2, 3))


def test_arch_sizes():
    params = sum(p.numel() for p in UMSwin(arch='tiny', out_indices=(3,)).parameters()) / 1e6
    assert 27 < params < 29  # Swin-T's 28M without head: posmlp and conv merges cost about the same
