# Recipe: dbolya/hiera v0.2.0 hiera/train/config.py, TrainArgs.in1k_finetune (Hiera-B).
# Hiera-B fine-tuned on ImageNet-1k from its Hiera-MAE pretraining. Recipe (dbolya/hiera v0.2.0
# TrainArgs.in1k_finetune): AdamW (0.9, 0.999), lr 2e-3 at batch 1024, wd 0.05, 100 epochs with 5
# warm-up epochs then cosine, layer decay 0.7, drop path 0.1, label smoothing 0.1, RandAug
# rand-m9-mstd0.5-inc1, random erasing 0.25, mixup 0.8 / cutmix 1.0; eval resize 256 -> crop 224,
# bicubic. All but the model and the layer decay come from the MAE ViT-B fine-tuning config (whose
# cosine follows `train_cfg.max_epochs`). Official result: 84.5 top-1 (metafile.yml). The recipe of
# every Hiera size: the other hiera-*-p4_8xb128-coslr-*e_in1k.py configs change only the model, lr,
# layer decay, drop path and `train_cfg.max_epochs`.
_base_ = '../mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

# mae_hiera_base_224.pth from https://dl.fbaipublicfiles.com/hiera/ (CC-BY-NC 4.0), or the output of
# hiera-mae_hiera-base-p4_8xb512-amp-coslr-1600e_in1k.py; converted on load (official, timm, hvit_mm)
pretrained = 'hvit://hiera-mae_hiera-base-p4'

model = dict(
    backbone=dict(
        _delete_=True,
        type='Hiera',
        arch='base',
        img_size=224,
        q_pool=3,
        out_indices=(3, ),
        out_type='avg_featmap',  # mean over the stride-32 tokens, then the final norm
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=768))

# Hiera.get_layer_depth: patch/pos embedding 0, blocks.i i+1, the final norm and head last
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.7, norm_decay_mult=0.0,
                                        bias_decay_mult=0.0))
