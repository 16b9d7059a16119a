"""Official MAE, MAE-Lite (+ D-MAE) and timm ViT state dicts -> hvit_mm: convert, strict load, same
features as timm (<= 1e-5, float32)."""
import copy

import pytest
import timm
import torch

from hvit_mm.checkpoints import mae, mae_lite, timm_vit, to_hvit
from hvit_mm.models.backbones.vit import ViT
from hvit_mm.models.masking import mask_from_visible

TINY_T = dict(embed_dim=192, depth=2, num_heads=12)  # MAE-Lite's Tiny width/heads, 2 blocks
DEC = dict(decoder_embed_dims=32, decoder_depth=1, decoder_num_heads=2)


def timm_vit_model(**kw):
    torch.manual_seed(0)
    model = timm.models.vision_transformer.VisionTransformer(**kw).eval()
    for p in model.parameters():  # move off the init so every tensor matters
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def fake_decoder(embed_dim, dec=32, depth=1, pred=768):
    """Random tensors with the official ``_full`` decoder key names and shapes."""
    g = torch.Generator().manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    sd = {'mask_token': r(1, 1, dec), 'decoder_pos_embed': r(1, 197, dec),
          'decoder_embed.weight': r(dec, embed_dim), 'decoder_embed.bias': r(dec),
          'decoder_norm.weight': r(dec), 'decoder_norm.bias': r(dec),
          'decoder_pred.weight': r(pred, dec), 'decoder_pred.bias': r(pred)}
    for i in range(depth):
        for name, shape in [('norm1', (dec,)), ('norm2', (dec,)), ('attn.qkv', (3 * dec, dec)),
                            ('attn.proj', (dec, dec)), ('mlp.fc1', (4 * dec, dec)),
                            ('mlp.fc2', (dec, 4 * dec))]:
            sd[f'decoder_blocks.{i}.{name}.weight'] = r(*shape)
            sd[f'decoder_blocks.{i}.{name}.bias'] = r(shape[0])
    return sd


def save(tmp_path, name, obj):
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def load_vit(path, arch, **kw):
    model = ViT(arch, init_cfg=dict(type='Pretrained', checkpoint=path), **kw)
    model.init_weights()
    return model.eval()


def test_official_mae_base_equals_timm_vit_base(tmp_path):
    ref = timm.create_model('vit_base_patch16_224', pretrained=False).eval()
    encoder = {k: v for k, v in ref.state_dict().items() if not k.startswith('head.')}
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_features(x)
    for name, sd in [('mae_pretrain_vit_base.pth', encoder),
                     ('mae_pretrain_vit_base_full.pth', {**encoder, **fake_decoder(768)})]:
        path = save(tmp_path, name, {'model': sd})
        model = load_vit(path, 'base')
        with torch.no_grad():
            patches, = model(x)
            f = model.forward_masked(x, mask_from_visible(torch.ones(1, 196).bool()))
            tokens = torch.cat([f.prefix, f.tokens], dim=1)
        assert (patches.flatten(2).transpose(1, 2) - want[:, 1:]).abs().max() <= 1e-5
        assert (tokens - want).abs().max() <= 1e-5  # cls token included


def test_full_checkpoint_decoder_goes_to_neck():
    sd = {**timm_vit_model(**TINY_T, num_classes=0).state_dict(), **fake_decoder(192)}
    before = copy.copy(sd)
    out = to_hvit(sd)
    assert sd == before and all(sd[k] is before[k] for k in sd)  # input not mutated
    assert mae.detect(sd) and not timm_vit.detect(sd) and not mae_lite.detect(sd)
    assert {k.split('.')[0] for k in out} == {'backbone', 'neck'}
    assert torch.equal(out['neck.decoder_blocks.0.attn.qkv.weight'],
                       sd['decoder_blocks.0.attn.qkv.weight'])
    assert 'neck.mask_token' in out and 'backbone.blocks.1.mlp.fc2.bias' in out


