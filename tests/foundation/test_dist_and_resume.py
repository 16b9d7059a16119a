"""Distributed training on CPU (gloo) keeps ranks identical; a killed run resumes where it stopped."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, run_tool

pytestmark = pytest.mark.slow
CFG = 'configs/toy/resnet18_1xb16-toy_in1k.py'


def test_dist_train_two_cpu_processes_hold_identical_parameters(toy_root, tmp_path):
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = '{REPO / CFG}'\n"
                   "custom_hooks = [dict(type='ParamConsistencyHook')]\n")
    proc = run_tool('tools/dist_train.sh', cfg, 2, '--work-dir', tmp_path / 'work', '--cfg-options',
                    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=8',
                    env={'PORT': str(29500 + os.getpid() % 1000)})
    log = next((tmp_path / 'work').glob('*/*.log')).read_text()
    assert 'Distributed training: True' in log, log[-3000:]
    digests = [(tmp_path / 'work' / f'param_digest_rank{r}.txt').read_text() for r in (0, 1)]
    assert digests[0] == digests[1] and len(digests[0]) == 64
    # training changed the weights (the digests do not just agree because nothing moved)
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', log), log[-3000:]
    # each rank's RNG states are in the checkpoint, for an exact --resume (hvit_mm.engine.checkpoint)
    rng = torch.load(tmp_path / 'work' / 'epoch_1.pth', weights_only=True)['rng']
    assert rng['world_size'] == 2 and len(rng['ranks']) == 2, sorted(rng)


def _adamw_cfg(tmp_path):
    cfg = tmp_path / 'resume_cfg.py'
    cfg.write_text(f"_base_ = '{REPO / CFG}'\n"
                   "optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-3))\n"
                   "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=10))\n"
                   "val_cfg = None\nval_dataloader = None\nval_evaluator = None\n")
    return cfg


def test_killed_run_resumes_from_its_last_checkpoint(toy_root, tmp_path):
    cfg, work = _adamw_cfg(tmp_path), tmp_path / 'work'
    cmd = [sys.executable, 'tools/train.py', str(cfg), '--work-dir', str(work),
           '--cfg-options', 'train_cfg.max_epochs=50']
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.time() + 300
    while not (work / 'epoch_1.pth').exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # as a pre-empted job dies: no cleanup
    first.wait()
    assert (work / 'epoch_1.pth').exists(), 'no checkpoint was written before the deadline'
    done = sorted(int(p.stem.split('_')[1]) for p in work.glob('epoch_*.pth'))
    last = done[-1]
    assert last < 50

    out = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                   '--cfg-options', f'train_cfg.max_epochs={last + 1}').stdout
    assert f'resumed epoch: {last}, iter: {2 * last}' in out, out[-3000:]
    final = torch.load(work / f'epoch_{last + 1}.pth', weights_only=True)
    assert final['meta']['epoch'] == last + 1 and final['meta']['iter'] == 2 * (last + 1)
    # AdamW's step counter continued from the checkpoint instead of restarting at 0
    steps = {float(s['step']) for s in final['optimizer']['state'].values()}
    assert steps == {2.0 * (last + 1)}, steps
