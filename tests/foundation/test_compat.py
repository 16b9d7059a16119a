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


@pytest.mark.parametrize('umask, want', [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_checkpoint_file_mode_follows_the_umask(tmp_path, umask, want):
    old = os.umask(umask)
    try:
        LocalBackend().put(b'ckpt', str(tmp_path / 'epoch_1.pth'))
        LocalBackend().put_text('epoch_1.pth', str(tmp_path / 'last_checkpoint'))
    finally:
        os.umask(old)
    for name in ('epoch_1.pth', 'last_checkpoint'):
        assert (tmp_path / name).stat().st_mode & 0o777 == want, name


def test_overwritten_file_keeps_its_mode(tmp_path):
    target = tmp_path / 'last_checkpoint'
    target.write_text('old')
    target.chmod(0o640)
    LocalBackend().put_text('new', str(target))
    assert target.read_text() == 'new' and target.stat().st_mode & 0o777 == 0o640


def test_patches_are_gated_on_the_mmengine_version():
    names = [p.name for p in compat.PATCHES]
    assert names == ['weights_only', 'collate_scope', 'cpu_distributed', 'atomic_checkpoints',
                     'resume_lookup']
    assert [p.name for p in compat.patches_for('0.10.7')] == names
    assert compat.patches_for('0.11.0') == [] and compat.patches_for('0.8.2') == []
    import mmengine
    assert compat.APPLIED == [p.name for p in compat.patches_for(mmengine.__version__)]


def test_every_patch_is_documented():
    from tests.conftest import REPO
    readme = (REPO / 'README.md').read_text()
    section = readme.split('## What hvit_mm.compat changes in mmengine', 1)[1].split('\n## ', 1)[0]
    for patch in compat.PATCHES:
        assert f'``{patch.name}``' in compat.__doc__, patch.name
        assert f'`{patch.name}`' in section, patch.name


def _record(calls, name):
    return lambda *args, **kwargs: calls.append((name, args, kwargs))


@pytest.mark.parametrize('device, gloo', [('cpu', True), ('npu', False), ('mlu', False),
                                          ('cuda', False)])
def test_distributed_init_follows_mmengine_device(monkeypatch, device, gloo):
    """Only mmengine's 'cpu' takes the gloo path; other accelerators keep mmengine's own."""
    import mmengine.device
    import mmengine.dist.utils as dist_utils
    calls = []
    monkeypatch.setattr(mmengine.device, 'get_device', lambda: device)
    monkeypatch.setattr(torch.distributed, 'init_process_group', _record(calls, 'torch'))
    monkeypatch.setattr(dist_utils._init_dist_pytorch, '__wrapped__', _record(calls, 'mmengine'))
    dist_utils._init_dist_pytorch('nccl')
    assert calls[0][0] == ('torch' if gloo else 'mmengine')
    if gloo:
        assert calls[0][2]['backend'] == 'gloo'


@pytest.mark.parametrize('device, dropped', [('cpu', True), ('npu', False), ('musa', False)])
def test_ddp_device_ids_follow_mmengine_device(monkeypatch, device, dropped):
    import mmengine.device
    from mmengine.model.wrappers.distributed import MMDistributedDataParallel
    calls = []
    monkeypatch.setattr(mmengine.device, 'get_device', lambda: device)
    monkeypatch.setattr(MMDistributedDataParallel.__init__, '__wrapped__', _record(calls, 'ddp'))
    MMDistributedDataParallel.__init__(object(), module=None, device_ids=[0], output_device=0)
    assert ('device_ids' not in calls[0][2]) == dropped


def test_resume_falls_back_only_from_a_missing_local_file(tmp_path):
    (tmp_path / 'iter_10.pth').write_bytes(b'x')
    assert compat.find_latest_checkpoint(str(tmp_path)) is None  # no last_checkpoint: mmengine's
    for remote in ('s3://bucket/run/iter_20.pth', 'petrel://run/iter_20.pth'):
        (tmp_path / 'last_checkpoint').write_text(remote)  # another file backend: not ours to judge
        assert compat.find_latest_checkpoint(str(tmp_path)) == remote
