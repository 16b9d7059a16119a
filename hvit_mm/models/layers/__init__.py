"""Layers shared by every backbone and decoder: one attention core, one position-embedding module."""
from .attention import Attention, attend, attend_explicit
from .blocks import Block, DropPath, Mlp, init_conv_fan_out_, init_mae_, layer_norm
from .pos_embed import fit_pos_embed, resample_abs, sincos_1d, sincos_2d
from .window import window_partition, window_unpartition, windowed

__all__ = ['Attention', 'attend', 'attend_explicit', 'Block', 'DropPath', 'Mlp', 'init_conv_fan_out_', 'init_mae_',
           'layer_norm', 'fit_pos_embed', 'resample_abs', 'sincos_1d', 'sincos_2d',
           'window_partition', 'window_unpartition', 'windowed']
from .rel_pos import MapAttention, MapBlock, decomposed_rel_pos, resize_rel_pos  # noqa: E402

__all__ += ['MapAttention', 'MapBlock', 'decomposed_rel_pos', 'resize_rel_pos']
from .group_attention import GroupPlan, MapPlan, WindowAttention, plan_windows  # noqa: F401,E402
from .compact import compact_flags, compact_hw, compact_units, token_coords  # noqa: F401,E402
from .sparse_conv import sparse_conv, sparse_conv2d  # noqa: F401,E402
