#!/usr/bin/env python
"""Train with an mmpretrain, mmdet or mmseg config (its ``default_scope`` decides the codebase).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    tools/dist_train.sh CONFIG GPUS [same args]      # torchrun; gloo on machines without CUDA
"""
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a source checkout

import hvit_mm  # noqa: E402,F401  (compat fixes + registration before any config is built)
from hvit_mm.config_check import ConfigError, load_config, preflight  # noqa: E402
from hvit_mm.engine.checkpoint import enable_exact_resume  # noqa: E402
from hvit_mm.engine.guards import add_default_guards  # noqa: E402
from hvit_mm.launch import (BuildGuard, ToolParser, add_common_args, check_checkpoint,  # noqa: E402
                            debug_enabled, prepare_runner_cfg)


def parse_args(argv=None):
    p = ToolParser(description='hvit_mm: train a model')
    p.add_argument('config', help='config file path')
    p.add_argument('--work-dir', help='where logs and checkpoints go '
                   '(default: ./work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='resume from CKPT, or from the latest checkpoint in the work dir')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help='scale the lr by the actual / base batch size')
    p.add_argument('--no-validate', action='store_true', help='skip validation during training')
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
        cfg = prepare_runner_cfg(cfg, args, config_path=args.config)
        cfg = enable_exact_resume(cfg)  # RNG states in checkpoints, restored on --resume
        if args.no_validate:
            for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
                cfg[key] = None
        if args.auto_scale_lr:
            if 'auto_scale_lr' not in cfg:
                raise ConfigError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
            cfg.auto_scale_lr.enable = True
        # mmpretrain's inherited val_cfg=dict() is falsy but still validates: check its data too
        validates = cfg.get('val_dataloader') is not None and cfg.get('val_cfg') is not None
        preflight(cfg, ('train', 'val') if validates else ('train',))
        cfg = add_default_guards(cfg)  # non-finite steps skipped, bad images skipped and counted
        runner = guard.build_runner(cfg)
        check_checkpoint(runner)  # load_from / --resume FILE: readable and fitting the model
        runner.train()


if __name__ == '__main__':
    main()
