"""Numerical-fault guard: skip optimizer steps whose loss or gradients are not finite, then stop.

``NonFiniteGuardHook`` wraps the runner's optim wrapper(s) at ``before_train``. Every model of
mmpretrain, mmdet and mmseg trains through ``model.train_step -> optim_wrapper.update_params(loss)
-> optim_wrapper.step()``, so two instance-level wrappers see everything:

- ``update_params`` records whether the summed loss of each micro-batch is finite (with gradient
  accumulation a bad micro-batch poisons the accumulated gradients, so flags are OR-ed until the step);
- ``step`` decides: a non-finite loss, or (plain ``OptimWrapper`` only) a non-finite gradient, skips the
  wrapped ``step`` entirely, so neither parameters nor optimizer state (Adam moments, step count) change;
  ``update_params`` then zeroes the gradients as usual.

``AmpOptimWrapper``: inf/NaN *gradients* are the GradScaler's business (it skips the step and lowers
the scale), so only the loss is checked there; a non-finite loss is a forward-pass fault no scale fixes.

In a data-parallel run the decision is all-reduced (MAX), so every rank skips the same steps and the
replicas stay identical. ``after_train_iter`` names the non-finite loss terms (the model's loss dict,
e.g. ``loss_rpn_cls``) or the first parameter with a non-finite gradient, and raises
:class:`NonFiniteError` once more than ``max_skips`` consecutive steps were skipped. The hook runs
before the checkpoint hook (priority ``HIGH`` vs ``VERY_LOW``), so no checkpoint is written for the
failing iteration or its epoch: the newest checkpoint on disk stays the last good one.
"""
import math
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import all_reduce, is_distributed
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapperDict

from ..registry import register_module
from .hooks import ensure_hook

HOOK_TYPE = 'NonFiniteGuardHook'


class NonFiniteError(FloatingPointError):
    """Training stopped after too many consecutive non-finite steps (one-line message for the CLI)."""


