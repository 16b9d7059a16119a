"""Sparse convolution (gather / matmul over active sites) against a dense nn.Conv2d on the
zero-scattered map, restricted to the active outputs: kernel == stride, submanifold depthwise 3×3,
grouped, given output sites, gradients, CUDA when present."""
import pytest
import torch
from torch import nn

from hvit_mm.models.layers.sparse_conv import (active_outputs, dense_conv_at, gather_table,
                                               output_size, sparse_conv, sparse_conv2d)

DEVICES = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])


def random_sites(B, H, W, keep, seed=0, device='cpu'):
    """Per-sample random active sites: (M, 3) long (b, h, w) raster order, and the (B, H, W) map."""
    g = torch.Generator().manual_seed(seed)
    active = torch.rand(B, H, W, generator=g) < keep
    active[0, 0, 0] = True
    return active.nonzero().to(device), active.to(device)


def dense_reference(conv, feats, coords, shape):
    B, H, W = shape
    dense = feats.new_zeros(B, feats.shape[1], H, W)
    dense[coords[:, 0], :, coords[:, 1], coords[:, 2]] = feats
    return conv(dense)  # (B, C_out, Ho, Wo)


def at(dense_out, sites):
    return dense_out[sites[:, 0], :, sites[:, 1], sites[:, 2]]


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('k', [2, 4, 8])
def test_kernel_equals_stride_matches_dense_conv(k, device):
    torch.manual_seed(k)
    B, H, W = 3, 16, 24
    coords, _ = random_sites(B, H, W, 0.3, seed=k, device=device)
    conv = nn.Conv2d(6, 10, k, stride=k).to(device)
    feats = torch.randn(coords.shape[0], 6, device=device)
    out, out_coords = sparse_conv(conv, feats, coords, (B, H, W))
    ref = dense_reference(conv, feats, coords, (B, H, W))
    # any-active rule: the output sites are exactly the cells holding an active input
    occupied = torch.zeros(B, H // k, W // k, dtype=torch.bool, device=device)
    occupied[coords[:, 0], coords[:, 1] // k, coords[:, 2] // k] = True
    assert torch.equal(out_coords, occupied.nonzero())
    assert (out - at(ref, out_coords)).abs().max().item() <= 1e-5


@pytest.mark.parametrize('device', DEVICES)
def test_submanifold_depthwise_3x3_matches_dense_conv(device):
    torch.manual_seed(0)
    B, H, W, C = 2, 12, 10, 8
    coords, _ = random_sites(B, H, W, 0.4, seed=1, device=device)
    conv = nn.Conv2d(C, C, 3, 1, 1, groups=C).to(device)  # Twins' PEG
    feats = torch.randn(coords.shape[0], C, device=device)
    out, out_coords = sparse_conv(conv, feats, coords, (B, H, W))
    assert out_coords is coords
    ref = dense_reference(conv, feats, coords, (B, H, W))
    assert (out - at(ref, coords)).abs().max().item() <= 1e-5
    assert (dense_conv_at(conv, feats, coords, (B, H, W)) - out).abs().max().item() <= 1e-5


@pytest.mark.parametrize('kernel,stride,padding,groups', [(3, 2, 1, 1), (3, 1, 1, 2), (5, 1, 2, 1),
                                                          (2, 2, 0, 4)])
def test_general_settings_match_dense_conv(kernel, stride, padding, groups):
    torch.manual_seed(kernel + stride)
    B, H, W = 2, 9, 11  # not multiples of the stride: dense floor mode drops the border
    coords, _ = random_sites(B, H, W, 0.35, seed=2)
    conv = nn.Conv2d(8, 12, kernel, stride, padding, groups=groups)
    feats = torch.randn(coords.shape[0], 8)
    out, out_coords = sparse_conv(conv, feats, coords, (B, H, W))
    ref = dense_reference(conv, feats, coords, (B, H, W))
    assert ref.shape[2:] == output_size((H, W), kernel, stride, padding)
    assert (out - at(ref, out_coords)).abs().max().item() <= 1e-5
    assert (dense_conv_at(conv, feats, coords, (B, H, W), out_coords) - out).abs().max() <= 1e-5
    if stride > 1:  # outputs with no active input in their field are exactly the omitted ones
        hit = torch.zeros(ref.shape[0], *ref.shape[2:], dtype=torch.bool)
        hit[out_coords[:, 0], out_coords[:, 1], out_coords[:, 2]] = True
        bias_only = ref.permute(0, 2, 3, 1)[~hit]
        assert torch.allclose(bias_only, conv.bias.expand_as(bias_only))


def test_given_output_sites_in_any_order_and_aligned_units():
    """GreenMIM's case: 4×4-token units fully visible or fully masked, stride 4: the output sites
    are the visible units, passed in the caller's (shuffled) order."""
    torch.manual_seed(0)
    B, gh, gw, u = 2, 3, 4, 4
    units = torch.rand(B, gh, gw) < 0.5
    units[:, 0, 0] = True
    active = units.repeat_interleave(u, 1).repeat_interleave(u, 2)
    coords = active.nonzero()
    conv = nn.Conv2d(4, 6, u, stride=u)
    feats = torch.randn(coords.shape[0], 4)
    want = units.nonzero()
    want = want[torch.randperm(want.shape[0])]
    out, out_coords = sparse_conv(conv, feats, coords, (B, gh * u, gw * u), out_coords=want)
    assert out_coords is want
    assert torch.equal(active_outputs(coords, (B, gh * u, gw * u), u, u, 0), units.nonzero())
    ref = dense_reference(conv, feats, coords, (B, gh * u, gw * u))
    assert (out - at(ref, want)).abs().max().item() <= 1e-5
    table = gather_table(coords, (B, gh * u, gw * u), want, u, u, 0)
    assert (table < coords.shape[0]).all()  # every cell fully visible: no empty reads


def test_gradients_equal_dense():
    torch.manual_seed(0)
    B, H, W, C = 2, 8, 8, 4
    coords, _ = random_sites(B, H, W, 0.5, seed=3)
    conv = nn.Conv2d(C, 6, 2, stride=2)
    feats = torch.randn(coords.shape[0], C, requires_grad=True)
    out, out_coords = sparse_conv(conv, feats, coords, (B, H, W))
    grads = torch.autograd.grad(out.square().sum(), [feats, conv.weight, conv.bias])
    feats2 = feats.detach().clone().requires_grad_()
    ref = at(dense_reference(conv, feats2, coords, (B, H, W)), out_coords)
    ref_grads = torch.autograd.grad(ref.square().sum(), [feats2, conv.weight, conv.bias])
    for a, b in zip(grads, ref_grads):
        assert (a - b).abs().max().item() <= 1e-4


def test_errors():
    coords = torch.tensor([[0, 1, 1]])
    with pytest.raises(ValueError, match='padding'):
        sparse_conv2d(torch.randn(1, 2), coords, (1, 4, 4), torch.randn(2, 2, 3, 3))
    with pytest.raises(ValueError, match='input channels'):
        sparse_conv2d(torch.randn(1, 3), coords, (1, 4, 4), torch.randn(2, 2, 2, 2), stride=2)
    with pytest.raises(ValueError, match='unsupported'):
        sparse_conv(nn.Conv2d(2, 2, 3, dilation=2), torch.randn(1, 2), coords, (1, 4, 4))
