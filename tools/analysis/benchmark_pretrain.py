#!/usr/bin/env python
"""Time the training step (forward + backward + optimizer) of two pretraining configs side by side.

    python tools/analysis/benchmark_pretrain.py CONFIG_A CONFIG_B [--batch-size B] [--iters N]
        [--warmup W] [--img-size S] [--threads T] [--device cpu|cuda] [--cfg-options k=v ...]
        [--cfg-options-a k=v ...] [--cfg-options-b k=v ...] [--json OUT]

Configs of any scope load (``mmpretrain::mae/....py`` names a config shipped in a wheel); each side
is built from its config's ``model`` and ``optim_wrapper`` (AMP only on CUDA) and fed the same
synthetic batch of ``--img-size`` images; ``--cfg-options`` apply to both sides, then
``--cfg-options-a`` / ``-b`` to one (one config against itself with one setting changed). Each side
runs in its own process, so the CPU peak memory is that process's peak RSS; on CUDA it is
``torch.cuda.max_memory_allocated``. On CPU the table also gives the peak *above the process's RSS
before the model was built* (the interpreter and the imported libraries, the same on both sides),
which counts what CUDA's allocator counts: weights, gradients, optimizer state and the step's
activations. After ``--warmup`` steps each, the two processes take turns
step by step (so both see the same load on a shared machine); times are medians over ``--iters``
steps, with the same ``torch.set_num_threads`` on both sides. OUT holds ``{"a": {"sec_per_iter",
"images_per_sec", "peak_mem_mb", "model_mem_mb"}, "b": {...}, "speedup", "mem_ratio",
"model_mem_ratio"}`` with speedup = b time / a time, mem_ratio = a peak / b peak and
model_mem_ratio the same over the peaks above the pre-model RSS (equal to mem_ratio on CUDA);
``gflops_per_step`` is one training step (forward + backward) counted by torch's
``FlopCounterMode`` after the warm-up, and flop_ratio = b FLOPs / a FLOPs: the speed-up the
arithmetic alone would give.
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def resolve(path: str) -> str:
    """``pkg::rel/path.py`` -> the file shipped in that package's ``.mim/configs``."""
    if '::' not in path:
        return path
    from mmengine.utils import get_installed_path
    pkg, rel = path.split('::', 1)
    return osp.join(get_installed_path(pkg), '.mim', 'configs', rel)


def build(config: str, cfg_options: dict, device: str):
    """The config's model (in its own default scope) and optimizer wrapper, on ``device``."""
    import torch  # noqa: F401
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    sys.path.insert(0, REPO)
    import hvit_mm  # noqa: F401  (compat fixes, registrations)
    cfg = Config.fromfile(resolve(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    base_rss_mb = rss_mb()
    model_cfg = cfg.model
    if cfg.get('data_preprocessor') and isinstance(model_cfg, dict):
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper' and device == 'cpu':
        wrapper = dict(wrapper, type='OptimWrapper')
        wrapper.pop('loss_scale', None)
    return model.train(), build_optim_wrapper(model, wrapper), base_rss_mb


def rss_mb() -> float:
    """The process's resident set now (Linux ``/proc``; 0 where it is not available)."""
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20
    except (OSError, ValueError, IndexError):
        return 0.0


def run_side(args) -> None:
    """Child process: build one config, warm up, then time one training step per ``step`` line on
    stdin (the parent alternates the two sides step by step, so both see the same machine load);
    ``done`` reports the peak memory. Replies are stdout lines prefixed with ``@@``."""
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = args.device
    model, optim, base_rss_mb = build(args.config, args.cfg_options, device)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)

    def step():
        with optim.optim_context(model):
            losses = model(x, [], mode='loss')  # preprocessed batch: the data_preprocessor is skipped
        loss, _ = model.parse_losses(losses)
        optim.update_params(loss)
        if device == 'cuda':
            torch.cuda.synchronize()
    for _ in range(args.warmup):
        step()
    # one more step under the FLOP counter (matmuls, convolutions, attention; forward + backward)
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    gflops = counter.get_total_flops() / 1e9
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    print('@@ready', flush=True)
    for line in sys.stdin:
        if line.strip() == 'step':
            t = time.perf_counter()
            step()
            print(f'@@{time.perf_counter() - t}', flush=True)
        elif line.strip() == 'done':
            break
    if device == 'cuda':
        peak = model_peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        model_peak = peak - base_rss_mb
    print(f'@@{peak} {model_peak} {gflops}', flush=True)


class Side:
    """A child process running :func:`run_side` for one config."""

    def __init__(self, args, config: str, cfg_options: dict):
        self.config = config
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        self.proc = subprocess.Popen(child_cmd(args, config, cfg_options), env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.log = []

    def reply(self) -> str:
        for line in self.proc.stdout:
            if line.startswith('@@'):
                return line[2:].strip()
            self.log.append(line)
        raise SystemExit(f'benchmark of {self.config} failed:\n{"".join(self.log)[-4000:]}')

    def send(self, cmd: str) -> str:
        self.proc.stdin.write(cmd + '\n')
        self.proc.stdin.flush()
        return self.reply()


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config_a')
    p.add_argument('config_b', nargs='?')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--iters', type=int, default=5, help='timed steps (median reported)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                   help='torch.set_num_threads, the same on both sides')
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='applied to both configs')
    p.add_argument('--cfg-options-a', nargs='+', action=DictAction, default={},
                   help='applied to CONFIG_A only, after --cfg-options')
    p.add_argument('--cfg-options-b', nargs='+', action=DictAction, default={},
                   help='applied to CONFIG_B only, after --cfg-options')
    p.add_argument('--json', help='write the results here')
    p.add_argument('--side', action='store_true', help=argparse.SUPPRESS)  # internal: child mode
    return p.parse_args(argv)


