#!/usr/bin/env python
"""Evaluate a checkpoint with an mmpretrain, mmdet or mmseg config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same args]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import hvit_mm  # noqa: E402,F401
from hvit_mm.config_check import ConfigError, load_config, preflight  # noqa: E402
from hvit_mm.launch import fail, prepare_runner_cfg  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='hvit_mm: evaluate a checkpoint')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file, or an hvit://NAME of the model zoo')
    p.add_argument('--work-dir', help='where logs go (default: ./work_dirs/<config name>)')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        args.resume = None
        cfg = prepare_runner_cfg(cfg, args, config_path=args.config)
        if not args.checkpoint.startswith('hvit://') and not osp.isfile(args.checkpoint):
            raise ConfigError(f'checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
        preflight(cfg, ('test',))
    except ConfigError as e:
        fail(e)
    from mmengine.runner import Runner
    Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    main()
