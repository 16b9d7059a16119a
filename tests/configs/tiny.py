"""One tiny override for every config under configs/: small widths, small images, toy data, 2 iters.

``TINY_ARCH`` maps a model ``type`` (backbone, neck, head, algorithm) to the constructor arguments
that make it tiny; ``tiny_override`` applies them wherever that type appears in ``cfg.model``, then
derives the channels of the layers that consume the backbone's outputs from a real forward pass.
"""
# -- tiny constructor arguments per model type ----------------------------------------------------
# Every hvit_mm backbone declares its own smallest instance (``Backbone.tiny_cfg``), so a new backbone
# is covered without an entry here; the other types that read a backbone or dominate a CPU iteration
# are listed below.
def _backbone_tiny_cfgs() -> dict:
    import hvit_mm  # noqa: F401  (registers every backbone)
    from mmpretrain.registry import MODELS
    from hvit_mm.models.backbones.base import Backbone
    return {name: cls.tiny_cfg for name, cls in MODELS.module_dict.items()
            if isinstance(cls, type) and issubclass(cls, Backbone) and cls.tiny_cfg}


NECK_WIDTH = 32  # output channels of the tiny FPN / SimpleFeaturePyramid

TINY_ARCH = {
    **_backbone_tiny_cfgs(),
    # the shared MAE-style decoder (its encoder width/patch/grid follow the backbone)
    'MAEDecoder': dict(decoder_embed_dims=32, decoder_depth=1, decoder_num_heads=2),
    # the stock ResNet-50 backbones of the toy detection / segmentation configs
    'ResNet': dict(depth=18),
    'ResNetV1c': dict(depth=18),
    # multi-scale necks: narrow outputs; every layer that reads them follows (`_follow_neck`)
    'FPN': dict(out_channels=NECK_WIDTH),
    'SimpleFeaturePyramid': dict(out_channels=NECK_WIDTH),
    # the convolutions and fcs inside the heads: 256-1024 ch on up to 512 RoIs x 3 cascade stages
    # (HTC++) are most of a CPU iteration; narrow layers keep the heads' structure
    'ConvFCBBoxHead': dict(conv_out_channels=32, fc_out_channels=64),
    'Shared2FCBBoxHead': dict(fc_out_channels=64),
    'Shared4Conv1FCBBoxHead': dict(conv_out_channels=32, fc_out_channels=64),
    'FCNMaskHead': dict(conv_out_channels=32),
    'HTCMaskHead': dict(conv_out_channels=32),
    'UPerHead': dict(channels=32),
    'FCNHead': dict(channels=32),
    # mmdet's / mmseg's stock Swin (configs/greenmim/benchmarks: GreenMIM weights in the stock
    # layout); mmpretrain's SwinTransformer takes `arch=` instead and is in no config
    'SwinTransformer': dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8)),
}
# arguments a config's own value of which survives the tiny override: valid at any size (the stage
# count does not shrink) and needed downstream (a detector's FPN wants all four strides, not the
# last stage that a backbone's MIM-oriented tiny_cfg selects)
TINY_KEEP = {'UMSwin': ('out_indices',), 'UMPVT': ('out_indices',)}
# ---------------------------------------------------------------------------------------------------

import copy  # noqa: E402
import os.path as osp  # noqa: E402

import torch  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402

IMG = 64            # classification / pretraining crops (a multiple of 32 and of 16)
DET = (128, 96)     # detection scale (w, h)
SEG = (64, 64)      # segmentation crop (h, w)

# dataset type -> toy data_root relative to the toy root (same on-disk layout as the real sets)
TOY_ROOTS = {'ImageNet': 'imagenet', 'CustomDataset': 'imagenet', 'CocoDataset': 'coco',
             'ADE20KDataset': 'ade/ADEChallengeData2016', 'CityscapesDataset': 'cityscapes'}
TOY_IMAGENET_CLASSES = ('circle', 'square', 'triangle', 'star')


def _walk(node, fn):
    """Apply ``fn(dict)`` to every dict in a nested config, depth first."""
    if isinstance(node, dict):
        fn(node)
        for v in list(node.values()):
            _walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, fn)


