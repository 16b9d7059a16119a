"""tools/visualization/vis_reconstruction.py reads a runner checkpoint of every pretraining config.

The cases are discovered: every config under configs/ whose model is an MIM algorithm of hvit_mm
(registered into mmpretrain's MODELS as a self-supervised algorithm, or one of the names below).
Nothing is trained: the tiny model's weights (shifted, so that loading them is visible) are saved as
mmengine's runner saves them, and the visualiser's ``main`` writes the PNG from two toy images.
"""
import ast
import time
from pathlib import Path

import mmengine
import numpy as np
import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, load_tool
from tests.configs.tiny import tiny_override

NAMED = {'MaskedAutoencoder', 'DistilledMAE', 'HieraMAE', 'DenseMaskedAutoencoder'}


def mim_algorithms() -> set:
    import hvit_mm  # noqa: F401
    from mmpretrain.models.selfsup import BaseSelfSupervisor
    from mmpretrain.registry import MODELS
    return NAMED | {name for name, cls in MODELS.module_dict.items()
                    if isinstance(cls, type) and issubclass(cls, BaseSelfSupervisor)
                    and cls.__module__.startswith('hvit_mm.')}


def _local_bases(path: Path, text: str):
    """The ``_base_`` files of a config that live in this repository (``pkg::...`` bases are the
    codebases' own configs: they cannot name an hvit_mm algorithm)."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '_base_'
                                                for t in node.targets):
            value = node.value
            values = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
            for v in values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str) and '::' not in v.value:
                    yield (path.parent / v.value).resolve()


def _names_any(path: Path, names) -> bool:
    """Whether the config or one of its local bases writes one of ``names`` as a string."""
    text = path.read_text()
    return any(f"'{n}'" in text or f'"{n}"' in text for n in names) \
        or any(_names_any(base, names) for base in _local_bases(path, text))


def pretraining_configs():
    """Configs whose resolved ``model.type`` is an MIM algorithm (only the configs that name one,
    themselves or through a local base, are loaded: loading all of them takes most of a minute)."""
    algorithms = mim_algorithms()
    found = []
    for path in sorted((REPO / 'configs').rglob('*.py')):
        if '_base_' in path.parts or not _names_any(path, algorithms):
            continue
        model = Config.fromfile(str(path)).get('model') or {}
        if str(model.get('type', '')).rpartition('.')[2] in algorithms:
            found.append(path)
    return found


CASES = pretraining_configs()


def test_every_algorithm_family_is_covered():
    assert len(CASES) >= 3, CASES  # MAE, MAE-Lite, Hiera-MAE at least


def _runner_checkpoint(cfg: Config, path: Path) -> dict:
    """``{'meta', 'state_dict'}`` as ``Runner.save_checkpoint`` writes it (no training)."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model_cfg = cfg.model.copy()
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    model = MODELS.build(model_cfg)
    sd = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    meta = dict(epoch=0, iter=2, cfg=cfg.pretty_text, seed=0, experiment_name=path.stem,
                time=time.strftime('%Y%m%d_%H%M%S'), mmengine_version=mmengine.__version__)
    torch.save({'meta': meta, 'state_dict': sd, 'message_hub': {}}, path)
    return sd


@pytest.mark.parametrize('config', CASES, ids=[str(p.relative_to(REPO / 'configs')) for p in CASES])
def test_visualiser_on_a_runner_checkpoint(config, toy_root, tmp_path):
    cfg = tiny_override(Config.fromfile(str(config)), str(toy_root))
    cfg_file, ckpt = tmp_path / 'tiny.py', tmp_path / 'iter_2.pth'
    cfg.dump(str(cfg_file))
    saved = _runner_checkpoint(cfg, ckpt)
    vis = load_tool('tools/visualization/vis_reconstruction.py')
    out = tmp_path / 'vis' / 'recon.png'
    vis.main([str(cfg_file), str(ckpt), str(toy_root / 'imagenet'), '--out', str(out),
              '--num', '2', '--raw'])
    from PIL import Image
    img = np.asarray(Image.open(out))
    model = vis.build_model(str(cfg_file), str(ckpt))[0]
    size = model.backbone.img_size[0]
    assert img.shape == (2 * size, 4 * size, 3)  # 2 images x (original | masked | recon | pasted)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())  # the file's weights were used
