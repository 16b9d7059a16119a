# Recipe: wangsr126/mae-lite projects/mae_lite/mae_lite_distill_exp.py (DISTILL.md, 400 epochs).
# D-MAE-Lite: MAE-Lite pretraining of ViT-Tiny plus distillation of the last-block attention logits
# of a frozen MAE ViT-B teacher (the official 1600-epoch MAE-B) that sees the student's visible
# patches; a 1x1 conv maps the student's 12 heads to the teacher's 12; MSE weight 1.0; hidden-feature
# distillation off. The teacher loads by zoo name (`hvit://mae_vit-base-p16`: downloaded, verified and
# converted on first use; offline: `python tools/model_converters/download.py mae_vit-base-p16`).
_base_ = ['./mae-lite_vit-tiny-p16_8xb512-amp-coslr-400e_in1k.py']

model = dict(
    type='DistilledMAE',
    teacher=dict(
        type='ViT',
        arch='base',
        patch_size=16,
        img_size=224,
        init_cfg=dict(type='Pretrained', checkpoint='hvit://mae_vit-base-p16')),
    student_block=-1,
    teacher_block=-1,
    attn_loss_weight=1.0,
    hidden_loss_weight=0.0)
