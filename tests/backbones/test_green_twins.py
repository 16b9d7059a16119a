"""GreenTwins: the dense path against timm's Twins-SVT (same weights), the sparse path against the
dense one (nothing masked) and against a naive masked reference (random per-sample masks), mask
order, token replacement, gradients and the backbone contracts."""
import pytest
import torch
import torch.nn.functional as F
from timm.models.twins import Twins

import hvit_mm.models.backbones.green_twins as green_twins
from hvit_mm.models.backbones.green_twins import GreenTwins
from hvit_mm.models.masking import Mask, mask_from_visible, random_mask, upsample_units

TINY = dict(embed_dims=(16, 32, 48, 64), depths=(2, 2, 2, 2), num_heads=(1, 2, 3, 4))


def perturbed(model, seed=0):
    """Non-trivial weights everywhere (biases, norms) so differences show up."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def green(arch=TINY, window_size=4, **kw):
    torch.manual_seed(0)
    return perturbed(GreenTwins(arch, img_size=128, window_size=window_size, **kw)).eval()


def timm_twins(arch=TINY, window_size=4, num_classes=0):
    n = len(arch['depths'])
    return Twins(img_size=128, embed_dims=arch['embed_dims'], depths=arch['depths'],
                 num_heads=arch['num_heads'], mlp_ratios=(4,) * n, wss=(window_size,) * n,
                 sr_ratios=(8, 4, 2, 1), num_classes=num_classes).eval()


def max_diff(a, b):
    return (a - b).abs().max().item()


def naive_masked(model, x, mask, token=None):
    """Reference on dense maps: every attention sees only visible keys (LSA: of its own window;
    GSA: the sr cells holding a visible token), every convolution reads masked positions as zero.
    Returns the final tokens of the visible units, ``ids_keep`` order (B, K, C)."""
    B, gh, gw = x.shape[0], x.shape[2] // 32, x.shape[3] // 32
    feat = model.patch_embeds[0](x)  # (B, h, w, C)
    vis = upsample_units(mask.visible, (gh, gw), 8)[:, 0]  # (B, h, w) bool
    if mask.replaced is not None:
        rep = upsample_units(mask.replaced, (gh, gw), 8)[:, 0, :, :, None]
        feat = torch.where(rep, token.reshape(-1), feat)
    for i in range(model.num_stages):
        if i:
            feat = model.patch_embeds[i]((feat * vis[..., None]).permute(0, 3, 1, 2))
            vis = vis[:, ::2, ::2]
        _, H, W, C = feat.shape
        ws, sr = model.window_sizes[i], model.sr_ratios[i]
        hh, ww = [c.reshape(-1) for c in torch.meshgrid(torch.arange(H), torch.arange(W),
                                                          indexing='ij')]
        wid = (hh // ws) * 1000 + ww // ws
        v = vis.reshape(B, H * W)
        for j, blk in enumerate(model.blocks[i]):
            a, t = blk.attn, feat.reshape(B, H * W, C)
            y = blk.norm1(t)
            heads = a.num_heads
            if j % 2 == 0:  # LSA
                q, k, val = a.qkv(y).view(B, H * W, 3, heads, -1).permute(2, 0, 3, 1, 4)
                allowed = (wid[:, None] == wid[None]) & v[:, None, None, :]
                allowed = allowed | torch.eye(H * W, dtype=torch.bool)  # hidden queries finite
            else:  # GSA
                q = a.q(y).view(B, H * W, heads, -1).transpose(1, 2)
                r, kv_vis = y, v
                if sr > 1:
                    r = a.sr((y * v[..., None]).view(B, H, W, C).permute(0, 3, 1, 2))
                    r = a.norm(r.flatten(2).transpose(1, 2))
                    kv_vis = F.max_pool2d(vis[:, None].float(), sr).reshape(B, -1) > 0
                k, val = a.kv(r).view(B, r.shape[1], 2, heads, -1).permute(2, 0, 3, 1, 4)
                allowed = kv_vis[:, None, None, :]
            logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
            o = logits.masked_fill(~allowed, float('-inf')).softmax(-1) @ val
            t = t + a.proj(o.transpose(1, 2).reshape(B, H * W, C))
            feat = (t + blk.mlp(blk.norm2(t))).view(B, H, W, C)
            if j == 0:  # PEG on the zero-scattered map
                conv = model.pos_block[i].proj
                feat = feat + conv((feat * vis[..., None]).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    feat = model.norm(feat).reshape(B, gh * gw, -1)
    return feat.gather(1, mask.ids_keep[..., None].expand(-1, -1, feat.shape[-1]))


@pytest.mark.parametrize('hw', [(128, 128), (64, 96), (72, 100)])
def test_dense_forward_equals_timm(hw):
    """Same weights, timm's forward_features (last stage, normed) and intermediate maps; 64x96
    pads LSA windows (2x3 map, window 4) and 72x100 floors odd maps, as timm does."""
    model = green()
    ref = timm_twins(num_classes=10)
    sd = model.state_dict()
    missing, unexpected = ref.load_state_dict(sd, strict=False)
    assert unexpected == [] and sorted(missing) == ['head.bias', 'head.weight']
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        outs = model(x)
        feats = ref.forward_features(x)  # (B, N, C), normed
        maps = ref.forward_intermediates(x, intermediates_only=True)
    assert len(outs) == 4
    for out, m in zip(outs[:3], maps[:3]):
        assert out.shape == m.shape and max_diff(out, m) <= 1e-5
    assert max_diff(outs[3].flatten(2).transpose(1, 2), feats) <= 1e-5


def test_timm_checkpoint_loads_through_adapt_checkpoint():
    ref = perturbed(timm_twins(num_classes=10))
    model = GreenTwins(TINY, img_size=128, window_size=4).eval()
    model.load_state_dict(model.adapt_checkpoint(ref.state_dict()), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(model(x)[3].flatten(2).transpose(1, 2), ref.forward_features(x)) <= 1e-5


def test_nothing_masked_equals_dense_forward():
    model = green()
    x = torch.randn(2, 3, 128, 128)
    mask = mask_from_visible(torch.ones(2, 16, dtype=torch.bool))
    with torch.no_grad():
        dense = model(x)[3].flatten(2).transpose(1, 2)  # (B, 16, C)
        feats = model.forward_masked(x, mask)
    assert feats.tokens.shape == (2, 16, 64) and feats.prefix.shape == (2, 0, 64)
    assert feats.unit_tokens == 1
    assert max_diff(feats.tokens, dense) <= 1e-5


@pytest.mark.parametrize('hw,ratio,seed', [((128, 128), 0.75, 0), ((96, 160), 0.5, 1),
                                           ((128, 128), 0.25, 2)])
def test_sparse_equals_naive_masked_reference(hw, ratio, seed, monkeypatch):
    """Random per-sample masks; the LSA plans cover grouped windows and the dense masked path."""
    kinds = []
    real = green_twins.plan_windows

    def spy(*args, **kw):
        plans = real(*args, **kw)
        kinds.extend(p.index is not None for p in plans)
        return plans

    monkeypatch.setattr(green_twins, 'plan_windows', spy)
    model = green()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 3, *hw, generator=g)
    units = (hw[0] // 32) * (hw[1] // 32)
    mask = random_mask(3, units, ratio, generator=g)
    with torch.no_grad():
        got = model.forward_masked(x, mask).tokens
        want = naive_masked(model, x, mask)
    assert got.shape == want.shape == (3, mask.num_keep, 64)
    assert max_diff(got, want) <= 1e-5
    if hw == (128, 128) and ratio == 0.75:
        assert kinds[0] and not kinds[-1]  # stage 0 grouped, stage 3 dense masked


def test_tokens_follow_ids_keep_order_and_token_replaces_units():
    model = green()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 128, 128, generator=g)
    mask = random_mask(2, 16, 0.5, generator=g)
    perm = torch.randperm(mask.num_keep, generator=g)
    shuffled = Mask(mask.visible, mask.ids_keep[:, perm])
    with torch.no_grad():
        base = model.forward_masked(x, mask).tokens
        assert max_diff(model.forward_masked(x, shuffled).tokens, base[:, perm]) <= 1e-5
        replaced = torch.zeros_like(mask.visible)
        replaced.scatter_(1, mask.ids_keep[:, :3], True)
        rmask = Mask(mask.visible, mask.ids_keep, replaced)
        token = torch.randn(1, 1, 16, generator=g)
        got = model.forward_masked(x, rmask, token).tokens
        assert max_diff(got, naive_masked(model, x, rmask, token)) <= 1e-5
        assert max_diff(got, base) > 1e-3
    with pytest.raises(ValueError, match='token'):
        model.forward_masked(x, rmask)


def test_backward_reaches_every_parameter_and_checkpointing_matches():
    model = green(drop_path_rate=0.0).train()
    model_cp = green(drop_path_rate=0.0, with_cp=True).train()
    x = torch.randn(2, 3, 128, 128)
    mask = random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    out = model.forward_masked(x, mask).tokens
    out.square().mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    out_cp = model_cp.forward_masked(x, mask).tokens
    out_cp.square().mean().backward()
    assert max_diff(out, out_cp) <= 1e-6
    for (n, p), (_, q) in zip(model.named_parameters(), model_cp.named_parameters()):
        assert max_diff(p.grad, q.grad) <= 1e-5, n


def test_contracts():
    model = GreenTwins(TINY, out_indices=(1, 3))
    assert model.mim_unit == 32 and model.mim_dims == 16 and model.mim_stages == ()
    assert model.mim_out == dict(num_chs=64, unit_tokens=1, units_per_token=1)
    assert model.feature_info == [dict(num_chs=32, reduction=8, module='blocks.1'),
                                  dict(num_chs=64, reduction=32, module='blocks.3')]
    assert [o.shape for o in model(torch.randn(1, 3, 64, 64))] == [(1, 32, 8, 8), (1, 64, 2, 2)]
    assert model.num_layers == 10
    depth = model.layer_depth
    assert depth('patch_embeds.0.proj.weight') == 0
    assert depth('blocks.0.0.norm1.weight') == 1 and depth('pos_block.0.proj.0.weight') == 1
    assert depth('blocks.0.1.attn.sr.weight') == 2 and depth('patch_embeds.1.norm.bias') == 2
    assert depth('blocks.3.1.mlp.fc2.bias') == 8 and depth('norm.weight') == 9
    assert model.no_weight_decay() == {f'pos_block.{i}.proj.0.{w}' for i in range(4)
                                       for w in ('weight', 'bias')}
    deep = dict(GreenTwins.arch_zoo['large'], embed_dims=(8,) * 4, num_heads=(1,) * 4)
    names = {n for n, _ in GreenTwins(deep).named_parameters()}
    assert {'blocks.2.17.attn.qkv.weight', 'blocks.2.17.attn.q.weight', 'blocks.1.1.attn.sr.weight',
            'blocks.3.1.attn.kv.weight'} & names == {'blocks.2.17.attn.q.weight',
                                                     'blocks.1.1.attn.sr.weight',
                                                     'blocks.3.1.attn.kv.weight'}
    assert 'blocks.3.1.attn.sr.weight' not in names  # sr 1: no conv, as timm
    odd = GreenTwins(TINY, sr_ratios=(8, 8, 2, 1))
    with pytest.raises(ValueError, match='sr_ratio 8 of stage 1'):
        odd.forward_masked(torch.randn(1, 3, 64, 64), random_mask(1, 4, 0.5))
    with pytest.raises(ValueError, match='one entry per stage'):
        GreenTwins(TINY, window_size=(4, 4))


def test_timm_twins_file_loads_by_init_cfg(tmp_path):
    """A timm Twins checkpoint (classifier head included) loads strictly through init_cfg."""
    import timm
    from hvit_mm.models.backbones.green_twins import GreenTwins
    ref = timm.create_model('twins_svt_small', pretrained=False, embed_dims=[16, 32, 48, 64],
                            num_heads=[1, 2, 3, 4], depths=[1, 1, 1, 1], wss=[4, 4, 4, 4],
                            num_classes=5).eval()
    path = tmp_path / 'twins.pth'
    torch.save(ref.state_dict(), path)
    model = GreenTwins(dict(embed_dims=(16, 32, 48, 64), num_heads=(1, 2, 3, 4),
                            depths=(1, 1, 1, 1)), img_size=64, window_size=4, out_indices=(3,),
                       init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = ref.forward_features(x)  # (B, N, C) tokens after the final norm
        got, = model(x)
    assert (got.flatten(2).transpose(1, 2) - want).abs().max() <= 1e-5
