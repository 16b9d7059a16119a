"""Optimizer constructors and hooks shared by mmpretrain, mmdet and mmseg configs."""
from .hooks import ParamConsistencyHook, param_digest
from .layer_decay import LayerDecayOptimWrapperConstructor, depth_fn

__all__ = ['LayerDecayOptimWrapperConstructor', 'ParamConsistencyHook', 'depth_fn', 'param_digest']
