# Recipe: hvit_mm's own (make demo): configs/mae's toy MAE, deeper and longer, on the demo set.
# The pretraining stage of `make demo` (tools/demo.py): MAE on the demo's toy ImageNet (64 px images
# of one big shape each, written by tools/demo.py into data/demo), encoder = the demo's ViT
# (./_base_/hpvit-tiny-p8_demo.py, 128-d x 6 blocks, 8 px patches: 64 tokens, 16 visible), whose
# weights then initialise HPViT in the demo's Mask R-CNN and UperNet configs. Everything else
# (decoder, mask ratio 0.75, norm_pix, AdamW, warm-up + cosine) is the toy MAE's.
_base_ = ['../mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py', './_base_/hpvit-tiny-p8_demo.py']

iters = 1000
model = dict(backbone=dict(arch=dict(_base_.vit_arch), patch_size=_base_.vit_patch_size,
                           img_size=_base_.vit_img_size))
train_dataloader = dict(
    batch_size=64,
    dataset=dict(times=10, dataset=dict(data_root=_base_.demo_data + '/imagenet')))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', T_max=iters - 50, by_epoch=False, begin=50, end=iters,
         eta_min=1e-5)
]
train_cfg = dict(max_iters=iters)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=iters // 2, max_keep_ckpts=2))
randomness = dict(seed=0)
