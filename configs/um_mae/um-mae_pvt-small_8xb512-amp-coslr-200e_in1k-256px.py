# Recipe: implus/UM-MAE PRETRAIN.md / Makefile (PVT-S, 200 epochs).
# UM-MAE pretraining of PVT-S, 200 epochs: the shared recipe with PVT-S as the encoder. Spatial
# reduction (4, 2, 1, 1) on the compact 32x32 map pools keys/values to the same image area as
# (8, 4, 2, 1) on the full map at fine-tuning; the sin-cos position table stays fixed in pretraining.
# Official result after 100-epoch fine-tuning: 79.31 top-1 (metafile.yml).
_base_ = './_base_/um-mae_8xb512-amp-coslr_in1k-256px.py'

model = dict(backbone=dict(_delete_=True, type='UMPVT', arch='small', img_size=_base_.img_size,
                           sr_ratios=(4, 2, 1, 1), out_indices=(3, )))
