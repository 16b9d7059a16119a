"""GreenMIM checkpoints -> hvit_mm GreenSwin and -> stock mmdet / mmpretrain Swin: official-format
files synthesised from a tiny GreenSwin by the inverse mapping; the old merge order; equal outputs
in the stock models through their own loaders; pure functions; the CLI."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import SwinTransformer as DetSwin
from mmengine.config import ConfigDict
from mmpretrain.models.backbones import SwinTransformer as ClsSwin

from hvit_mm.checkpoints import greenmim, load_state_dict_file, to_hvit
from hvit_mm.models.backbones.green_swin import GreenSwin
from tests.conftest import load_tool

TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))
STOCK = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=4,
             drop_path_rate=0.0, out_indices=(0, 1, 2, 3))


def green(**kw):
    g = torch.Generator().manual_seed(0)
    model = GreenSwin(TINY, img_size=160, window_size=4, drop_path_rate=0.0, **kw)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def decoder_keys(dim=16, pix=32 * 32 * 3):
    g = torch.Generator().manual_seed(1)
    shapes = {'mask_token': (1, 1, dim), 'decoder_pos_embed': (1, 25, dim),
              'decoder_embed.weight': (dim, 128), 'decoder_embed.bias': (dim,),
              'decoder_blocks.0.norm1.weight': (dim,), 'decoder_blocks.0.attn.qkv.weight':
              (3 * dim, dim), 'decoder_blocks.0.mlp.fc2.bias': (dim,),
              'decoder_norm.weight': (dim,), 'decoder_norm.bias': (dim,),
              'decoder_pred.weight': (pix, dim), 'decoder_pred.bias': (pix,)}
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


def official_file(model, old_merge_order=True):
    """A GreenMIM-format dict of ``model`` (what the released code would save, buffers included)."""
    hvit = {'backbone.' + k: v for k, v in model.state_dict().items()
            if not k.startswith(('norm0', 'norm1', 'norm2'))}
    hvit.update({'neck.' + k: v for k, v in decoder_keys().items()})
    sd = greenmim.to_official(hvit, old_merge_order)
    for i, d in enumerate(TINY['depths']):
        for j in range(d):
            sd[f'encoder.layers.{i}.blocks.{j}.attn.relative_position_index'] = \
                greenmim.swin_relative_index(4)
    return sd


def evaluating(stock):
    stock.eval()  # the stock Swins' train() returns None: no chaining
    return stock


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_official_file_converts_to_the_same_greenswin():
    model = green(out_indices=(3,))
    sd = official_file(model)
    before = {k: v.clone() for k, v in sd.items()}
    assert greenmim.detect(sd) and 'encoder.norm.weight' in sd
    out = to_hvit(sd)  # auto-detected
    assert all(torch.equal(before[k], sd[k]) for k in sd) and sorted(before) == sorted(sd)
    assert sorted(k for k in out if k.startswith('neck.')) == \
        sorted('neck.' + k for k in decoder_keys())
    again = GreenSwin(TINY, img_size=160, window_size=4, out_indices=(3,))
    again.load_state_dict(again.adapt_checkpoint(out), strict=True)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())
    # the inverse mapping gives the file back (buffers aside)
    back = greenmim.to_official(out)
    assert all(torch.equal(back[k], v) for k, v in sd.items() if 'relative_position_index' not in k)


def test_old_merge_order_is_permuted_to_swin_order():
    """The released code concatenated a 2×2 cell as [TL, TR, BL, BR]; the converted weights give
    the same merge in GreenSwin's [TL, BL, TR, BR] concat."""
    model = green()
    sd = official_file(model)
    norm_w, norm_b = sd['encoder.layers.0.downsample.norm.weight'], \
        sd['encoder.layers.0.downsample.norm.bias']
    red = sd['encoder.layers.0.downsample.reduction.weight']
    cells = torch.randn(5, 2, 2, 16)  # (..., dy, dx, C)
    old = F.linear(F.layer_norm(cells.flatten(-3), (64,), norm_w, norm_b), red)
    converted = GreenSwin(TINY, img_size=160, window_size=4)
    converted.load_state_dict(converted.adapt_checkpoint(to_hvit(sd)), strict=False)
    with torch.no_grad():
        assert max_diff(converted.layers[0].downsample(cells), old) <= 1e-5
    assert not torch.equal(sd['encoder.layers.0.downsample.reduction.weight'],
                           greenmim.convert(sd)['backbone.layers.0.downsample.reduction.weight'])
    # files of the fixed code are taken as they are
    fixed = official_file(model, old_merge_order=False)
    assert torch.equal(to_hvit(fixed, 'greenmim-swin-order')[
        'backbone.layers.0.downsample.norm.weight'], model.layers[0].downsample.norm.weight)


def _load_stock(stock, sd):
    sd = {k[len('backbone.'):]: v for k, v in sd.items()}
    missing, unexpected = stock.load_state_dict(sd, strict=False)
    return sorted({k.split('.')[-1] if 'relative_position_index' in k else k.split('.')[0]
                   for k in missing}), unexpected


