"""ViTDet (the plain ViT for dense tasks): windowed + global MapBlocks, decomposed relative position, with_cp.

References: timm's SAM encoder blocks (ViTDet's block with the same parameter names) for the
windowed and global attention with relative position.
"""
import functools

import pytest
import torch
from timm.models.vision_transformer_sam import Block as SamBlock

from hvit_mm.models.backbones.vit import ViT, ViTDet
from hvit_mm.models.layers import MapBlock
from hvit_mm.models.layers.rel_pos import rel_pos_lookup, resize_rel_pos
from hvit_mm.models.masking import random_mask

ARCH = dict(embed_dims=32, depth=4, num_heads=2)


def perturbed(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def max_diff(a, b):
    return (a - b).abs().max().item()


@pytest.mark.parametrize('rel_pos', [False, True])
def test_window_covering_the_map_equals_global(rel_pos):
    """64 px / 16 = 4×4 tokens: 4×4 windows (one window) compute what global blocks compute."""
    win = perturbed(ViTDet(ARCH, img_size=64, window_size=4, rel_pos_bias=rel_pos))
    glob = ViTDet(ARCH, img_size=64, window_size=4, global_blocks=range(4), rel_pos_bias=rel_pos)
    glob.load_state_dict(win.state_dict(), strict=True)  # same shapes: window 4 = grid 4
    glob.eval()
    assert [b.window for b in win.blocks] == [4] * 4 and [b.window for b in glob.blocks] == [0] * 4
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert max_diff(win(x)[0], glob(x)[0]) < 1e-5
        # a bigger input: now the windows are real (2×2 of them) and the outputs differ
        y = torch.randn(1, 3, 128, 128)
        assert max_diff(win(y)[0], glob(y)[0]) > 1e-3


def test_rel_pos_zero_init_equals_no_rel_pos():
    plain = perturbed(ViTDet(ARCH, img_size=64, window_size=2, global_blocks=(1, 3)))
    rel = ViTDet(ARCH, img_size=64, window_size=2, global_blocks=(1, 3), rel_pos_bias=True).eval()
    missing, unexpected = rel.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == sorted(f'blocks.{i}.attn.rel_pos_{a}' for i in range(4) for a in 'hw')
    assert not unexpected
    assert rel.blocks[0].attn.rel_pos_h.shape == (3, 16)  # window 2: 2·2 - 1 offsets, head dim 16
    assert rel.blocks[1].attn.rel_pos_h.shape == (7, 16)  # global: the 4×4 pretraining grid
    x = torch.randn(2, 3, 96, 80)  # 6×5 tokens: padded windows, resampled tables
    with torch.no_grad():
        assert max_diff(plain(x)[0], rel(x)[0]) < 1e-6
        rel.blocks[1].attn.rel_pos_w.data.normal_()
        assert max_diff(plain(x)[0], rel(x)[0]) > 1e-3


@pytest.mark.parametrize('window', [0, 4])
def test_map_block_equals_timm_sam_block(window):
    """Windowed (no padding: 8×8 map, 4×4 windows) and global blocks with decomposed rel-pos."""
    size = (window, window) if window else (8, 8)
    ref = SamBlock(32, 4, use_rel_pos=True, window_size=window, input_size=size,
                   norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6))
    perturbed(ref)
    ours = MapBlock(32, 4, window=window, rel_pos_size=size).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # same names: attn.rel_pos_h, mlp.fc1, ...
    x = torch.randn(2, 8, 8, 32)
    with torch.no_grad():
        assert max_diff(ours(x), ref(x)) < 1e-5
        # a 12×12 map: the global tables are linearly resampled 15 -> 23 offsets, as ViTDet does
        if not window:
            y = torch.randn(1, 12, 12, 32)
            assert max_diff(ours(y), ref(y)) < 1e-5


def test_padded_windows_ignore_the_padding():
    """A 6×6 map in 4×4 windows: the corner window holds 2×2 real tokens and 12 padded ones; its
    output equals attending over the 2×2 tokens alone (no rel-pos, whose lookup differs by size)."""
    blk = perturbed(MapBlock(32, 2, window=4))
    glob = MapBlock(32, 2, window=0)
    glob.load_state_dict(blk.state_dict())
    glob.eval()
    x = torch.randn(1, 6, 6, 32)
    with torch.no_grad():
        full = blk(x)
        corner = glob(x[:, 4:, 4:].contiguous())
        top_left = glob(x[:, :4, :4].contiguous())
    assert max_diff(full[:, 4:, 4:], corner) < 1e-5
    assert max_diff(full[:, :4, :4], top_left) < 1e-5


