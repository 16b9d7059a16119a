"""Necks: the MAE-style decoder, Hiera-MAE's encoder-side fusion, dense-task pyramids."""
from .mae_decoder import MAEDecoder  # noqa: F401,E402
from .fusion import MultiScaleFusion  # noqa: F401,E402
from .simple_fpn import LayerNorm2d, SimpleFeaturePyramid  # noqa: F401,E402
