"""Official Hiera (classifier and MAE ``model_state`` files) and timm Hiera -> hvit_mm and back:
strict loads, equal outputs, pure functions, the CLI, ``init_cfg=Pretrained``."""
import warnings

import pytest
import timm
import torch
from mmpretrain.registry import MODELS

from hvit_mm.checkpoints import hiera as conv
from hvit_mm.checkpoints import load_state_dict_file, to_hvit
from hvit_mm.models.backbones.hiera import Hiera
from tests.conftest import load_tool

with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import hiera as official

TINY = dict(embed_dims=32, num_heads=1, stages=(1, 2, 2, 1))
OFF = dict(embed_dim=32, num_heads=1, stages=(1, 2, 2, 1), input_size=(64, 64))


def perturbed(model):
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def classifier(num_classes=5, **backbone):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='Hiera', arch=TINY, img_size=64, out_indices=(3,),
                      out_type='avg_featmap', **backbone),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=256))).eval()


def official_classifier():
    return perturbed(official.Hiera(num_classes=5, **OFF)).train()  # train mode returns logits


def official_mae():
    return perturbed(official.MaskedAutoencoderHiera(
        q_pool=2, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2, **OFF))


def test_official_classifier_full_model_logits():
    ref = official_classifier()
    sd = ref.state_dict()
    before = {k: v.clone() for k, v in sd.items()}
    model = classifier()
    model.load_state_dict(conv.convert(sd), strict=True)
    assert all(torch.equal(before[k], sd[k]) for k in sd) and sorted(before) == sorted(sd)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ref(x) - model(x, mode='tensor')).abs().max().item() <= 1e-5


def test_timm_full_model_logits_and_auto_detect():
    tm = perturbed(timm.create_model('hiera_tiny_224', pretrained=False, img_size=(64, 64),
                                     embed_dim=32, num_heads=1, stages=(1, 2, 2, 1),
                                     num_classes=5)).eval()
    sd = tm.state_dict()
    assert conv.detect(sd) and 'head.fc.weight' in sd and 'norm.weight' not in sd
    model = classifier()
    model.load_state_dict(conv.convert(sd), strict=True)
    auto, direct = to_hvit(sd), conv.convert(sd)  # auto picks hiera's, not a ViT converter
    assert sorted(auto) == sorted(direct) and all(auto[k] is direct[k] for k in auto)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (tm(x) - model(x, mode='tensor')).abs().max().item() <= 1e-5


def test_official_mae_file_loads_strictly_into_hiera_mae_and_backbone():
    ref = official_mae()
    sd = ref.state_dict()
    assert conv.detect(sd)
    mae = MODELS.build(dict(type='MaskedAutoencoder',
                            backbone=dict(type='Hiera', arch=TINY, img_size=64, q_pool=2),
                            encoder_neck=dict(type='MultiScaleFusion'), target_layout='chw',
                            neck=dict(type='MAEDecoder', decoder_embed_dims=32, decoder_depth=1,
                                      decoder_num_heads=2, pos_embed='learned')))
    mae.load_state_dict(conv.convert(sd), strict=True)
    clf = Hiera(TINY, img_size=64, q_pool=2, out_indices=(3,), out_type='avg_featmap')
    backbone = clf.adapt_checkpoint(conv.convert(sd))  # encoder only; encoder_norm stays in MAE
    assert not any(k.startswith(('norm', 'decoder', 'mask_token', 'multi_scale')) for k in backbone)
    clf.load_state_dict(backbone, strict=False)
    assert sorted(backbone) == sorted(k for k in clf.state_dict() if not k.startswith('norm.'))


@pytest.mark.parametrize('make', [official_classifier, official_mae])
def test_round_trip_to_official(make):
    sd = make().state_dict()
    back = conv.to_official(conv.convert(sd))
    assert sorted(back) == sorted(sd) and all(back[k] is sd[k] for k in sd)


def test_detect_rejects_others_and_unknown_keys_raise():
    vit = timm.create_model('vit_tiny_patch16_224', pretrained=False, depth=1).state_dict()
    assert not conv.detect(vit)
    sd = official_classifier().state_dict()
    with pytest.raises(KeyError, match='unknown key'):
        conv.convert(dict(sd, extra=torch.zeros(1)))
    with pytest.raises(ValueError, match='video'):
        conv.convert(dict(sd, pos_embed_temporal=torch.zeros(1, 8, 32)))
    with pytest.raises(KeyError, match='not a Hiera key'):
        conv.to_official({'neck.x': torch.zeros(1)})


def test_init_cfg_pretrained_official_file_with_pos_embed_resampling(tmp_path):
    ref = official_classifier()
    path = tmp_path / 'hiera_tiny.pth'
    torch.save({'model_state': ref.state_dict(), 'epoch': 3}, path)
    same = Hiera(TINY, img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    same.init_weights()  # featmap backbone: the checkpoint's final norm is not needed
    assert torch.equal(same.blocks[3].proj.weight, ref.blocks[3].proj.weight)
    assert torch.equal(same.pos_embed, ref.pos_embed)
    big = Hiera(TINY, img_size=128, out_indices=(3,), out_type='avg_featmap',
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    big.init_weights()
    assert big.pos_embed.shape == (1, 32 * 32, 32)
    assert torch.equal(big.norm.weight, ref.norm.weight)
    bad = Hiera(dict(TINY, embed_dims=48), img_size=64,
                init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(KeyError, match='shape mismatch'):
        bad.init_weights()


def test_init_cfg_pretrained_official_mae_file(tmp_path):
    ref = official_mae()
    path = tmp_path / 'mae_hiera_tiny.pth'
    torch.save({'model_state': ref.state_dict()}, path)
    for kw in (dict(), dict(out_indices=(3,), out_type='avg_featmap')):  # dense / classifier
        model = Hiera(TINY, img_size=64, init_cfg=dict(type='Pretrained', checkpoint=str(path)),
                      **kw)
        model.init_weights()  # the classifier's final norm starts fresh, as official fine-tuning
        assert torch.equal(model.pos_embed, ref.pos_embed)
        assert torch.equal(model.blocks[5].mlp.fc2.weight, ref.blocks[5].mlp.fc2.weight)


def test_cli_converts_both_ways(tmp_path):
    cli = load_tool('tools/model_converters/hiera_to_hvit.py')
    ref = official_mae()
    src, dst, back = tmp_path / 'mae.pth', tmp_path / 'hvit.pth', tmp_path / 'official.pth'
    torch.save({'model_state': ref.state_dict()}, src)
    cli.main([str(src), str(dst)])
    out = torch.load(dst, weights_only=True)
    assert sorted(out['state_dict']) == sorted(conv.convert(ref.state_dict()))
    assert all(torch.equal(out['state_dict'][k], v) for k, v in conv.convert(ref.state_dict()).items())
    cli.main([str(dst), str(back), '--to-official'])
    sd = torch.load(back, weights_only=True)['model_state']
    assert all(torch.equal(sd[k], v) for k, v in ref.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ['hvit.pth', 'mae.pth', 'official.pth']
    assert sorted(load_state_dict_file(str(dst))) == sorted(out['state_dict'])
