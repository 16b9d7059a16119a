# Recipe: mmpretrain's MAE ViT-B linear-probing config (90 epochs, LARS).
# Linear probing of MAE ViT-B/16 (90 epochs, LARS, batch 16384 = 8 x 2048, BatchNorm without affine
# before the linear head, frozen encoder, cls token after the final norm): mmpretrain's recipe with
# hvit_mm's ViT.
_base_ = ['mmpretrain::mae/benchmarks/vit-base-p16_8xb2048-linear-coslr-90e_in1k.py']
custom_imports = dict(imports=['hvit_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ViT',
        arch='base',
        img_size=224,
        patch_size=16,
        frozen_stages=12,  # all blocks (and the final norm): only the neck and head learn
        out_type='cls_token',
        final_norm=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k/epoch_1600.pth',
            prefix='backbone.')))
