"""HPViT: equivalence with the plain ViT, pooling variants, padded windows, shapes, adapter."""
import logging

import pytest
import timm
import torch

from hvit_mm.models.backbones.hpvit import HPViT, TokenPool
from hvit_mm.models.layers import MapBlock
from hvit_mm.models.backbones.vit import ViT
from hvit_mm.models.layers import Block, resample_abs

TINY = dict(embed_dims=32, depth=4, num_heads=2)


def hpvit(**kw) -> HPViT:
    kw.setdefault('arch', TINY)
    kw.setdefault('img_size', 64)
    model = HPViT(**kw)
    model.init_weights()
    return model.eval()


def plain(**kw) -> dict:
    """Kwargs that turn HPViT into the plain ViT: stride 16, no pooling, one global stage."""
    return dict(patch_stride=16, pool_after=(), attn_types=('global',), out_indices=(0,), **kw)


def max_diff(a, b) -> float:
    return (a - b).abs().max().item()


def test_stride16_reproduces_timm_vit_exactly():
    """A cls-free timm ViT checkpoint: HPViT at stride 16 gives its last feature map exactly."""
    torch.manual_seed(0)
    ref = timm.models.VisionTransformer(img_size=(64, 96), patch_size=16, embed_dim=32, depth=4,
                                        num_heads=2, class_token=False, global_pool='',
                                        num_classes=0).eval()
    for p in ref.parameters():  # non-trivial norms and biases
        p.data.add_(0.1 * torch.randn_like(p))
    model = hpvit(**plain(), img_size=(64, 96))
    model.load_state_dict(model.adapt_checkpoint(ref.state_dict()))
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        want = ref.forward_features(x).transpose(1, 2).reshape(2, 32, 4, 6)
        got, = model(x)
    assert got.shape == (2, 32, 4, 6)
    assert max_diff(got, want) <= 1e-6, max_diff(got, want)


