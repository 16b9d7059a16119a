"""Every config under configs/ builds, trains 2 iterations on the toy data and evaluates.

Cases are discovered, so a new config is a new case without editing this file. Split across CI jobs
with ``HVIT_MATRIX_SHARD=i/n`` (0-based i) or select with ``-m matrix``.
"""
import os
import re
import subprocess
import zlib
from pathlib import Path

import pytest
from mmengine.config import Config

from tests.conftest import REPO
from tests.configs.tiny import tiny_override

CONFIG_DIR = REPO / 'configs'


def discover():
    cfgs = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.parts)
    shard = os.environ.get('HVIT_MATRIX_SHARD')
    if shard:
        i, n = map(int, shard.split('/'))
        cfgs = [p for p in cfgs if zlib.crc32(str(p.relative_to(REPO)).encode()) % n == i]
    return cfgs


CASES = discover()


@pytest.mark.matrix
@pytest.mark.parametrize('path', CASES, ids=[str(p.relative_to(CONFIG_DIR)) for p in CASES])
def test_config_trains_two_iterations_and_evaluates(path: Path, toy_root, tmp_path):
    from mmengine.runner import Runner
    cfg = tiny_override(Config.fromfile(str(path)), str(toy_root))
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = re.sub(r'\W', '_', str(path.relative_to(CONFIG_DIR)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        metrics = runner.message_hub.log_scalars
        evaluated = [k for k in metrics if k.startswith('val/')]
        assert evaluated, f'{path.name}: validation produced no metric'


def test_every_config_is_discovered(monkeypatch):
    assert CASES or os.environ.get('HVIT_MATRIX_SHARD'), 'no config found under configs/'
    # git's view (tracked + untracked, not ignored) of configs/ is independent of discover()'s walk
    listed = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '--',
                             'configs'], cwd=REPO, capture_output=True, text=True)
    if listed.returncode:
        pytest.skip('not a git checkout')
    want = {p for p in listed.stdout.split() if p.endswith('.py') and '_base_' not in p.split('/')
            and (REPO / p).is_file()}
    monkeypatch.delenv('HVIT_MATRIX_SHARD', raising=False)
    everything = [str(p.relative_to(REPO)) for p in discover()]
    assert sorted(everything) == sorted(want)
    shards = []  # CI's shards together run every config once
    for i in range(3):
        monkeypatch.setenv('HVIT_MATRIX_SHARD', f'{i}/3')
        shards += [str(p.relative_to(REPO)) for p in discover()]
    assert sorted(shards) == sorted(everything)


BASES = sorted((CONFIG_DIR / '_base_').rglob('*.py'))


@pytest.mark.parametrize('path', BASES, ids=[str(p.relative_to(CONFIG_DIR)) for p in BASES])
def test_base_config_builds_its_model(path: Path):
    """Bases are trained through the configs that inherit them; each must also build on its own."""
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(str(path))
    scope = cfg.get('default_scope', 'mmengine')
    init_default_scope(scope)
    model = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
