#!/usr/bin/env python
"""Training curves from mmengine's ``vis_data/scalars.json`` of one or more runs, overlaid in one
PNG: loss vs iteration, learning rate vs iteration, and the validation metrics (when the runs
validated), one line per run, labelled (e.g. "pretrained" vs "from scratch").

    python tools/visualization/vis_curves.py RUN [RUN ...] --out OUT.png
        [--loss-keys loss ...] [--metrics coco/bbox_mAP mIoU ...] [--title T]

RUN is ``[LABEL=]PATH``; PATH is a scalars.json file, a ``vis_data`` folder, a run's timestamp
folder, or a work dir (its newest ``<timestamp>/vis_data/scalars.json`` is read). LABEL defaults
to the work dir's name.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # vis_common, also when loaded by path

# validation metrics shown when --metrics is not given and the run logged them
HEADLINE = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'aAcc', 'accuracy/top1')
NOT_METRICS = {'step', 'time', 'data_time', 'iter', 'epoch', 'memory'}


def find_scalars(path: str) -> str:
    """The scalars.json that ``path`` (file, vis_data folder, timestamp folder, work dir) means."""
    if osp.isfile(path):
        return path
    for pattern in ('scalars.json', 'vis_data/scalars.json', '*/vis_data/scalars.json'):
        found = sorted(glob.glob(osp.join(path, pattern)))  # timestamps sort chronologically
        if found:
            return found[-1]
    raise FileNotFoundError(f'vis_curves: no scalars.json under {path!r}; give a work dir of '
                            'tools/train.py (it writes <work_dir>/<timestamp>/vis_data/'
                            'scalars.json) or the file itself')


def read_scalars(path: str) -> Dict[str, List]:
    """One run's records: ``{'train': [...], 'val': [...]}``, each record a dict with ``iter``.

    mmengine writes one JSON object per line; training lines carry ``lr`` and ``iter``, validation
    lines the metrics and a ``step`` that is the epoch by default (``LoggerHook``'s
    ``log_metric_by_epoch``), 0 in iteration-based runs: a validation record takes the iteration of
    the training line logged before it, so that both share the iteration axis."""
    train, val = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'vis_curves: {path} line {n} is not JSON ({e}); is it an '
                                 'mmengine vis_data/scalars.json?') from None
            if 'lr' in rec or 'iter' in rec:
                rec.setdefault('iter', rec.get('step', 0))
                train.append(rec)
            else:
                rec['iter'] = train[-1]['iter'] if train else rec.get('step', 0)
                val.append(rec)
    if not train and not val:
        raise ValueError(f'vis_curves: {path} holds no records (did the run log anything? '
                         'LoggerHook writes every `interval` iterations)')
    return dict(train=train, val=val)


def parse_run(spec: str):
    """``[LABEL=]PATH`` -> (label, path); the default label is the work dir's name."""
    label, sep, path = spec.partition('=')
    if not sep or osp.exists(spec):
        path, parts = spec, osp.normpath(spec).split(os.sep)
        while len(parts) > 1 and (parts[-1] in ('scalars.json', 'vis_data')
                                  or re.fullmatch(r'\d{8}_\d{6}', parts[-1])):
            parts.pop()  # <work_dir>/<timestamp>/vis_data/scalars.json -> <work_dir>
        label = parts[-1]
    return label, path


def _series(records, key):
    pts = [(r['iter'], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def render(runs: Sequence, out: str, loss_keys: Sequence[str] = ('loss',),
           metrics: Optional[Sequence[str]] = None, title: Optional[str] = None) -> Dict:
    """runs: ``[(label, read_scalars(...)), ...]`` -> PNG; returns ``dict(out=, panels=[names])``
    (the panels: 'loss', 'lr', then one per validation metric logged by any run)."""
    from vis_common import new_figure, save_figure
    if not runs:
        raise ValueError('vis_curves: no runs given')
    logged = {k for _, r in runs for rec in r['val'] for k, v in rec.items()
              if k not in NOT_METRICS and isinstance(v, (int, float))}
    if metrics is None:
        metrics = [m for m in HEADLINE if m in logged]
    else:
        missing = [m for m in metrics if m not in logged]
        if missing:
            raise KeyError(f'vis_curves: metrics {missing} are in no run; logged: {sorted(logged)}')
    panels = ['loss', 'lr'] + list(metrics)
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig = new_figure(4.2 * cols, 3.0 * rows + (0.4 if title else 0))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        for i, (label, r) in enumerate(runs):
            color = f'C{i}'
            if panel == 'loss':
                for j, key in enumerate(loss_keys):
                    xs, ys = _series(r['train'], key)
                    name = label if len(loss_keys) == 1 else f'{label}: {key}'
                    ax.plot(xs, ys, color=color, ls=('-', '--', ':', '-.')[j % 4], lw=1.2,
                            label=name)
            elif panel == 'lr':
                ax.plot(*_series(r['train'], 'lr'), color=color, lw=1.2, label=label)
            else:
                ax.plot(*_series(r['val'], panel), color=color, marker='o', ms=4, lw=1.2,
                        label=label)
        ax.set_title({'loss': 'training loss', 'lr': 'learning rate'}.get(panel, panel),
                     fontsize=10)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return dict(out=save_figure(fig, out), panels=panels)


def visualize(run_specs: Sequence[str], out: str, loss_keys=('loss',), metrics=None,
              title=None) -> Dict:
    runs = []
    for spec in run_specs:
        label, path = parse_run(spec)
        runs.append((label, read_scalars(find_scalars(path))))
    return render(runs, out, loss_keys, metrics, title)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', metavar='[LABEL=]PATH')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--loss-keys', nargs='+', default=['loss'],
                   help='training scalars for the loss panel (e.g. loss loss_cls loss_mask)')
    p.add_argument('--metrics', nargs='*', default=None,
                   help=f'validation metrics, a panel each; by default those of {HEADLINE} logged')
    p.add_argument('--title', default=None)
    args = p.parse_args(argv)
    res = visualize(args.runs, args.out, args.loss_keys, args.metrics, args.title)
    print(f'wrote {res["out"]} ({", ".join(res["panels"])})')


if __name__ == '__main__':
    main()