def _is_finite(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value.detach()).all())
    if isinstance(value, (list, tuple)):
        return all(_is_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def _fmt(value) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return f'{value}' if isinstance(value, float) else 'non-finite'


@register_module('HOOKS')
class NonFiniteGuardHook(Hook):
    """Skip optimizer steps with a non-finite loss or gradient; stop after ``max_skips`` in a row.

    Args:
        max_skips: consecutive non-finite steps that are skipped; the next one stops the run with
            :class:`NonFiniteError`. 0 stops at the first. A finite step resets the count.
        check_grads: also check the gradients of a plain (non-AMP) ``OptimWrapper`` before its step
            (one ``amax`` per parameter tensor and one host sync per step).
    """

    priority = 'HIGH'  # after_train_iter must run before CheckpointHook (VERY_LOW) saves anything

    def __init__(self, max_skips: int = 10, check_grads: bool = True) -> None:
        if isinstance(max_skips, bool) or not isinstance(max_skips, int) or max_skips < 0:
            raise ValueError(f'{HOOK_TYPE}: max_skips must be an int >= 0, got {max_skips!r}')
        self.max_skips = max_skips
        self.check_grads = bool(check_grads)
        self.consecutive = 0
        self.total_skipped = 0
        self.last_good_iter = 0
        self._bad_loss = False
        self._bad_param: Optional[str] = None
        self._skipped_now: List[str] = []  # reasons for steps skipped during the current iteration
        self._names = {}

    # -- wiring -------------------------------------------------------------------------------
    def before_train(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        self._names = {id(p): n for n, p in model.named_parameters()}
        wrappers = runner.optim_wrapper
        wrappers = wrappers.values() if isinstance(wrappers, OptimWrapperDict) else [wrappers]
        for wrapper in wrappers:
            if not getattr(wrapper, '_hvit_mm_nonfinite_guard', False):
                self._wrap(wrapper)
        self.last_good_iter = runner.iter

    def _wrap(self, wrapper) -> None:
        orig_update, orig_step = wrapper.update_params, wrapper.step
        check_grads = self.check_grads and not isinstance(wrapper, AmpOptimWrapper)

        def update_params(loss, *args, **kwargs):
            if isinstance(loss, torch.Tensor):
                self._device = loss.device
                self._bad_loss |= not bool(torch.isfinite(loss.detach()).all())
            return orig_update(loss, *args, **kwargs)

        def step(*args, **kwargs):
            reason = self._check(wrapper, check_grads)
            if reason is None:
                return orig_step(*args, **kwargs)
            self._skipped_now.append(reason)

        wrapper.update_params, wrapper.step = update_params, step
        wrapper._hvit_mm_nonfinite_guard = True

    def _check(self, wrapper, check_grads: bool) -> Optional[str]:
        """None when the step may go ahead, else 'loss' or 'grad'; the same on every rank."""
        bad_loss, self._bad_loss = self._bad_loss, False
        bad_grad, self._bad_param = False, None
        grads = []
        if check_grads:
            grads = [(p, p.grad) for group in wrapper.optimizer.param_groups for p in group['params']
                     if p.grad is not None and p.grad.numel()]
        if grads:
            # amax propagates NaN and, unlike a norm, cannot overflow to inf on large finite values
            peaks = torch.stack([g.detach().abs().amax().float() for _, g in grads])
            finite = torch.isfinite(peaks)
            bad_grad = not bool(finite.all())
            if bad_grad:
                p = grads[int((~finite).nonzero()[0])][0]
                self._bad_param = self._names.get(id(p), f'a parameter of shape {tuple(p.shape)}')
        device = grads[0][1].device if grads else getattr(self, '_device', torch.device('cpu'))
        if is_distributed():
            flags = torch.tensor([float(bad_loss), float(bad_grad)], device=device)
            all_reduce(flags, op='max')
            bad_loss, bad_grad = bool(flags[0]), bool(flags[1])
        if bad_loss:
            return 'loss'
        return 'grad' if bad_grad else None

    # -- reporting ----------------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        skipped, self._skipped_now = self._skipped_now, []
        iteration = runner.iter + 1  # as mmengine's log shows it
        if not skipped:
            self.consecutive = 0
            self.last_good_iter = iteration
            return
        self.consecutive += 1
        self.total_skipped += 1
        what = self._describe(skipped, outputs)
        if self.consecutive > self.max_skips:
            ckpt = self._last_checkpoint(runner)
            raise NonFiniteError(
                f'training stopped at iteration {iteration}: {what}, {self.consecutive} consecutive '
                f'optimizer steps skipped (max_skips={self.max_skips}); the weights are those of '
                f'iteration {self.last_good_iter} and the newest checkpoint ({ckpt}) was not '
                'overwritten. Fix: lower optim_wrapper.optimizer.lr, set optim_wrapper.clip_grad, '
                'use bfloat16 instead of float16, or check the data; resume with --resume')
        runner.logger.warning(
            f'{HOOK_TYPE}: iteration {iteration}: {what}; optimizer step skipped, parameters and '
            f'optimizer state unchanged ({self.consecutive}/{self.max_skips} consecutive skips)')

    def _describe(self, skipped: List[str], outputs) -> str:
        terms = []
        if isinstance(outputs, dict):
            terms = [f'{k}={_fmt(v)}' for k, v in outputs.items()
                     if k != 'loss' and 'loss' in k and not _is_finite(v)]
            if not terms and 'loss' in outputs and not _is_finite(outputs['loss']):
                terms = [f'loss={_fmt(outputs["loss"])}']
        if 'loss' in skipped:
            return 'non-finite loss ' + (', '.join(terms) if terms else '(summed loss)')
        return f'non-finite gradient in {self._bad_param or "a parameter (another rank)"}'

    @staticmethod
    def _last_checkpoint(runner) -> str:
        marker = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(marker):
            with open(marker) as f:
                return f.read().strip() or 'none saved yet'
        return 'none saved yet'

    def after_train(self, runner) -> None:
        if self.total_skipped:
            runner.logger.warning(f'{HOOK_TYPE}: {self.total_skipped} optimizer step(s) skipped in '
                                  'this run because of non-finite losses or gradients')


def add_default_guards(cfg):
    """Add the training guards to a runner config unless it configures them already; returns cfg.

    - ``NonFiniteGuardHook`` (defaults) into ``custom_hooks``;
    - the bad-data guards of :func:`hvit_mm.datasets.add_data_guards`: ``SafeLoadImageFromFile`` in
      the training pipelines, ``BadDataHook``, and the build-time empty-dataset check.
    """
    from ..datasets import add_data_guards
    ensure_hook(cfg, HOOK_TYPE)
    return add_data_guards(cfg)
