# Recipe: implus/UM-MAE FINETUNE.md / Makefile (Swin-L, 100 epochs).
# Fine-tuning UM-MAE Swin-L on ImageNet-1k at 256x256: the Swin-T recipe with layer decay 0.7 and
# drop path 0.2 (batch 1024, officially 32 x 4 accumulation x 8). The official fine-tuned file is
# hvit://um-mae_swin-large_ft-in1k (85.2, metafile.yml).
_base_ = './swin-tiny-w16_8xb128-coslr-100e_in1k-256px.py'

model = dict(
    backbone=dict(
        arch='large',
        drop_path_rate=0.2,
        # the output of ../um-mae_swin-large-w8_8xb512-amp-coslr-800e_in1k-256px.py
        init_cfg=dict(checkpoint='work_dirs/um-mae_swin-large-w8_8xb512-amp-coslr-800e_in1k-256px/'
                      'epoch_800.pth')),
    head=dict(in_channels=1536))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.7))
