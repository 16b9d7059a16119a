"""Checkpoints survive faults (issue 13, item 2): SIGKILL between and during checkpoint writes,
then ``--resume``, gives the losses of an uninterrupted run; a corrupt newest checkpoint is skipped
with a warning that names it; every pretraining config keeps at least two checkpoints.

The faults are injected from the test side: ``hvit_faults`` (written into tmp_path, imported
through the config's ``custom_imports``) pauses after an iteration, or makes the write of one named
file stop half-way (half the bytes written and flushed), so the test kills the run exactly there.
"""
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from hvit_mm.config_check import ConfigError
from hvit_mm.engine import checkpoint as ckpt
from tests.conftest import REPO, load_tool

TOY_MAE = REPO / 'configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py'
TINY = f"""_base_ = '{TOY_MAE}'
custom_imports = dict(imports=['hvit_mm', 'hvit_faults'], allow_failed_imports=False)
model = dict(backbone=dict(arch=dict(embed_dims=32, depth=1, num_heads=2), img_size=32),
             neck=dict(decoder_embed_dims=16, decoder_num_heads=1))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(
    times=2, dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.4, 1.0), backend='pillow',
             interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackInputs')])))
train_cfg = dict(max_iters=12)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3, max_keep_ckpts=2))
log_processor = dict(window_size=1)  # the raw loss of each iteration, not a running mean
randomness = dict(seed=None)  # a random seed, which --resume must take over from the checkpoint
custom_hooks = [dict(type='PauseAfterIter')]
"""
FAULTS = '''"""Fault injection for test_resume_faults (test side only)."""
import builtins
import os
import time

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

MARKER = os.environ.get('FAULT_MARKER', '')
PAUSE_AFTER = int(os.environ.get('FAULT_PAUSE_AFTER_ITER', '0'))
STALL = os.environ.get('FAULT_STALL_WRITE', '')  # a file name: its write stops half-way
_open, _fdopen = builtins.open, os.fdopen


def _hang():
    with _open(MARKER, 'w'):
        pass
    time.sleep(600)  # the test kills the process now


@HOOKS.register_module()
class PauseAfterIter(Hook):
    priority = 'LOWEST'  # after the checkpoint hook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == PAUSE_AFTER:
            _hang()


class _HalfWriter:
    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        _hang()

    def __enter__(self):
        return self

    __exit__ = lambda self, *exc: self._f.__exit__(*exc)
    __getattr__ = lambda self, name: getattr(self._f, name)


def _stalled(f, name, mode):
    return _HalfWriter(f) if 'r' not in mode and STALL in os.path.basename(str(name)) else f


if STALL:  # whichever way the file is opened: open(path) or os.fdopen(os.open(path))
    builtins.open = lambda file, mode='r', *a, **k: _stalled(_open(file, mode, *a, **k), file, mode)
    os.fdopen = lambda fd, mode='r', *a, **k: _stalled(
        _fdopen(fd, mode, *a, **k), os.readlink(f'/proc/self/fd/{fd}'), mode)
'''


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, toy_root):
    root = tmp_path_factory.mktemp('resume_faults')
    (root / 'mods').mkdir()
    (root / 'mods' / 'hvit_faults.py').write_text(FAULTS)
    (root / 'tiny_mae.py').write_text(TINY)
    return root


