"""Every picture function of tools/visualization renders on tiny inputs: reconstruction grids of
each pretraining algorithm, the mask patterns, training curves, detection / segmentation predictions
and the benchmark bar chart. Each test checks the PNG exists, is not blank, and has the layout the
function reports; the committed pictures under docs/images are checked for size and sources."""
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, load_tool
from tests.configs.tiny import tiny_override

ALGORITHMS = {  # name -> (config, mask tokens drawn in "what the encoder saw")
    'MAE': ('configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py', False),
    'UM-MAE': ('configs/um_mae/um-mae_swin-tiny-w8_8xb512-amp-coslr-200e_in1k-256px.py', True),
    'GreenMIM': ('configs/greenmim/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py', False),
    'Hiera-MAE': ('configs/hiera/hiera-mae_hiera-base-p4_8xb512-amp-coslr-1600e_in1k.py', False),
    'SimMIM': ('configs/simmim/simmim_swin-tiny-w16_8xb512-amp-coslr-200e_in1k-256px.py', True),
}


def picture(path) -> np.ndarray:
    """The PNG as (H, W, 3) uint8, checked to be a real picture (many colours, not a flat fill)."""
    from PIL import Image
    assert path.exists() and path.stat().st_size > 1000, path
    img = np.asarray(Image.open(path).convert('RGB'))
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50, 'blank picture'
    return img


def tiny(config: str, toy_root) -> Config:
    return tiny_override(Config.fromfile(str(REPO / config)), str(toy_root))


