#!/usr/bin/env python
"""The pretraining benchmark ratios as a bar chart: per comparison (one JSON file written by
``tools/analysis/benchmark_pretrain.py --json``), the speed-up of A over B and A's peak memory as a
fraction of B's.

    python tools/visualization/vis_benchmarks.py JSON [JSON ...] --out OUT.png [--title T]

The JSON contract is benchmark_pretrain's: ``speedup`` (B time / A time), ``mem_ratio`` (A peak / B
peak), ``model_mem_ratio`` (the same above the pre-model RSS; what CUDA's allocator counts), and
``a`` / ``b`` with ``sec_per_iter`` and ``peak_mem_mb``; a missing ratio is computed from those,
a ``null`` one is shown as "n/a". An optional ``label`` names the bar (the file name otherwise).
The committed chart: ``docs/images/benchmarks/*.json`` -> ``docs/images/benchmark_ratios.png``.
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # vis_common, also when loaded by path


def _ratio(res: Dict, key: str, num, den) -> Optional[float]:
    if key in res:
        return res[key]
    try:
        return num(res) / den(res)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def read_comparison(path: str) -> Dict:
    """One JSON file -> ``dict(label, speedup, mem_ratio, model_mem_ratio)`` (None = not known)."""
    try:
        with open(path) as f:
            res = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'vis_benchmarks: {path} is not JSON ({e}); give files written by '
                         'tools/analysis/benchmark_pretrain.py --json') from None
    if not any(k in res for k in ('speedup', 'mem_ratio', 'a')):
        raise KeyError(f"vis_benchmarks: {path} has none of 'speedup', 'mem_ratio', 'a'/'b'; "
                       'is it a tools/analysis/benchmark_pretrain.py --json output?')
    return dict(
        label=res.get('label') or osp.splitext(osp.basename(path))[0],
        speedup=_ratio(res, 'speedup', lambda r: r['b']['sec_per_iter'],
                       lambda r: r['a']['sec_per_iter']),
        mem_ratio=_ratio(res, 'mem_ratio', lambda r: r['a']['peak_mem_mb'],
                         lambda r: r['b']['peak_mem_mb']),
        model_mem_ratio=_ratio(res, 'model_mem_ratio', lambda r: r['a']['model_mem_mb'],
                               lambda r: r['b']['model_mem_mb']))


def _bars(ax, ys, values, height, color, label, fmt):
    """Horizontal bars at ``ys``; a None value gets an "n/a" mark instead of a bar."""
    known = [(y, v) for y, v in zip(ys, values) if v is not None]
    if known:
        bars = ax.barh([y for y, _ in known], [v for _, v in known], height, color=color,
                       label=label)
        ax.bar_label(bars, labels=[fmt.format(v) for _, v in known], padding=2, fontsize=7)
    for y, v in zip(ys, values):
        if v is None:
            ax.text(0.02, y, 'n/a', va='center', fontsize=7, color='0.4')
    return len(known)


def render(comparisons: Sequence[Dict], out: str, title: Optional[str] = None) -> Dict:
    """comparisons: :func:`read_comparison` results -> PNG with two panels (speed-up; memory);
    returns ``dict(out=, comparisons=, bars=)`` (bars drawn, n/a excluded)."""
    from vis_common import new_figure, save_figure
    if not comparisons:
        raise ValueError('vis_benchmarks: no comparisons given; pass JSON files of '
                         'tools/analysis/benchmark_pretrain.py --json')
    n = len(comparisons)
    fig = new_figure(10.5, 1.0 + 0.55 * n + (0.3 if title else 0))
    speed, mem = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))[::-1]  # first file on top
    drawn = _bars(speed, ys, [c['speedup'] for c in comparisons], 0.6, '#2b7bba', None,
                  '{:.2f}x')
    speed.axvline(1, color='0.3', lw=0.8, ls='--')
    speed.set_title('speed-up of A (B time / A time), higher is better', fontsize=9)
    speed.set_yticks(ys)
    speed.set_yticklabels([c['label'] for c in comparisons], fontsize=8)
    drawn += _bars(mem, [y + 0.18 for y in ys], [c['model_mem_ratio'] for c in comparisons], 0.36,
                   '#d9822b', 'above pre-model RSS', '{:.2f}')
    drawn += _bars(mem, [y - 0.18 for y in ys], [c['mem_ratio'] for c in comparisons], 0.36,
                   '#f2c28f', 'whole process', '{:.2f}')
    mem.axvline(1, color='0.3', lw=0.8, ls='--')
    mem.set_title('peak memory of A / B, lower is better', fontsize=9)
    mem.legend(fontsize=7, loc='upper right')
    for ax in (speed, mem):
        ax.set_xlim(0, max([1.2] + [1.15 * v for c in comparisons for v in
                                    ((c['speedup'],) if ax is speed else
                                     (c['mem_ratio'], c['model_mem_ratio'])) if v]))
        ax.tick_params(axis='x', labelsize=7)
        ax.grid(axis='x', alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return dict(out=save_figure(fig, out), comparisons=n, bars=drawn)


def visualize(paths: Sequence[str], out: str, title: Optional[str] = None) -> Dict:
    files = [f for p in paths for f in (sorted(glob.glob(osp.join(p, '*.json')))
                                         if osp.isdir(p) else [p])]
    return render([read_comparison(f) for f in files], out, title)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('json', nargs='+', help='benchmark_pretrain.py --json files (or folders)')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--title', default=None)
    args = p.parse_args(argv)
    res = visualize(args.json, args.out, args.title)
    print(f'wrote {res["out"]} ({res["comparisons"]} comparisons)')


if __name__ == '__main__':
    main()
