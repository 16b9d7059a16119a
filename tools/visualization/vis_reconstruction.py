#!/usr/bin/env python
"""Reconstructions of a pretraining algorithm, as one PNG: a row per image, four labelled columns:
original | what the encoder saw | reconstruction | reconstruction with the visible part pasted in.

    python tools/visualization/vis_reconstruction.py CONFIG CHECKPOINT IMAGES --out OUT.png
        [--num 4] [--mask-ratio R] [--seed S] [--img-size S] [--title T] [--raw]
        [--cfg-options k=v ...]

In "what the encoder saw", units the encoder never received are grey and units it received as the
learnable mask token (UM-MAE's secondary masking; SimMIM's masked units) are orange. ``--raw``
writes the bare pixel grid (B·S, 4·S) without titles instead of the matplotlib figure.
CHECKPOINT ``none`` keeps the config's initial (random) weights.

IMAGES is an image file or a folder (searched recursively). Works for every hvit_mm pretraining
algorithm: each implements ``reconstruct(inputs, mask=None, generator=None)`` returning
``Reconstruction(image (B, C, H, W) normalised, visible (B, 1, H, W))``. CHECKPOINT may be a runner
checkpoint of the config's model or any format ``hvit_mm.checkpoints.to_hvit`` converts (e.g. an
official MAE ``*_full.pth``).
"""
import argparse
import os
import os.path as osp
import sys
import tempfile

import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # vis_common, also when loaded by path
EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.JPEG')


def list_images(path: str, num: int):
    if osp.isfile(path):
        return [path]
    found = sorted(osp.join(d, f) for d, _, fs in os.walk(path) for f in fs if f.endswith(EXTS))
    if not found:
        raise FileNotFoundError(f'no image under {path}')
    step = max(1, len(found) // num)  # spread over the folder (different classes)
    return found[::step][:num]


def load_image(path: str, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3): short side resized to ``size`` (bicubic), centre crop."""
    from PIL import Image
    img = Image.open(path).convert('RGB')
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def build_model(config: str, checkpoint: str, cfg_options=None):
    """The config's (a path or a ``Config``) model in eval mode with ``checkpoint`` loaded strictly
    (none: initial weights); mean/std of its data preprocessor (RGB order)."""
    sys.path.insert(0, REPO)
    import hvit_mm  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from hvit_mm.checkpoints import load_state_dict_file, strict_load, to_hvit
    cfg = config.copy() if isinstance(config, Config) else Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model_cfg = cfg.model
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    _drop_pretrained(model_cfg)  # the checkpoint below holds every weight
    model = MODELS.build(model_cfg)
    if checkpoint and checkpoint.lower() != 'none':
        sd = to_hvit(load_state_dict_file(checkpoint))
        strict_load(model, sd, allow_unexpected=('data_preprocessor.',), what=checkpoint)
    pre = model_cfg['data_preprocessor'] or {}
    mean = np.array(pre.get('mean', [123.675, 116.28, 103.53]), np.float32)
    std = np.array(pre.get('std', [58.395, 57.12, 57.375]), np.float32)
    return model.eval(), mean, std


def _drop_pretrained(node):
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            _drop_pretrained(v)


HIDDEN = np.array([127, 127, 127], np.uint8)  # units the encoder never received
TOKEN = np.array([240, 140, 30], np.uint8)  # units it received as the mask token
COLUMNS = ('original', 'what the encoder saw', 'reconstruction',
           'reconstruction with the\nvisible part pasted in')


def reconstruction_panels(model, images: np.ndarray, mean, std, mask_ratio=None, seed=0):
    """images: (B, S, S, 3) uint8 RGB -> four (B, S, S, 3) uint8 arrays: original, what the encoder
    saw (hidden units grey, mask-token units orange), reconstruction, reconstruction with the seen
    pixels pasted back. The mask is the algorithm's own (``draw_mask``), fixed by ``seed``."""
    from hvit_mm.models.masking import upsample_units
    x = (torch.from_numpy(images).float() - torch.from_numpy(mean)) / torch.from_numpy(std)
    x = x.permute(0, 3, 1, 2).contiguous()  # (B, 3, S, S)
    if mask_ratio is not None:
        model.mask_ratio = mask_ratio
    mask = model.draw_mask(x, generator=torch.Generator().manual_seed(seed))
    rec = model.reconstruct(x, mask)
    recon = rec.image.permute(0, 2, 3, 1).numpy() * std + mean  # back to pixel space
    recon = np.clip(recon, 0, 255).astype(np.uint8)
    seen = rec.visible.permute(0, 2, 3, 1).numpy() > 0.5  # (B, S, S, 1)
    encoder_saw = np.where(seen, images, HIDDEN)
    if mask.replaced is not None:
        token = upsample_units(mask.replaced, model.units_hw(x), model.backbone.mim_unit)
        encoder_saw = np.where(token.permute(0, 2, 3, 1).numpy(), TOKEN, encoder_saw)
    return images, encoder_saw, recon, np.where(seen, images, recon)


def panels(model, images: np.ndarray, mean, std, mask_ratio=None, seed=0) -> np.ndarray:
    """images: (B, S, S, 3) uint8 RGB -> (B·S, 4·S, 3) uint8 grid of the four panels per row."""
    cols = reconstruction_panels(model, images, mean, std, mask_ratio, seed)
    return np.concatenate([np.concatenate(p, axis=1) for p in zip(*cols)], axis=0)


def describe(model) -> str:
    """A title naming the algorithm as the papers do, its backbone, mask unit and ratio."""
    backbone = type(model.backbone).__name__
    name = type(model).__name__
    if name == 'MaskedAutoencoder':
        name = ('UM-MAE' if model.mask_type == 'uniform' else 'GreenMIM' if backbone.startswith(
            'Green') else 'Hiera-MAE' if backbone == 'Hiera' else 'MAE')
    mask = ('uniform 2x2' + (f' + {model.secondary_ratio:g} secondary' if model.secondary_ratio
                             else '') if model.mask_type == 'uniform' else f'{model.mask_ratio:g}')
    return f'{name}: {backbone}, {model.backbone.mim_unit} px units, mask {mask}'


def figure(model, images: np.ndarray, mean, std, mask_ratio=None, seed=0, title=None):
    """The labelled matplotlib Figure: one row per image, the four :data:`COLUMNS`."""
    from matplotlib.patches import Patch
    from vis_common import image_grid
    cols = reconstruction_panels(model, images, mean, std, mask_ratio, seed)
    legend = [Patch(color=HIDDEN / 255, label='hidden (not encoded)')]
    if getattr(model, 'uses_token', False):
        legend.append(Patch(color=TOKEN / 255, label='encoded as the mask token'))
    return image_grid([list(r) for r in zip(*cols)], COLUMNS, title=title or describe(model),
                      legend=legend)


def save_png(grid: np.ndarray, out: str) -> None:
    """Write atomically (temp file + rename)."""
    from PIL import Image
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix='.png')
    os.close(fd)
    Image.fromarray(grid).save(tmp)
    os.replace(tmp, out)


