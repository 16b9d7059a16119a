"""The compatibility fixes of hvit_mm.compat, each against the failure it prevents."""
import os

import numpy as np
import pytest
import torch
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.logging import MessageHub

import hvit_mm.compat as compat


def _runner_like_checkpoint(path):
    hub = MessageHub('compat-test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('iter', np.int64(3))
    torch.save({'meta': {'epoch': 1, 'iter': 3, 'seed': np.int64(0)},
                'state_dict': {'w': torch.ones(2)},
                'message_hub': hub.state_dict()}, path)


def test_runner_checkpoint_loads_weights_only(tmp_path):
    path = tmp_path / 'iter_3.pth'
    _runner_like_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)  # the torch >= 2.6 default mmengine relies on
    assert ckpt['meta']['iter'] == 3
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1.5


def test_without_the_allow_list_it_fails(tmp_path):
    path = tmp_path / 'iter_3.pth'
    _runner_like_checkpoint(path)
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(Exception, match='weights_only|Unsupported global'):
            torch.load(path, weights_only=True)
    finally:
        torch.serialization.add_safe_globals(saved)


def test_arbitrary_objects_stay_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'x': compat.atomic_write}, path)  # a function: must never unpickle by default
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)


def test_local_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_1.pth'
    LocalBackend().put(b'complete checkpoint', str(target))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed mid-write')
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        LocalBackend().put(b'half', str(target))
    assert target.read_bytes() == b'complete checkpoint'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']  # no temp file left


def test_resume_skips_a_dangling_last_checkpoint(tmp_path):
    for i in (1, 2, 10):
        (tmp_path / f'iter_{i}.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_20.pth'))  # never written
    assert compat.find_latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_10.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert compat.find_latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_2.pth')
    import mmengine.runner.runner as runner
    assert runner.find_latest_checkpoint is compat.find_latest_checkpoint


def test_collate_fn_inherited_from_a_package_base_builds():
    from mmengine.dataset import DefaultSampler  # noqa: F401  (registers the sampler)
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate', _scope_='mmpretrain'),  # as a mmpretrain:: base gives it
        dataset=[{'x': torch.tensor(float(i))} for i in range(4)]))
    assert next(iter(loader))['x'].tolist() == [0.0, 1.0]
