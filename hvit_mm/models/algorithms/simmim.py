"""SimMIM-style dense masked image modeling: the baseline that MAE, UM-MAE and GreenMIM are measured
against. The encoder processes every unit, the masked ones replaced by a learnable mask token in the
encoder's stem; the decoder and the loss are :class:`MaskedAutoencoder`'s, so the two differ only in
what the encoder computes.
"""
from typing import Optional

import torch
from torch import Tensor

from ...registry import register_model
from ..masking import Mask
from .mae import MaskedAutoencoder


@register_model(scopes=('mmpretrain',))
class SimMIM(MaskedAutoencoder):
    """Same arguments as :class:`MaskedAutoencoder` (``mask_type='random'``); any backbone with
    ``forward_masked`` serves, as every unit is "visible" and the masked ones are ``replaced``."""

    needs_dropping = False

    @property
    def uses_token(self) -> bool:
        return True

    def draw_mask(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Mask:
        """All units enter the encoder (ids_keep = raster order); the randomly masked ones are
        ``replaced`` by the mask token."""
        hidden = ~super().draw_mask(x, generator).visible
        B, N = hidden.shape
        ids = torch.arange(N, device=x.device).expand(B, N)
        return Mask(torch.ones_like(hidden), ids, hidden)

    def target_units(self, mask: Mask) -> Tensor:
        return mask.replaced
