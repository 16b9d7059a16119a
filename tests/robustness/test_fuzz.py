"""Seeded fuzz of every registered backbone and masked-image-modeling algorithm.

Random but plausible configurations and inputs (widths, out_indices, drop path, channels, batch size
1-3, odd image shapes, mask ratios from nothing to almost everything masked, uniform masks, NaN
pixels) and bad arguments and inputs. Every case must either work -- outputs as ``feature_info``
declares, a finite scalar loss unless the input held NaN -- or fail with a ValueError, KeyError or
TypeError whose message names the parameter (or the module and what works). Anything else
(IndexError, a bare AssertionError, AttributeError, a RuntimeError from inside torch) fails.

The cases are drawn once from ``SEED`` at collection; the pytest id says what each one tries.
Backbones and algorithms come from the registry (``tiny_cfg``), so a new one is fuzzed too.
"""
import inspect
import random
from typing import NamedTuple

import pytest
import torch
from mmpretrain.registry import MODELS

import hvit_mm  # noqa: F401
from hvit_mm.models.algorithms import MaskedAutoencoder
from hvit_mm.models.backbones.base import Backbone
from tests.robustness.test_validation import num_outputs

SEED = 13
CLEAR = (ValueError, KeyError, TypeError)
BACKBONES = sorted(n for n, c in MODELS.module_dict.items()
                   if isinstance(c, type) and issubclass(c, Backbone))
MIM = Backbone.mim_names()
ALGORITHMS = sorted(n for n, c in MODELS.module_dict.items()
                    if isinstance(c, type) and issubclass(c, MaskedAutoencoder))
DECODER = dict(type='MAEDecoder', decoder_embed_dims=16, decoder_depth=1, decoder_num_heads=2)
NAN = float('nan')


class Case(NamedTuple):
    kind: str    # forward | input | arg | mim | mim-arg | mim-input
    model: str   # backbone (and algorithm) name
    kw: dict     # constructor overrides (algorithm kinds: the algorithm's; 'backbone_kw' inside)
    x: tuple     # input spec, see make_input
    names: tuple  # words a clear error must contain (one of them)
    must_fail: bool = False


def tiny(name: str) -> dict:
    return dict(type=name, **MODELS.get(name).tiny_cfg)


def make_input(spec, channels: int, seed: int):
    """spec: ('image', B, C or None (the model's), H, W, dtype, nan) | ('unbatched',) |
    ('list',)."""
    gen = torch.Generator().manual_seed(seed)
    if spec[0] == 'list':
        return []
    if spec[0] == 'unbatched':
        return torch.randn(channels, 64, 64, generator=gen)
    _, B, C, H, W, dtype, nan = spec
    x = torch.randn(B, C or channels, H, W, generator=gen)
    if nan and x.numel():
        x.view(-1)[torch.randint(x.numel(), (3,), generator=gen)] = NAN
    return x.to(dtype) if dtype != 'float' else x


def bad_values(rng, name: str, n: int):
    """(param, value, names) triples that no backbone may accept."""
    cls = MODELS.get(name)
    params = inspect.signature(cls.__init__).parameters
    pool = {
        'out_indices': [(0, n), (-n - 1,), (), 'all', (0, -n)],
        'drop_path_rate': [-0.1, 1.0, 'x', NAN],
        'img_size': [0, -32, 'x', (64,), (64, 'a')],
        'in_channels': [0, -1, '3', 2.5],
        'patch_size': [0, -16, '16'],
        'patch_stride': [0, -4],
        'window_size': [0, -1, 'x'],
        'q_pool': [-1, 9],
        'sr_ratios': [(0, 1, 1, 1), (1,)],
        'global_blocks': [(5,), (-9,)],
        'frozen_stages': [-2, '1'],
        'pool_after': [(5, 1), (99,)],
        'mask_unit_attn': [(True,)],
        'attn_types': [('global',)],
        'out_type': ['bogus'],
    }
    out = [(k, v, (k,)) for k, vs in pool.items() if k in params for v in vs]
    out.append(('arch', 'no-such-arch', ('arch',)))
    arch = cls.tiny_cfg.get('arch', {})
    for key in cls.arch_keys:
        v = arch.get(key)
        if isinstance(v, int):
            out.append(('arch', dict(arch, **{key: 0}), (key,)))
        elif isinstance(v, (tuple, list)):
            out.append(('arch', dict(arch, **{key: (0,) + tuple(v[1:])}), (key,)))
            out.append(('arch', dict(arch, **{key: tuple(v[:-1])}), cls.arch_keys))
    return rng.sample(out, min(len(out), 9))


