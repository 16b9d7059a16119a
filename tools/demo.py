#!/usr/bin/env python
"""`make demo`: hvit_mm's main job end to end on CPU, in one process, with one summary table.

    python tools/demo.py [--out work_dirs/demo] [--quick]

1. data: the demo's toy sets in data/demo (tools/dataset_converters/make_toy_datasets.py, with a
   progress bar): a bigger toy ImageNet at 64 px for pretraining, toy COCO and ADE20K at 128 px.
2. pretrain: MAE of a small plain ViT (configs/toy/mae_vit-tiny-p8_*-demo_in1k-64px.py); its
   encoder is saved as OUT/pretrain/backbone.pth.
3. transfer: HPViT (the same ViT made hierarchical) in Mask R-CNN on the toy COCO and in UperNet on
   the toy ADE20K, each twice with the same seed, data and schedule: initialised from backbone.pth
   ("pretrained") and from random initialisation ("from scratch"); each run evaluates at its end.
4. pictures: MAE reconstructions, training curves (pretraining; detection and segmentation,
   pretrained vs from scratch), the mask patterns of every method, predictions of the four models.
5. the summary table (also OUT/summary.md): pretraining loss, COCO box / mask AP and ADE20K mIoU
   pretrained vs from scratch, time per stage, where checkpoints, logs and pictures are.

Every training runs through tools/train.py (iteration logs with ETA from mmengine's logger).
``--quick`` shrinks data and iterations to check the pipeline in a minute or two (the numbers then
mean nothing).
"""
import argparse
import functools
import importlib.util
import json
import os
import os.path as osp
import shutil
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools', 'visualization'))

DATA = 'data/demo'  # where the demo configs read (configs/toy/_base_/hpvit-tiny-p8_demo.py)
PRETRAIN_CFG = 'configs/toy/mae_vit-tiny-p8_1xb64-coslr-1000i-demo_in1k-64px.py'
DET_CFG = 'configs/toy/mask-rcnn_hpvit-tiny-p8_fpn_1xb4-300i-demo_coco.py'
SEG_CFG = 'configs/toy/upernet_hpvit-tiny-p8_1xb4-300i-demo_ade20k.py'
# images per split and side of each demo set: pretraining wants many images (cheap at 64 px), the
# transfers a few hundred; Cityscapes is not used by the demo
NUM_TRAIN = dict(imagenet=5000, coco=400, ade=400, cityscapes=0)
NUM_VAL = dict(imagenet=64, coco=100, ade=100, cityscapes=0)
SIZE = dict(imagenet=64, coco=128, ade=128, cityscapes=128)
QUICK_NUM_TRAIN = dict(imagenet=128, coco=16, ade=16, cityscapes=0)
QUICK_NUM_VAL = dict(imagenet=8, coco=8, ade=8, cityscapes=0)
QUICK_ITERS = dict(pretrain=20, det=6, seg=6)
ARMS = ('pretrained', 'scratch')


@functools.lru_cache(maxsize=None)
def load_tool(relpath):
    """A script under tools/ as a module (tools/ is not a package)."""
    path = osp.join(REPO, relpath)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def banner(text):
    print(f'\n{"=" * 100}\n== make demo: {text}\n{"=" * 100}', flush=True)


def train(config, work_dir, options=(), iters=None):
    """tools/train.py in this process (one import of torch and the codebases for all runs)."""
    # mmengine keeps one visualizer per name and process, and the codebases name theirs
    # 'visualizer': a second run would log its curves into the first run's work dir
    opts = list(options) + [f'visualizer.name=demo:{work_dir}']
    if iters:
        opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
                 f'default_hooks.checkpoint.interval={iters}']
    argv = [config, '--work-dir', work_dir] + (['--cfg-options'] + opts if opts else [])
    print('$ python tools/train.py ' + ' '.join(argv), flush=True)
    load_tool('tools/train.py').main(argv)
    return last_checkpoint(work_dir)


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def scalars(work_dir):
    """(train records, val records) of the run's newest vis_data/scalars.json."""
    from vis_curves import find_scalars, read_scalars
    rec = read_scalars(find_scalars(work_dir))
    return rec['train'], rec['val']


