#!/usr/bin/env python
"""Detection and segmentation predictions on a few validation images, one row per model, in one
PNG. Each panel is drawn by the codebase's own visualizer (mmdet's ``DetLocalVisualizer``: boxes,
masks, class names and scores; mmseg's ``SegLocalVisualizer``: the class map over the image).

    python tools/visualization/vis_predictions.py --out OUT.png [--num 3] [--score-thr 0.3]
        --model CONFIG CHECKPOINT [LABEL] [--model CONFIG CHECKPOINT [LABEL] ...]
        [--images PATH] [--device cpu]

A row per ``--model`` (e.g. the pretrained and the from-scratch run of the same config): mmdet
configs (``default_scope='mmdet'``) are detectors, mmseg configs segmentors. The images are the
first ``--num`` of the config's test set (or ``--images``, a file or folder), so rows of the same
dataset show the same images. CHECKPOINT ``none`` keeps the initial weights.
"""
import argparse
import copy
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # vis_common, also when loaded by path
EXTS = ('.jpg', '.jpeg', '.png', '.bmp')
TASKS = {'mmdet': 'det', 'mmseg': 'seg'}


def load_config(config, cfg_options=None):
    sys.path.insert(0, REPO)
    import hvit_mm  # noqa: F401
    from mmengine.config import Config
    cfg = config.copy() if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise ValueError(f'vis_predictions: {config} has default_scope={scope!r}; give an mmdet '
                         "(detection) or mmseg (segmentation) config, e.g. configs/toy/...")
    return cfg, TASKS[scope]


def test_images(cfg, images: Optional[str], num: int) -> List[str]:
    """The first ``num`` images of ``images`` (file or folder), or of the config's test set."""
    if images is None:
        ds = cfg.test_dataloader.dataset
        while 'dataset' in ds:  # dataset wrappers
            ds = ds.dataset
        prefix = ds.get('data_prefix', {})
        images = osp.join(ds.get('data_root', ''), prefix.get('img', prefix.get('img_path', '')))
    if osp.isfile(images):
        return [images]
    found = sorted(osp.join(d, f) for d, _, fs in os.walk(images) for f in fs
                   if f.lower().endswith(EXTS))
    if not found:
        raise FileNotFoundError(f'vis_predictions: no image under {images!r}; make the toy data '
                                '(tools/dataset_converters/make_toy_datasets.py) or give --images')
    return found[:num]


def _without_annotations(pipeline):
    return [t for t in pipeline
            if t.get('type') not in ('LoadAnnotations', 'mmdet.LoadAnnotations')]


def build(cfg, task: str, checkpoint: Optional[str], device: str = 'cpu'):
    """The model in eval mode (checkpoint ``None``/'none': initial weights) with the test set's
    classes and palette as ``dataset_meta``. The test pipeline loses ``LoadAnnotations`` (the
    images are predicted, not evaluated)."""
    from mmengine.registry import DATASETS, init_default_scope
    cfg = copy.deepcopy(cfg)
    ckpt = None if not checkpoint or checkpoint.lower() == 'none' else checkpoint
    ds = cfg.test_dataloader.dataset
    ds.pipeline = _without_annotations(ds.pipeline)
    if task == 'det':
        from mmdet.apis import init_detector
        model = init_detector(cfg, ckpt, device=device)
    else:
        from mmseg.apis import init_model
        cfg.test_pipeline = ds.pipeline  # mmseg's inference reads the top-level one
        model = init_model(cfg, ckpt, device=device)
    init_default_scope(cfg.default_scope)
    meta = DATASETS.build(dict(copy.deepcopy(ds), lazy_init=True)).metainfo
    model.dataset_meta = dict(getattr(model, 'dataset_meta', None) or {},
                              **{k: meta[k] for k in ('classes', 'palette') if meta.get(k)})
    return model


def predict(model, task: str, paths: Sequence[str]):
    """Data samples of ``paths`` (DetDataSample with ``pred_instances`` / SegDataSample with
    ``pred_sem_seg``)."""
    if task == 'det':
        from mmdet.apis import inference_detector
        return inference_detector(model, list(paths))
    from mmseg.apis import inference_model
    return inference_model(model, list(paths))


def draw(task: str, image: np.ndarray, sample, dataset_meta: Dict, score_thr: float = 0.3,
         name: str = 'prediction') -> np.ndarray:
    """(H, W, 3) uint8 RGB image + a predicted data sample -> the visualizer's RGB drawing."""
    if task == 'det':
        from mmdet.visualization import DetLocalVisualizer as Vis
        kwargs = dict(pred_score_thr=score_thr)
    elif task == 'seg':
        from mmseg.visualization import SegLocalVisualizer as Vis
        kwargs = {}
    else:
        raise ValueError(f"vis_predictions.draw: task must be 'det' or 'seg', got {task!r}")
    vis = Vis.get_instance(f'hvit_mm_vis_predictions_{task}')
    vis.dataset_meta = dataset_meta
    vis.add_datasample(name, image, sample, draw_gt=False, draw_pred=True, **kwargs)
    return vis.get_image()


def render(rows: Sequence, out: str) -> Dict:
    """rows: ``[(row label, [(panel title, RGB drawing), ...]), ...]`` (equally many panels per
    row) -> one PNG; returns ``dict(out=, rows=, cols=)``."""
    from vis_common import image_grid, save_figure
    fig = image_grid([[img for _, img in panels] for _, panels in rows],
                     row_titles=[label for label, _ in rows],
                     panel_titles=[[t for t, _ in panels] for _, panels in rows], panel_in=2.2)
    return dict(out=save_figure(fig, out), rows=len(rows), cols=len(rows[0][1]))


def visualize(models: Sequence, out: str, num: int = 3, score_thr: float = 0.3,
              images: Optional[str] = None, device: str = 'cpu', cfg_options=None) -> Dict:
    """models: ``[(config, checkpoint, label or None), ...]`` -> the PNG (see :func:`render`)."""
    import mmcv
    rows = []
    for config, checkpoint, label in models:
        cfg, task = load_config(config, cfg_options)
        paths = test_images(cfg, images, num)
        model = build(cfg, task, checkpoint, device)
        panels = []
        for path, sample in zip(paths, predict(model, task, paths)):
            image = mmcv.imread(path, channel_order='rgb')
            panels.append((osp.basename(path), draw(task, image, sample, model.dataset_meta,
                                                    score_thr, osp.basename(path))))
        name = label or osp.splitext(osp.basename(str(config)))[0]
        rows.append((name, panels))
    if len({len(p) for _, p in rows}) != 1:
        raise ValueError(f'vis_predictions: the rows have {[len(p) for _, p in rows]} images; '
                         'give --num no larger than the smallest test set')
    return render(rows, out)


def main(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', nargs='+', action='append', required=True,
                   metavar='CONFIG CHECKPOINT [LABEL]', help='a row (repeat)')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--num', type=int, default=3, help='images per row')
    p.add_argument('--score-thr', type=float, default=0.3, help='detections below are not drawn')
    p.add_argument('--images', default=None, help="a file or folder; the config's test set by "
                   'default')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    bad = [m for m in args.model if len(m) not in (2, 3)]
    if bad:
        p.error(f'--model takes CONFIG CHECKPOINT [LABEL] (checkpoint may be none), got {bad}')
    models = [(m[0], m[1], m[2] if len(m) == 3 else None) for m in args.model]
    res = visualize(models, args.out, args.num, args.score_thr, args.images, args.device,
                    args.cfg_options)
    print(f'wrote {res["out"]} ({res["rows"]} rows x {res["cols"]} images)')


if __name__ == '__main__':
    main()
