# Recipe: LayneH/GreenMIM ft_configs/greenmim_finetune_swin_base_img224_win7.yaml.
# Fine-tuning GreenMIM Swin-B (window 7) on ImageNet-1k, the recipe of LayneH/GreenMIM
# ft_configs/greenmim_finetune_swin_base_img224_win7.yaml (run with the SimMIM code): 100 epochs, 20
# warm-up, AdamW wd 0.05, base lr 1.25e-3 per 512 images (SimMIM's scaling: lr 5e-3, warm-up from
# 2.5e-7 and cosine to 2.5e-7, both x 2048/512, at batch 2048 = 8 x 256), layer decay 0.9, drop path
# 0.1, grad clip 5, RandAugment m9, mixup 0.8 / cutmix 1.0, label smoothing 0.1, random erasing
# 0.25; eval resize 256 -> crop 224. All but the backbone and the optimiser constructor is
# mmpretrain's SimMIM Swin-B fine-tuning config, which is that recipe. GreenSwin's dense forward
# is stock Swin (official layout, padding and shifts). Official result: 83.8 top-1
# (../metafile.yml).
_base_ = 'mmpretrain::simmim/benchmarks/swin-base-w7_8xb256-coslr-100e_in1k.py'
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,  # mmpretrain's SwinTransformer -> GreenSwin (loads GreenMIM files strictly)
        type='GreenSwin',
        arch='base',
        img_size=224,
        window_size=7,
        drop_path_rate=0.1,
        out_indices=(3, ),  # the final norm (official `norm`), then global average pooling
        # the published weights by name (converted on first use), or the output of
        # ../greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k.py:
        # checkpoint='work_dirs/greenmim_swin-base-w7_8xb256-amp-coslr-800e_in1k/epoch_800.pth'
        init_cfg=dict(type='Pretrained', checkpoint='hvit://greenmim_swin-base-w7')))

# GreenSwin.get_layer_depth: patch embedding 0, block j of stage i its flat index + 1 (a stage's
# patch merging with its last block), the final norm and the head 25, as SimMIM's Swin layer decay;
# no weight decay for 1-D parameters and the relative position bias tables
# (GreenSwin.no_weight_decay)
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.9, flat_decay_mult=0.0))
auto_scale_lr = dict(base_batch_size=2048)