@pytest.mark.parametrize('name', list(ALGORITHMS))
def test_reconstruction_grid(name, toy_root, tmp_path):
    vis = load_tool('tools/visualization/vis_reconstruction.py')
    config, tokens = ALGORITHMS[name]
    cfg = tiny(config, toy_root)
    out = vis.visualize(cfg, 'none', str(toy_root / 'imagenet' / 'val'), str(tmp_path / 'r.png'),
                        num=3)
    img = picture(tmp_path / 'r.png')
    assert out == str(tmp_path / 'r.png') and img.shape[1] > img.shape[0]  # 4 columns, 3 rows

    model, mean, std = vis.build_model(cfg, 'none')
    assert vis.describe(model).startswith(name + ':')
    size, unit = model.backbone.img_size[0], model.backbone.mim_unit
    images = np.random.default_rng(0).integers(0, 100, (2, size, size, 3), dtype=np.uint8)
    fig = vis.figure(model, images, mean, std)
    assert len(fig.axes) == 2 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == list(vis.COLUMNS)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert ('encoded as the mask token' in legend) == tokens
    # "what the encoder saw": its pixels where seen, grey where dropped, orange where a mask token
    original, saw, recon, pasted = vis.reconstruction_panels(model, images, mean, std)
    grey, orange = (saw == vis.HIDDEN).all(-1), (saw == vis.TOKEN).all(-1)
    seen = ~grey & ~orange
    assert (saw[seen] == original[seen]).all() and (pasted[seen] == original[seen]).all()
    assert (pasted[~seen] == recon[~seen]).all()
    units = (size // unit) ** 2
    if name == 'SimMIM':  # every unit enters the encoder; the masked ones as the token
        hidden = units - max(1, int(units * (1 - model.mask_ratio)))
        assert not grey.any() and orange[0].sum() == hidden * unit ** 2
    elif name == 'UM-MAE':  # one unit of each 2x2 kept, a quarter of those as the token
        assert orange[0].sum() == int(units // 4 * model.secondary_ratio) * unit ** 2
        assert seen[0].sum() + orange[0].sum() == units // 4 * unit ** 2
    else:
        assert not orange.any()
        assert seen[0].sum() == max(1, int(units * (1 - model.mask_ratio))) * unit ** 2


def test_mask_patterns(toy_root, tmp_path):
    vis = load_tool('tools/visualization/vis_masks.py')
    names = ['MAE', 'Hiera-MAE', 'UM-MAE', 'GreenMIM']
    models = {n: vis.build_algorithm(tiny(ALGORITHMS[n][0], toy_root)) for n in names}
    pats = {n: vis.pattern(m, seed=i) for i, (n, m) in enumerate(models.items())}
    for n, p in pats.items():
        cat, model = p['categories'], models[n]
        assert cat.shape == tuple(s // p['unit'] for s in p['size'])
        if n == 'UM-MAE':  # exactly one kept unit (pixels or token) in every 2x2 grid
            kept = (cat != vis.HIDDEN).reshape(cat.shape[0] // 2, 2, cat.shape[1] // 2, 2)
            assert (kept.sum((1, 3)) == 1).all()
            assert p['token'] == int(cat.size // 4 * model.secondary_ratio) > 0
        else:
            keep = max(1, int(cat.size * (1 - model.mask_ratio)))
            assert p['token'] == 0 and p['visible'] == keep
    res = vis.render(list(pats.items()), str(tmp_path / 'm.png'))
    assert res['panels'] == 4
    img = picture(tmp_path / 'm.png')
    assert img.shape[1] > 2 * img.shape[0]  # four panels side by side
    assert (np.abs(img.astype(int) - [0xf0, 0x8c, 0x1e]).sum(-1) < 30).any()  # secondary: orange
    committed = REPO / 'docs' / 'images' / 'mask_patterns.png'
    picture(committed)
    assert committed.stat().st_size < 200_000


def _write_scalars(path, losses, lrs, maps, by_epoch=False):
    """A vis_data/scalars.json as mmengine's LoggerHook writes it: a training line every 2
    iterations, a validation line (step = epoch, 0 in iteration-based runs) every 4."""
    path.parent.mkdir(parents=True)
    lines = []
    for i, (loss, lr) in enumerate(zip(losses, lrs)):
        it = 2 * (i + 1)
        rec = dict(lr=lr, data_time=0.01, loss=loss, time=0.2, iter=it, memory=10, step=it)
        if by_epoch:
            rec['epoch'] = 1 + (it - 1) // 4
        lines.append(rec)
        if it % 4 == 0:
            lines.append({'coco/bbox_mAP': maps[it // 4 - 1], 'data_time': 0.01, 'time': 0.1,
                          'step': it // 4 if by_epoch else 0})
    path.write_text('\n'.join(json.dumps(r) for r in lines) + '\n')


def test_training_curves(tmp_path):
    vis = load_tool('tools/visualization/vis_curves.py')
    a = tmp_path / 'pretrained'
    _write_scalars(a / '20260101_000000' / 'vis_data' / 'scalars.json', [1.0, 0.1], [1e-3, 5e-4],
                   [0.9], by_epoch=True)
    _write_scalars(a / '20260102_000000' / 'vis_data' / 'scalars.json', [2.0, 1.5, 1.2, 1.0],
                   [1e-3, 1e-3, 5e-4, 1e-4], [0.2, 0.4])  # the newest run of the work dir
    b = tmp_path / 'scratch' / '20260102_000000' / 'vis_data' / 'scalars.json'
    _write_scalars(b, [2.5, 2.2, 2.0, 1.9], [1e-3, 1e-3, 5e-4, 1e-4], [0.05, 0.1])
    run = vis.read_scalars(vis.find_scalars(str(a)))
    assert [r['loss'] for r in run['train']] == [2.0, 1.5, 1.2, 1.0]
    assert [(r['iter'], r['coco/bbox_mAP']) for r in run['val']] == [(4, 0.2), (8, 0.4)]
    assert vis.parse_run(str(b)) == ('scratch', str(b))
    assert vis.parse_run(f'from scratch={b}') == ('from scratch', str(b))
    res = vis.visualize([str(a), f'from scratch={b}'], str(tmp_path / 'c.png'))
    assert res['panels'] == ['loss', 'lr', 'coco/bbox_mAP']
    picture(tmp_path / 'c.png')
    with pytest.raises(KeyError, match='mIoU'):
        vis.visualize([str(a)], str(tmp_path / 'd.png'), metrics=['mIoU'])
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        vis.find_scalars(str(tmp_path / 'nowhere'))


def test_prediction_drawing(tmp_path):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData, PixelData
    from mmseg.structures import SegDataSample
    vis = load_tool('tools/visualization/vis_predictions.py')
    image = np.full((48, 64, 3), 100, np.uint8)
    det = DetDataSample()
    masks = torch.zeros(1, 48, 64, dtype=torch.bool)
    masks[0, 10:30, 10:40] = True
    det.pred_instances = InstanceData(bboxes=torch.tensor([[8., 8., 42., 32.]]),
                                      scores=torch.tensor([0.9]), labels=torch.tensor([1]),
                                      masks=masks)
    seg = SegDataSample()
    label = torch.zeros(1, 48, 64, dtype=torch.long)
    label[0, :, 32:] = 1
    seg.pred_sem_seg = PixelData(data=label)
    meta = dict(classes=('ball', 'kite'), palette=[(220, 20, 60), (0, 80, 200)])
    d = vis.draw('det', image, det, meta)
    s = vis.draw('seg', image, seg, meta)
    assert d.shape == s.shape == image.shape
    assert (d[10:30, 12:38] != image[10:30, 12:38]).any(-1).mean() > 0.5  # the mask is painted
    assert (d[40:, 50:] == image[40:, 50:]).all()  # outside the box and mask: untouched
    assert (s[:, 40:] != image[:, 40:]).any(-1).mean() > 0.9
    res = vis.render([('det', [('a.jpg', d), ('b.jpg', d)]), ('seg', [('a.jpg', s), ('b.jpg', s)])],
                     str(tmp_path / 'p.png'))
    assert (res['rows'], res['cols']) == (2, 2)
    picture(tmp_path / 'p.png')


def test_predictions_of_toy_models(toy_root, tmp_path):
    """The whole path on the toy configs, tiny and with random weights: config -> test images ->
    inference -> the codebases' visualizers -> one grid."""
    vis = load_tool('tools/visualization/vis_predictions.py')
    det = tiny('configs/toy/mask-rcnn_r50_fpn_1xb2-toy_coco.py', toy_root)
    seg = tiny('configs/toy/upernet_r50_1xb2-toy_ade20k.py', toy_root)
    res = vis.visualize([(det, 'none', 'Mask R-CNN'), (seg, 'none', 'UperNet')],
                        str(tmp_path / 'p.png'), num=2, score_thr=0.0)
    assert (res['rows'], res['cols']) == (2, 2)
    picture(tmp_path / 'p.png')
    with pytest.raises(ValueError, match='default_scope'):
        vis.load_config(tiny(ALGORITHMS['MAE'][0], toy_root))


def test_benchmark_chart(tmp_path):
    vis = load_tool('tools/visualization/vis_benchmarks.py')
    folder = REPO / 'docs' / 'images' / 'benchmarks'
    files = sorted(folder.glob('*.json'))
    assert len(files) >= 5
    doc = (REPO / 'docs' / 'benchmarks.md').read_text()
    for f in files:  # every committed figure is one that docs/benchmarks.md reports
        res = json.loads(f.read_text())
        for side in ('a', 'b'):
            for key, fmt in (('sec_per_iter', '{:.3f}'), ('peak_mem_mb', '{:.0f}')):
                if res[side].get(key) is not None:
                    assert fmt.format(res[side][key]) in doc, (f.name, side, key)
        for key in ('speedup', 'mem_ratio', 'model_mem_ratio'):
            if res.get(key) is not None:
                assert f'{res[key]:.2f}' in doc, (f.name, key)
    computed = tmp_path / 'raw.json'  # benchmark_pretrain's contract without the ratios
    computed.write_text(json.dumps(dict(a=dict(sec_per_iter=1.0, peak_mem_mb=100.0),
                                        b=dict(sec_per_iter=2.5, peak_mem_mb=200.0))))
    c = vis.read_comparison(str(computed))
    assert (c['label'], c['speedup'], c['mem_ratio'], c['model_mem_ratio']) == ('raw', 2.5, 0.5,
                                                                               None)
    res = vis.visualize([str(folder), str(computed)], str(tmp_path / 'b.png'))
    assert res['comparisons'] == len(files) + 1
    known = sum(v is not None for f in files for v in
                (vis.read_comparison(str(f))[k] for k in ('speedup', 'mem_ratio',
                                                          'model_mem_ratio')))
    assert res['bars'] == known + 2
    picture(tmp_path / 'b.png')
    committed = REPO / 'docs' / 'images' / 'benchmark_ratios.png'
    picture(committed)
    assert committed.stat().st_size < 200_000
