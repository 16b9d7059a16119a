"""NonFiniteGuardHook: a non-finite loss term or gradient skips the optimizer step (parameters and
optimizer state unchanged, the run goes on); more than ``max_skips`` in a row stop the run with
NonFiniteError before the checkpoint hook runs, so the newest checkpoint stays byte-identical."""
import copy
import glob
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from hvit_mm.engine.guards import NonFiniteError, NonFiniteGuardHook, add_default_guards
from tests.conftest import REPO
from tests.configs.tiny import tiny_override

NAN = float('nan')


class TwoTerms(BaseModel):
    """y = fc(x) with two loss terms; ``bad_loss`` / ``bad_grad``: 1-based iterations to poison."""

    def __init__(self, bad_loss=(), bad_grad=()):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)
        self.bad_loss, self.bad_grad, self.calls = set(bad_loss), set(bad_grad), 0
        self.fc.weight.register_hook(
            lambda g: g * NAN if self.calls in self.bad_grad else g)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        if mode != 'loss':
            return out
        self.calls += 1
        loss_b = out.abs().mean()
        if self.calls in self.bad_loss:
            loss_b = loss_b * NAN
        return dict(loss_a=out.pow(2).mean(), loss_b=loss_b)


class Recorder(Hook):
    """After every iteration (after the checkpoint hook): parameters, AdamW state, newest checkpoint."""

    priority = 'LOWEST'

    def __init__(self):
        self.params, self.states, self.ckpts = [], [], []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.params.append([p.detach().clone() for p in runner.model.parameters()])
        self.states.append(copy.deepcopy(runner.optim_wrapper.optimizer.state_dict()['state']))
        last = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            path = open(last).read().strip()
            self.ckpts.append((path, open(path, 'rb').read()))


def make_runner(tmp_path, model, max_iters, max_skips, by_epoch=False, interval=3):
    data = [dict(inputs=torch.randn(4, generator=torch.Generator().manual_seed(i)))
            for i in range(6)]
    recorder = Recorder()
    train_cfg = (dict(by_epoch=True, max_epochs=max_iters // 3) if by_epoch
                 else dict(by_epoch=False, max_iters=max_iters))
    runner = Runner(
        model=model, work_dir=str(tmp_path), experiment_name=f'nonfinite_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=data, batch_size=2, num_workers=0,
                              # InfiniteSampler: mmengine pauses 2 s wherever a DefaultSampler ends
                              sampler=dict(type='DefaultSampler' if by_epoch else 'InfiniteSampler',
                                           shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=train_cfg, default_scope='mmpretrain',
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=by_epoch,
                                           interval=interval, max_keep_ckpts=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='NonFiniteGuardHook', max_skips=max_skips), recorder])
    return runner, recorder


def log_text(runner) -> str:
    return ''.join(open(p).read() for p in glob.glob(osp.join(runner.log_dir, '*.log')))


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def same_state(a, b) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k][n], b[k][n]) for k in a for n in a[k])


def test_nonfinite_loss_term_skips_one_step_and_the_run_goes_on(tmp_path):
    runner, rec = make_runner(tmp_path, TwoTerms(bad_loss={3}), max_iters=6, max_skips=1)
    runner.train()
    assert len(rec.params) == 6
    assert same(rec.params[2], rec.params[1]) and same_state(rec.states[2], rec.states[1])
    assert not same(rec.params[3], rec.params[2])  # training continued after the skip
    assert all(torch.isfinite(p).all() for p in rec.params[-1])
    log = log_text(runner)
    assert 'iteration 3: non-finite loss loss_b=nan; optimizer step skipped' in log, log[-2000:]
    assert 'loss_a=' not in log  # only the bad term is named
    assert '1 optimizer step(s) skipped in this run' in log


def test_nonfinite_gradient_is_named_and_skipped(tmp_path):
    runner, rec = make_runner(tmp_path, TwoTerms(bad_grad={2}), max_iters=4, max_skips=1)
    runner.train()
    assert same(rec.params[1], rec.params[0]) and same_state(rec.states[1], rec.states[0])
    assert not same(rec.params[2], rec.params[1])
    assert 'iteration 2: non-finite gradient in fc.weight' in log_text(runner)


