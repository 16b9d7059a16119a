"""tools/analysis/benchmark_pretrain.py (JSON contract, both scopes) and
tools/visualization/vis_reconstruction.py (the four panels) at tiny sizes."""
import json

import numpy as np
import pytest
import torch

from tests.conftest import load_tool, run_tool

MAE = 'configs/mae/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'
DENSE = 'configs/mae/densemim_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py'
TOY = 'configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py'


def test_benchmark_writes_the_json_contract(tmp_path):
    out = tmp_path / 'bench.json'
    log = run_tool('tools/analysis/benchmark_pretrain.py', MAE, DENSE, '--batch-size', 2,
                   '--iters', 2, '--warmup', 1, '--img-size', 64, '--threads', 1, '--json', out,
                   '--cfg-options', 'model.backbone.arch=mae-lite-tiny', 'model.neck.decoder_depth=1',
                   timeout=300).stdout
    res = json.loads(out.read_text())
    for side in ('a', 'b'):
        assert set(res[side]) == {'sec_per_iter', 'images_per_sec', 'peak_mem_mb', 'model_mem_mb',
                                  'gflops_per_step'}
        assert res[side]['gflops_per_step'] > 0
        assert res[side]['sec_per_iter'] > 0 and res[side]['peak_mem_mb'] > 50
        # the model, its optimizer state and the step live above the pre-model RSS
        assert 0 < res[side]['model_mem_mb'] < res[side]['peak_mem_mb']
        assert res[side]['images_per_sec'] == pytest.approx(2 / res[side]['sec_per_iter'])
    assert res['speedup'] == pytest.approx(res['b']['sec_per_iter'] / res['a']['sec_per_iter'])
    assert res['mem_ratio'] == pytest.approx(res['a']['peak_mem_mb'] / res['b']['peak_mem_mb'])
    assert res['model_mem_ratio'] == pytest.approx(res['a']['model_mem_mb'] / res['b']['model_mem_mb'])
    # MAE encodes a quarter of the tokens the dense baseline encodes: fewer FLOPs per step
    assert res['flop_ratio'] == pytest.approx(res['b']['gflops_per_step'] / res['a']['gflops_per_step'])
    assert res['flop_ratio'] > 1.5
    assert 'speedup (b time / a time)' in log


def test_benchmark_builds_configs_of_another_scope():
    bench = load_tool('tools/analysis/benchmark_pretrain.py')
    path = bench.resolve('mmpretrain::mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    assert path.endswith('.mim/configs/mae/mae_vit-base-p16_8xb512-amp-coslr-300e_in1k.py')
    model, optim, _ = bench.build(path, {'model.backbone.arch': 'deit-tiny',
                                      'model.neck.embed_dim': 192,
                                      'model.neck.decoder_depth': 1}, 'cpu')
    assert type(model).__name__ == 'MAE' and type(optim).__name__ == 'OptimWrapper'  # no AMP on CPU


def test_vis_reconstruction_panels(tmp_path, toy_root):
    vis = load_tool('tools/visualization/vis_reconstruction.py')
    opts = {'model.backbone.arch.embed_dims': 32, 'model.backbone.arch.depth': 1}
    model, mean, std = vis.build_model(TOY, None, opts)
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, ckpt)
    out = vis.visualize(TOY, str(ckpt), str(toy_root / 'imagenet' / 'val'), str(tmp_path / 'r.png'),
                        num=2, cfg_options=opts, raw=True)
    from PIL import Image
    assert np.asarray(Image.open(out)).shape == (2 * 64, 4 * 64, 3)
    # panel semantics on images that never contain the grey of hidden patches (127)
    images = np.random.default_rng(0).integers(0, 100, (2, 64, 64, 3), dtype=np.uint8)
    grid = vis.panels(model, images, mean, std, mask_ratio=0.75)
    assert grid.shape == (2 * 64, 4 * 64, 3)
    original, masked, recon, pasted = (grid[:64, i * 64:(i + 1) * 64] for i in range(4))
    seen = (masked != 127).any(-1)
    assert seen.mean() == pytest.approx(16 / 64)  # 16 of 64 8-px patches visible
    assert (masked[seen] == original[seen]).all()
    assert (pasted[seen] == original[seen]).all() and (pasted[~seen] == recon[~seen]).all()
