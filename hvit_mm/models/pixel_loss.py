"""Pixel targets and the masked reconstruction loss shared by every MAE-style algorithm."""
import torch
from torch import Tensor


def patchify(imgs: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> (B, H/p · W/p, p·p·C), raster patch order, each patch flattened as (p, p, C)
    (MAE's layout, so official decoders' ``decoder_pred`` weights apply unchanged)."""
    B, C, H, W = imgs.shape
    if H % patch or W % patch:
        raise ValueError(f'patchify: image {H}x{W} is not a multiple of the patch size {patch}')
    x = imgs.reshape(B, C, H // patch, patch, W // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, (H // patch) * (W // patch), patch * patch * C)


def unpatchify(x: Tensor, patch: int, hw: tuple, channels: int = 3) -> Tensor:
    """Inverse of :func:`patchify`: (B, h·w, p·p·C) -> (B, C, h·p, w·p) for the token grid ``hw``."""
    h, w = hw
    B = x.shape[0]
    x = x.reshape(B, h, w, patch, patch, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, channels, h * patch, w * patch)


def normalize_patches(target: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-patch normalisation of MAE's ``norm_pix_loss``: (x - mean) / sqrt(unbiased var + eps)
    over the last dim of (B, N, p·p·C)."""
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)  # unbiased, as official MAE
    return (target - mean) / (var + eps) ** 0.5


def masked_mse(pred: Tensor, target: Tensor, visible: Tensor, norm_pix: bool = True) -> Tensor:
    """MAE's loss: squared error averaged per patch, then over **masked** patches only.

    Args:
        pred, target: (B, N, D) per-patch predictions and raw pixel targets.
        visible: (B, N) bool, True = the encoder saw the patch (those are excluded).
        norm_pix: normalise each target patch first.
    Returns:
        scalar loss.
    """
    if norm_pix:
        target = normalize_patches(target)
    per_patch = (pred.float() - target.float()).pow(2).mean(dim=-1)  # (B, N)
    removed = (~visible).to(per_patch.dtype)
    return (per_patch * removed).sum() / removed.sum().clamp(min=1.0)
