#!/usr/bin/env python
"""Evaluate a checkpoint with an mmpretrain, mmdet or mmseg config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same args]
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import hvit_mm  # noqa: E402,F401
from hvit_mm.config_check import ConfigError, load_config, preflight  # noqa: E402
from hvit_mm.launch import (BuildGuard, ToolParser, add_common_args, check_checkpoint,  # noqa: E402
                            debug_enabled, prepare_runner_cfg)


def parse_args(argv=None):
    p = ToolParser(description='hvit_mm: evaluate a checkpoint')
    p.add_argument('config', help='config file path')
    p.add_argument('checkpoint', help='checkpoint file, or an hvit://NAME of the model zoo')
    p.add_argument('--work-dir', help='where logs go (default: ./work_dirs/<config name>)')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    add_common_args(p)  # --cfg-options, --debug
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    # bad input -> one `hvit_mm: error:` line, exit 2, the work dir as it was; bugs keep tracebacks
    with BuildGuard(debug_enabled(args)) as guard:
        cfg = load_config(args.config, args.cfg_options)
        args.resume = None
        cfg = prepare_runner_cfg(cfg, args, config_path=args.config)
        if not args.checkpoint.startswith('hvit://') and not osp.exists(args.checkpoint):
            raise ConfigError(f'checkpoint not found: {args.checkpoint}')
        cfg.load_from = args.checkpoint
        preflight(cfg, ('test',))
        runner = guard.build_runner(cfg)
        check_checkpoint(runner, 'CHECKPOINT')  # refuses a file that does not fit the model
        runner.test()


if __name__ == '__main__':
    main()
