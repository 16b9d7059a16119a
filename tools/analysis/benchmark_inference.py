"""Inference throughput of hvit_mm models against reference implementations, same weights, same run.

    python tools/analysis/benchmark_inference.py hiera-b --batch 8 --rounds 15
    python tools/analysis/benchmark_inference.py hiera-b --device cuda --batch 64 --docs docs/benchmarks.md

A *suite* builds every contender with one set of weights (hvit_mm's model loads the reference's
converted state dict), checks that their outputs agree before anything is timed, then times them
interleaved: after ``--warmup`` calls each, every round runs each contender once (the order rotates
every round, so drift and thermal effects hit all alike). Reported: the median seconds per batch,
images/s = batch / median, and hvit_mm's speed ratio to each reference. ``--docs`` writes the table
into its own marked section of a markdown file, leaving the other sections as they are.

Add a suite for another backbone with ``@suite('name')`` on a function ``(args) -> Suite``.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, NamedTuple

import torch
from torch import Tensor, nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


class Contender(NamedTuple):
    label: str
    model: nn.Module
    run: Callable[[nn.Module, Tensor], Tensor]  # timed call: model, images -> output


class Suite(NamedTuple):
    title: str
    contenders: List[Contender]  # hvit_mm's first
    check: Callable[[Tensor], Dict[str, float]]  # images -> max abs output difference per reference


SUITES: Dict[str, Callable[[argparse.Namespace], Suite]] = {}


def suite(name: str):
    def wrap(fn):
        SUITES[name] = fn
        return fn
    return wrap


def _hiera_suite(arch: str, timm_name: str, official_name: str):
    def build(args) -> Suite:
        import timm
        from mmpretrain.registry import MODELS

        import hvit_mm  # noqa: F401
        from hvit_mm.checkpoints.hiera import convert
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            import hiera as official
        torch.manual_seed(0)
        ref = getattr(official, official_name)(pretrained=False)
        for p in ref.parameters():  # off the tiny head init, so the output check is meaningful
            p.data.add_(0.02 * torch.randn_like(p))
        sd = ref.state_dict()
        ours = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='Hiera', arch=arch, out_indices=(3,), out_type='avg_featmap'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=ref.norm.normalized_shape[0])))
        ours.load_state_dict(convert(sd), strict=True)
        tm = timm.create_model(timm_name, pretrained=False)
        tm_sd = {('head.norm.' + k[5:] if k.startswith('norm.') else
                  'head.fc.' + k[16:] if k.startswith('head.projection.') else k): v
                 for k, v in sd.items()}
        tm.load_state_dict(tm_sd, strict=True)
        for m in (ref, ours, tm):
            m.eval()

        def check(x: Tensor) -> Dict[str, float]:
            with torch.inference_mode():
                logits = ours(x, mode='tensor')
                ref.train()  # the official head softmaxes in eval mode: compare pre-softmax logits
                want = ref(x)
                ref.eval()
                return {'official': (want - logits).abs().max().item(),
                        'timm': (tm(x) - logits).abs().max().item()}

        return Suite(f'Hiera-{arch} classifier (1000 classes)', [
            Contender('hvit_mm', ours, lambda m, x: m(x, mode='tensor')),
            Contender('official (hiera-transformer)', ref, lambda m, x: m(x)),
            Contender(f'timm ({timm_name})', tm, lambda m, x: m(x))], check)
    return build


suite('hiera-t')(_hiera_suite('tiny', 'hiera_tiny_224', 'hiera_tiny_224'))
suite('hiera-b')(_hiera_suite('base', 'hiera_base_224', 'hiera_base_224'))


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(contenders: List[Contender], x: Tensor, warmup: int, rounds: int
                     ) -> Dict[str, List[float]]:
    times = {c.label: [] for c in contenders}
    with torch.inference_mode():
        for c in contenders:
            for _ in range(warmup):
                c.run(c.model, x)
        sync(x.device)
        for r in range(rounds):
            order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
            for c in order:
                sync(x.device)
                t0 = time.perf_counter()
                c.run(c.model, x)
                sync(x.device)
                times[c.label].append(time.perf_counter() - t0)
    return times


def device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {torch.get_num_threads()} threads'


def render(name: str, title: str, args, device: torch.device, diffs: Dict[str, float],
           times: Dict[str, List[float]]) -> str:
    labels = list(times)
    med = {k: statistics.median(v) for k, v in times.items()}
    ips = {k: args.batch / med[k] for k in labels}
    ours = labels[0]
    dtype = 'fp16 autocast' if args.fp16 else 'float32'
    lines = [f'## {title}: inference, {device.type.upper()}',
             '',
             f'`python tools/analysis/benchmark_inference.py {name} --device {device.type} '
             f'--batch {args.batch} --img {args.img} --rounds {args.rounds}'
             f'{" --fp16" if args.fp16 else ""}` on {device_name(device)}; torch {torch.__version__}, '
             f'{dtype}, batch {args.batch}, {args.img}², {args.warmup} warm-up calls, median of '
             f'{args.rounds} interleaved rounds; {datetime.date.today().isoformat()}. Same weights '
             'in all; max abs logit difference to hvit_mm: '
             + ', '.join(f'{k} {v:.1e}' for k, v in diffs.items()) + '.',
             '',
             '| implementation | ms / batch (median) | images/s | hvit_mm speed-up |',
             '| --- | ---: | ---: | ---: |']
    for k in labels:
        ratio = '—' if k == ours else f'{ips[ours] / ips[k]:.2f}×'
        lines.append(f'| {k} | {1000 * med[k]:.1f} | {ips[k]:.1f} | {ratio} |')
    return '\n'.join(lines) + '\n'


def write_section(path: str, key: str, text: str) -> None:
    """Replace (or append) the block between this key's markers; the rest of the file is kept."""
    begin, end = f'<!-- benchmark:{key} -->', f'<!-- /benchmark:{key} -->'
    block = f'{begin}\n{text}{end}\n'
    old = open(path).read() if os.path.exists(path) else '# Benchmarks\n'
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip('\n')
        new = head + block + ('\n' + tail if tail else '')
    else:
        new = old.rstrip('\n') + '\n\n' + block
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(new)
    os.replace(tmp, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('suite', choices=sorted(SUITES))
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--img', type=int, default=224)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (torch default)')
    parser.add_argument('--fp16', action='store_true', help='CUDA autocast to float16')
    parser.add_argument('--tol', type=float, default=1e-4, help='max abs logit difference allowed')
    parser.add_argument('--docs', default=None, help='markdown file to write the table into')
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    s = SUITES[args.suite](args)
    for c in s.contenders:
        c.model.to(device)
    x = torch.randn(args.batch, 3, args.img, args.img, device=device)
    diffs = s.check(x[:2])
    if max(diffs.values()) > args.tol:
        raise SystemExit(f'outputs differ ({diffs}); not timing models that compute different '
                         'things')
    contenders = s.contenders
    if args.fp16:
        contenders = [c._replace(run=lambda m, x, run=c.run: _autocast(run, m, x))
                      for c in contenders]
    times = time_interleaved(contenders, x, args.warmup, args.rounds)
    text = render(args.suite, s.title, args, device, diffs, times)
    print(text)
    if args.docs:
        write_section(args.docs, f'{args.suite}:{device.type}{":fp16" if args.fp16 else ""}', text)
        print(f'wrote the section into {args.docs}')


def _autocast(run, m, x):
    with torch.autocast('cuda', dtype=torch.float16):
        return run(m, x)


if __name__ == '__main__':
    main()
