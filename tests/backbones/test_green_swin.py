"""GreenSwin: the dense path against stock mmpretrain Swin (same weights), the sparse path against
the dense one (nothing masked) and against a naive masked reference (random per-sample masks),
mask order, token replacement, checkpointing and the backbone contracts."""
import pytest
import torch
from mmpretrain.models.backbones import SwinTransformer

from hvit_mm.checkpoints.greenmim import to_mmpretrain
from hvit_mm.models.backbones.green_swin import GreenSwin
from hvit_mm.models.masking import Mask, mask_from_visible, random_mask, upsample_units

TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def perturbed(model, seed=0):
    """Non-trivial weights everywhere (biases, norms) so differences show up."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def green(img_size=128, window_size=4, **kw):
    kw.setdefault('drop_path_rate', 0.0)
    return perturbed(GreenSwin(TINY, img_size=img_size, window_size=window_size, **kw)).eval()


def all_visible(B, units):
    return mask_from_visible(torch.ones(B, units, dtype=torch.bool))


def max_diff(a, b):
    return (a - b).abs().max().item()


def naive_masked(model, x, mask, token=None):
    """Reference: dense maps, where every block lets a token attend only to the *visible* tokens
    of its own window (non-cyclic shifted partition); hidden positions carry values that never
    reach a visible token. Returns the last stage's tokens of the visible units, ``ids_keep``
    order (B, K, C)."""
    B, gh, gw = x.shape[0], x.shape[2] // 32, x.shape[3] // 32
    feat = model.patch_embed(x)  # (B, h, w, C)
    vis = upsample_units(mask.visible, (gh, gw), 8)[:, 0]  # (B, h, w)
    if mask.replaced is not None:
        rep = upsample_units(mask.replaced, (gh, gw), 8)[:, 0, :, :, None]
        feat = torch.where(rep, token.reshape(-1), feat)
    for i, stage in enumerate(model.layers):
        _, H, W, C = feat.shape
        window, shift = model.stage_window(i, (H, W))
        T = model.table_windows[i]
        hh, ww = [c.reshape(-1) for c in torch.meshgrid(torch.arange(H), torch.arange(W),
                                                          indexing='ij')]
        rel = ((hh[:, None] - hh[None] + T - 1) * (2 * T - 1) + ww[:, None] - ww[None] + T - 1)
        rel = rel.clamp(0, (2 * T - 1) ** 2 - 1)  # out-of-window pairs are masked below anyway
        for j, blk in enumerate(stage.blocks):
            off = (window - (shift if j % 2 else 0)) % window
            wid = ((hh + off) // window) * 1000 + (ww + off) // window
            allowed = (wid[:, None] == wid[None]) & vis.reshape(B, 1, 1, H * W)
            allowed = allowed | torch.eye(H * W, dtype=torch.bool)  # hidden queries stay finite
            bias = blk.attn.relative_position_bias_table[rel].permute(2, 0, 1)
            bias = bias.masked_fill(~allowed, float('-inf'))  # (B, heads, HW, HW)
            t = feat.reshape(B, H * W, C)
            heads = blk.attn.num_heads
            q, k, v = blk.attn.qkv(blk.norm1(t)).view(B, H * W, 3, heads, -1).permute(2, 0, 3, 1, 4)
            a = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + bias).softmax(-1)
            t = t + blk.attn.proj((a @ v).transpose(1, 2).reshape(B, H * W, C))
            feat = (t + blk.mlp(blk.norm2(t))).view(B, H, W, C)
        if stage.downsample is not None:
            feat = stage.downsample(feat.view(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 2, 4, 5))
            vis = vis[:, ::2, ::2]
    feat = model.norm3(feat).reshape(B, gh * gw, -1)
    return feat.gather(1, mask.ids_keep[..., None].expand(-1, -1, feat.shape[-1]))


def test_dense_forward_equals_stock_mmpretrain_swin():
    model = green()
    ref = SwinTransformer(arch=dict(TINY, depths=list(TINY['depths']),
                                    num_heads=list(TINY['num_heads'])),
                          img_size=128, window_size=4, drop_path_rate=0.0,
                          out_indices=(0, 1, 2, 3))
    ref.eval()  # mmpretrain's train() returns None: no chaining
    sd = {k[len('backbone.'):]: v for k, v in to_mmpretrain(model.state_dict()).items()}
    ref.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        outs, refs = model(x), ref(x)
        feats = model.forward_masked(x, all_visible(2, 16))
    assert [o.shape for o in outs] == [r.shape for r in refs]
    assert all(max_diff(o, r) <= 1e-5 for o, r in zip(outs, refs))
    # nothing masked: the sparse path gives the last stage of the dense one, unit by unit
    assert feats.tokens.shape == (2, 16, 128) and feats.prefix.shape == (2, 0, 128)
    assert max_diff(feats.tokens, refs[3].flatten(2).transpose(1, 2)) <= 1e-5


@pytest.mark.parametrize('img_hw,window', [((128, 128), 4), ((64, 128), 2), ((224, 224), 7)])
def test_nothing_masked_equals_dense(img_hw, window):
    """Maps that are multiples of their windows (or no larger): sparse == dense, non-square too."""
    model = green(img_size=img_hw, window_size=window, out_indices=(3,))
    x = torch.randn(2, 3, *img_hw)
    units = img_hw[0] // 32 * img_hw[1] // 32
    with torch.no_grad():
        dense = model(x)[0].flatten(2).transpose(1, 2)
        sparse = model.forward_masked(x, all_visible(2, units)).tokens
    assert max_diff(sparse, dense) <= 1e-5


@pytest.mark.parametrize('img,window,keep', [(128, 4, 4), (128, 4, 9), (96, 7, 3), (160, 4, 7)])
def test_sparse_equals_naive_masked_reference(img, window, keep):
    """Random per-sample masks (each sample its own), shifted and unshifted windows, partial
    windows at the borders (96 px / window 7, 160 px / window 4)."""
    model = green(img_size=img, window_size=window)
    g = torch.Generator().manual_seed(img + keep)
    x = torch.randn(3, 3, img, img, generator=g)
    units = (img // 32) ** 2
    mask = random_mask(3, units, 1 - keep / units, generator=g)
    assert not torch.equal(mask.visible[0], mask.visible[1])
    with torch.no_grad():
        tokens = model.forward_masked(x, mask).tokens
        ref = naive_masked(model, x, mask)
    assert tokens.shape == (3, mask.num_keep, 128)
    assert max_diff(tokens, ref) <= 1e-5


def test_ids_keep_order_and_replaced_units():
    model = green()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 128, 128, generator=g)
    mask = random_mask(2, 16, 0.5, generator=g)
    perm = torch.randperm(8, generator=g)
    shuffled = Mask(mask.visible, mask.ids_keep[:, perm])  # any order is honoured
    token = torch.randn(1, 1, 16, generator=g)
    replaced = mask.visible & (torch.rand(2, 16, generator=g) < 0.5)
    with torch.no_grad():
        base = model.forward_masked(x, mask).tokens
        assert max_diff(model.forward_masked(x, shuffled).tokens, base[:, perm]) <= 1e-5
        # SimMIM-style: the token replaces the normalised patch embedding of replaced units
        sim = Mask(mask.visible, mask.ids_keep, replaced)
        out = model.forward_masked(x, sim, token=token).tokens
        assert max_diff(out, naive_masked(model, x, sim, token)) <= 1e-5
        assert max_diff(out, base) > 1e-3


def test_with_cp_and_backward():
    torch.manual_seed(0)
    model = GreenSwin(TINY, img_size=128, window_size=4, out_indices=(3,), drop_path_rate=0.0)
    cp = GreenSwin(TINY, img_size=128, window_size=4, out_indices=(3,), drop_path_rate=0.0,
                   with_cp=True)
    cp.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 128, 128)
    mask = random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    grads = []
    for m in (model.train(), cp.train()):
        m.forward_masked(x, mask).tokens.square().mean().backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    assert all(grads[0][n] is not None for n in grads[0])
    assert all(max_diff(grads[0][n], grads[1][n]) <= 1e-6 for n in grads[0])


def test_contracts():
    base_depths = dict(embed_dims=16, depths=(2, 2, 18, 2), num_heads=(1, 1, 1, 1))
    model = GreenSwin(base_depths, out_indices=(0, 1, 2, 3))
    assert [i['num_chs'] for i in model.feature_info] == [16, 32, 64, 128]
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32]
    assert model.table_windows == [7, 7, 7, 7] and model.mim_unit == 32
    assert GreenSwin(TINY, window_size=14).table_windows == [14, 14, 14, 7]  # official clip
    assert GreenSwin.arch_zoo['base'] == dict(embed_dims=128, depths=(2, 2, 18, 2),
                                              num_heads=(4, 8, 16, 32))
    assert model.num_layers == 26
    depth = model.layer_depth
    assert depth('patch_embed.proj.weight') == 0
    assert depth('layers.0.blocks.1.attn.qkv.weight') == 2
    assert depth('layers.0.downsample.reduction.weight') == 2  # with the stage's last block
    assert depth('layers.2.blocks.0.norm1.weight') == 5
    assert depth('norm3.weight') == 25
    assert model.no_weight_decay() == {f'layers.{i}.blocks.{j}.attn.relative_position_bias_table'
                                       for i, d in enumerate((2, 2, 18, 2)) for j in range(d)}
    assert set(model.pretrained_allowances()[0]) == {'norm0.', 'norm1.', 'norm2.'}
    with pytest.raises(ValueError, match='multiple of its 32 px'):
        model.forward_masked(torch.zeros(1, 3, 48, 64), all_visible(1, 2))


def test_registered_for_every_codebase_and_any_size_dense():
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG
    for registry in (DET, SEG):
        assert registry.get('GreenSwin') is GreenSwin
    model = GreenSwin(**dict(GreenSwin.tiny_cfg, out_indices=(0, 1, 2, 3))).eval()
    outs = model(torch.randn(1, 3, 70, 90))  # padded like mmdet's Swin
    assert [tuple(o.shape[2:]) for o in outs] == [(18, 23), (9, 12), (5, 6), (3, 3)]
