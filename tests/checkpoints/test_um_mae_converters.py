"""Official UM-MAE checkpoints (Swin and PVT: pretrained with decoder, ImageNet fine-tuned, the
repo's SimMIM baselines) -> hvit_mm: official-format dicts synthesised from tiny models by the
inverse mapping, converted, loaded strictly (a whole classifier or through ``init_cfg``), equal
outputs."""
import runpy
import sys

import pytest
import torch
from mmpretrain.registry import MODELS

from hvit_mm.checkpoints import to_hvit
from hvit_mm.checkpoints import um_mae as conv
from hvit_mm.models.backbones.um_pvt import UMPVT
from hvit_mm.models.backbones.um_swin import UMSwin
from tests.conftest import REPO

KINDS = {'UMSwin': UMSwin, 'UMPVT': UMPVT}
C_LAST = {'UMSwin': 128, 'UMPVT': 64}
DEC = 32  # decoder width of the synthetic official decoders


def perturbed(model):
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():  # move off the init so every tensor matters
        p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


def backbone(kind, **kw):
    torch.manual_seed(0)
    return KINDS[kind](**dict(KINDS[kind].tiny_cfg, **kw))


def classifier(kind):
    torch.manual_seed(0)
    cfg = dict(KINDS[kind].tiny_cfg, out_type='avg_featmap', out_indices=(3,))
    return MODELS.build(dict(type='ImageClassifier', backbone=dict(type=kind, **cfg),
                             head=dict(type='LinearClsHead', num_classes=5,
                                       in_channels=C_LAST[kind]))).eval()


def official_decoder(c_last, depth=2, units=16):
    """Random tensors with the official UM-MAE pretraining decoder's names and shapes."""
    g = torch.Generator().manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = {'mask_token': r(1, 1, DEC), 'decoder_pos_embed': r(1, units, DEC),
          'decoder_embed.weight': r(4 * DEC, c_last), 'decoder_embed.bias': r(4 * DEC),
          'decoder_norm.weight': r(DEC), 'decoder_norm.bias': r(DEC),
          'decoder_pred.weight': r(16 * 16 * 3, DEC), 'decoder_pred.bias': r(16 * 16 * 3)}
    for i in range(depth):
        for name, shape in [('norm1', (DEC,)), ('norm2', (DEC,)), ('attn.qkv', (3 * DEC, DEC)),
                            ('attn.proj', (DEC, DEC)), ('mlp.fc1', (4 * DEC, DEC)),
                            ('mlp.fc2', (DEC, 4 * DEC))]:
            sd[f'decoder_blocks.{i}.{name}.weight'] = r(*shape)
            sd[f'decoder_blocks.{i}.{name}.bias'] = r(shape[0])
    return sd


def official_pretrained(kind):
    """(source backbone, official pretraining dict: encoder + norm + vis_mask_token + decoder)."""
    src = perturbed(backbone(kind))
    sd = conv.to_official({'backbone.' + k: v for k, v in src.state_dict().items()})
    sd.update(official_decoder(C_LAST[kind]), vis_mask_token=torch.randn(1, 1, 16))
    return src, sd


def load(kind, path, **kw):
    model = backbone(kind, init_cfg=dict(type='Pretrained', checkpoint=str(path)), **kw)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('kind', list(KINDS))
def test_finetuned_classifier_round_trip_gives_equal_logits(kind):
    ref = perturbed(classifier(kind))
    official = conv.to_official(ref.state_dict())
    assert 'fc_norm.weight' in official and 'head.weight' in official
    assert 'norm.weight' not in official  # fine-tuned files pool, then fc_norm
    assert ('blocks.0.attn.posmlp.0.weight' if kind == 'UMSwin' else 'blocks.0.attn.sr.weight') \
        in official and any(k.endswith('.downsample.proj.weight') for k in official)
    before = {k: v.clone() for k, v in official.items()}
    out = to_hvit(official)  # auto-detected, before the plain-ViT MAE converter
    assert all(torch.equal(before[k], official[k]) for k in official)  # input not mutated
    assert len(before) == len(official)
    model = classifier(kind)
    model.load_state_dict(out, strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode='tensor'), ref(x, mode='tensor'))