def backbone_cases(rng):
    for name in BACKBONES:
        torch.manual_seed(0)
        n = num_outputs(MODELS.build(tiny(name)))
        for _ in range(10):
            k = rng.randint(1, n)
            kw = dict(out_indices=tuple(sorted(rng.sample(range(n), k))),
                      drop_path_rate=rng.choice([0.0, 0.1, 0.4]),
                      in_channels=rng.choice([1, 3, 3, 4]))
            hw = [rng.choice([32, 48, 64, 96, 33, 50, 17, 2]) for _ in range(2)]
            yield Case('forward', name, kw, ('image', rng.choice([1, 1, 2]), None, *hw, 'float',
                                             rng.random() < 0.15), (name, 'sizes that work'))
        odd = [('empty-batch', ('image', 0, None, 64, 64, 'float', False), True),
               ('channels+1', ('image', 1, 4, 64, 64, 'float', False), True),
               ('unbatched', ('unbatched',), True),
               ('uint8', ('image', 1, None, 64, 64, torch.uint8, False), True),
               ('int64', ('image', 2, None, 64, 64, torch.int64, False), True),
               ('2x2', ('image', 1, None, 2, 2, 'float', False), False),
               ('1x200', ('image', 1, None, 1, 200, 'float', False), False)]
        for label, spec, fail in rng.sample(odd, 6):
            yield Case('input', name, dict(label=label), spec, (name,), fail)
        for param, value, names in bad_values(rng, name, n):
            yield Case('arg', name, {param: value}, (), names, True)


def algorithm_kw(rng, algo: str, name: str) -> dict:
    cls = MODELS.get(name)
    kw = dict(mask_ratio=rng.choice([0.0, 0.25, 0.5, 0.75, 0.9, 0.99]),
              batch_mask=rng.random() < 0.3, norm_pix=rng.random() < 0.7)
    uniform = algo.endswith('-uniform') or (cls.mim_mask == 'uniform'
                                             and MODELS.get(algo).needs_dropping)
    if uniform:
        kw.update(mask_type='uniform', mask_ratio=0.75,
                  secondary_ratio=rng.choice([0.0, 0.25, 0.5]))
    if algo == 'DistilledMAE':
        kw.update(teacher=tiny(name), student_block=rng.choice([0, -1]))
    if name == 'Hiera' and rng.random() < 0.5:
        kw.update(encoder_neck=dict(type='MultiScaleFusion'))
    return kw


def mim_cases(rng):
    algos = ALGORITHMS + ['MaskedAutoencoder-uniform']
    for _ in range(66):
        name, algo = rng.choice(MIM), rng.choice(algos)
        kw = algorithm_kw(rng, algo, name)
        # 0: 64 px, which suits every mask and compaction (a 4x4 grid of 16 px units: UM-MAE's
        # compact map is then 2x2); else an odd unit grid, some of which a mask cannot cut
        grid = (0, 0) if rng.random() < 0.7 else (rng.randint(1, 2), rng.randint(1, 3))
        spec = ('image', rng.choice([1, 1, 2, 3]), None, *grid, 'float', rng.random() < 0.2)
        yield Case('mim', f'{algo}-{name}', kw, spec, (name, 'even', 'multiple', 'divisible',
                                                       'attention logits'))
    bad = [('mask_ratio', v) for v in (1.0, -0.1, 'abc', [0.5], None, True, NAN)] + [
        ('mask_type', 'bogus'), ('secondary_ratio', 1.0), ('secondary_ratio', -1),
        ('target_layout', 'xyz'), ('neck', None), ('backbone', 'ViT'),
        ('backbone', tiny('ViTDet')), ('backbone', tiny('HPViT')),
        ('backbone', dict(tiny('Hiera'), out_type='avg_featmap', out_indices=(3,))),
        ('student_block', 7), ('student_block', -9), ('student_block', 'x'),
        ('teacher_block', 2), ('attn_loss_weight', -1.0)]
    for param, value in bad * 2:
        algo = 'DistilledMAE' if param in ('student_block', 'teacher_block',
                                           'attn_loss_weight') else rng.choice(ALGORITHMS)
        name = 'ViT' if algo == 'DistilledMAE' else rng.choice(MIM)
        kw = {k: v for k, v in algorithm_kw(rng, algo, name).items()
              if param != 'mask_ratio' or k not in ('mask_type', 'secondary_ratio')}
        names = ('masked image modeling',) if param == 'backbone' and value != 'ViT' else (param,)
        yield Case('mim-arg', f'{algo}-{name}', dict(kw, **{param: value}), (), names, True)
    odd = [('image', 0, None, 2, 2, 'float', False), ('unbatched',), ('list',),
           ('image', 1, None, 2, 2, torch.uint8, False), ('image', 1, 5, 2, 2, 'float', False),
           ('image', 1, None, 1.5, 2, 'float', False)]
    for _ in range(24):
        name, algo = rng.choice(MIM), rng.choice(ALGORITHMS)
        yield Case('mim-input', f'{algo}-{name}', algorithm_kw(rng, algo, name), rng.choice(odd),
                   (name, 'inputs'), True)


