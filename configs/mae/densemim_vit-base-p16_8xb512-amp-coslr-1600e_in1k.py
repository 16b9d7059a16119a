# Recipe: MAE ViT-B pretraining; hvit_mm's own dense baseline, for benchmarks only.
# The dense baseline MAE is benchmarked against (SimMIM-style): the same ViT-B encoder encodes all
# 196 tokens, masked ones replaced by a learnable mask token; same 512-d 8-block decoder, same loss
# and recipe. Only for tools/analysis/benchmark_pretrain.py comparisons (docs/benchmarks.md).
_base_ = ['./mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py']

model = dict(type='SimMIM')