@pytest.mark.parametrize('kind', list(KINDS))
def test_pretrained_file_namespaces_and_backbone_init_cfg(kind, tmp_path):
    src, official = official_pretrained(kind)
    out = to_hvit(official)
    assert {k.split('.')[0] for k in out} == {'backbone', 'neck', 'mask_token'}
    assert out['neck.decoder_embed.weight'].shape == (4 * DEC, C_LAST[kind])  # before PixelShuffle
    assert out['neck.mask_token'].shape[-1] == DEC and out['mask_token'].shape[-1] == 16
    path = tmp_path / 'pretrain.pth'
    torch.save({'model': official, 'epoch': 199}, path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(load(kind, path)(x), src(x))
        # the same file starts a classifier: fc_norm new, the pretraining norm left out
        cls = load(kind, path, out_type='avg_featmap')
        raw = cls.encode(*cls.stem(x), keep=(3,))[0]
        torch.testing.assert_close(raw, src.encode(*src.stem(x), keep=(3,))[0])


@pytest.mark.parametrize('kind', list(KINDS))
def test_finetuned_file_serves_dense_tasks(kind, tmp_path):
    ref = perturbed(classifier(kind))
    path = tmp_path / 'finetuned.pth'
    torch.save({'model': conv.to_official(ref.state_dict())}, path)
    dense = load(kind, path, out_indices=(0, 1, 2, 3))  # strict: only out_norms are new
    torch.testing.assert_close(dense.norm.weight, ref.backbone.fc_norm.weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        raw = ref.backbone.encode(*ref.backbone.stem(x), keep=(0, 1, 2, 3))
        assert torch.allclose(dense.encode(*dense.stem(x), keep=(0, 1, 2, 3))[2], raw[2])


def test_simmim_baseline_file_gives_the_backbone_and_encoder_token():
    src = perturbed(backbone('UMSwin'))
    official = conv.to_official({'backbone.' + k: v for k, v in src.state_dict().items()})
    official.update({'mask_token': torch.randn(1, 1, 16),
                     'decoder_pred.weight': torch.randn(4 * 16 * 16 * 3, 128),
                     'decoder_pred.bias': torch.randn(4 * 16 * 16 * 3)})
    out = conv.convert(official)
    assert out['mask_token'].shape == (1, 1, 16) and 'neck.decoder_pred.weight' in out
    assert conv.to_official(out).keys() == official.keys()


def test_detection_and_refusals():
    _, official = official_pretrained('UMSwin')
    assert conv.detect(official) and conv.detect(official_pretrained('UMPVT')[1])
    assert not conv.detect({'backbone.' + k: v for k, v in official.items()})
    vit = {'patch_embed.proj.weight': 0, 'blocks.0.attn.qkv.weight': 0, 'cls_token': 0}
    assert not conv.detect(vit)
    with pytest.raises(ValueError, match='blocks.0.attn.relative_position_bias_table'):
        conv.convert(dict(official, **{'blocks.0.attn.relative_position_bias_table': 0}))
    with pytest.raises(KeyError, match='teacher'):
        conv.to_official({'teacher.x': 0})


def test_cli(tmp_path, monkeypatch):
    src, official = official_pretrained('UMPVT')
    torch.save({'model': official}, tmp_path / 'src.pth')
    script = REPO / 'tools' / 'model_converters' / 'um_mae_to_hvit.py'
    monkeypatch.syspath_prepend(str(script.parent))
    argv = [str(script), str(tmp_path / 'src.pth'), str(tmp_path / 'o.pth')]
    monkeypatch.setattr(sys, 'argv', argv)
    runpy.run_path(str(script), run_name='__main__')
    ckpt = torch.load(tmp_path / 'o.pth', weights_only=True)
    assert ckpt['meta']['format'] == 'um_mae'
    assert ckpt['state_dict'].keys() == to_hvit(official).keys()
