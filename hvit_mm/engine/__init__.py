"""Optimizer constructors and hooks shared by mmpretrain, mmdet and mmseg configs."""
from .checkpoint import ResumeStateHook, enable_exact_resume, find_resume_checkpoint  # noqa: F401
from .hooks import ParamConsistencyHook, param_digest
from .layer_decay import LayerDecayOptimWrapperConstructor, depth_fn

__all__ = ['LayerDecayOptimWrapperConstructor', 'ParamConsistencyHook', 'depth_fn', 'param_digest']
from .guards import NonFiniteError, NonFiniteGuardHook, add_default_guards  # noqa: E402,F401
