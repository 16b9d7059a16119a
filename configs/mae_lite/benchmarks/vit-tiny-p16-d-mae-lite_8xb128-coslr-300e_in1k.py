# Recipe: wangsr126/mae-lite projects/eval_tools/finetuning_exp.py (300 epochs, DISTILL.md).
# Fine-tuning the D-MAE-Lite ViT-Tiny: the MAE-Lite fine-tuning recipe from the distilled checkpoint.
_base_ = ['./vit-tiny-p16_8xb128-coslr-300e_in1k.py']

model = dict(backbone=dict(init_cfg=dict(
    checkpoint='work_dirs/d-mae-lite_vit-tiny-p16_8xb512-amp-coslr-400e_in1k/epoch_400.pth')))
