"""MAE / D-MAE / dense baseline: loss over masked patches only, exact keep counts, a frozen teacher
that sees the student's visible patches, and equality with mmpretrain's MAE given the same weights."""
import pytest
import torch
from mmpretrain.registry import MODELS

import hvit_mm  # noqa: F401
from hvit_mm.checkpoints import strict_load, to_hvit
from hvit_mm.models.masking import Mask, mask_from_visible, num_keep, random_mask

ARCH = dict(embed_dims=32, depth=2, num_heads=4)
DEC = dict(type='MAEDecoder', decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2)


def build(kind='MaskedAutoencoder', **kw):
    torch.manual_seed(0)
    cfg = dict(type=kind, backbone=dict(type='ViT', arch=ARCH, img_size=64), neck=DEC, **kw)
    return MODELS.build(cfg)


def teacher_cfg(**kw):
    return dict(type='ViT', arch=dict(embed_dims=48, depth=3, num_heads=3), img_size=64, **kw)


def test_loss_counts_masked_patches_only():
    model = build()
    x = torch.randn(2, 3, 64, 64)
    mask = random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    pred = model.predict_patches(x, mask)
    base = model.reconstruction_loss(x, pred, mask)
    # change the target pixels of every visible patch only: the loss does not move
    grid_visible = mask.visible.view(2, 1, 4, 1, 4, 1).expand(2, 3, 4, 16, 4, 16).reshape(2, 3, 64, 64)
    y = torch.where(grid_visible, torch.randn_like(x) * 7, x)
    assert torch.equal(model.reconstruction_loss(y, pred, mask), base)
    # change one masked patch: it does
    z = torch.where(~grid_visible & (torch.rand_like(x[:, :1]) > 0.5), x + 3, x)
    assert not torch.allclose(model.reconstruction_loss(z, pred, mask), base)
    # and the value is the mean over masked patches of the per-patch MSE of normalised pixels
    from hvit_mm.models.pixel_loss import normalize_patches, patchify
    err = (pred - normalize_patches(patchify(x, 16))).pow(2).mean(-1)
    assert torch.allclose(base, err[~mask.visible].mean(), atol=1e-6)


@pytest.mark.parametrize('n,ratio', [(16, 0.75), (196, 0.75), (49, 0.6), (10, 0.0), (7, 0.9)])
def test_keep_count_is_exact(n, ratio):
    mask = random_mask(5, n, ratio, generator=torch.Generator().manual_seed(n))
    k = num_keep(n, ratio)
    assert k == max(1, int(n * (1 - ratio)))
    assert mask.visible.sum(1).eq(k).all() and mask.ids_keep.shape == (5, k)
    assert torch.equal(mask.visible.gather(1, mask.ids_keep), torch.ones(5, k, dtype=torch.bool))
    assert (mask.ids_keep.diff(dim=1) > 0).all()  # ascending raster order


def test_mae_trains_and_decoder_shapes():
    model = build()
    x = torch.randn(2, 3, 64, 64)
    losses = model.loss(x, None)
    assert set(losses) == {'loss'} and losses['loss'].ndim == 0
    losses['loss'].backward()
    assert model.neck.mask_token.grad is not None and model.neck.decoder_pos_embed.grad is None
    assert model.neck.decoder_pred.out_features == 16 * 16 * 3  # filled in from the backbone
    assert model.neck.decoder_embed.in_features == 32
    rec = model.reconstruct(x, generator=torch.Generator().manual_seed(0))
    assert rec.image.shape == x.shape and rec.visible.shape == (2, 1, 64, 64)
    assert rec.visible.mean().item() == pytest.approx(0.25)
    feats = model.extract_feat(x)
    assert isinstance(feats, tuple) and feats[0].shape == (2, 32, 4, 4)


def _to_mmpretrain(sd):
    """hvit_mm MaskedAutoencoder state dict -> mmpretrain MAE names (test-only mapping)."""
    table = [('.patch_embed.proj.', '.patch_embed.projection.'), ('backbone.blocks.', 'backbone.layers.'),
             ('neck.decoder_blocks.', 'neck.decoder_blocks.'), ('.norm1.', '.ln1.'), ('.norm2.', '.ln2.'),
             ('.mlp.fc1.', '.ffn.layers.0.0.'), ('.mlp.fc2.', '.ffn.layers.1.'),
             ('backbone.norm.', 'backbone.ln1.'), ('neck.decoder_norm.', 'neck.ln1.')]
    out = {}
    for k, v in sd.items():
        for a, b in table:
            k = k.replace(a, b)
        out[k] = v
    return out


