"""Bad input ends with one clear line and exit status 2, not a traceback, and leaves the work dir as
it was. Most cases call the tools' ``main`` in-process (same code path, no interpreter start-up);
a few run the real command line, where the runner gets built and then fails."""
import functools
import os

import pytest

from tests.conftest import REPO, load_tool, run_tool

CFG = 'configs/toy/resnet18_1xb16-toy_in1k.py'
MAE = 'configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py'
# the toy MAE, as small as a failing run needs it
MAE_TINY = ['train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_dataloader.batch_size=2', 'train_dataloader.dataset.times=1']


def snapshot(root):
    """name -> mtime of everything under ``root`` (and of ``root`` itself)."""
    found = {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob('*')}
    return dict(found, **{'.': root.stat().st_mtime_ns})


def work_dir_with_a_checkpoint(tmp_path, config=None):
    """A work dir that a previous run left: a checkpoint, ``last_checkpoint`` and (for ``config``)
    the config dump that the runner overwrites when it starts."""
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_2.pth').write_bytes(b'a previous run\'s checkpoint')
    (work / 'last_checkpoint').write_text(str(work / 'iter_2.pth'))
    if config:
        (work / os.path.basename(config)).write_text('# the previous run\'s config\n')
    for p in list(work.iterdir()) + [work]:
        os.utime(p, ns=(10 ** 18, 10 ** 18))  # an old time: any rewrite shows
    return work


def assert_one_line(code, output, expect):
    assert code == 2, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith('hvit_mm: error:'), output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    for word in expect:
        assert word in last, last
    return last


@functools.lru_cache(maxsize=None)
def _tool(path):
    return load_tool(path)


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # the configs' data roots are relative to it


def run_main(capsys, tool, *args):
    """``tools/<tool>.main(args)`` in this process: (exit status, stdout + stderr)."""
    with pytest.raises(SystemExit) as exit_:
        _tool(tool).main([str(a) for a in args])
    out = capsys.readouterr()
    return exit_.value.code, out.out + out.err


def fails_clearly(capsys, tmp_path, *args, expect, tool='tools/train.py'):
    work = work_dir_with_a_checkpoint(tmp_path)
    before = snapshot(work)
    last = assert_one_line(*run_main(capsys, tool, *args, '--work-dir', work), expect)
    assert snapshot(work) == before
    return last


# --------------------------------------------------------------- caught before the runner starts
def test_missing_dataset_root_names_it_and_the_toy_set(capsys, tmp_path):
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options',
                  'train_dataloader.dataset.data_root=/nonexistent/imagenet',
                  expect=['/nonexistent/imagenet', 'make_toy_datasets.py'])


def test_missing_validation_root_is_checked_before_training(capsys, tmp_path, toy_root):
    """mmpretrain's inherited ``val_cfg = dict()`` is falsy: validation still runs, so its data
    is checked up front, not after the first epoch."""
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options',
                  'val_dataloader.dataset.data_root=/nonexistent/val',
                  expect=['val_dataloader', '/nonexistent/val'])


def test_empty_data_directory(capsys, tmp_path, toy_root):
    (tmp_path / 'empty').mkdir()
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options',
                  f'train_dataloader.dataset.data_root={tmp_path / "empty"}',
                  expect=['train_dataloader', str(tmp_path / 'empty'), 'is empty'])


def test_unknown_type_suggests_the_right_name(capsys, tmp_path, toy_root):
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options', 'model.backbone.type=ResNett',
                  expect=["'ResNett'", 'model.backbone', "'ResNet'"])


@pytest.mark.parametrize('key, hint', [('train_cfg.max_epoch=2', "'max_epochs'"),
                                       ('trian_cfg.max_epochs=2', "'train_cfg'")])
def test_misspelled_cfg_option(capsys, tmp_path, key, hint):
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options', key,
                  expect=[key.split('=')[0], hint])


