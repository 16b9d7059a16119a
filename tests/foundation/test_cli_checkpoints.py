"""Checkpoint files at the tools' boundary: every unusable file is one line naming it (never the
advice to load with ``weights_only=False``), a pickled payload never runs, weights that do not fit
the model stop the run with the key listing, and a download that fails verification leaves no
file in the cache."""
import hashlib
import os
import pickle
import random
import types

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import Registry
from torch import nn

from hvit_mm.checkpoints import load_state_dict_file, load_url_verified
from hvit_mm.checkpoints.io import CheckpointError
from hvit_mm.launch import BuildGuard, check_checkpoint, describe
from tests.conftest import REPO, run_tool
from tests.foundation.test_cli_errors import (CFG, MAE, MAE_TINY, assert_one_line, snapshot,
                                              work_dir_with_a_checkpoint)


class _Payload:
    """Unpickling this creates ``marker``: proof that a load ran code from the file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory):
    """kind -> path of a file no checkpoint load may accept, and the payload's marker path."""
    root = tmp_path_factory.mktemp('bad')
    good = root / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(64, 64)}}, good)
    marker = root / 'PAYLOAD_RAN'
    files = {'empty': b'', 'truncated': good.read_bytes()[:good.stat().st_size // 2],
             'text': b'model weights, honestly\n', 'random': random.Random(0).randbytes(4096),
             'plain pickle': pickle.dumps({'w': [1.0, 2.0]})}
    paths = {}
    for kind, data in files.items():
        paths[kind] = root / f'{kind.replace(" ", "_")}.pth'
        paths[kind].write_bytes(data)
    for kind, obj in (('payload', {'state_dict': _Payload(str(marker))}),
                      ('tensor', torch.zeros(3)), ('list', [torch.zeros(3)]),
                      ('no tensors', {'epoch': 3, 'note': 'x'})):
        paths[kind] = root / f'{kind.replace(" ", "_")}.pth'
        torch.save(obj, paths[kind])
    paths['directory'] = root / 'directory.pth'
    paths['directory'].mkdir()
    return paths, marker


@pytest.mark.parametrize('kind, expect', [
    ('empty', 'is empty (0 bytes)'), ('truncated', 'truncated or corrupt'),
    ('text', 'not a PyTorch checkpoint'), ('random', 'not a PyTorch checkpoint'),
    ('plain pickle', 'plain pickle'), ('payload', 'was refused'), ('tensor', 'holds a Tensor'),
    ('list', 'holds a list'), ('no tensors', 'holds no tensors'), ('directory', 'cannot be read'),
])
def test_unusable_files_are_named_and_never_run(bad_files, kind, expect):
    paths, marker = bad_files
    with pytest.raises(CheckpointError) as err:
        load_state_dict_file(str(paths[kind]))
    text = str(err.value)
    assert str(paths[kind]) in text and expect in text and '\n' not in text
    assert 'weights_only=False' not in text
    assert not marker.exists()


# ------------------------------------------------------------------ fit to the built model
def _runner(model, path, resume=False):
    """What check_checkpoint reads of an mmengine Runner."""
    return types.SimpleNamespace(model=model, _load_from=str(path), _resume=resume)


def _runner_file(path, model, **extra):
    torch.save({'meta': dict(epoch=1, iter=2, seed=0), 'state_dict': model.state_dict(),
                'message_hub': {}, 'optimizer': {}, **extra}, path)
    return path


def test_weights_that_fit_pass(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8))
    ckpt = _runner_file(tmp_path / 'iter_2.pth', model)
    check_checkpoint(_runner(model, ckpt, resume=True))
    check_checkpoint(_runner(model, ckpt))
    wrapped = tmp_path / 'ddp.pth'  # saved from a DDP-wrapped model: mmengine strips module.
    torch.save({'state_dict': {f'module.{k}': v for k, v in model.state_dict().items()}}, wrapped)
    check_checkpoint(_runner(model, wrapped))


@pytest.mark.parametrize('resume', [True, False])
def test_a_changed_width_stops_the_run_with_the_shapes(tmp_path, resume):
    ckpt = _runner_file(tmp_path / 'iter_2.pth', nn.Sequential(nn.Linear(4, 16)))
    with pytest.raises(CheckpointError) as err:
        check_checkpoint(_runner(nn.Sequential(nn.Linear(4, 8)), ckpt, resume=resume))
    text = str(err.value)
    assert text.startswith(f'{"--resume" if resume else "load_from"} {ckpt} does not fit')
    assert '0.weight: (16, 4) vs model (8, 4)' in text and '\n' not in text


