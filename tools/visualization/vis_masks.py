#!/usr/bin/env python
"""The mask pattern of each masking strategy, side by side in one PNG, drawn by the algorithms
themselves: each config's model is built and its own ``draw_mask`` (hvit_mm.models.masking) is
called on one blank image of the config's size, so the picture shows the unit size, grid and ratio
that training uses.

    python tools/visualization/vis_masks.py --out docs/images/mask_patterns.png
        [--config NAME=CONFIG ...] [--seed S]

Default panels: MAE (random 16 px patches), Hiera-MAE (32 px mask units), UM-MAE (uniform sampling
in 2x2 grids of 16 px units + secondary masking) and GreenMIM (32 px units). No weights are needed.
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # vis_common, also when loaded by path

DEFAULT_CONFIGS = (
    ('MAE', 'configs/mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'),
    ('Hiera-MAE', 'configs/hiera/hiera-mae_hiera-base-p4_8xb512-amp-coslr-1600e_in1k.py'),
    ('UM-MAE', 'configs/um_mae/um-mae_swin-tiny-w8_8xb512-amp-coslr-200e_in1k-256px.py'),
    ('GreenMIM', 'configs/greenmim/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py'),
)
HIDDEN, VISIBLE, TOKEN = 0, 1, 2  # unit categories
COLORS = ('#7f7f7f', '#5ab4e6', '#f08c1e')  # grey as in vis_reconstruction, orange = mask token
LABELS = ('hidden (not encoded)', 'visible (encoded)', 'secondary-masked (encoded as mask token)')


def build_algorithm(config):
    """The config's (a path or a ``Config``) pretraining model, with a one-block decoder (the mask
    does not depend on the decoder; a small one keeps the build cheap) and no pretrained weights."""
    sys.path.insert(0, REPO)
    import hvit_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = config.copy() if isinstance(config, Config) else Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model
    if isinstance(model_cfg.get('neck'), dict) and 'decoder_depth' in model_cfg.neck:
        model_cfg.neck.decoder_depth = 1
    init = model_cfg.backbone.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    if not callable(getattr(model, 'draw_mask', None)):
        raise TypeError(f'vis_masks: {config} builds a {type(model).__name__}, which has no '
                        'draw_mask; give the config of an hvit_mm pretraining algorithm '
                        '(MaskedAutoencoder, SimMIM, ...)')
    return model.eval()


def pattern(model, seed: int = 0) -> Dict:
    """One sample's mask from the algorithm's ``draw_mask``: ``categories`` (h, w) int array of
    HIDDEN / VISIBLE / TOKEN per unit (raster order), ``unit`` (px), ``size`` (H, W) px, and the
    counts."""
    size = tuple(model.backbone.img_size)
    x = torch.zeros(1, model.backbone.in_channels, *size)
    mask = model.draw_mask(x, generator=torch.Generator().manual_seed(seed))
    h, w = model.units_hw(x)
    cat = mask.visible[0].long().clone() * VISIBLE
    if mask.replaced is not None:
        cat[mask.replaced[0]] = TOKEN
    cat = cat.view(h, w).numpy()
    return dict(categories=cat, unit=model.backbone.mim_unit, size=size,
                visible=int((cat == VISIBLE).sum()), token=int((cat == TOKEN).sum()),
                uniform=getattr(model, 'mask_type', '') == 'uniform')


def caption(name: str, p: Dict) -> str:
    n = p['categories'].size
    hidden = n - p['visible'] - p['token']
    lines = [name, f'{p["size"][0]}x{p["size"][1]} px, {p["unit"]} px units ({n})',
             f'{p["visible"]} visible, {hidden} hidden']
    if p['token']:
        lines[-1] = f'{p["visible"]} visible, {p["token"]} mask token, {hidden} hidden'
    return '\n'.join(lines)


def render(patterns: List, out: str) -> Dict:
    """patterns: ``[(name, pattern(...)), ...]`` -> one PNG, a panel per pattern, each unit a
    square of its true pixel size (axes in px); returns ``dict(out=, panels=)``."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from vis_common import new_figure, save_figure
    if not patterns:
        raise ValueError('vis_masks.render: no patterns to draw; give at least one (name, pattern)')
    fig = new_figure(3.0 * len(patterns), 4.0)
    axes = fig.subplots(1, len(patterns), squeeze=False)[0]
    cmap = ListedColormap(COLORS)
    used = set()
    for ax, (name, p) in zip(axes, patterns):
        (H, W), u, cat = p['size'], p['unit'], p['categories']
        ax.imshow(cat, cmap=cmap, vmin=0, vmax=len(COLORS) - 1, extent=(0, W, H, 0),
                  interpolation='nearest')
        used.update(np.unique(cat).tolist())
        for k in range(1, cat.shape[0]):  # unit borders; UM-MAE's 2x2 grids drawn thicker
            thick = p['uniform'] and k % 2 == 0
            ax.axhline(k * u, color='white', lw=1.6 if thick else 0.5)
        for k in range(1, cat.shape[1]):
            thick = p['uniform'] and k % 2 == 0
            ax.axvline(k * u, color='white', lw=1.6 if thick else 0.5)
        ticks = np.arange(0, max(H, W) + 1, 64)
        ax.set_xticks(ticks[ticks <= W])
        ax.set_yticks(ticks[ticks <= H])
        ax.tick_params(labelsize=7)
        ax.set_title(caption(name, p), fontsize=8)
    fig.legend(handles=[Patch(color=COLORS[i], label=LABELS[i]) for i in sorted(used)],
               loc='lower center', ncol=3, fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.8, bottom=0.14, wspace=0.25)
    return dict(out=save_figure(fig, out), panels=len(patterns))


def visualize(configs, out: str, seed: int = 0) -> Dict:
    """configs: ``[(name, config path or Config), ...]`` -> the PNG (see :func:`render`). Panel i
    draws with seed ``seed + i``: with one seed, two strategies over the same unit grid would share
    the noise and show the same units."""
    return render([(name, pattern(build_algorithm(cfg), seed + i))
                   for i, (name, cfg) in enumerate(configs)], out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--config', action='append', metavar='NAME=CONFIG',
                   help='a panel (repeat); the four strategies above by default')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    configs = [(n, osp.join(REPO, c)) for n, c in DEFAULT_CONFIGS]
    if args.config:
        bad = [c for c in args.config if '=' not in c]
        if bad:
            p.error(f'--config takes NAME=CONFIG (e.g. MAE=configs/mae/...py), got {bad}')
        configs = [tuple(c.split('=', 1)) for c in args.config]
    print(f'wrote {visualize(configs, args.out, args.seed)["out"]}')


if __name__ == '__main__':
    main()
