# Recipe: implus/UM-MAE Swin-T pretraining (Makefile); hvit_mm's own dense baseline.
# The dense baseline of UM-MAE (docs/benchmarks.md "UM-MAE vs SimMIM"): the UM-MAE Swin-T recipe, but
# the encoder sees every 16 px unit of the full 256x256 image (hidden ones replaced by the mask token
# after the patch embedding), with window 16 as the paper's SimMIM baseline, and random masking
# (0.75; secondary masking is a UM-MAE device). Decoder and loss stay UM-MAE's (MSE on normalised
# pixels), so the two differ only in what the encoder computes; the paper's baseline had SimMIM's
# linear head and L1 loss.
_base_ = '../um_mae/um-mae_swin-tiny-w8_8xb512-amp-coslr-200e_in1k-256px.py'

model = dict(type='SimMIM', backbone=dict(window_size=16), mask_type='random', secondary_ratio=0.0)