def test_missing_and_unexpected_keys_are_listed_with_the_converter(tmp_path):
    official = {'cls_token': torch.zeros(1, 1, 8), 'pos_embed': torch.zeros(1, 5, 8),
                'patch_embed.proj.weight': torch.zeros(8, 3, 2, 2),
                'blocks.0.attn.qkv.weight': torch.zeros(24, 8)}
    torch.save({'model': official}, tmp_path / 'mae_official.pth')  # an unconverted MAE file
    with pytest.raises(CheckpointError) as err:
        check_checkpoint(_runner(nn.Sequential(nn.Linear(4, 8)), tmp_path / 'mae_official.pth'))
    text = str(err.value)
    assert "missing 2 keys: ['0.weight', '0.bias']" in text
    assert 'tools/model_converters/mae_to_hvit.py' in text


def test_resume_from_a_weights_file_says_to_load_it_instead(tmp_path):
    model = nn.Sequential(nn.Linear(4, 8))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'converted.pth')
    with pytest.raises(CheckpointError, match='not a checkpoint the runner wrote.*load_from='):
        check_checkpoint(_runner(model, tmp_path / 'converted.pth', resume=True))


def test_resume_from_a_file_with_a_flipped_byte_is_refused(tmp_path):
    """torch's zip reader skips the CRCs: without the check a damaged tensor would load."""
    model = nn.Sequential(nn.Linear(4, 8))
    nn.init.constant_(model[0].weight, 1.0)
    ckpt = _runner_file(tmp_path / 'iter_2.pth', model)
    data = bytearray(ckpt.read_bytes())
    at = data.find(b'\x00\x00\x80?')  # a float32 1.0 of the weight
    data[at + 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r'CRC mismatch.*--resume alone'):
        check_checkpoint(_runner(model, ckpt, resume=True))


# ------------------------------------------------------------ what is bad input, and where
_REG = Registry('test_cli_where')


@_REG.register_module()
class _Inner:
    def __init__(self, width):
        raise ValueError(f'_Inner: width must be even, got {width}')


@_REG.register_module()
class _Outer:
    def __init__(self, inner):
        self.inner = _REG.build(inner)



def test_an_error_while_building_names_the_config_path():
    cfg = Config(dict(model=dict(type='_Outer', inner=dict(type='_Inner', width=3))))
    with pytest.raises(ValueError) as err:
        _REG.build(cfg.model)
    assert describe(err.value, cfg).startswith('while building model.inner (_Inner): ValueError: '
                                               '_Inner: width must be even, got 3 (--debug')
    from mmpretrain.registry import TRANSFORMS  # asserts on its arguments, without a message
    crop = dict(type='RandomResizedCrop', scale=64, interpolation='foo')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(pipeline=[dict(type='PackInputs'),
                                                                   crop]))))
    with pytest.raises(AssertionError) as err:
        TRANSFORMS.build(cfg.train_dataloader.dataset.pipeline[1])
    assert describe(err.value, cfg).startswith(  # the check that failed stands in for a message
        'while building train_dataloader.dataset.pipeline[1] (RandomResizedCrop): AssertionError: '
        "`assert interpolation in ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')` failed")
    assert describe(KeyError('no such arch\nknown: a, b')) == \
        'KeyError: no such arch; known: a, b (--debug or HVIT_MM_DEBUG=1 shows the traceback)'


def _guarded(tmp_path, error, debug=False, started=False):
    """Raise ``error`` inside a BuildGuard watching a work dir that the 'run' then changes."""
    work = work_dir_with_a_checkpoint(tmp_path, config='cfg.py')
    before = snapshot(work)
    guard = BuildGuard(debug)
    with guard:
        guard.watch(str(work))
        (work / '20260101_000000' / 'vis_data').mkdir(parents=True)  # the runner's log dir
        (work / 'cfg.py').write_text('# this run\'s config\n')  # its config dump
        guard.marker.started = started
        raise error
    return work, before


