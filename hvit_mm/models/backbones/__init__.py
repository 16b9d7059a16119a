"""Backbones: each keeps the contract of :mod:`.base` (forward -> tuple of NCHW maps, layer depth,
strict pretrained loading; forward_masked when MIM-capable)."""
from .base import Backbone, MaskedFeatures  # noqa: F401,E402
from .hpvit import HPViT  # noqa: F401,E402
from .vit import ViT, ViTDet  # noqa: F401,E402
from .hiera import Hiera  # noqa: F401,E402
from .green_swin import GreenSwin  # noqa: F401,E402
from .um_swin import UMSwin  # noqa: F401,E402
from .um_pvt import UMPVT  # noqa: F401,E402
from .green_twins import GreenTwins  # noqa: F401,E402
