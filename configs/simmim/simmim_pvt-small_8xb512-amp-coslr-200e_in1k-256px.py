# Recipe: implus/UM-MAE PVT-S pretraining (Makefile); hvit_mm's own dense baseline.
# The dense baseline of UM-MAE PVT-S (docs/benchmarks.md "UM-MAE vs SimMIM"): the UM-MAE PVT-S recipe,
# but the encoder sees every 16 px unit of the full image (hidden ones replaced by the mask token),
# with the full-image spatial reduction (8, 4, 2, 1) and random masking (0.75). Decoder and loss stay
# UM-MAE's, so the two differ only in what the encoder computes.
_base_ = '../um_mae/um-mae_pvt-small_8xb512-amp-coslr-200e_in1k-256px.py'

model = dict(type='SimMIM', backbone=dict(sr_ratios=(8, 4, 2, 1)), mask_type='random',
             secondary_ratio=0.0)
