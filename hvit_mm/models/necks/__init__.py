"""Necks: MAE-style decoders and dense-task pyramids."""
from .mae_decoder import MAEDecoder  # noqa: F401,E402
from .simple_fpn import LayerNorm2d, SimpleFeaturePyramid  # noqa: F401,E402
