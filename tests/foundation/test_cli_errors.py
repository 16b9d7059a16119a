"""Bad input ends with one clear line and exit status 2, not a traceback."""
import pytest

from tests.conftest import run_tool

CFG = 'configs/toy/resnet18_1xb16-toy_in1k.py'


def _fails_clearly(*args, expect):
    proc = run_tool('tools/train.py', *args, check=False, timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith('hvit_mm: error:'), proc.stdout[-3000:]
    assert 'Traceback' not in proc.stdout
    for word in expect:
        assert word in last, last
    return last


def test_missing_dataset_root_names_it_and_the_toy_set(tmp_path):
    _fails_clearly(CFG, '--work-dir', tmp_path, '--cfg-options',
                   'train_dataloader.dataset.data_root=/nonexistent/imagenet',
                   expect=['/nonexistent/imagenet', 'make_toy_datasets.py'])


def test_unknown_type_suggests_the_right_name(tmp_path, toy_root):
    _fails_clearly(CFG, '--work-dir', tmp_path, '--cfg-options', 'model.backbone.type=ResNett',
                   expect=["'ResNett'", 'model.backbone', "'ResNet'"])


@pytest.mark.parametrize('key, hint', [('train_cfg.max_epoch=2', "'max_epochs'"),
                                       ('trian_cfg.max_epochs=2', "'train_cfg'")])
def test_misspelled_cfg_option(tmp_path, key, hint):
    _fails_clearly(CFG, '--work-dir', tmp_path, '--cfg-options', key, expect=[key.split('=')[0], hint])


def test_missing_config_file(tmp_path):
    _fails_clearly('configs/nope.py', expect=['configs/nope.py'])