def test_rel_pos_lookup_layout_and_resize():
    table = torch.arange(5.0)[:, None]  # offsets -2..2 of a 3-token axis, one channel
    got = rel_pos_lookup(table, 3)[..., 0]
    assert torch.equal(got, torch.tensor([[2., 1., 0.], [3., 2., 1.], [4., 3., 2.]]))  # i - k + 2
    assert torch.equal(resize_rel_pos(table, 5), table)
    assert torch.allclose(resize_rel_pos(table, 9)[:, 0][[0, -1]], torch.tensor([0., 4.]), atol=0.3)


def test_with_cp_gives_the_same_gradients():
    """Activation checkpointing recomputes the blocks in backward (drop path too: the RNG state is
    restored), so the gradients equal the plain run's."""
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = ViTDet(ARCH, img_size=64, window_size=2, global_blocks=(1,), rel_pos_bias=True,
                    drop_path_rate=0.3, with_cp=with_cp)
        perturbed(model).train()
        torch.manual_seed(1)
        model(torch.randn(2, 3, 64, 96))[0].square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 20
    assert 'blocks.0.attn.rel_pos_h' in grads[0]
    assert max(max_diff(grads[0][n], grads[1][n]) for n in grads[0]) < 1e-6
    # the classic (cls-token) ViT checkpoints too
    classic = ViT(ARCH, img_size=64, with_cp=True).train()
    classic(torch.randn(1, 3, 64, 64))[0].sum().backward()
    assert classic.blocks[0].attn.qkv.weight.grad is not None


def test_shapes_at_1024_tiny_width():
    """ViTDet-B's layout (14-token windows, global blocks) on a 1024² image at a tiny width."""
    model = ViTDet(ARCH, img_size=1024, window_size=14, global_blocks=(1, 3), rel_pos_bias=True).eval()
    assert model.feature_info == [dict(num_chs=32, reduction=16, module='blocks.3')]
    assert [b.window for b in model.blocks] == [14, 0, 14, 0]
    assert model.blocks[1].attn.rel_pos_h.shape == (127, 16)  # 64×64 grid
    with torch.no_grad():
        out, = model(torch.randn(1, 3, 1024, 1024))
    assert out.shape == (1, 32, 64, 64) and torch.isfinite(out).all()


def test_dense_mode_contract():
    model = ViTDet(ARCH, img_size=64, window_size=2, global_blocks=(-1,), out_indices=(1, 3),
                rel_pos_bias=True)
    assert model.cls_token is None and 'cls_token' not in model.state_dict()
    assert model.global_blocks == [3]
    outs = model(torch.randn(1, 3, 64, 48))
    assert [o.shape for o in outs] == [(1, 32, 4, 3)] * 2
    assert model.get_layer_depth('backbone.blocks.2.attn.rel_pos_w', 'backbone.') == (3, 6)
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 6)
    assert model.no_weight_decay() == {'pos_embed'} | {
        f'blocks.{i}.attn.rel_pos_{a}' for i in range(4) for a in 'hw'}
    names = {n for n, _ in model.named_parameters()}
    assert model.no_weight_decay() <= names
    with pytest.raises(TypeError, match='masked image modeling'):
        model.forward_masked(torch.randn(1, 3, 64, 64), random_mask(1, 16, 0.75))
    with pytest.raises(TypeError, match='out_type'):
        ViTDet(ARCH, window_size=2, out_type='cls_token')
    with pytest.raises(ValueError, match='window_size'):
        ViTDet(ARCH, window_size=0)
    with pytest.raises(ValueError, match='global_blocks'):
        ViTDet(ARCH, window_size=2, global_blocks=(4,))


def test_mae_checkpoint_loads_into_dense_mode(tmp_path):
    """An official-MAE-format file (timm keys with cls token, 14×14 table) loads strictly: the cls
    token is dropped, the relative tables start at zero, the table is resampled to img_size."""
    src = perturbed(ViT(ARCH, img_size=224))
    path = tmp_path / 'mae_pretrain_tiny.pth'
    torch.save({'model': src.state_dict()}, path)
    dense = ViTDet(ARCH, img_size=128, window_size=4, global_blocks=(1, 3), rel_pos_bias=True,
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    dense.init_weights()
    assert dense.pos_embed.shape == (1, 1 + 64, 32)
    assert torch.equal(dense.blocks[2].mlp.fc1.weight, src.blocks[2].mlp.fc1.weight)
    assert dense.blocks[0].attn.rel_pos_h.abs().sum() == 0
