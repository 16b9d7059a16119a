"""Benchmark HPViT-B variants against plain ViT-B/16 and Swin-B, all in one run.

For every (model, input size) pair a separate worker process measures:

* parameters;
* FLOPs of one forward (2 x multiply-adds) with ``torch.utils.flop_counter.FlopCounterMode``,
  counted on the ``meta`` device (shapes only, so even infeasible variants get a count; meta runs SDPA as
  explicit matmuls, which the counter sees; equal to a CPU count, see ``--check-flops``);
* images/s (batch ``--batch``, ``torch.inference_mode``, after warm-up);
* peak memory: on CPU the worker's peak RSS (``ru_maxrss``, so every model is measured alone), on
  CUDA ``torch.cuda.max_memory_allocated``.

Variants whose largest global attention exceeds ``--max-global-tokens`` (CPU default 16384: HPViT's
stride-4 global stage at 1024² has 65536 tokens, ~7 TMACs per block) are not timed; their FLOPs are
still reported and the table says why they were skipped.

    python tools/analysis/benchmark_backbones.py --sizes 224 1024 --update-docs docs/benchmarks.md
"""
import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

HPVIT = dict(type='HPViT', arch='base', img_size=224)
WINDOW12 = ('window', 'window', 'global', 'global')
MODELS = {
    'ViT-B/16': dict(type='ViT', arch='base', img_size=224),
    'Swin-B': dict(type='mmdet.SwinTransformer', pretrain_img_size=224, embed_dims=128,
                   depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7,
                   out_indices=(0, 1, 2, 3)),
    'HPViT-B avg, global': dict(HPVIT, pool='avg', attn_types=('global',) * 4),
    'HPViT-B conv, global': dict(HPVIT, pool='conv', attn_types=('global',) * 4),
    'HPViT-B avg, window 1-2': dict(HPVIT, pool='avg', attn_types=WINDOW12),
    'HPViT-B conv, window 1-2': dict(HPVIT, pool='conv', attn_types=WINDOW12),
}
BEGIN, END = '<!-- hpvit-benchmark:begin -->', '<!-- hpvit-benchmark:end -->'