def test_converted_official_file_in_stock_mmdet_and_mmpretrain_swin():
    """Official file -> hvit_mm -> stock keys: the only keys the stock Swin lacks are the output
    norms of the other stages (and mmdet's rebuilt index buffers); the last stage is equal."""
    model = green(out_indices=(0, 1, 2, 3))
    hvit = to_hvit(official_file(model))
    x = torch.randn(2, 3, 160, 160)  # maps 40, 20, 10 (padded), 5 (padded): shift everywhere
    with torch.no_grad():
        ours = model(x)
    det = evaluating(DetSwin(**STOCK))
    assert _load_stock(det, greenmim.to_mmdet(hvit)) == \
        (['norm0', 'norm1', 'norm2', 'relative_position_index'], [])
    cls = ClsSwin(arch=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]),
                  img_size=160, window_size=4, drop_path_rate=0.0, out_indices=(3,))
    evaluating(cls)
    assert _load_stock(cls, greenmim.to_mmpretrain(hvit)) == ([], [])
    with torch.no_grad():
        assert max_diff(det(x)[3], ours[3]) <= 1e-5
        assert max_diff(cls(x)[0], ours[3]) <= 1e-5
    # GreenSwin's own dict: every output of the stock mmdet Swin equals GreenSwin.forward
    det = evaluating(DetSwin(**STOCK))
    det.load_state_dict({k[9:]: v for k, v in greenmim.to_mmpretrain(model.state_dict()).items()})
    with torch.no_grad():
        assert all(max_diff(a, b) <= 1e-5 for a, b in zip(det(x), ours))


def test_stock_loaders_read_the_files(tmp_path):
    """Through the stock init_weights: mmdet with a ``--to mmdet`` file, mmdet's own
    ``convert_weights=True`` on GreenSwin's official-layout dict, mmpretrain with ``prefix``."""
    model = green()
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        ours = model(x)
    torch.save({'state_dict': greenmim.to_mmdet(model.state_dict())}, tmp_path / 'det.pth')
    torch.save(model.state_dict(), tmp_path / 'bare.pth')
    torch.save({'state_dict': greenmim.to_mmpretrain(model.state_dict())}, tmp_path / 'cls.pth')
    for name, convert in (('det.pth', False), ('bare.pth', True)):
        det = DetSwin(**STOCK, convert_weights=convert, init_cfg=ConfigDict(
            type='Pretrained', checkpoint=str(tmp_path / name)))
        det.init_weights()
        with torch.no_grad():
            assert all(max_diff(a, b) <= 1e-5 for a, b in zip(evaluating(det)(x), ours)), name
    cls = ClsSwin(arch=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4]),
                  img_size=160, window_size=4, drop_path_rate=0.0, out_indices=(0, 1, 2, 3),
                  init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'cls.pth'),
                                prefix='backbone.'))
    cls.init_weights()
    evaluating(cls)
    with torch.no_grad():
        assert all(max_diff(a, b) <= 1e-5 for a, b in zip(cls(x), ours))


def test_swin_layout_relative_index_and_unfold_order():
    det = DetSwin(**STOCK)
    assert torch.equal(det.stages[0].blocks[0].attn.w_msa.relative_position_index,
                       greenmim.swin_relative_index(4))
    w = torch.randn(3, 64)
    assert torch.equal(greenmim.unfold_to_swin(greenmim.swin_to_unfold(w)), w)
    assert torch.equal(greenmim.swap_middle_blocks(greenmim.swap_middle_blocks(w)), w)
    # official Swin classifier files: the bare layout, head -> head.fc, no permutation
    sd = {k: v for k, v in green().state_dict().items() if not k.startswith('norm')}
    sd.update({'norm.weight': torch.ones(128), 'norm.bias': torch.zeros(128),
               'head.weight': torch.zeros(5, 128), 'head.bias': torch.zeros(5)})
    out = to_hvit(sd)
    assert 'backbone.norm3.weight' in out and 'head.fc.weight' in out
    assert torch.equal(out['backbone.layers.1.downsample.reduction.weight'],
                       sd['layers.1.downsample.reduction.weight'])
    with pytest.raises(ValueError, match='no counterpart'):
        greenmim.convert({**official_file(green()), 'encoder.layers.0.extra': torch.zeros(1)})


def test_init_cfg_and_cli(tmp_path):
    model = green(out_indices=(3,))
    src = tmp_path / 'greenmim.pth'
    torch.save({'model': official_file(model), 'epoch': 799}, src)
    built = GreenSwin(TINY, img_size=160, window_size=4, out_indices=(3,),
                      init_cfg=dict(type='Pretrained', checkpoint=str(src)))
    built.init_weights()
    assert all(torch.equal(v, built.state_dict()[k]) for k, v in model.state_dict().items())
    wider = GreenSwin(TINY, img_size=192, window_size=6, out_indices=(3,),
                      init_cfg=dict(type='Pretrained', checkpoint=str(src)))
    wider.init_weights()  # another window: bias tables resized 7×7 -> 11×11, the rest as is
    assert wider.layers[0].blocks[0].attn.relative_position_bias_table.shape == (121, 1)
    fc1 = 'layers.3.blocks.1.mlp.fc1.weight'
    assert torch.equal(wider.state_dict()[fc1], model.state_dict()[fc1])
    cli = load_tool('tools/model_converters/greenmim_to_hvit.py')
    cli.main([str(src), str(tmp_path / 'hvit.pth')])
    cli.main([str(src), str(tmp_path / 'det.pth'), '--to', 'mmdet'])
    hvit = load_state_dict_file(str(tmp_path / 'hvit.pth'))
    assert all(torch.equal(hvit['backbone.' + k], v) for k, v in model.state_dict().items())
    det = torch.load(tmp_path / 'det.pth', weights_only=True)['state_dict']
    assert sorted(det) == sorted(greenmim.to_mmdet(hvit))