def test_equals_mmpretrain_mae_with_same_weights_and_seed():
    ours = build().eval()
    ref = MODELS.build(dict(
        type='MAE', backbone=dict(type='MAEViT', arch=dict(embed_dims=32, num_layers=2, num_heads=4,
                                                        feedforward_channels=128),
                                  img_size=64, patch_size=16, mask_ratio=0.75),
        neck=dict(type='MAEPretrainDecoder', num_patches=16, patch_size=16, in_chans=3, embed_dim=32,
                  decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2, mlp_ratio=4.),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2')))).eval()
    for p in ours.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    ref.load_state_dict(_to_mmpretrain(ours.state_dict()), strict=True)
    x = torch.randn(3, 3, 64, 64)
    # both draw the per-sample noise with one torch.rand(B, N): same seed -> same visible set
    torch.manual_seed(7)
    a = ours.loss(x, None)['loss']
    torch.manual_seed(7)
    b = ref.loss(x, [])['loss']
    assert (a - b).abs().item() <= 1e-5, (a, b)


def test_distilled_teacher_is_frozen_and_sees_student_patches():
    model = build('DistilledMAE', teacher=teacher_cfg())
    seen = {}
    t_fwd = model.teacher.forward_masked
    s_fwd = model.backbone.forward_masked

    def spy(store):
        def fwd(x, mask, token=None, logit_blocks=()):
            out = (t_fwd if store == 'teacher' else s_fwd)(x, mask, token, logit_blocks)
            seen[store] = (mask.ids_keep.clone(), torch.is_grad_enabled(), logit_blocks)
            return out
        return fwd
    model.teacher.forward_masked = spy('teacher')
    model.backbone.forward_masked = spy('student')
    model.train()
    assert not model.teacher.training and model.backbone.training
    losses = model.loss(torch.randn(2, 3, 64, 64), None)
    assert set(losses) == {'loss_rec', 'loss_attn'}  # hidden term off by default
    sum(losses.values()).backward()
    assert torch.equal(seen['teacher'][0], seen['student'][0])
    assert seen['teacher'][1] is False and seen['student'][1] is True
    assert seen['teacher'][2] == (2,) and seen['student'][2] == (1,)  # last blocks of each
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    adapter = model.attn_adapters['1']
    assert adapter.weight.shape == (3, 4, 1, 1) and adapter.weight.grad is not None


def test_distilled_attention_loss_value_and_hidden_term():
    model = build('DistilledMAE', teacher=teacher_cfg(), attn_loss_weight=2.0,
                  hidden_loss_weight=0.5).eval()
    x = torch.randn(2, 3, 64, 64)
    mask = random_mask(2, 16, 0.75, generator=torch.Generator().manual_seed(0))
    model.draw_mask = lambda _x, generator=None: mask
    losses = model.loss(x, None)
    s, = model.backbone.forward_masked(x, mask, logit_blocks=(1,)).logits
    t, = model.teacher.forward_masked(x, mask, logit_blocks=(2,)).logits
    want = 2.0 * (model.attn_adapters['1'](s) - t).pow(2).mean()
    assert torch.allclose(losses['loss_attn'], want, atol=1e-6)
    assert 'loss_hidden' in losses and model.hidden_adapter.weight.shape == (48, 32)


def test_distilled_loads_converted_mae_lite_checkpoint():
    model = build('DistilledMAE', teacher=teacher_cfg())
    sd = {f'module.model.{k[9:]}' if k.startswith('backbone.') else
          f'module.model.{k[5:]}' if k.startswith('neck.') else
          f'module.tch_model.{k[8:]}' if k.startswith('teacher.') else
          'module.attn_adapter.adapter1.weight': v for k, v in model.state_dict().items()}
    converted = to_hvit(sd)
    strict_load(model, converted)  # every key of the model, nothing else


def test_teacher_loads_pretrained_in_init_weights(tmp_path):
    teacher = MODELS.build(teacher_cfg())
    path = tmp_path / 'mae_base.pth'
    torch.save({'model': {k: v + 1 for k, v in teacher.state_dict().items()}}, path)
    model = build('DistilledMAE', teacher=teacher_cfg(
        init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    model.init_weights()
    assert torch.equal(model.teacher.cls_token, teacher.cls_token + 1)
    assert not model.teacher.cls_token.requires_grad


def test_simmim_encodes_everything():
    model = build('SimMIM').eval()
    x = torch.randn(2, 3, 64, 64)
    every = torch.arange(16).expand(2, 16)
    nothing = torch.zeros(2, 16, dtype=torch.bool)
    dense = model.backbone.forward_masked(x, Mask(~nothing, every, nothing), model.mask_token)
    full = model.backbone.forward_masked(x, mask_from_visible(~nothing))
    assert (dense.tokens - full.tokens).abs().max() < 1e-5
    replaced = torch.ones(2, 16, dtype=torch.bool)
    replaced[:, [3, 6, 9, 12]] = False
    mask = Mask(~nothing, every, replaced)
    y = x.clone()
    y[:, :, :16, :16] += 4  # patch 0 is masked: the encoder sees the mask token either way
    assert torch.equal(model.predict_patches(x, mask), model.predict_patches(y, mask))
    y[:, :, :16, 48:] += 4  # patch 3 is visible
    assert not torch.allclose(model.predict_patches(x, mask), model.predict_patches(y, mask))
    # the loss is over the replaced patches: changing a visible patch's pixels does not move it
    pred = model.predict_patches(x, mask)
    z = x.clone()
    z[:, :, :16, 48:] += 4
    assert torch.equal(model.reconstruction_loss(x, pred, mask),
                       model.reconstruction_loss(z, pred, mask))
    drawn = model.draw_mask(x)
    assert drawn.visible.all() and drawn.replaced.sum(1).eq(12).all()
    assert model.loss(x, None)['loss'].requires_grad