def _id(i: int, case: Case) -> str:
    what = case.kw.get('label') or ','.join(f'{k}={v!r}' for k, v in case.kw.items()
                                            if k not in ('teacher', 'encoder_neck'))
    if case.kind in ('forward', 'mim'):
        what = f'x={case.x[1:5]}' + (',nan' if case.x[-1] else '') + f',{what}'
    return f'{i:03d}-{case.kind}-{case.model}-{what}'[:140]


CASES = list(backbone_cases(random.Random(SEED))) + list(mim_cases(random.Random(SEED + 1)))


def test_enough_cases_of_every_kind():
    kinds = {k: sum(c.kind == k for c in CASES) for k in
             ('forward', 'input', 'arg', 'mim', 'mim-arg', 'mim-input')}
    assert len(CASES) >= 200 and min(kinds.values()) >= 20, kinds
    assert {c.model for c in CASES if c.kind == 'forward'} == set(BACKBONES)


def expect_clear(fn, case: Case):
    """Run ``fn``; a failure must be a clear error naming one of ``case.names``."""
    try:
        return fn()
    except CLEAR as err:
        msg = err.args[0] if err.args else ''
        assert isinstance(msg, str) and any(n.lower() in msg.lower() for n in case.names), \
            f'{type(err).__name__} does not name any of {case.names}: {msg}'
        return err


def build_algorithm(case: Case):
    algo = case.model.split('-')[0]
    name = case.model.split('-')[-1]
    cfg = dict(type=algo, backbone=tiny(name), neck=DECODER)
    torch.manual_seed(0)
    return MODELS.build(dict(cfg, **case.kw))


@pytest.mark.parametrize('i', range(len(CASES)), ids=[_id(i, c) for i, c in enumerate(CASES)])
def test_fuzz(i):
    case = CASES[i]
    if case.kind in ('forward', 'input', 'arg'):
        kw = {k: v for k, v in case.kw.items() if k != 'label'}
        torch.manual_seed(i)
        model = expect_clear(lambda: MODELS.build(dict(tiny(case.model), **kw)), case)
        if case.kind == 'arg':
            assert isinstance(model, CLEAR), f'{case.model} accepted {case.kw}'
            return
        assert not isinstance(model, Exception), f'a valid config was refused: {model}'
        model.train(i % 2 == 0)
        x = make_input(case.x, model.in_channels, i)
        outs = expect_clear(lambda: model(x), case)
        H, W = (x.shape[2], x.shape[3]) if case.x[0] == 'image' else (0, 0)
        fits = case.x[0] == 'image' and x.dtype.is_floating_point and x.shape[0] > 0 \
            and x.shape[1] == model.in_channels and H % model.input_multiple == 0 \
            and W % model.input_multiple == 0 and min(H, W) >= model.min_input
        if not fits:  # what the model declares it cannot take, it refuses
            assert isinstance(outs, CLEAR), 'an input outside the declared sizes was accepted'
            return
        assert not isinstance(outs, Exception), f'a {H}x{W} input that fits was refused: {outs}'
        assert len(outs) == len(model.feature_info)
        for out, info in zip(outs, model.feature_info):
            assert out.shape[:2] == (x.shape[0], info['num_chs'])
            if out.ndim == 4:
                assert abs(out.shape[2] - H / info['reduction']) < 1
                assert abs(out.shape[3] - W / info['reduction']) < 1
            assert case.x[-1] or torch.isfinite(out).all()
        return

    model = expect_clear(lambda: build_algorithm(case), case)
    if case.kind == 'mim-arg':
        assert isinstance(model, CLEAR), f'{case.model} accepted {case.kw}'
        return
    if isinstance(model, CLEAR):  # only DistilledMAE on a backbone without attention logits
        assert 'attention logits' in str(model) and case.model.startswith('DistilledMAE')
        return
    model.train()
    backbone = model.backbone
    spec = case.x
    if spec[0] == 'image':  # unit grid -> pixels
        u = backbone.mim_unit
        hw = (64, 64) if spec[3] == 0 else (int(spec[3] * u), int(spec[4] * u))
        spec = spec[:3] + hw + spec[5:]
    x = make_input(spec, backbone.in_channels, i)
    losses = expect_clear(lambda: model.loss(x), case)
    if case.kind == 'mim-input':
        assert isinstance(losses, CLEAR), 'an odd batch was accepted'
        return
    if isinstance(losses, CLEAR):  # an odd grid: refused with what works
        assert case.x[3] != 0, f'a 64x64 batch was refused: {losses}'
        return
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert total.ndim == 0
    if not spec[-1]:
        assert torch.isfinite(total), losses
        if i % 3 == 0:
            total.backward()
    if i % 4 == 0:
        rec = model.reconstruct(x, generator=torch.Generator().manual_seed(i))
        assert rec.image.shape == x.shape and rec.visible.shape == (x.shape[0], 1, *x.shape[2:])