def child_cmd(args, config: str, cfg_options: dict):
    cmd = [sys.executable, osp.abspath(__file__), config, '--side',
           '--batch-size', str(args.batch_size), '--iters', str(args.iters),
           '--warmup', str(args.warmup), '--img-size', str(args.img_size),
           '--threads', str(args.threads), '--device', args.device]
    if cfg_options:
        cmd += ['--cfg-options'] + [f'{k}={v}' for k, v in cfg_options.items()]
    return cmd


def main(argv=None):
    args = parse_args(argv)
    if args.side:
        return run_side(argparse.Namespace(**dict(vars(args), config=args.config_a)))
    if not args.config_b:
        raise SystemExit('benchmark_pretrain.py: two configs are needed (CONFIG_A CONFIG_B)')
    sides = {key: Side(args, config, {**args.cfg_options, **extra})
             for key, config, extra in (('a', args.config_a, args.cfg_options_a),
                                        ('b', args.config_b, args.cfg_options_b))}
    for side in sides.values():  # built and warmed up one after the other
        side.reply()
    times = {'a': [], 'b': []}
    for i in range(args.iters):  # a, b, b, a, a, b, ...: neither side always goes first
        for key in (('a', 'b') if i % 2 == 0 else ('b', 'a')):
            times[key].append(float(sides[key].send('step')))
    results = {}
    for key, side in sides.items():
        peak, model_peak, gflops = map(float, side.send('done').split())
        side.proc.wait()
        sec = statistics.median(times[key])
        results[key] = dict(sec_per_iter=sec, images_per_sec=args.batch_size / sec,
                            peak_mem_mb=peak, model_mem_mb=model_peak, gflops_per_step=gflops,
                            times=times[key])
    a, b = results['a'], results['b']
    keys = ('sec_per_iter', 'images_per_sec', 'peak_mem_mb', 'model_mem_mb', 'gflops_per_step')
    summary = dict(a={k: a[k] for k in keys}, b={k: b[k] for k in keys},
                   speedup=b['sec_per_iter'] / a['sec_per_iter'],
                   mem_ratio=a['peak_mem_mb'] / b['peak_mem_mb'],
                   model_mem_ratio=a['model_mem_mb'] / b['model_mem_mb'],
                   flop_ratio=b['gflops_per_step'] / a['gflops_per_step'],
                   step_times=dict(a=a['times'], b=b['times']),  # seconds, in the order run
                   settings=dict(batch_size=args.batch_size, iters=args.iters, warmup=args.warmup,
                                 img_size=args.img_size, threads=args.threads, device=args.device,
                                 config_a=args.config_a, config_b=args.config_b,
                                 cfg_options=args.cfg_options, cfg_options_a=args.cfg_options_a,
                                 cfg_options_b=args.cfg_options_b))
    mem = 'peak RSS (MB) | above pre-model RSS' if args.device == 'cpu' else 'max allocated'
    print(f'| side | config | s/iter (median of {args.iters}) | images/s | {mem} (MB) |')
    print('| --- | --- | --- | --- | --- |' + (' --- |' if args.device == 'cpu' else ''))
    for side, config, extra in (('a', args.config_a, args.cfg_options_a),
                                ('b', args.config_b, args.cfg_options_b)):
        r = summary[side]
        config = ' '.join([config] + [f'{k}={v}' for k, v in extra.items()])
        above = f' {r["model_mem_mb"]:.0f} |' if args.device == 'cpu' else ''
        print(f'| {side} | {config} | {r["sec_per_iter"]:.3f} | {r["images_per_sec"]:.2f} | '
              f'{r["peak_mem_mb"]:.0f} |{above}')
    print(f'speedup (b time / a time): {summary["speedup"]:.2f}x; '
          f'mem_ratio (a / b): {summary["mem_ratio"]:.2f}; '
          f'above pre-model RSS: {summary["model_mem_ratio"]:.2f}; FLOPs per step (b / a): '
          f'{b["gflops_per_step"]:.1f} / {a["gflops_per_step"]:.1f} G = {summary["flop_ratio"]:.2f}x')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(summary, f, indent=2)
    return summary


if __name__ == '__main__':
    main()