@pytest.mark.parametrize('by_epoch', [False, True])
def test_too_many_consecutive_skips_stop_without_touching_the_checkpoint(tmp_path, by_epoch):
    # 3 iterations per epoch; checkpoints at iteration 3 and 6 (epochs 1 and 2, max_keep_ckpts=1);
    # NaN from iteration 7: skips 7, 8, stops at 9, just where the next checkpoint would be written
    runner, rec = make_runner(tmp_path, TwoTerms(bad_loss=range(7, 100)), max_iters=12,
                              max_skips=2, by_epoch=by_epoch, interval=1 if by_epoch else 3)
    with pytest.raises(NonFiniteError) as exc:
        runner.train()
    msg = str(exc.value)
    assert '\n' not in msg
    assert 'non-finite loss loss_b=nan' in msg and 'max_skips=2' in msg, msg
    assert '3 consecutive optimizer steps skipped' in msg
    ckpt_path, ckpt_bytes = rec.ckpts[-1]
    name = 'epoch_2.pth' if by_epoch else 'iter_6.pth'
    assert osp.basename(ckpt_path) == name and ckpt_path in msg and 'iteration 6' in msg
    assert open(ckpt_path, 'rb').read() == ckpt_bytes  # byte-identical
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.pth'))) == [name]
    assert open(tmp_path / 'last_checkpoint').read().strip() == ckpt_path
    final = [p.detach() for p in runner.model.parameters()]
    assert same(final, rec.params[5])  # the weights of iteration 6, not NaN


def test_max_skips_zero_stops_at_the_first_and_bad_values_are_refused(tmp_path):
    runner, _ = make_runner(tmp_path, TwoTerms(bad_loss={2}), max_iters=4, max_skips=0)
    with pytest.raises(NonFiniteError, match='at iteration 2: .*none saved yet'):
        runner.train()
    for bad in (-1, 1.5, True, '3'):
        with pytest.raises(ValueError, match='max_skips must be an int >= 0'):
            NonFiniteGuardHook(max_skips=bad)


def test_add_default_guards_adds_each_guard_once():
    cfg = Config(dict(
        custom_hooks=[dict(type='EMAHook')],
        train_dataloader=dict(dataset=dict(type='RepeatDataset', times=2, dataset=dict(
            type='ImageNet', data_root='x', pipeline=[dict(type='LoadImageFromFile'),
                                                      dict(type='PackInputs')]))),
        val_dataloader=dict(dataset=dict(type='ImageNet', data_root='x',
                                         pipeline=[dict(type='LoadImageFromFile')]))))
    add_default_guards(add_default_guards(cfg))
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook', 'NonFiniteGuardHook', 'BadDataHook']
    inner = cfg.train_dataloader.dataset.dataset
    assert inner.type == 'CheckedDataset' and inner.dataset.type == 'ImageNet'
    assert inner.dataset.pipeline[0].type == 'SafeLoadImageFromFile'
    assert cfg.val_dataloader.dataset.dataset.pipeline[0].type == 'LoadImageFromFile'  # val: as is
    # a config that configures the hook keeps its settings
    cfg = Config(dict(custom_hooks=[dict(type='hvit_mm.NonFiniteGuardHook', max_skips=3)]))
    assert add_default_guards(cfg).custom_hooks == [dict(type='hvit_mm.NonFiniteGuardHook',
                                                         max_skips=3)]


def test_real_mae_with_a_nan_image_skips_that_step(toy_root, tmp_path):
    cfg = tiny_override(Config.fromfile(str(REPO / 'configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy'
                                               '-in1k.py')), str(toy_root))
    cfg.train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_cfg.max_iters = 3
    cfg.default_hooks.checkpoint.interval = 100
    cfg.default_hooks.logger.interval = 1
    cfg.update(work_dir=str(tmp_path), experiment_name=f'nonfinite_mae_{uuid.uuid4().hex}')
    rec = Recorder()
    runner = Runner.from_cfg(add_default_guards(cfg))
    runner.register_hook(rec)
    preprocess, calls = runner.model.data_preprocessor.forward, [0]

    def poisoned(data, training=False):
        out = preprocess(data, training)
        calls[0] += 1
        if calls[0] == 2:
            out['inputs'][1, :, :8, :8] = NAN  # one corner of one image
        return out

    runner.model.data_preprocessor.forward = poisoned
    runner.train()
    assert len(rec.params) == 3
    assert same(rec.params[1], rec.params[0]) and not same(rec.params[2], rec.params[1])
    assert 'iteration 2: non-finite loss loss=nan; optimizer step skipped' in log_text(runner)
