# Recipe: LayneH/GreenMIM ft_configs/greenmim_finetune_swin_large_img224_win14.yaml.
# Fine-tuning GreenMIM Swin-L (window 14) on ImageNet-1k (LayneH/GreenMIM
# ft_configs/greenmim_finetune_swin_large_img224_win14.yaml): the Swin-B recipe with base lr 1e-3
# per 512 images (lr 4e-3 at batch 2048), warm-up from 2e-7 and cosine to 3.5e-7 (both x 2048/512),
# layer decay 0.8, drop path 0.3. Official result: 85.1 top-1 (../metafile.yml).
_base_ = './swin-base-w7_8xb256-coslr-100e_in1k.py'

model = dict(
    backbone=dict(arch='large', window_size=14, drop_path_rate=0.3,
                  init_cfg=dict(checkpoint='hvit://greenmim_swin-large-w14')),
    head=dict(in_channels=1536))
optim_wrapper = dict(optimizer=dict(lr=1e-3 * 2048 / 512), paramwise_cfg=dict(layer_decay_rate=0.8))
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-7 / 1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, eta_min=3.5e-7 * 2048 / 512, by_epoch=True, begin=20,
         end=100, convert_to_iter_based=True)
]
