# Recipe: implus/UM-MAE FINETUNE.md / Makefile (PVT-S, 100 epochs).
# Fine-tuning UM-MAE PVT-S on ImageNet-1k at 256x256: the Swin-T recipe (layer decay 0.85, drop path
# 0.1) with PVT-S, spatial reduction (8, 4, 2, 1) on the full map and a learned position table.
# The official fine-tuned file is hvit://um-mae_pvt-small_ft-in1k (79.31, metafile.yml).
_base_ = './swin-tiny-w16_8xb128-coslr-100e_in1k-256px.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='UMPVT',
        arch='small',
        img_size=_base_.img_size,
        sr_ratios=(8, 4, 2, 1),
        pos_trainable=True,
        drop_path_rate=0.1,
        out_indices=(3, ),
        out_type='avg_featmap',
        # the output of ../um-mae_pvt-small_8xb512-amp-coslr-200e_in1k-256px.py
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/um-mae_pvt-small_8xb512-amp-coslr-200e_in1k-256px/epoch_200.pth',
            prefix='backbone.')),
    head=dict(in_channels=512))