def _shrink_sizes(t: dict) -> None:
    """Transforms and preprocessors: every image size becomes toy-sized, keeping aspect ratios."""
    kind = t.get('type', '')
    if kind in ('RandomResizedCrop', 'CenterCrop', 'ResizeEdge', 'RandomCrop', 'Resize',
                'RandomResize', 'RandomChoiceResize', 'Pad', 'BatchFixedSizePad', 'FixShapeResize',
                'RandomCenterCropPad', 'RandAugment', 'Mixup', 'CutMix', 'RandomErasing',
                'ResizeShortestEdge', 'FixScaleResize') or 'size' in t or 'crop_size' in t:
        for key in ('scale', 'img_scale', 'crop_size', 'size', 'width', 'height', 'img_size'):
            if key in t and t[key] is not None:
                t[key] = _small(t[key], kind)


def _small(value, kind):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 8:
            return value
        return IMG if value <= 448 else 2 * IMG
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) for v in value) and len(value) == 2:
            big = max(value)
            if big <= 8:
                return value
            f = max(DET) / big
            return type(value)(max(32, int(round(v * f / 32)) * 32) for v in value)
        return type(value)(_small(v, kind) for v in value)
    return value


def _point_data_at_toy(cfg, toy_root: str) -> None:
    for phase in ('train', 'val', 'test'):
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.pop('prefetch_factor', None)

        def redirect(ds):
            kind = ds.get('type')
            if kind in TOY_ROOTS and ('data_root' in ds or 'ann_file' in ds):
                ds['data_root'] = osp.join(toy_root, TOY_ROOTS[kind])
                if kind in ('ImageNet', 'CustomDataset'):
                    ds['metainfo'] = dict(classes=TOY_IMAGENET_CLASSES)
                    if ds.get('split') is None and ds.get('ann_file') is None and kind == 'ImageNet':
                        ds['split'] = 'train' if phase == 'train' else 'val'
                if kind == 'CocoDataset':
                    ds.pop('filter_cfg', None)
        _walk(loader.get('dataset'), redirect)
    for phase in ('val', 'test'):
        ev = cfg.get(f'{phase}_evaluator')
        for e in ev if isinstance(ev, (list, tuple)) else [ev]:
            if isinstance(e, dict) and 'ann_file' in e:
                e['ann_file'] = osp.join(toy_root, 'coco', 'annotations', 'instances_val2017.json')


def _shrink_model(model: dict) -> None:
    def apply(d):
        extra = TINY_ARCH.get(d.get('type'))
        if extra:
            keep = TINY_KEEP.get(d.get('type'), ())
            for k, v in copy.deepcopy(extra).items():
                if k not in keep or k not in d:
                    d[k] = v
        init = d.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            d['init_cfg'] = None  # no downloads / no files from other runs
        for key in [k for k, v in d.items() if k.endswith('checkpoint') and isinstance(v, str)]:
            d[key] = None
        if d.get('pretrained') and isinstance(d['pretrained'], str):
            d['pretrained'] = None
        if d.get('type') == 'SyncBN':
            d['type'] = 'BN'
    _walk(model, apply)


def _backbone_channels(backbone_cfg: dict, scope: str):
    """Channels of every backbone output, from a forward pass of the tiny backbone."""
    from mmengine.registry import DefaultScope
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        net = registry.build(copy.deepcopy(backbone_cfg))
    net.eval()
    with torch.no_grad():
        outs = net(torch.zeros(1, 3, IMG, IMG))
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    # 4-D maps, or pooled (B, C) vectors of classification backbones (ViT out_type='avg_featmap')
    return [o.shape[1] for o in outs if torch.is_tensor(o) and o.ndim in (2, 4)]


# necks that hand the backbone's channels through unchanged (the head then reads the backbone)
WIDTH_PRESERVING_NECKS = {'GlobalAveragePooling', 'ClsBatchNormNeck'}


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _set_in_channels(layer, chans) -> None:
    """``in_channels`` of a layer reading the backbone outputs: the list (selected by ``in_index``)
    or the single selected map. Types whose tiny entry sets ``in_channels`` are left alone."""
    if (not isinstance(layer, dict) or 'in_channels' not in layer
            or 'in_channels' in TINY_ARCH.get(layer.get('type'), {})):
        return
    index = layer.get('in_index', -1)
    if isinstance(layer['in_channels'], (list, tuple)):
        picks = index if isinstance(index, (list, tuple)) else range(len(chans))
        layer['in_channels'] = [chans[i] for i in picks]
    else:
        layer['in_channels'] = chans[index]