@pytest.mark.parametrize('distilled', [False, True])
def test_mae_lite_tiny_equals_timm(tmp_path, distilled):
    ref = timm_vit_model(**TINY_T, num_classes=0)
    student = {**ref.state_dict(), **fake_decoder(192)}
    sd = {f'module.model.{k}': v for k, v in student.items()}
    if distilled:
        teacher = timm_vit_model(embed_dim=64, depth=2, num_heads=4, num_classes=0).state_dict()
        sd.update({f'module.tch_model.{k}': v for k, v in {**teacher, **fake_decoder(64)}.items()})
        sd['module.attn_adapter.adapter1.weight'] = torch.randn(4, 12, 1, 1)
    ckpt = {'model': sd, 'optimizer': {}, 'start_epoch': 400}
    path = save(tmp_path, 'mae_tiny_400e.pth.tar', ckpt)
    arch = dict(embed_dims=192, depth=2, num_heads=12)
    model = load_vit(path, arch, img_size=224)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_features(x)[:, 1:]
        got = model(x)[0].flatten(2).transpose(1, 2)
    assert (got - want).abs().max() <= 1e-5
    out = to_hvit(mae_lite.convert(sd) if distilled else sd)
    if distilled:
        assert 'attn_adapters.1.weight' in out
        assert 'teacher.blocks.0.attn.qkv.weight' in out
        assert not any(k.startswith('teacher.decoder') or k == 'teacher.mask_token' for k in out)


def test_timm_classifier_with_head():
    ref = timm_vit_model(img_size=64, embed_dim=32, depth=2, num_heads=2, num_classes=5)
    sd = ref.state_dict()
    assert timm_vit.detect(sd) and not mae.detect(sd)
    out = to_hvit(sd)
    assert torch.equal(out['head.fc.weight'], sd['head.weight'])
    model = ViT(dict(embed_dims=32, depth=2, num_heads=2), img_size=64, out_type='cls_token').eval()
    model.load_state_dict(model.adapt_checkpoint(out), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(x)[0] - ref.forward_features(x)[:, 0]).abs().max() <= 1e-5


def test_mae_finetuned_global_pool_and_resampling(tmp_path):
    """MAE fine-tuned files (fc_norm, no norm, head) load into the global-pool classifier backbone,
    with the 14×14 table resampled to another img_size."""
    ref = timm_vit_model(**TINY_T, num_classes=3, global_pool='avg', fc_norm=True)
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith('norm.')}
    assert 'fc_norm.weight' in sd
    path = save(tmp_path, 'mae_finetuned.pth', {'model': sd})
    arch = dict(embed_dims=192, depth=2, num_heads=12)
    model = load_vit(path, arch, out_type='avg_featmap', final_norm=False)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = ref.forward_head(ref.forward_features(x), pre_logits=True)
        assert (model(x)[0] - want).abs().max() <= 1e-5
    small = load_vit(path, arch, img_size=112, out_type='avg_featmap', final_norm=False)
    assert small.pos_embed.shape == (1, 50, 192)
    assert small(torch.randn(1, 3, 112, 112))[0].shape == (1, 192)


def test_mismatches_raise_listing_keys(tmp_path):
    sd = timm_vit_model(**TINY_T, num_classes=0).state_dict()
    with pytest.raises(ValueError, match='blocks.0.ls1.gamma'):
        to_hvit({**sd, 'blocks.0.ls1.gamma': torch.ones(192)})
    with pytest.raises(ValueError, match='module.ema.x'):
        mae_lite.convert({'module.model.cls_token': sd['cls_token'], 'module.ema.x': torch.ones(1)})
    path = save(tmp_path, 'base.pth', {'model': sd})
    with pytest.raises(KeyError, match=r"missing 12 keys: \['blocks\.2"):
        load_vit(path, dict(embed_dims=192, depth=3, num_heads=12))
    with pytest.raises(KeyError, match='shape mismatch'):
        load_vit(path, dict(embed_dims=192, depth=2, num_heads=12), patch_size=8)


def test_hvit_passthrough_and_runner_checkpoint(tmp_path):
    """hvit_mm's own mmengine checkpoints (backbone.*, neck.*) pass through; a fine-tune loads the
    backbone of a pretraining run with prefix='backbone.' or with the prefix left to auto."""
    vit = ViT(dict(embed_dims=32, depth=2, num_heads=2), img_size=64)
    sd = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    sd['neck.decoder_embed.weight'] = torch.randn(16, 32)
    assert to_hvit(sd) == sd
    path = save(tmp_path, 'iter_100.pth', {'meta': {}, 'state_dict': sd})
    for prefix in ('backbone.', None):
        other = ViT(dict(embed_dims=32, depth=2, num_heads=2), img_size=64,
                    init_cfg=dict(type='Pretrained', checkpoint=path, prefix=prefix))
        other.init_weights()
        assert torch.equal(other.blocks[1].attn.qkv.weight, vit.blocks[1].attn.qkv.weight)
