"""The shared attention core (fused SDPA vs explicit path) and MAE's sin-cos table."""
import math

import numpy as np
import pytest
import torch

from hvit_mm.models.layers import Attention, Block, attend, attend_explicit, sincos_2d


def _qkv(B=2, h=3, n=17, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, h, n, d, generator=g) for _ in range(3)]


@pytest.mark.parametrize('bias_kind', [None, 'float', 'float_bcast', 'bool'])
def test_fused_equals_explicit(bias_kind):
    q, k, v = _qkv()
    g = torch.Generator().manual_seed(1)
    bias = {None: None,
            'float': torch.randn(2, 3, 17, 17, generator=g),
            'float_bcast': torch.randn(1, 3, 17, 17, generator=g),
            'bool': torch.rand(2, 1, 17, 17, generator=g) > 0.3}[bias_kind]
    if bias_kind == 'bool':
        bias[..., 0] = True  # every query keeps at least one key
    fused = attend(q, k, v, bias)
    explicit, logits = attend_explicit(q, k, v, bias)
    assert (fused - explicit).abs().max() < 1e-5
    # the logits are the pre-softmax scores: softmax(logits) @ v reproduces the output
    assert logits.shape == (2, 3, 17, 17)
    assert torch.allclose(logits.softmax(-1) @ v, explicit, atol=1e-6)
    ref = q @ k.transpose(-2, -1) / math.sqrt(16)
    if bias_kind in ('float', 'float_bcast'):
        ref = ref + bias
    if bias_kind == 'bool':
        assert torch.isinf(logits[~bias.expand_as(logits)]).all()
        ref = ref.masked_fill(~bias, float('-inf'))
    assert torch.allclose(logits, ref, atol=1e-5)


@pytest.mark.parametrize('with_bias', [False, True])
def test_attention_module_paths_agree(with_bias):
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    blk = Block(32, 4).eval()
    x = torch.randn(2, 10, 32)
    bias = torch.randn(1, 4, 10, 10) if with_bias else None
    out, logits = attn.forward_with_logits(x, bias)
    assert (attn(x, bias) - out).abs().max() < 1e-5
    assert logits.shape == (2, 4, 10, 10)
    out_b, logits_b = blk.forward_with_logits(x, bias)
    assert (blk(x, bias) - out_b).abs().max() < 1e-5


def _mae_table_numpy(grid, dim):
    """Independent derivation of the official MAE table from its description: a 2-D grid given as
    (x, y) = (column, row); the first half of the channels encodes x, the second y, each as
    [sin(p·ω), cos(p·ω)] with ω_i = 1 / 10000^(i / (D/4)), i < D/4; a zero row for the cls token."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows = []
    for r in range(grid):
        for c in range(grid):
            ex, ey = c * omega, r * omega
            rows.append(np.concatenate([np.sin(ex), np.cos(ex), np.sin(ey), np.cos(ey)]))
    return np.concatenate([np.zeros((1, dim)), np.stack(rows)], 0)


@pytest.mark.parametrize('grid,dim', [(14, 768), (4, 32), (7, 192)])
def test_sincos_2d_matches_mae_table(grid, dim):
    ours = sincos_2d((grid, grid), dim, num_prefix=1)[0].double().numpy()
    ref = _mae_table_numpy(grid, dim)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-6
    # and it is not mmpretrain's transposed table (rows and columns swapped)
    swapped = np.concatenate([ref[:, dim // 2:], ref[:, :dim // 2]], 1)
    assert np.abs(ours - swapped).max() > 0.1
