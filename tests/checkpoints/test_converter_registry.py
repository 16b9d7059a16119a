"""Converter dispatch: explicit priorities (not import order), and hvit_mm's own checkpoints
recognised by mmengine's wrapper and meta whatever the model's attribute names."""
import importlib
import sys

import pytest
import torch

from hvit_mm.checkpoints import (CONVERTERS, load_state_dict_file, priorities, register_converter,
                                 to_hvit, unwrap)
from hvit_mm.checkpoints.io import StateDict
from hvit_mm.models.backbones.vit import ViT


@pytest.fixture
def registry():
    """Restore the converter list after a test that registers its own."""
    saved = list(CONVERTERS)
    yield
    CONVERTERS[:] = saved


def _marker(sd):
    return 'toy.weight' in sd


def _tag(name):
    return lambda sd: {**sd, 'converted_by': name}


def test_builtin_priorities_are_distinct_and_ordered():
    prio = priorities()
    assert list(prio) == [c.name for c in CONVERTERS]
    assert list(prio.values()) == sorted(prio.values(), reverse=True)
    assert len(set(prio.values())) == len(prio)
    assert next(iter(prio)) == 'hvit'  # hvit_mm's own files are looked at first
    assert prio['hiera'] > prio['mae'] > prio['timm_vit']  # a Hiera encoder also looks like a ViT


def test_later_imported_converter_with_higher_priority_wins(registry, tmp_path, monkeypatch):
    register_converter('toy_low', _marker, _tag('toy_low'), priority=1)
    (tmp_path / 'toy_late_converter.py').write_text(
        'from hvit_mm.checkpoints import register_converter\n'
        "register_converter('toy_high', lambda sd: 'toy.weight' in sd,\n"
        "                   lambda sd: {**sd, 'converted_by': 'toy_high'}, priority=2)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module('toy_late_converter')
    monkeypatch.delitem(sys.modules, 'toy_late_converter')
    assert to_hvit({'toy.weight': 1})['converted_by'] == 'toy_high'
    register_converter('toy_lowest', _marker, _tag('toy_lowest'), priority=0.5)  # later, lower
    assert to_hvit({'toy.weight': 1})['converted_by'] == 'toy_high'
    assert to_hvit({'toy.weight': 1}, fmt='toy_low')['converted_by'] == 'toy_low'


def test_equal_priorities_are_refused(registry):
    register_converter('toy_a', _marker, _tag('toy_a'), priority=3)
    with pytest.raises(ValueError, match="priority 3 is already 'toy_a'"):
        register_converter('toy_b', _marker, _tag('toy_b'), priority=3)
    register_converter('toy_a', _marker, _tag('toy_a2'), priority=3)  # re-registering replaces
    assert to_hvit({'toy.weight': 1})['converted_by'] == 'toy_a2'
    with pytest.raises(TypeError):
        register_converter('toy_c', _marker, _tag('toy_c'))  # the priority is not optional


def _vit():
    return ViT(dict(embed_dims=32, depth=1, num_heads=2), img_size=32, patch_size=16)


def _model_dict(**extra):
    """A full-model dict: a ViT backbone plus top-level names no converter knows."""
    sd = {f'backbone.{k}': v for k, v in _vit().state_dict().items()}
    sd.update({f'{k}.weight': torch.ones(2) for k in extra})
    return sd


def _runner_file(path, sd, model_cfg_text):
    """What mmengine's Runner.save_checkpoint writes (meta.cfg is the config's pretty text)."""
    torch.save({'meta': dict(cfg=model_cfg_text, seed=0, epoch=1, iter=2,
                             experiment_name='x', mmengine_version='0.10.7'),
                'state_dict': sd, 'message_hub': {}}, path)
    return str(path)


HVIT_CFG = ("custom_imports = dict(imports=['hvit_mm'])\n"
            "model = dict(type='MaskedAutoencoder', backbone=dict(type='ViT', arch='tiny'),\n"
            "             neck=dict(type='MAEDecoder'))\n")


def test_runner_checkpoint_of_an_hvit_mm_model_passes_through(tmp_path):
    """Attribute names nobody registered (a future neck, a renamed module) do not matter."""
    sd = _model_dict(**{'zz_fusion.0': 1, 'renamed_norm': 1})
    sd['mask_token'] = torch.zeros(1, 1, 32)
    loaded = load_state_dict_file(_runner_file(tmp_path / 'iter_2.pth', sd, HVIT_CFG))
    assert isinstance(loaded, StateDict) and loaded.meta['iter'] == 2
    out = to_hvit(loaded)
    assert out.keys() == sd.keys() and all(torch.equal(out[k], sd[k]) for k in sd)


def test_runner_checkpoint_of_another_codebase_is_not_hvit_mm(tmp_path):
    """An mmpretrain MAE run (its own names) is not passed off as hvit_mm's."""
    sd = {'backbone.layers.0.ln1.weight': torch.ones(2), 'neck.decoder_norm.weight': torch.ones(2),
          'mystery.weight': torch.ones(2)}
    cfg = ("model = dict(type='MAE', backbone=dict(type='MAEViT'),\n"
           "             neck=dict(type='MAEPretrainDecoder'))")
    with pytest.raises(ValueError, match='no converter recognises'):
        to_hvit(load_state_dict_file(_runner_file(tmp_path / 'iter_2.pth', sd, cfg)))


def test_meta_config_is_parsed_not_executed(tmp_path):
    flag = tmp_path / 'executed'
    cfg = f"import pathlib\npathlib.Path({str(flag)!r}).touch()\n" + HVIT_CFG
    sd = _model_dict(other=1)
    out = to_hvit(load_state_dict_file(_runner_file(tmp_path / 'a.pth', sd, cfg)))
    assert out.keys() == sd.keys()
    assert not flag.exists()


def test_plain_model_dict_with_a_known_backbone_passes_through():
    """Without a meta (a converter's output, ``model.state_dict()``): the ``backbone.*`` part is a
    layout some converter knows, the rest are attribute paths."""
    sd = _model_dict(**{'encoder_neck.fuse.0': 1})
    assert to_hvit(sd) == sd and to_hvit(to_hvit(sd)) == sd
    with pytest.raises(ValueError, match='no converter recognises'):
        to_hvit({'backbone.layers.0.ln1.weight': torch.ones(2), 'neck.x.weight': torch.ones(2)})


def test_unwrap_keeps_meta_and_torch_metadata():
    inner = _vit().state_dict()
    sd = unwrap({'meta': {'cfg': ''}, 'state_dict': inner})
    assert isinstance(sd, StateDict) and sd.meta == {'cfg': ''}
    assert sd._metadata == inner._metadata and list(sd) == list(inner)
    assert not isinstance(unwrap({'model': inner}), StateDict)  # not mmengine's: as it was