def test_bad_input_before_the_start_is_one_line_and_the_work_dir_is_put_back(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        work, before = _guarded(tmp_path, KeyError('unknown arch \'x\''))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.strip().splitlines() == [
        "hvit_mm: error: KeyError: unknown arch 'x' (--debug or HVIT_MM_DEBUG=1 shows the "
        'traceback)']
    work = tmp_path / 'work'
    assert sorted(os.listdir(work)) == ['cfg.py', 'iter_2.pth', 'last_checkpoint']
    assert (work / 'cfg.py').read_text() == '# the previous run\'s config\n'
    assert (work / 'cfg.py').stat().st_mtime_ns == 10 ** 18


@pytest.mark.parametrize('error, started', [(RuntimeError('a bug'), False),  # not bad input
                                            (ValueError('nan in a layer'), True)])  # training began
def test_bugs_keep_their_traceback(tmp_path, error, started):
    with pytest.raises(type(error)):
        _guarded(tmp_path, error, started=started)
    assert (tmp_path / 'work' / '20260101_000000').is_dir()  # nothing is tidied for a bug


def test_debug_reraises_after_tidying(tmp_path):
    with pytest.raises(ValueError, match='bad width'):
        _guarded(tmp_path, ValueError('bad width'), debug=True)
    assert sorted(os.listdir(tmp_path / 'work')) == ['cfg.py', 'iter_2.pth', 'last_checkpoint']


def test_a_work_dir_this_run_created_is_removed(tmp_path, capsys):
    guard = BuildGuard()
    with pytest.raises(SystemExit):
        with guard:
            guard.watch(str(tmp_path / 'new_work'))
            (tmp_path / 'new_work' / 'log').mkdir(parents=True)
            raise TypeError("ViT.__init__() got an unexpected keyword argument 'mask_ratio'")
    assert not (tmp_path / 'new_work').exists()


# ---------------------------------------------------------------------------- downloads
def test_download_needs_a_full_digest_and_drops_a_file_that_fails(tmp_path):
    good = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    url, cache = good.as_uri(), tmp_path / 'cache'
    for short in ('5', digest[:16]):
        with pytest.raises(ValueError, match='not a full sha256'):
            load_url_verified(url, short, str(cache))
        with pytest.raises(ValueError, match='not a full sha256'):
            load_state_dict_file(str(good), short)
    cache.mkdir()
    (cache / 'weights.pth').write_bytes(b'a download cut short')
    with pytest.raises(ValueError, match='removed .* from the cache'):
        load_url_verified(url, digest, str(cache))
    assert not (cache / 'weights.pth').exists()
    assert torch.equal(load_url_verified(url, digest, str(cache))['w'], torch.ones(2))  # the retry


# -------------------------------------------------------------------- the real command line
def _cli(tool, *args):
    return run_tool(tool, *args, check=False, timeout=300)


def test_train_refuses_a_pickled_payload_by_name(tmp_path, bad_files, toy_root):
    paths, marker = bad_files
    work = work_dir_with_a_checkpoint(tmp_path, config=MAE)
    before = snapshot(work)
    proc = _cli('tools/train.py', MAE, '--work-dir', work, '--cfg-options', *MAE_TINY,
                f'load_from={paths["payload"]}')
    assert_one_line(proc.returncode, proc.stdout, expect=[str(paths['payload']), 'refused'])
    assert 'weights_only=False' not in proc.stdout and not marker.exists()
    assert snapshot(work) == before


def test_resume_from_converted_weights_is_one_line(tmp_path, toy_root):
    weights = tmp_path / 'converted.pth'
    torch.save({'state_dict': {'backbone.cls_token': torch.zeros(1, 1, 128)}}, weights)
    work = work_dir_with_a_checkpoint(tmp_path)
    before = snapshot(work)
    proc = _cli('tools/train.py', MAE, '--work-dir', work, '--resume', weights,
                '--cfg-options', *MAE_TINY)
    assert_one_line(proc.returncode, proc.stdout,
                    expect=[f'--resume {weights}', 'not a checkpoint the runner wrote'])
    assert snapshot(work) == before


def test_evaluating_a_resnet_with_an_mae_checkpoint_fails(tmp_path, toy_root):
    """Measured: 25% top-1 (chance on 4 classes) and exit 0, with mmengine's warnings only."""
    from mmpretrain.registry import MODELS
    mae = MODELS.build(Config.fromfile(str(REPO / MAE)).model)
    ckpt = _runner_file(tmp_path / 'iter_600.pth', mae)
    work = work_dir_with_a_checkpoint(tmp_path)
    before = snapshot(work)
    proc = _cli('tools/test.py', CFG, ckpt, '--work-dir', work)
    last = assert_one_line(proc.returncode, proc.stdout,
                           expect=[f'CHECKPOINT {ckpt} does not fit the model ImageClassifier',
                                   'missing', 'backbone.conv1.weight', 'unexpected',
                                   'backbone.cls_token'])
    assert 'accuracy' not in proc.stdout
    assert snapshot(work) == before, last