def test_stride16_reproduces_hvit_vit_patch_path():
    """A cls-token checkpoint (hvit_mm ViT): the cls token is dropped and its position row removed;
    HPViT equals the ViT's stem, blocks and norm run on the patch tokens."""
    torch.manual_seed(0)
    vit = ViT(arch=TINY, img_size=64).eval()
    for p in vit.parameters():  # random, non-trivial norms
        p.data.add_(0.1 * torch.randn_like(p))
    model = hpvit(**plain())
    model.load_state_dict(model.adapt_checkpoint(vit.state_dict()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens, _ = vit.embed(x)
        for blk in vit.blocks:
            tokens = blk(tokens)
        want = vit.norm(tokens).transpose(1, 2).reshape(2, 32, 4, 4)
        got, = model(x)
        with_cls, = vit(x)
    assert max_diff(got, want) <= 1e-6
    # with its cls token the ViT computes other features: the comparison above can tell them apart
    assert max_diff(got, with_cls) > 1e-3


def test_pool_conv_equals_avg_at_init():
    torch.manual_seed(0)
    kw = dict(pool_after=(0, 1, 2), attn_types=('window', 'window', 'global', 'global'),
              window_size=4)
    avg = hpvit(pool='avg', **kw)
    conv = hpvit(pool='conv', **kw)
    missing = conv.load_state_dict(avg.state_dict(), strict=False).missing_keys
    assert sorted(missing) == [f'pools.{i}.conv.{n}' for i in range(3) for n in ('bias', 'weight')]
    x = torch.randn(2, 3, 100, 148)
    with torch.no_grad():
        for a, c in zip(avg(x), conv(x)):
            assert max_diff(a, c) <= 1e-6
        conv.pools[0].conv.weight.data[0, 0, 0, 0] += 0.5  # the comparison can fail
        assert max_diff(avg(x)[1], conv(x)[1]) > 1e-3


def test_token_pool_odd_sizes_replicate():
    x = torch.arange(3 * 5, dtype=torch.float).view(1, 3, 5, 1)  # (B, H, W, C)
    y = TokenPool(1, 'avg')(x)
    assert y.shape == (1, 2, 3, 1)
    assert y[0, 1, 2, 0] == x[0, 2, 4, 0]  # the corner token averaged with its replicas only
    assert torch.equal(TokenPool(1, 'conv')(x), y)


@pytest.mark.parametrize('hw', [(100, 148), (64, 64), (96, 160)])
def test_shapes_and_feature_info(hw):
    model = hpvit(pool_after=(0, 1, 2), window_size=7)  # 7 divides none of the maps below
    x = torch.randn(1, 3, *hw)
    outs = model(x)
    assert len(outs) == len(model.feature_info) == 4
    for out, info in zip(outs, model.feature_info):
        r = info['reduction']
        assert out.shape == (1, info['num_chs'], -(-hw[0] // r), -(-hw[1] // r))
    assert [i['reduction'] for i in model.feature_info] == [4, 8, 16, 32]
    assert [i['module'] for i in model.feature_info] == ['out_norms.0', 'out_norms.1',
                                                         'out_norms.2', 'norm']


def test_out_indices_subset_has_no_unused_params():
    model = hpvit(pool_after=(0, 1, 2), out_indices=(1, 3))
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [8, 2]
    sum(o.sum() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


def test_window_padding_is_masked():
    """A padded window attends only to its real tokens: equals the block applied to them alone."""
    torch.manual_seed(0)
    blk = MapBlock(16, 2, window=4).eval()
    x = torch.randn(2, 5, 6, 16)  # (B, H, W, C); window 4 pads to 8x8
    run = lambda x, window: (setattr(blk, 'window', window), blk(x))[1]  # noqa: E731
    with torch.no_grad():
        out = run(x, 4)
        corner = x[:, 4:, 4:]  # the bottom-right window holds 1x2 real tokens
        want = run(corner, 0)
        assert max_diff(out[:, 4:, 4:], want) <= 1e-6
        full = x[:, :4, :4]  # an unpadded window
        want = run(full, 0)
        assert max_diff(out[:, :4, :4], want) <= 1e-6
        # a map that fits in one window is global attention
        assert max_diff(run(x, 8), run(x, 0)) <= 1e-6


def test_with_cp_same_gradients():
    torch.manual_seed(0)
    model = hpvit(pool_after=(0, 1, 2), drop_path_rate=0.0).train()
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for with_cp in (False, True):
        model.with_cp = with_cp
        model.zero_grad()
        sum(o.square().mean() for o in model(x)).backward()
        grads.append(model.blocks[0].attn.qkv.weight.grad.clone())
    assert max_diff(*grads) <= 1e-6


def test_pos_embed_from_checkpoint_grid_to_token_grid():
    """The table is kept at the plain grid (cls row dropped, resampled only if the checkpoint's
    grid differs) and resampled in forward to the stride-4 token grid of any input."""
    vit = ViT(arch=TINY, img_size=96)  # 6x6 grid + cls row
    model = hpvit(img_size=64, pool_after=(0, 1, 2))  # stores 4x4
    sd = model.adapt_checkpoint(vit.state_dict())
    assert 'cls_token' not in sd
    assert torch.equal(sd['pos_embed'], resample_abs(vit.pos_embed[:, 1:].detach(), (4, 4), (6, 6)))
    model.load_state_dict({**model.state_dict(), 'pos_embed': sd['pos_embed']})
    torch.nn.init.zeros_(model.patch_embed.proj.weight)
    torch.nn.init.zeros_(model.patch_embed.proj.bias)
    with torch.no_grad():
        emb = model._embed(torch.randn(1, 3, 100, 148))  # (1, 25, 37, C): position only
    want = resample_abs(sd['pos_embed'], (25, 37), (4, 4)).view(1, 25, 37, 32)
    assert emb.shape == want.shape and max_diff(emb, want) <= 1e-6


def test_layer_depth_and_no_weight_decay():
    model = hpvit(pool='conv', pool_after=(0, 1, 2))
    depth = {n: model.get_layer_depth('backbone.' + n, 'backbone.')[0]
             for n, _ in model.named_parameters()}
    assert depth['patch_embed.proj.weight'] == depth['pos_embed'] == 0
    assert [depth[f'blocks.{i}.norm1.weight'] for i in range(4)] == [1, 2, 3, 4]
    assert depth['pools.0.conv.weight'] == 2  # feeds blocks.1
    assert depth['norm.weight'] == depth['out_norms.0.weight'] == 5
    assert model.get_layer_depth('neck.x', 'backbone.')[1] == 6
    assert model.no_weight_decay() <= {n for n, _ in model.named_parameters()}


def test_bad_arguments():
    with pytest.raises(ValueError, match='attn_types'):
        HPViT(arch=TINY, pool_after=(0, 1), attn_types=('global',) * 4)
    with pytest.raises(ValueError, match='pool_after'):
        HPViT(arch=TINY, pool_after=(2, 1, 0))
    with pytest.raises(KeyError, match='unknown arch'):
        HPViT(arch='gigantic')


# ------------------------------------------------------------------------------------------ adapter
def source_vit() -> ViT:
    torch.manual_seed(0)
    vit = ViT(arch=TINY, img_size=64).eval()
    for p in vit.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    return vit


def write_checkpoint(fmt: str, vit: ViT, path) -> None:
    """The same ViT weights in each plain-ViT format hvit_mm converts."""
    sd = {k: v.clone() for k, v in vit.state_dict().items()}
    decoder = {'mask_token': torch.zeros(1, 1, 16), 'decoder_embed.weight': torch.zeros(16, 32),
               'decoder_embed.bias': torch.zeros(16), 'decoder_pos_embed': torch.zeros(1, 17, 16)}
    if fmt == 'mae':  # official MAE: {'model': encoder + decoder}
        ckpt = {'model': {**sd, **decoder}}
    elif fmt == 'mae_lite':  # DDP-wrapped experiment: {'model': {'module.model.<key>'}}
        ckpt = {'model': {f'module.model.{k}': v for k, v in {**sd, **decoder}.items()}}
    elif fmt == 'timm':  # a timm classifier, saved bare
        ckpt = {**sd, 'head.weight': torch.zeros(10, 32), 'head.bias': torch.zeros(10)}
    else:  # hvit_mm's MaskedAutoencoder run, as mmengine's runner writes it
        from hvit_mm.models.algorithms.mae import MaskedAutoencoder
        algo = MaskedAutoencoder(backbone=vit, neck=dict(
            type='MAEDecoder', decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2))
        ckpt = {'meta': {'epoch': 1}, 'state_dict': algo.state_dict()}
    torch.save(ckpt, path)


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.text = ''

    def emit(self, record):
        self.text += record.getMessage() + '\n'


@pytest.mark.parametrize('fmt', ['mae', 'mae_lite', 'timm', 'hvit_mae'])
def test_pretrained_adapter_formats(fmt, tmp_path):
    from mmengine.logging import MMLogger
    vit = source_vit()
    path = tmp_path / f'{fmt}.pth'
    write_checkpoint(fmt, vit, path)
    logger, capture = MMLogger.get_current_instance(), LogCapture()
    logger.addHandler(capture)
    try:
        model = hpvit(pool='conv', pool_after=(0, 1, 2), init_cfg=dict(type='Pretrained',
                                                                       checkpoint=str(path)))
    finally:
        logger.removeHandler(capture)
    src, own = vit.state_dict(), model.state_dict()
    for k in own:
        if k.startswith(('blocks.', 'patch_embed.', 'norm.')):
            assert torch.equal(own[k], src[k]), k
    assert torch.equal(own['pos_embed'], src['pos_embed'][:, 1:])  # same 4x4 grid, cls row gone
    new = sorted(k for k in own if k.startswith(('pools.', 'out_norms.')))
    assert len(new) == 12 and all(k in capture.text for k in new), capture.text
    assert "dropped checkpoint keys ['cls_token']" in capture.text
    # the same file in a stride-16 plain HPViT reproduces the ViT's patch-token path
    flat = hpvit(**plain(), init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        tokens, _ = vit.embed(x)
        for blk in vit.blocks:
            tokens = blk(tokens)
        want = vit.norm(tokens).transpose(1, 2).reshape(1, 32, 4, 4)
        assert max_diff(flat(x)[0], want) <= 1e-6


def test_pretrained_refuses_missing_and_extra_blocks(tmp_path):
    vit = source_vit()
    sd = {k: v for k, v in vit.state_dict().items() if not k.startswith('blocks.3.')}
    torch.save({'model': sd}, tmp_path / 'short.pth')
    with pytest.raises(KeyError, match=r'blocks\.3\.'):
        hpvit(pool_after=(0, 1, 2),
              init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'short.pth')))
    torch.save({'model': vit.state_dict()}, tmp_path / 'full.pth')
    with pytest.raises(KeyError, match=r'unexpected.*blocks\.3\.'):  # a 3-block HPViT
        hpvit(arch=dict(TINY, depth=3), pool_after=(0, 1), attn_types=('global',) * 3,
              init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'full.pth')))


def test_own_hpvit_run_reloads(tmp_path):
    """An HPViT run's checkpoint (mmengine layout, pools and out norms included) loads back."""
    torch.manual_seed(0)
    trained = hpvit(pool='conv', pool_after=(0, 1, 2))
    for p in trained.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    sd = {**{f'backbone.{k}': v for k, v in trained.state_dict().items()},
          'neck.lateral_convs.0.conv.weight': torch.zeros(1)}
    torch.save({'meta': {}, 'state_dict': sd}, tmp_path / 'run.pth')
    model = hpvit(pool='conv', pool_after=(0, 1, 2), init_cfg=dict(
        type='Pretrained', checkpoint=str(tmp_path / 'run.pth'), prefix='', fmt='hvit'))
    for k, v in trained.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
