# Recipe: implus/UM-MAE PRETRAIN.md / Makefile (Swin-T, 200 epochs).
# UM-MAE pretraining of Swin-T (window 8 on the compact map), 200 epochs: the shared recipe as is.
# Official result after 100-epoch fine-tuning: 82.04 top-1 (metafile.yml).
_base_ = './_base_/um-mae_8xb512-amp-coslr_in1k-256px.py'
