"""``--cfg-options`` is checked as mmengine would merge it: new nested keys that the built class
takes are accepted, a key one edit away from one it takes is refused, unsure cases warn."""
import pytest
from mmengine.config import Config

from hvit_mm.config_check import ConfigError, check_cfg_options, load_config
from tests.conftest import REPO

MASK_RCNN = str(REPO / 'configs/hpvit/mask-rcnn_hpvit-base-p16_8xb2-1x_coco.py')
TOY = str(REPO / 'configs/toy/resnet18_1xb16-toy_in1k.py')


@pytest.fixture(scope='module')
def mask_rcnn():
    return Config.fromfile(MASK_RCNN)


@pytest.mark.parametrize('option', [
    'optim_wrapper.paramwise_cfg.flat_decay_mult=0.0',  # measured: "did you mean bias_decay_mult"
    'model.neck.init_cfg.type=Pretrained',  # measured: was "no key 'init_cfg' under model.neck"
    'model.neck.init_cfg.checkpoint=x.pth',
    'optim_wrapper.paramwise_cfg.custom_keys.pos_embed.decay_mult=0.0',  # a new nested dict
    'model.rpn_head.init_cfg.type=Normal',
    'optim_wrapper.optimizer.amsgrad=True',  # torch's AdamW takes it
    'model.backbone.with_cp=True',
])
def test_everyday_options_are_accepted_silently(mask_rcnn, capsys, option):
    key, value = option.split('=')
    check_cfg_options(mask_rcnn, {key: value})
    assert capsys.readouterr().err == ''


def test_measured_options_merge_through_load_config():
    cfg = load_config(MASK_RCNN, {'optim_wrapper.paramwise_cfg.flat_decay_mult': 0.0,
                                  'model.neck.init_cfg.type': 'Pretrained'})
    assert cfg.optim_wrapper.paramwise_cfg.flat_decay_mult == 0.0
    assert cfg.model.neck.init_cfg.type == 'Pretrained'


@pytest.mark.parametrize('option, hint', [
    ('model.neck.init_cfgg.type=Pretrained', "'init_cfg'"),  # FPN takes init_cfg, no **kwargs
    ('model.neck.num_out=5', "'num_outs'"),
    ('optim_wrapper.optimizer.weight_decy=0.05', "'weight_decay'"),
    ('trian_cfg.max_epochs=2', "'train_cfg'"),  # the runner takes train_cfg
    ('train_cfg.max_epoch=2', "'max_epochs'"),  # EpochBasedTrainLoop (by_epoch=True)
])
def test_true_typos_are_refused(mask_rcnn, option, hint):
    key, value = option.split('=')
    with pytest.raises(ConfigError, match=hint) as err:
        check_cfg_options(mask_rcnn, {key: value})
    assert key in str(err.value)


def test_type_set_on_the_same_command_line_decides(mask_rcnn):
    """``model.neck.type=X`` next to a new key of X: the key is judged against X."""
    check_cfg_options(mask_rcnn, {'model.neck.type': 'ChannelMapper', 'model.neck.kernel_size': 3})
    with pytest.raises(ConfigError, match="'kernel_size'"):
        check_cfg_options(mask_rcnn, {'model.neck.type': 'ChannelMapper',
                                      'model.neck.kernel_sizes': 3})


def test_unsure_cases_warn_on_one_line(mask_rcnn, capsys):
    # paramwise_cfg is read key by key by the constructor: nothing says what it takes
    check_cfg_options(mask_rcnn, {'optim_wrapper.paramwise_cfg.norm_decay_mul': 0.0})
    err = capsys.readouterr().err
    assert err.startswith('hvit_mm: warning') and err.count('\n') == 1
    assert "'norm_decay_mult'" in err
    # FPN has no such argument, but it is not a near-copy of one: mmengine's build will say
    check_cfg_options(mask_rcnn, {'model.neck.zzz': 1})
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "'zzz'" in err


def test_class_with_var_kwargs_accepts_anything(mask_rcnn, capsys):
    """mmdet's Shared2FCBBoxHead(fc_out_channels, *args, **kwargs): nothing to refuse."""
    check_cfg_options(mask_rcnn, {'model.roi_head.bbox_head.reg_class_agnosticc': True})
    assert capsys.readouterr().err == ''


def test_untyped_loop_is_judged_by_by_epoch():
    """``train_cfg = dict(by_epoch=False, ...)`` is the runner's IterBasedTrainLoop."""
    cfg = Config.fromfile(TOY)
    cfg.train_cfg = dict(by_epoch=False, max_iters=10)
    with pytest.raises(ConfigError, match="'max_iters'"):
        check_cfg_options(cfg, {'train_cfg.max_iter': 2})
    check_cfg_options(cfg, {'train_cfg.val_begin': 2})