def _follow_backbone(model: dict, scope: str) -> None:
    """Set the input channels of the layers that read a tiny backbone: the first neck, or (with no
    neck or a width-preserving one) the heads."""
    backbone = model.get('backbone')
    if not backbone or backbone.get('type') not in TINY_ARCH:
        return
    chans = _backbone_channels(backbone, scope)
    if not chans:
        return
    necks = [n for n in _as_list(model.get('neck')) if isinstance(n, dict)]
    if necks and necks[0].get('type') not in WIDTH_PRESERVING_NECKS:
        _set_in_channels(necks[0], chans)  # the heads read the neck, whose width the config fixes
        return
    for n in necks:
        if 'input_features' in n:  # ClsBatchNormNeck
            n['input_features'] = chans[-1]
    for key in ('head', 'decode_head', 'auxiliary_head'):
        for layer in _as_list(model.get(key)):
            _set_in_channels(layer, chans)


def _follow_neck(model: dict) -> None:
    """With a tiny multi-scale neck (FPN, SimpleFeaturePyramid), every layer of the heads that
    reads its maps takes its width: ``in_channels`` (one map or a list of them), an RPN's
    ``feat_channels``, a RoI extractor's ``out_channels``."""
    necks = [n for n in _as_list(model.get('neck')) if isinstance(n, dict)]
    if not necks or necks[-1].get('out_channels') != NECK_WIDTH:
        return

    def narrow(d):
        if isinstance(d.get('in_channels'), int):
            d['in_channels'] = NECK_WIDTH
        elif isinstance(d.get('in_channels'), (list, tuple)):
            d['in_channels'] = [NECK_WIDTH] * len(d['in_channels'])
        if 'feat_channels' in d:
            d['feat_channels'] = NECK_WIDTH
        if d.get('type') == 'SingleRoIExtractor':
            d['out_channels'] = NECK_WIDTH
    for key in ('rpn_head', 'roi_head', 'bbox_head', 'decode_head', 'auxiliary_head'):
        _walk(model.get(key), narrow)


def _fewer_proposals(model: dict) -> None:
    """Two-stage detectors: 100 proposals instead of 1000-2000 and 64 sampled RoIs instead of
    512 per image. At score_thr 0 (after 2 iterations no score passes 0.05: COCO AP would be
    empty) 1000 proposals x 80 classes exceed mmcv's batched-NMS split threshold and NMS runs
    class by class, most of a CPU iteration."""
    train, test = model.get('train_cfg') or {}, model.get('test_cfg') or {}
    for proposal in (train.get('rpn_proposal'), test.get('rpn')):
        if isinstance(proposal, dict):
            proposal.update(nms_pre=200, max_per_img=100)
    for rcnn in _as_list(train.get('rcnn')):
        if isinstance(rcnn, dict) and isinstance(rcnn.get('sampler'), dict):
            rcnn['sampler']['num'] = 64
    rcnn = test.get('rcnn')
    if isinstance(rcnn, dict) and 'score_thr' in rcnn:
        rcnn.update(score_thr=0.0, max_per_img=20)


def tiny_override(cfg: Config, toy_root: str, iters: int = 2) -> Config:
    """Return a copy of ``cfg`` that trains ``iters`` iterations on the toy data and validates."""
    cfg = copy.deepcopy(cfg)
    scope = cfg.get('default_scope', 'mmengine')
    _walk(cfg._cfg_dict, _shrink_sizes)
    _point_data_at_toy(cfg, toy_root)
    _shrink_model(cfg.model)
    _follow_backbone(cfg.model, scope)
    _follow_neck(cfg.model)
    _fewer_proposals(cfg.model)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters if cfg.get('val_cfg') else iters + 1)
    cfg.param_scheduler = []  # epoch-based schedules do not fit 2 iterations
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=2)
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper' and not torch.cuda.is_available():
        wrapper.type = 'OptimWrapper'
        for key in ('loss_scale', 'dtype', 'use_fsdp'):
            wrapper.pop(key, None)
    wrapper.pop('accumulative_counts', None)
    hooks = cfg.default_hooks
    hooks.logger = dict(type='LoggerHook', interval=1)
    hooks.checkpoint = dict(type='CheckpointHook', interval=iters, by_epoch=False,
                            max_keep_ckpts=1)
    hooks.pop('visualization', None)
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                        if h.get('type') not in ('EMAHook', 'SwAVHook')]
    cfg.log_processor = dict(cfg.get('log_processor', {}), by_epoch=False)
    cfg.load_from, cfg.resume = None, False
    cfg.env_cfg = dict(cfg.get('env_cfg', {}), cudnn_benchmark=False,
                       mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
    cfg.pop('visualizer', None)
    return cfg


__all__ = ['TINY_ARCH', 'tiny_override', 'ConfigDict']