def _start(tiny, work, *args, **faults):
    """tools/train.py on the tiny config in its own process group; output to files (a pipe that
    nobody reads would block the run)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([str(tiny / 'mods'), os.environ.get('PYTHONPATH', '')]),
               FAULT_MARKER=str(tiny / f'{work.name}.hung'))
    env.update({f'FAULT_{k.upper()}': str(v) for k, v in faults.items()})
    cmd = [sys.executable, 'tools/train.py', str(tiny / 'tiny_mae.py'), '--work-dir', str(work),
           *map(str, args)]
    with open(tiny / f'{work.name}.out', 'w') as out, open(tiny / f'{work.name}.err', 'w') as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err,
                                start_new_session=True)
    proc.logs = tiny / f'{work.name}.out', tiny / f'{work.name}.err'
    return proc


def _finish(proc, timeout=300):
    proc.wait(timeout=timeout)
    out, err = (p.read_text() for p in proc.logs)
    assert proc.returncode == 0, f'exit {proc.returncode}\n{out[-3000:]}\n{err[-3000:]}'
    return out, err


def _kill_when_hung(proc, tiny, work, timeout=300):
    """SIGKILL the run (no cleanup, as a pre-empted job) once the injected fault holds it."""
    marker = tiny / f'{work.name}.hung'
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if not marker.exists():
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f'the fault never fired (exit {proc.wait()}):\n'
                    + proc.logs[1].read_text()[-3000:])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    marker.unlink()


def _losses(work, before=()):
    """{iteration: loss} from the json scalars of the runs whose log folders are not in before."""
    found = {}
    for scalars in sorted(work.glob('*/vis_data/scalars.json')):
        if scalars.parent.parent.name in before:
            continue
        for line in scalars.read_text().splitlines():
            rec = json.loads(line)
            if 'loss' in rec:
                found[rec['iter']] = rec['loss']
    return found


_runs = lambda work: {p.name for p in work.iterdir() if p.is_dir()}  # noqa: E731  (log folders)


def _assert_same(resumed, reference, iters):
    assert set(iters) <= set(resumed), (sorted(resumed), iters)
    got, want = [resumed[i] for i in iters], [reference[i] for i in iters]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=f'iterations {iters}')


class _Reference:
    """An uninterrupted run of the same 12 iterations with a given seed, in the background."""

    def __init__(self, tiny):
        self.work, self.tiny, self.proc = tiny / 'reference', tiny, None

    def start(self, seed: int) -> None:
        self.proc = _start(self.tiny, self.work, '--cfg-options', f'randomness.seed={seed}')

    def result(self):
        if self.proc is None:
            self.start(0)
        _finish(self.proc)
        return self.work, _losses(self.work)


@pytest.fixture(scope='module')
def reference(tiny):
    ref = _Reference(tiny)
    yield ref
    if ref.proc is not None and ref.proc.poll() is None:
        os.killpg(ref.proc.pid, signal.SIGKILL)
        ref.proc.wait()


@pytest.mark.slow
def test_sigkill_between_and_during_a_checkpoint_write_resumes_exactly(tiny, reference):
    work = tiny / 'killed'
    # 1. killed between checkpoints: after iteration 5 (iter_3.pth written, iter_6.pth not yet)
    _kill_when_hung(_start(tiny, work, pause_after_iter=5), tiny, work)
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_3.pth']
    # the seed this run drew (randomness.seed=None): the reference runs with it, from the start
    reference.start(torch.load(work / 'iter_3.pth', weights_only=True)['meta']['seed'])
    # 2. --resume from iter_3; killed while iter_9.pth is half written
    first = _runs(work)
    _kill_when_hung(_start(tiny, work, '--resume', stall_write='iter_9.pth'), tiny, work)
    after_first_resume = _losses(work, first)
    names = sorted(p.name for p in work.iterdir() if p.is_file())
    assert 'iter_9.pth' not in names and 'iter_6.pth' in names, names
    partial = [p for p in work.iterdir() if 'iter_9.pth' in p.name]  # half of it, named otherwise
    assert partial and partial[0].stat().st_size > 0, names
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_6.pth')
    assert ckpt.checkpoint_problem(str(work / 'iter_6.pth')) is None
    # 3. --resume from iter_6 to the end
    second = _runs(work)
    out, err = _finish(_start(tiny, work, '--resume'))
    assert 'hvit_mm: warning' not in err, err[-2000:]
    assert not list(work.glob('.*.tmp')), 'the interrupted save left its temp file behind'
    _, want = reference.result()
    _assert_same(after_first_resume, want, range(4, 10))
    _assert_same(_losses(work, second), want, range(7, 13))


@pytest.mark.slow
def test_corrupt_newest_checkpoint_is_named_and_skipped(tiny, reference):
    ref_work, want = reference.result()
    work = tiny / 'corrupt'
    shutil.copytree(ref_work, work, ignore=shutil.ignore_patterns('2*'))  # no earlier logs
    newest = work / 'iter_12.pth'
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated on disk after it was written
    (work / 'last_checkpoint').write_text(str(newest))
    out, err = _finish(_start(tiny, work, '--resume'))
    warnings = [line for line in err.splitlines() if line.startswith('hvit_mm: warning:')]
    assert len(warnings) == 1 and str(newest) in warnings[0], err[-3000:]
    assert str(work / 'iter_9.pth') in warnings[0]
    _assert_same(_losses(work), want, range(10, 13))


# ------------------------------------------------------------------ the pieces, in-process
def _save(path, step, **extra):
    torch.save(dict(meta=dict(iter=step, epoch=0, seed=7), state_dict={'w': torch.ones(3)},
                    **extra), path)
    return str(path)


class _Payload:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        return (os.system, (f'touch {self.flag}',))


_write_pointer = lambda folder, path: (folder / 'last_checkpoint').write_text(str(path))  # noqa


@pytest.mark.parametrize('damage', ['empty', 'truncated', 'bitflip', 'text', 'payload',
                                    'not_a_checkpoint'])
def test_each_kind_of_corrupt_newest_falls_back(tmp_path, capsys, damage):
    older = _save(tmp_path / 'iter_4.pth', 4)
    newest = tmp_path / 'iter_8.pth'
    _save(newest, 8)
    data = newest.read_bytes()
    flag = tmp_path / 'payload_ran'
    if damage == 'empty':
        newest.write_bytes(b'')
    elif damage == 'truncated':
        newest.write_bytes(data[:len(data) // 2])
    elif damage == 'bitflip':  # a flipped byte in the tensor data: only the zip CRC tells
        with zipfile.ZipFile(newest) as z:
            at = next(i for i in z.infolist() if '/data/' in i.filename).header_offset
        raw = bytearray(data)  # the record's bytes follow its local header and extra field
        name_len, extra_len = (int.from_bytes(raw[at + o:at + o + 2], 'little') for o in (26, 28))
        raw[at + 30 + name_len + extra_len + 1] ^= 0xFF
        newest.write_bytes(bytes(raw))
    elif damage in ('text', 'payload'):
        newest.write_bytes(b'text' if damage == 'text' else pickle.dumps(_Payload(flag)))
    else:
        torch.save([torch.ones(2)], newest)
    _write_pointer(tmp_path, newest)
    assert ckpt.find_resume_checkpoint(str(tmp_path)) == older
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('hvit_mm: warning: checkpoint ') and \
        str(newest) in err[0] and older in err[0], err
    assert not flag.exists(), 'a pickled payload ran'


def test_nothing_complete_is_one_error_line(tmp_path, capsys):
    _write_pointer(tmp_path, tmp_path / 'iter_8.pth')  # mmengine deleted iter_4 before this save
    (tmp_path / '.iter_8.pth.0123456789ab.tmp').write_bytes(b'PK\x03\x04half')
    with pytest.raises(ConfigError, match='no complete checkpoint.*iter_8.pth'):
        ckpt.find_resume_checkpoint(str(tmp_path))
    assert list(tmp_path.glob('.*.tmp')), 'an error must leave the work dir as it was'
    (tmp_path / 'iter_8.pth').write_bytes(b'')
    with pytest.raises(ConfigError):
        ckpt.find_resume_checkpoint(str(tmp_path))
    # through the tool: exit 2 and one line
    train = load_tool('tools/train.py')
    with pytest.raises(SystemExit) as e:
        train.main([str(TOY_MAE), '--work-dir', str(tmp_path), '--resume'])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith('hvit_mm: error: --resume: no complete'), err


def test_what_is_resumed_from(tmp_path, capsys):
    assert ckpt.find_resume_checkpoint(str(tmp_path)) is None  # a fresh work dir: start afresh
    _save(tmp_path / 'iter_4.pth', 4)
    assert ckpt.find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    _save(tmp_path / 'iter_12.pth', 12)  # from an earlier, longer run in the same folder
    _save(tmp_path / 'iter_8.pth', 8)
    _write_pointer(tmp_path, tmp_path / 'iter_8.pth')
    assert ckpt.find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_8.pth')
    (tmp_path / 'iter_8.pth').write_bytes(b'')  # never newer than last_checkpoint on fallback
    assert ckpt.find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_4.pth')
    _write_pointer(tmp_path, '/moved/away/iter_12.pth')  # the work dir was moved since
    assert ckpt.find_resume_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_12.pth')
    _write_pointer(tmp_path, 's3://bucket/iter_8.pth')  # remote: mmengine's lookup
    assert ckpt.find_resume_checkpoint(str(tmp_path)) is None
    assert capsys.readouterr().err.count('hvit_mm: warning:') == 1


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    import random
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    path = _save(tmp_path / 'iter_1.pth', 1, rng=ckpt.rng_state())
    want = torch.rand(4), np.random.rand(4), random.random(), np.random.randn()
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    ckpt.set_rng_state(torch.load(path, weights_only=True)['rng'])
    got = torch.rand(4), np.random.rand(4), random.random(), np.random.randn()
    assert torch.equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert got[2:] == want[2:]


def test_enable_exact_resume_adds_the_hook_once_and_pins_the_seed(tmp_path):
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')], randomness=dict(seed=None)))
    cfg = ckpt.enable_exact_resume(ckpt.enable_exact_resume(cfg))
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook', 'ResumeStateHook']
    assert cfg.randomness['seed'] is None  # not resuming: untouched
    cfg.resume, cfg.load_from = True, _save(tmp_path / 'iter_2.pth', 2)
    assert ckpt.enable_exact_resume(cfg).randomness['seed'] == 7
    cfg.randomness = dict(seed=1)  # the user's explicit seed wins (mmengine warns)
    assert ckpt.enable_exact_resume(cfg).randomness['seed'] == 1
    cfg.randomness, cfg.load_from = dict(seed=None), str(tmp_path / 'iter_2.pth')
    (tmp_path / 'iter_2.pth').write_bytes(b'\0' * 10)
    with pytest.raises(ConfigError, match='iter_2.pth'):
        ckpt.enable_exact_resume(cfg)


def test_last_checkpoint_is_written_atomically(tmp_path):
    from mmengine.hooks import checkpoint_hook
    assert checkpoint_hook.open is ckpt._open
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text('old')
    with pytest.raises(RuntimeError):
        with checkpoint_hook.open(str(pointer), 'w') as f:
            f.write('new')
            raise RuntimeError('killed mid-write')
    assert pointer.read_text() == 'old' and not list(tmp_path.glob('.*'))
    with checkpoint_hook.open(str(pointer), 'w') as f:
        f.write('new')
    assert pointer.read_text() == 'new'
    with checkpoint_hook.open(str(pointer)) as f:  # reads are untouched
        assert f.read() == 'new'


def _is_pretraining(cfg) -> bool:
    if cfg.get('default_scope') != 'mmpretrain' or 'model' not in cfg:
        return False
    from mmpretrain.models.selfsup import BaseSelfSupervisor
    from mmpretrain.registry import MODELS
    cls = MODELS.get(cfg.model.get('type'))
    return isinstance(cls, type) and issubclass(cls, BaseSelfSupervisor)


def test_every_pretraining_config_keeps_at_least_two_checkpoints(monkeypatch):
    """mmengine deletes the oldest checkpoint before writing the next: with one kept, a run killed
    while saving has nothing complete to resume from."""
    import functools

    import mmengine.config.config as config_module
    import mmengine.config.utils as config_utils
    # mmengine re-reads a codebase's ~85 metafiles for each 'mmpretrain::...' base: read them once
    monkeypatch.setattr(config_utils, 'load', functools.lru_cache(maxsize=None)(config_utils.load))
    monkeypatch.setattr(config_module, 'is_installed',
                        functools.lru_cache(maxsize=None)(config_module.is_installed))
    pretraining, bad = [], []
    for path in sorted((REPO / 'configs').rglob('*.py')):
        if '_base_' in path.parts:
            continue
        cfg = Config.fromfile(str(path), import_custom_modules=False)
        if not _is_pretraining(cfg):
            continue
        pretraining.append(path.name)
        keep = ((cfg.get('default_hooks') or {}).get('checkpoint') or {}).get('max_keep_ckpts', -1)
        if 0 <= keep < 2:
            bad.append(f'{path.relative_to(REPO)}: max_keep_ckpts={keep}')
    assert TOY_MAE.name in pretraining and len(pretraining) >= 10, pretraining
    assert not bad, 'keep at least 2 checkpoints (max_keep_ckpts >= 2, or -1 for all):\n' + \
        '\n'.join(bad)