def largest_global_attention(name: str, size: int) -> int:
    """Tokens of the largest global attention the model runs on a size² input."""
    cfg = MODELS[name]
    if cfg['type'] == 'ViT':
        return (size // 16) ** 2 + 1
    if cfg['type'] == 'HPViT':
        first = cfg['attn_types'].index('global')
        return (size // (4 * 2 ** first)) ** 2
    return cfg['window_size'] ** 2  # Swin: windows only


def window_for(size: int) -> int:
    """HPViT's window (tokens): one that tiles the stride-4 and stride-8 grids without padding
    (14 at 224², 16 at 1024², as in the configs)."""
    return 14 if (size // 8) % 14 == 0 else 16


def build(name: str, size: int):
    import hvit_mm  # noqa: F401  (registers HPViT and ViT into mmdet's MODELS)
    import mmdet.models  # noqa: F401  (registers SwinTransformer)
    from mmdet.registry import MODELS as REGISTRY
    cfg = dict(MODELS[name])
    if cfg['type'] == 'HPViT':
        cfg['window_size'] = window_for(size)
    model = REGISTRY.build(cfg)
    model.init_weights()
    model.eval()  # not chained: mmdet's SwinTransformer.train() returns None
    return model


def count_flops(model, size: int, batch: int) -> int:
    """FLOPs of one forward on ``batch`` size² images, counted on the meta device."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model = model.to('meta')
    with FlopCounterMode(display=False, custom_mapping=cpu_sdpa_mapping()) as counter, \
            torch.no_grad():
        model(torch.empty(batch, 3, size, size, device='meta'))
    return counter.get_total_flops()


def cpu_sdpa_mapping() -> dict:
    """PyTorch's counter has no formula for the CPU flash kernel; it is the same attention."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_sdpa(q, k, v, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(q, k, v)
    return {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}


def worker(args) -> dict:
    """Measure one (model, size) in this process; prints one JSON line."""
    import torch
    torch.manual_seed(0)
    model = build(args.model, args.size)
    row = dict(model=args.model, size=args.size, device=args.device,
               params=sum(p.numel() for p in model.parameters()))
    limit = args.max_global_tokens
    tokens = largest_global_attention(args.model, args.size)
    if tokens > limit:
        row['skipped'] = f'global attention over {tokens} tokens > {limit}'
    else:
        dev = torch.device(args.device)
        model = model.to(dev)
        x = torch.randn(args.batch, 3, args.size, args.size, device=dev)
        sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
        with torch.inference_mode():
            for _ in range(args.warmup):
                model(x)
            sync()
            if dev.type == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            for _ in range(args.iters):
                model(x)
            sync()
            elapsed = time.perf_counter() - start
        row['images_per_s'] = args.batch * args.iters / elapsed
        if dev.type == 'cuda':
            row['peak_mem_mib'] = torch.cuda.max_memory_allocated() / 2 ** 20
        else:  # kilobytes on Linux
            row['peak_mem_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        model = model.cpu()
    row['flops'] = count_flops(model, args.size, args.batch)
    print('RESULT ' + json.dumps(row), flush=True)
    return row


def run_all(args) -> list:
    rows = []
    for size in args.sizes:
        warmup, iters = (args.warmup, args.iters) if size <= 512 else (args.warmup_large,
                                                                         args.iters_large)
        for name in args.models:
            cmd = [sys.executable, __file__, '--worker', '--model', name, '--size', str(size),
                   '--device', args.device, '--batch', str(args.batch), '--warmup', str(warmup),
                   '--iters', str(iters), '--max-global-tokens', str(args.max_global_tokens)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
            if proc.returncode or not lines:
                row = dict(model=name, size=size, device=args.device,
                           error=proc.stdout.strip().splitlines()[-1:] or ['no output'])
            else:
                row = json.loads(lines[-1][len('RESULT '):])
            row['wall_s'] = time.perf_counter() - start
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def table(rows: list, args) -> str:
    import torch
    device = (torch.cuda.get_device_name(0) if args.device == 'cuda'
              else f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores')
    mem = 'peak CUDA alloc (MiB)' if args.device == 'cuda' else 'peak RSS (MiB)'
    lines = [f'Device: {args.device} ({device}), torch {torch.__version__}, fp32, batch '
             f'{args.batch}; warm-up/timed iterations {args.warmup}/{args.iters} at 224², '
             f'{args.warmup_large}/{args.iters_large} at 1024². GFLOPs = 2 × multiply-adds of one '
             'forward (`torch.utils.flop_counter`).', '',
             f'| model | input | params (M) | GFLOPs | images/s | {mem} | note |',
             '| --- | --- | ---: | ---: | ---: | ---: | --- |']
    notes = ['', 'Models: ViT-B/16 is hvit_mm `ViT` (cls token, position table resampled at '
             "1024²); Swin-B is mmdet's `SwinTransformer` (window 7, four outputs); HPViT-B is "
             "`HPViT` (arch 'base', 14×14 stored position grid, pools after blocks 1/3/9, all four "
             "outputs) with `pool='avg'` or `'conv'`, and either global attention everywhere or "
             'windows in stages 1–2 (strides 4 and 8) of 14×14 tokens at 224² and 16×16 at 1024² '
             '(they tile both grids without padding, as in the configs). Not timed: variants whose '
             f'largest global attention exceeds {args.max_global_tokens} tokens on this device — '
             'HPViT-B global at 1024² attends over 256² = 65536 tokens at stride 4 (~7 TMACs per '
             'block, a 65536² logit matrix per head); their FLOPs are still counted (meta '
             'device).']
    for r in rows:
        ips = f"{r['images_per_s']:.3g}" if 'images_per_s' in r else '—'
        mem_v = f"{r['peak_mem_mib']:.0f}" if 'peak_mem_mib' in r else '—'
        note = r.get('skipped', '') and f"not timed: {r['skipped']}"
        note = note or (f"error: {r['error'][0]}" if 'error' in r else '')
        params = f"{r['params'] / 1e6:.1f}" if 'params' in r else '—'
        flops = f"{r['flops'] / 1e9:.1f}" if 'flops' in r else '—'
        lines.append(f"| {r['model']} | {r['size']}² | {params} | {flops} | {ips} | {mem_v} | "
                     f'{note} |')
    return '\n'.join(lines + notes)


def update_docs(path: str, text: str) -> None:
    """Replace (or append) the HPViT section between the markers; other sections stay intact."""
    body = f'{BEGIN}\n{text}\n{END}'
    old = open(path).read() if os.path.isfile(path) else '# Benchmarks\n'
    if BEGIN in old and END in old:
        new = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), lambda _: body, old, flags=re.S)
    else:
        new = old.rstrip('\n') + '\n\n## HPViT backbones\n\n' + body + '\n'
    with open(path, 'w') as f:
        f.write(new)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    p.add_argument('--sizes', nargs='+', type=int, default=[224, 1024])
    p.add_argument('--device', default='cpu')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--warmup-large', type=int, default=0, help='warm-up iterations above 512²')
    p.add_argument('--iters-large', type=int, default=1, help='timed iterations above 512²')
    p.add_argument('--max-global-tokens', type=int, default=None,
                   help='skip timing above this (default 16384 on CPU, 65536 on CUDA)')
    p.add_argument('--update-docs', default=None, help='write the table into this markdown file')
    p.add_argument('--json', default=None, help='also dump the rows here')
    p.add_argument('--render', default=None, help='render the table of a --json dump, no timing')
    p.add_argument('--check-flops', action='store_true',
                   help='assert meta-device FLOPs equal a real CPU count at 224² for each model')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--model', help=argparse.SUPPRESS)
    p.add_argument('--size', type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.max_global_tokens is None:
        args.max_global_tokens = 65536 if args.device.startswith('cuda') else 16384
    return args


def check_flops(args) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    for name in args.models:
        model = build(name, 224)
        with FlopCounterMode(display=False, custom_mapping=cpu_sdpa_mapping()) as c, \
                torch.no_grad():
            model(torch.randn(1, 3, 224, 224))
        meta = count_flops(model, 224, 1)
        assert c.get_total_flops() == meta, (name, c.get_total_flops(), meta)
        print(f'{name}: {meta / 1e9:.2f} GFLOPs on cpu and meta')


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if args.check_flops:
        return check_flops(args)
    if args.render:  # re-render a saved run (same measurements), e.g. after a format change
        with open(args.render) as f:
            run = json.load(f)
        rows, meta = run['rows'], run['meta']
    else:
        start, load = time.perf_counter(), os.getloadavg()[0]
        rows = run_all(args)
        meta = dict(wall_s=time.perf_counter() - start, load_start=load,
                    load_end=os.getloadavg()[0], cores=os.cpu_count())
    text = table(rows, args)
    # other jobs on the machine slow the rows unevenly: say what the load was
    text += (f"\n\nWhole run: {meta['wall_s']:.0f} s; 1-minute load average "
             f"{meta['load_start']:.1f} at the start, {meta['load_end']:.1f} at the end ({meta['cores']} cores)."
             + (f" {meta['note']}" if meta.get('note') else ''))
    print(text)
    if args.json and not args.render:
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)
    if args.update_docs:
        update_docs(args.update_docs, text)


if __name__ == '__main__':
    main()
