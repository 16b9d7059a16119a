"""UM-MAE through the shared MaskedAutoencoder + MAEDecoder: each visible token is decoded at its own
unit (the official code's position-order bug cannot happen), and only primary-masked units are
reconstruction targets."""
import torch
from mmpretrain.registry import MODELS

import hvit_mm  # noqa: F401
from hvit_mm.models.backbones.base import MaskedFeatures
from hvit_mm.models.masking import uniform_mask, upsample_units
from hvit_mm.models.necks import MAEDecoder


def test_each_compact_token_is_decoded_at_its_own_unit():
    """Tokens of a compact (UM-MAE) layout carry the raster index of the unit they came from; after
    the decoder's PixelShuffle and scatter, position u of the sequence holds exactly u (and the
    mask token elsewhere). Official UM-MAE adds raster-order positions to tokens in 2x2-grid order:
    on these masks most units would then read another unit's index."""
    B, hw = 3, (8, 12)
    mask = uniform_mask(B, hw, 0.0, generator=torch.Generator().manual_seed(0))
    gh, gw = hw[0] // 2, hw[1] // 2  # the compact unit grid; one token per 2x2 compact cells
    ids = mask.ids_keep.view(B, gh, gw).float()
    # token (i, j), channel a*2+b = the unit of compact cell (2i+a, 2j+b): PixelShuffle's layout
    tokens = ids.view(B, gh // 2, 2, gw // 2, 2).permute(0, 1, 3, 2, 4).reshape(B, -1, 4)
    dec = MAEDecoder(embed_dims=4, num_patches=hw, patch_size=16, decoder_embed_dims=4,
                     decoder_depth=0, decoder_num_heads=1, num_prefix=0, expand=2)
    with torch.no_grad():  # decoder channel 0 of sub-position k <- token channel k
        dec.decoder_embed.weight.zero_()
        dec.decoder_embed.weight[:4].copy_(torch.eye(4))
        dec.decoder_embed.bias.zero_()
        dec.decoder_pos_embed.zero_()
        dec.mask_token.fill_(-1.0)
    dec.decoder_norm = torch.nn.Identity()
    dec.decoder_pred = torch.nn.Identity()
    feats = MaskedFeatures(tokens, tokens.new_zeros(B, 0, 4), compact_hw=(gh, gw))
    with torch.no_grad():
        out = dec(feats, mask, hw)[..., 0]  # (B, N) raster
    units = torch.arange(hw[0] * hw[1]).float().expand(B, -1)
    assert torch.equal(out[mask.visible], units[mask.visible])
    assert (out[~mask.visible] == -1).all()
    # the official raster-order pairing would give a visible token another unit's position
    raster = mask.ids_keep.sort(dim=1).values
    assert (raster != mask.ids_keep).float().mean() > 0.3


def build_um(**kw):
    torch.manual_seed(0)
    backbone = dict(type='UMSwin', **MODELS.get('UMSwin').tiny_cfg)
    return MODELS.build(dict(type='MaskedAutoencoder', backbone=backbone, mask_type='uniform',
                             secondary_ratio=0.25, neck=dict(type='MAEDecoder',
                             decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2), **kw))


def test_loss_ignores_targets_of_sampled_and_secondary_units():
    model = build_um().eval()
    x = torch.randn(2, 3, 64, 64)
    mask = model.draw_mask(x, torch.Generator().manual_seed(1))
    assert mask.replaced.sum(1).eq(1).all() and mask.visible.sum(1).eq(4).all()  # 4 of 16 kept
    with torch.no_grad():
        pred = model.predict_patches(x, mask)
    base = model.reconstruction_loss(x, pred, mask)
    visible_px = upsample_units(mask.visible, (4, 4), 16)  # sampled, secondary ones included
    y = torch.where(visible_px, torch.randn_like(x) * 5, x)  # only non-target pixels change
    assert torch.equal(model.reconstruction_loss(y, pred, mask), base)
    z = torch.where(~visible_px, x + 3 * torch.rand_like(x), x)  # a primary-masked pixel changes
    assert not torch.allclose(model.reconstruction_loss(z, pred, mask), base)
    # the secondary units entered the encoder as the token: their pixels do not reach the output
    secondary_px = upsample_units(mask.replaced, (4, 4), 16)
    with torch.no_grad():
        again = model.predict_patches(torch.where(secondary_px, x + 7, x), mask)
    assert torch.allclose(again, pred, atol=1e-6)