def save_backbone(checkpoint, out):
    """The encoder (``backbone.*``) of a pretraining checkpoint, as the transfers' init file."""
    import torch
    from hvit_mm.checkpoints import load_state_dict_file
    sd = load_state_dict_file(checkpoint)
    torch.save(dict(state_dict={k: v for k, v in sd.items() if k.startswith('backbone.')},
                    meta=dict(source=checkpoint)), out)
    return out


def fmt_time(seconds):
    m, s = divmod(int(round(seconds)), 60)
    return f'{m}m{s:02d}s' if m else f'{s}s'


def table(rows):
    """Markdown table with padded columns (readable as plain text too)."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: '| ' + ' | '.join(str(c).ljust(w) for c, w in zip(r, widths)) + ' |'  # noqa
    return '\n'.join([line(rows[0]), '|' + '|'.join('-' * (w + 2) for w in widths) + '|']
                     + [line(r) for r in rows[1:]])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='work_dirs/demo',
                   help='runs, pictures and summary.md go here (relative to the repository)')
    p.add_argument('--quick', action='store_true',
                   help='tiny data and a few iterations: checks the pipeline, numbers meaningless')
    args = p.parse_args(argv)
    os.chdir(REPO)  # the configs name data/demo relative to the repository
    out = args.out
    pics = osp.join(out, 'pictures')
    quick = QUICK_ITERS if args.quick else {}
    times, t_start = {}, time.time()

    # 1. data
    banner(f'toy datasets in {DATA}')
    t0 = time.time()
    gen = load_tool('tools/dataset_converters/make_toy_datasets.py')
    nt, nv = (QUICK_NUM_TRAIN, QUICK_NUM_VAL) if args.quick else (NUM_TRAIN, NUM_VAL)
    data = gen.make_toy_datasets(DATA, seed=0, num_train=nt, num_val=nv, size=SIZE, progress=True)
    print(f"{'written' if data['regenerated'] else 'up to date'}: "
          + ', '.join(f'{n} {nt[n]}/{nv[n]} ({SIZE[n]} px)' for n in ('imagenet', 'coco', 'ade')))
    times['data'] = time.time() - t0

    import hvit_mm  # noqa: F401  (after the data: the generator needs no torch)

    # 2. MAE pretraining
    banner('MAE pretraining of the small ViT on the toy ImageNet')
    t0 = time.time()
    pre_dir = osp.join(out, 'pretrain')
    shutil.rmtree(pre_dir, ignore_errors=True)  # a fresh run: no stale checkpoints or curves
    pre_ckpt = train(PRETRAIN_CFG, pre_dir, iters=quick.get('pretrain'))
    backbone = save_backbone(pre_ckpt, osp.join(pre_dir, 'backbone.pth'))
    times['pretrain'] = time.time() - t0

    # 3. transfers, pretrained and from scratch (same config, seed, data and schedule)
    runs = {}
    for task, cfg in (('det', DET_CFG), ('seg', SEG_CFG)):
        for arm, init in (('pretrained', f'model.backbone.init_cfg.checkpoint={backbone}'),
                          ('scratch', 'model.backbone.init_cfg=None')):
            what = {'det': 'Mask R-CNN on the toy COCO', 'seg': 'UperNet on the toy ADE20K'}[task]
            init_name = 'from the MAE encoder' if arm == 'pretrained' else 'from random init'
            banner(f'{what}, HPViT {init_name}')
            t0 = time.time()
            work = osp.join(out, f'{task}_{arm}')
            shutil.rmtree(work, ignore_errors=True)
            ckpt = train(cfg, work, [init], iters=quick.get(task))
            runs[task, arm] = dict(dir=work, ckpt=ckpt, val=scalars(work)[1][-1])
            times[f'{task}_{arm}'] = time.time() - t0

    # 4. pictures
    banner(f'pictures in {pics}')
    t0 = time.time()
    import vis_curves
    import vis_masks
    import vis_predictions
    import vis_reconstruction
    written = [
        vis_reconstruction.visualize(PRETRAIN_CFG, pre_ckpt, osp.join(DATA, 'imagenet', 'val'),
                                     osp.join(pics, 'reconstruction.png'), num=4),
        vis_curves.visualize([f'MAE pretraining={pre_dir}'], osp.join(pics, 'curves_pretrain.png'),
                             title='MAE pretraining of the demo ViT')['out'],
        vis_curves.visualize([f'{arm}={runs["det", arm]["dir"]}' for arm in ARMS],
                             osp.join(pics, 'curves_det.png'),
                             metrics=['coco/bbox_mAP', 'coco/segm_mAP'],
                             title='Mask R-CNN + HPViT on the toy COCO')['out'],
        vis_curves.visualize([f'{arm}={runs["seg", arm]["dir"]}' for arm in ARMS],
                             osp.join(pics, 'curves_seg.png'), metrics=['mIoU'],
                             title='UperNet + HPViT on the toy ADE20K')['out'],
        vis_masks.visualize([(n, osp.join(REPO, c)) for n, c in vis_masks.DEFAULT_CONFIGS],
                            osp.join(pics, 'mask_patterns.png'))['out'],
        vis_predictions.visualize(
            [(cfg, runs[task, arm]['ckpt'], f'{name}, {label}')
             for task, cfg, name in (('det', DET_CFG, 'Mask R-CNN'), ('seg', SEG_CFG, 'UperNet'))
             for arm, label in (('pretrained', 'pretrained'), ('scratch', 'from scratch'))],
            osp.join(pics, 'predictions.png'), num=3)['out'],
    ]
    for path in written:
        print(f'wrote {path}')
    times['pictures'] = time.time() - t0
    times['total'] = time.time() - t_start

    # 5. summary
    train_recs = scalars(pre_dir)[0]
    losses = [r['loss'] for r in train_recs if 'loss' in r]
    val = {k: r['val'] for k, r in runs.items()}
    box = {a: 100 * val['det', a]['coco/bbox_mAP'] for a in ('pretrained', 'scratch')}
    mask = {a: 100 * val['det', a]['coco/segm_mAP'] for a in ('pretrained', 'scratch')}
    miou = {a: val['seg', a]['mIoU'] for a in ('pretrained', 'scratch')}
    iters = {k: runs[k]['ckpt'] for k in runs}
    n_pre = train_recs[-1]['iter']
    rows = [('stage', 'result', 'time', 'checkpoints and logs')]
    rows.append(('toy data (ImageNet 64 px, COCO / ADE20K 128 px)',
                 ', '.join(f'{n} {nt[n]}+{nv[n]}' for n in ('imagenet', 'coco', 'ade')),
                 fmt_time(times['data']), DATA))
    rows.append((f'MAE pretraining, ViT 128-d x 6, {n_pre} it',
                 f'loss {losses[0]:.3f} -> {losses[-1]:.3f}', fmt_time(times['pretrain']),
                 f'{pre_dir}/ (backbone.pth)'))
    for task, arm in runs:
        name = {'det': 'Mask R-CNN + HPViT', 'seg': 'UperNet + HPViT'}[task]
        label = 'pretrained' if arm == 'pretrained' else 'from scratch'
        result = (f'box AP {box[arm]:.1f}, mask AP {mask[arm]:.1f}' if task == 'det'
                  else f'mIoU {miou[arm]:.1f}')
        rows.append((f'{name}, {label}', result, fmt_time(times[f'{task}_{arm}']),
                     f'{runs[task, arm]["dir"]}/ ({osp.basename(iters[task, arm])})'))
    rows.append(('pictures', f'{len(written)} PNGs', fmt_time(times['pictures']), f'{pics}/'))
    diff = (f'pretrained - scratch: box AP {box["pretrained"] - box["scratch"]:+.1f}, '
            f'mask AP {mask["pretrained"] - mask["scratch"]:+.1f}, '
            f'mIoU {miou["pretrained"] - miou["scratch"]:+.1f}')
    rows.append(('total', diff, fmt_time(times['total']), f'{out}/summary.md'))
    text = table(rows)
    os.makedirs(out, exist_ok=True)
    with open(osp.join(out, 'summary.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(out, 'summary.json'), 'w') as f:
        json.dump(dict(times=times, pretrain_loss=[losses[0], losses[-1]], box_ap=box,
                       mask_ap=mask, miou=miou, quick=args.quick), f, indent=1)
    banner('summary' + (' (--quick: a pipeline check, the numbers mean nothing)' if args.quick
                        else ''))
    print(text, flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
