"""What tools/train.py and tools/test.py share: work dir, launcher, AMP, resume, errors."""
import os.path as osp
import sys

import torch
from mmengine.config import Config

from .config_check import ConfigError


def fail(error: Exception) -> None:
    """One line on stderr and exit status 2, instead of a traceback, for a user mistake."""
    print(f'hvit_mm: error: {error}', file=sys.stderr)
    sys.exit(2)


def prepare_runner_cfg(cfg: Config, args, config_path: str) -> Config:
    """Apply the command-line switches shared by training and testing."""
    cfg.launcher = args.launcher
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])
    if args.launcher != 'none' and not torch.cuda.is_available():
        # NCCL needs GPUs: CPU-only machines run distributed jobs over gloo
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    if getattr(args, 'amp', False):
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); drop --amp on CPU')
        wrapper = cfg.optim_wrapper if 'optim_wrapper' in cfg else None
        if wrapper is not None and wrapper.get('type', 'OptimWrapper') != 'AmpOptimWrapper':
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
            if torch.cuda.is_bf16_supported():
                wrapper.setdefault('dtype', 'bfloat16')
        elif wrapper is None:
            cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    resume = getattr(args, 'resume', None)
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume:
        if not osp.isfile(resume):
            raise ConfigError(f'--resume: checkpoint not found: {resume}')
        cfg.resume, cfg.load_from = True, resume
    return cfg
