"""Hiera-MAE against the official ``MaskedAutoencoderHiera`` (same weights, same injected mask):
equal loss and predictions; mask counts, gradients everywhere, reconstruction shapes."""
import warnings

import pytest
import torch
from mmpretrain.registry import MODELS

from hvit_mm.checkpoints.hiera import convert
from hvit_mm.models.algorithms import MaskedAutoencoder
from hvit_mm.models.masking import random_mask
from hvit_mm.models.pixel_loss import masked_mse

with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import hiera as official

TINY = dict(embed_dims=32, num_heads=1, stages=(1, 2, 2, 1))
DEC = dict(type='MAEDecoder', decoder_embed_dims=32, decoder_depth=2, decoder_num_heads=4,
           pos_embed='learned')


def build(img=128, **kw):
    """Hiera-MAE = the shared MaskedAutoencoder + MultiScaleFusion + MAEDecoder (learned pos)."""
    return MODELS.build(dict(type='MaskedAutoencoder',
                             backbone=dict(type='Hiera', arch=TINY, img_size=img, q_pool=2),
                             encoder_neck=dict(type='MultiScaleFusion'), neck=DEC,
                             target_layout='chw', **{'mask_ratio': 0.6, **kw}))


def official_pair(hw=(128, 128)):
    ref = official.MaskedAutoencoderHiera(
        embed_dim=32, num_heads=1, stages=(1, 2, 2, 1), input_size=hw, q_pool=2,
        decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4)
    g = torch.Generator().manual_seed(0)
    for p in ref.parameters():
        p.data.add_(0.05 * torch.randn(p.shape, generator=g))
    ours = build(img=hw[0] if hw[0] == hw[1] else hw)
    ours.load_state_dict(convert(ref.state_dict()), strict=True)
    return ref.train(), ours.train()


@pytest.mark.parametrize('hw', [(128, 128), (96, 160)])
def test_loss_equals_official_with_same_mask(hw):
    ref, ours = official_pair(hw)
    x = torch.randn(2, 3, *hw)
    units = (hw[0] // 32) * (hw[1] // 32)
    mask = random_mask(2, units, 0.6, generator=torch.Generator().manual_seed(1))
    loss_ref, pred_ref, label_ref, _ = ref(x, mask=mask.visible)  # official mask: True = keep
    pred = ours.predict_patches(x, mask)
    hidden = ours.patch_targets(mask, x)
    loss = masked_mse(pred, ours.target_patches(x), ~hidden)
    assert abs(loss.item() - loss_ref.item()) <= 1e-5
    assert (pred[hidden] - pred_ref).abs().max().item() <= 1e-5
    assert hidden.sum().item() == pred_ref.shape[0] == 2 * (units - int(units * 0.4)) * 4
    loss.backward()
    loss_ref.backward()
    g_ref = ref.blocks[1].attn.qkv.weight.grad
    g = ours.backbone.blocks[1].attn.qkv.weight.grad
    assert (g - g_ref).abs().max().item() <= 1e-5 * max(1.0, g_ref.abs().max().item())


def test_targets_are_normalised_chw_patches():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float).view(2, 3, 32, 32)
    t = build(img=64).target_patches(x)
    assert t.shape == (2, 4, 768)
    assert torch.equal(t[0, 1].view(3, 16, 16), x[0, :, :16, 16:])


def test_loss_through_mmpretrain_interface_reaches_every_parameter():
    model = build(img=64, mask_ratio=0.6)
    model.init_weights()
    data = dict(inputs=torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8),  # collated
                data_samples=None)
    batch = model.data_preprocessor(data, training=True)
    losses = model(batch['inputs'], batch.get('data_samples'), mode='loss')
    losses['loss'].backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert no_grad == []  # no unused parameters (DDP without find_unused_parameters)
    mask = model.draw_mask(torch.zeros(2, 3, 64, 64))
    assert mask.visible.shape == (2, 4) and mask.num_keep == 1  # int(4 · 0.4)
    feats = model.extract_feat(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 4]


def test_reconstruct_and_official_init():
    model = build(img=64)
    model.init_weights()
    assert torch.all(model.neck.decoder_embed.bias == 0) and torch.all(model.backbone.blocks[0].norm1.bias == 0)
    rec = model.reconstruct(torch.randn(2, 3, 64, 96), generator=torch.Generator().manual_seed(0))
    assert rec.image.shape == (2, 3, 64, 96) and rec.visible.shape == (2, 1, 64, 96)
    assert rec.visible.sum().item() == 2 * 2 * 32 * 32  # int(6 · 0.4) = 2 visible units each


def test_rejects_pooled_classifier_backbone():
    with pytest.raises(TypeError, match='masked image modeling'):
        MaskedAutoencoder(backbone=dict(type='Hiera', arch=TINY, out_indices=(3,),
                                        out_type='avg_featmap'), neck=DEC)
