"""Backbones: each offers forward(x) -> tuple of NCHW maps, and forward_masked(x, mask) when MIM-capable."""
from .hpvit import HPViT  # noqa: F401,E402
from .vit import ViT  # noqa: F401,E402
from . import hiera  # noqa: F401  (Hiera)