def visualize(config, checkpoint: str, images: str, out: str, num: int = 4,
              mask_ratio=None, seed: int = 0, img_size=None, cfg_options=None, raw=False,
              title=None) -> str:
    """Write the reconstruction PNG of ``num`` images (a file or a folder) to ``out``."""
    model, mean, std = build_model(config, checkpoint, cfg_options)
    size = img_size or model.backbone.img_size[0]
    batch = np.stack([load_image(p, size) for p in list_images(images, num)])
    if raw:
        save_png(panels(model, batch, mean, std, mask_ratio, seed), out)
        return out
    from vis_common import save_figure
    return save_figure(figure(model, batch, mean, std, mask_ratio, seed, title), out)


def main(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help="a checkpoint, or 'none' for the initial weights")
    p.add_argument('images', help='an image file or a folder')
    p.add_argument('--out', required=True, help='output PNG')
    p.add_argument('--num', type=int, default=4, help='images (rows) from a folder')
    p.add_argument('--mask-ratio', type=float, default=None, help="the model's ratio by default")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-size', type=int, default=None,
                   help="square input size; the backbone's img_size by default")
    p.add_argument('--title', default=None, help='figure title; algorithm, backbone and mask by '
                   'default')
    p.add_argument('--raw', action='store_true', help='the bare pixel grid, no titles')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    out = visualize(args.config, args.checkpoint, args.images, args.out, args.num,
                    args.mask_ratio, args.seed, args.img_size, args.cfg_options, args.raw,
                    args.title)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
