"""The dense masked-image-modeling baseline (SimMIM-style) that MAE's sparse encoding is measured
against: the encoder processes all N patches, masked ones replaced by a learnable mask token; the
decoder and the loss are MAE's, so the two differ only in what the encoder computes.
"""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from ...registry import register_model
from ..masking import Mask
from .mae import MaskedAutoencoder


@register_model(scopes=('mmpretrain',))
class DenseMaskedAutoencoder(MaskedAutoencoder):
    """Same arguments as :class:`MaskedAutoencoder`; the backbone must offer
    ``forward_replaced(x, replace (B, N) bool, token (1, 1, C)) -> (B, P + N, C)``."""

    def __init__(self, backbone: Dict, neck: Dict, mask_ratio: float = 0.75, norm_pix: bool = True,
                 data_preprocessor: Optional[Dict] = None, init_cfg=None):
        super().__init__(backbone, neck, mask_ratio, norm_pix, data_preprocessor, init_cfg)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.backbone.embed_dims))
        nn.init.normal_(self.mask_token, std=0.02)

    def predict_patches(self, x: Tensor, mask: Mask) -> Tensor:
        """Encode all patches (masked ones as ``mask_token``), decode all: (B, N, p²·C)."""
        tokens = self.backbone.forward_replaced(x, ~mask.visible, self.mask_token)
        B, N = mask.visible.shape
        every = torch.arange(N, device=x.device).expand(B, N)  # nothing left for the decoder to fill
        grid = (x.shape[2] // self.patch_size, x.shape[3] // self.patch_size)
        return self.neck(tokens, every, grid, self.backbone.num_prefix_tokens)
