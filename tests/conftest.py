"""Shared fixtures: the repository root, the toy datasets (made once per session), a CLI runner."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import hvit_mm  # noqa: F401  (compat fixes + registration, as in every user process)

REPO = Path(__file__).resolve().parents[1]
TOY_ROOT = REPO / 'data' / 'toy'

torch.set_num_threads(min(2, os.cpu_count() or 1))


def load_tool(relpath: str):
    """Import a script under tools/ as a module."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def toy_root() -> Path:
    """data/toy with the toy ImageNet, COCO, ADE20K and Cityscapes (skipped when already there)."""
    load_tool('tools/dataset_converters/make_toy_datasets.py').make_toy_datasets(str(TOY_ROOT))
    return TOY_ROOT


def run_tool(*args, timeout=900, env=None, check=True) -> subprocess.CompletedProcess:
    """Run ``python tools/...`` (or a shell script) from the repo root; returns the completed process
    with stdout+stderr merged in ``.stdout``."""
    cmd = [str(a) for a in args]
    if cmd[0].endswith('.py'):
        cmd = [sys.executable] + cmd
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1', PYTHON=sys.executable)
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} exited {proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """mmengine keeps the latest ``DefaultScope`` process-wide, and registries build in it: a test
    that calls ``init_default_scope('mmdet')`` would make later mmpretrain builds look in mmdet's
    registry. Drop the scopes a test created, so each test sees the scopes it started with."""
    from mmengine.registry import DefaultScope
    before = set(DefaultScope._instance_dict)
    yield
    for name in [n for n in DefaultScope._instance_dict if n not in before]:
        DefaultScope._instance_dict.pop(name)