@pytest.mark.parametrize('option, expect', [
    ('train_cfg.max_iters=abc', ['train_cfg.max_iters', 'number']),
    ('train_cfg.max_iters=-5', ['train_cfg.max_iters', 'positive']),  # trained nothing, exit 0
    ('train_cfg.max_iters=0', ['train_cfg.max_iters', 'positive']),
    ('model.mask_ratio=abc', ['model.mask_ratio', 'number']),
    ('model.mask_ratio=[0.5,0.6]', ['model.mask_ratio', 'list']),
    ('optim_wrapper.optimizer.lr=abc', ['optim_wrapper.optimizer.lr', 'number']),
    ('randomness.seed=abc', ['randomness.seed', 'number']),
    ('model.backbone=ViT', ['model.backbone', 'model.backbone.type=ViT']),
    ('default_scope=mmfoo', ["'mmfoo'", 'mmpretrain', 'mmdet']),  # not "unknown type ..."
    ('train_dataloader.batch_size=0', ['train_dataloader.batch_size', 'positive']),
])
def test_values_the_type_check_did_not_see(capsys, tmp_path, option, expect):
    fails_clearly(capsys, tmp_path, MAE, '--cfg-options', *MAE_TINY, option, expect=expect)


@pytest.mark.parametrize('option, expect', [
    ('train_cfg.max_epochs=0', ['train_cfg.max_epochs', 'positive']),
    ('randomness.seed=abc', ['randomness.seed', 'integer']),  # was None: no type to compare with
])
def test_values_of_the_epoch_based_config(capsys, tmp_path, option, expect):
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options', option, expect=expect)


def test_option_without_equals_sign(capsys, tmp_path):
    fails_clearly(capsys, tmp_path, CFG, '--cfg-options', 'foo', expect=["'foo'", 'KEY=VALUE'])


def test_config_with_a_syntax_error_names_the_file(capsys, tmp_path):
    bad = tmp_path / 'bad_config.py'
    bad.write_text("model = dict(type='ViT'\n")
    fails_clearly(capsys, tmp_path, bad, expect=[str(bad)])


def test_missing_config_file(capsys, tmp_path):
    fails_clearly(capsys, tmp_path, 'configs/nope.py', expect=['configs/nope.py'])


def test_test_tool_missing_checkpoint(capsys, tmp_path):
    fails_clearly(capsys, tmp_path, CFG, tmp_path / 'none.pth', tool='tools/test.py',
                  expect=[str(tmp_path / 'none.pth')])


# ------------------------------------------------------------------ the real command line
def test_module_error_while_building_is_one_line_and_the_work_dir_is_kept(tmp_path, toy_root):
    """The runner makes its log dir and overwrites its config dump before the model refuses
    ``mask_ratio=1.0``: what this run created is removed, what it overwrote is put back."""
    work = work_dir_with_a_checkpoint(tmp_path, config=MAE)
    before = snapshot(work)
    proc = run_tool('tools/train.py', MAE, '--work-dir', work, '--cfg-options', *MAE_TINY,
                    'model.mask_ratio=1.0', check=False, timeout=300)
    assert 'Checkpoints will be saved' not in proc.stdout  # it was the build that failed
    assert_one_line(proc.returncode, proc.stdout,
                    expect=['mask_ratio', 'model (MaskedAutoencoder)', '1.0', '--debug'])
    assert snapshot(work) == before
    assert (work / os.path.basename(MAE)).read_text() == '# the previous run\'s config\n'


def test_debug_brings_the_traceback_back(tmp_path, toy_root):
    work = work_dir_with_a_checkpoint(tmp_path, config=MAE)
    before = snapshot(work)
    proc = run_tool('tools/train.py', MAE, '--work-dir', work, '--debug', '--cfg-options',
                    *MAE_TINY, 'model.mask_ratio=1.0', check=False, timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert 'Traceback (most recent call last)' in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith('ValueError:')
    assert 'hvit_mm: error:' not in proc.stdout
    assert snapshot(work) == before


def test_debug_environment_variable(monkeypatch):
    from hvit_mm.launch import debug_enabled
    monkeypatch.delenv('HVIT_MM_DEBUG', raising=False)
    assert not debug_enabled(None)
    monkeypatch.setenv('HVIT_MM_DEBUG', '0')
    assert not debug_enabled(None)
    monkeypatch.setenv('HVIT_MM_DEBUG', '1')
    assert debug_enabled(None)

