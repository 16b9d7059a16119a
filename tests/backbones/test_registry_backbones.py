"""Registry-wide contract test (as timm's test_models.py): every hvit_mm backbone registered in
mmpretrain's MODELS, built from its own ``tiny_cfg``:

* ``forward`` returns what ``feature_info`` declares (channels, strides) and backward reaches every
  trainable parameter;
* ``get_layer_depth`` stays in range with the stem at 0; ``no_weight_decay`` names real parameters;
* for each backbone that declares MIM support (``mim_unit``), ``forward_masked`` + the shared decoder
  + the loss run and reach every parameter, for every hvit_mm MIM algorithm that accepts it.

A new backbone or algorithm is picked up from the registry; nothing here names one.
"""
import pytest
import torch
from mmpretrain.registry import MODELS

import hvit_mm  # noqa: F401
from hvit_mm.models.algorithms import MaskedAutoencoder
from hvit_mm.models.backbones.base import Backbone

BACKBONES = sorted(name for name, cls in MODELS.module_dict.items()
                   if isinstance(cls, type) and issubclass(cls, Backbone))
ALGORITHMS = sorted(name for name, cls in MODELS.module_dict.items()
                    if isinstance(cls, type) and issubclass(cls, MaskedAutoencoder))
DECODER = dict(type='MAEDecoder', decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2)


def build(name, **kw):
    torch.manual_seed(0)
    return MODELS.build(dict(type=name, **MODELS.get(name).tiny_cfg, **kw))


def test_every_backbone_has_a_tiny_cfg():
    assert {'ViT', 'ViTDet', 'HPViT', 'Hiera'} <= set(BACKBONES)
    assert [n for n in BACKBONES if not MODELS.get(n).tiny_cfg] == []


@pytest.mark.parametrize('name', BACKBONES)
def test_forward_matches_feature_info_and_backward_reaches_every_parameter(name):
    model = build(name).train()
    x = torch.randn(2, model.in_channels, 64, 96)
    outs = model(x)
    assert isinstance(outs, tuple) and len(outs) == len(model.feature_info)
    for out, info in zip(outs, model.feature_info):
        assert out.shape[:2] == (2, info['num_chs'])
        if out.ndim == 4:  # maps: ceil or floor of the input over the stride
            assert abs(out.shape[2] - 64 / info['reduction']) < 1
            assert abs(out.shape[3] - 96 / info['reduction']) < 1
    sum(o.float().square().mean() for o in outs).backward()
    unreached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unreached == []


@pytest.mark.parametrize('name', BACKBONES)
def test_layer_depth_and_weight_decay_contract(name):
    model = build(name)
    names = [n for n, _ in model.named_parameters()]
    depths = [model.get_layer_depth('backbone.' + n, 'backbone.') for n in names]
    assert all(0 <= d < n_layers == model.num_layers for d, n_layers in depths)
    assert min(d for d, _ in depths) == 0
    assert model.get_layer_depth('head.fc.weight', 'backbone.')[0] == model.num_layers - 1
    assert model.no_weight_decay() <= set(names)


def _mim_cases():
    for name in BACKBONES:
        if build(name).mim_unit is None:
            continue
        for algo in ALGORITHMS:
            yield name, algo


def _algorithm_kwargs(algo, backbone):
    kw = {}
    if backbone.mim_mask == 'uniform' and MODELS.get(algo).needs_dropping:
        kw.update(mask_type='uniform', secondary_ratio=0.25)
    if algo == 'DistilledMAE':
        kw.update(teacher=dict(type=type(backbone).__name__, **type(backbone).tiny_cfg))
    if backbone.mim_stages and len(backbone.mim_stages) > 1:
        kw.update(encoder_neck=dict(type='MultiScaleFusion'))
    return kw


@pytest.mark.parametrize('name,algo', list(_mim_cases()))
def test_masked_modeling_runs_for_every_accepting_algorithm(name, algo):
    backbone = build(name)
    if algo == 'DistilledMAE' and not backbone.attn_logits:
        with pytest.raises(TypeError, match='attention logits'):
            MODELS.build(dict(type=algo, backbone=backbone, neck=DECODER,
                              **_algorithm_kwargs(algo, backbone)))
        return
    model = MODELS.build(dict(type=algo, backbone=backbone, neck=DECODER,
                              **_algorithm_kwargs(algo, backbone))).train()
    H = W = 2 * 2 * backbone.mim_unit  # a 4x4 unit grid (uniform masks need even sides)
    x = torch.randn(2, backbone.in_channels, H, W)
    losses = model.loss(x, None)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    unreached = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None
                 and not n.startswith('teacher.')]
    assert unreached == []
    rec = model.reconstruct(x, generator=torch.Generator().manual_seed(0))
    assert rec.image.shape == x.shape and rec.visible.shape == (2, 1, H, W)
