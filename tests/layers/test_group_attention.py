"""Group window attention (GreenMIM) against naive per-window attention on the visible tokens, and
the optimal grouping against brute force."""
import math
import random

import pytest
import torch

from hvit_mm.models.layers.group_attention import (MapPlan, WindowAttention, map_rel_index,
                                                   plan_windows)
from hvit_mm.models.layers.grouping import (attention_cost, best_fit_decreasing, choose_grouping,
                                            exact_packing, num_groups, pack_windows)


def random_coords(B, H, W, N, gen):
    """(B, N, 2) coordinates of N distinct random positions per sample (each its own mask)."""
    ids = torch.rand(B, H * W, generator=gen).argsort(1)[:, :N]
    return torch.stack([ids // W, ids % W], -1)


def naive(attn, x, coords, window, shift, T):
    """Each sample, each window of the non-cyclic shifted partition: softmax attention over its
    visible tokens only, bias read from the table at (dh + T-1)(2T-1) + dw + T-1."""
    out = torch.zeros_like(x)
    qkv = attn.qkv(x)
    off = (window - shift) % window
    win = ((coords + off) // window)
    win = win[..., 0] * 100000 + win[..., 1]
    for b in range(x.shape[0]):
        for w in win[b].unique():
            sel = (win[b] == w).nonzero()[:, 0]
            q, k, v = qkv[b, sel].view(len(sel), 3, attn.num_heads, -1).permute(1, 2, 0, 3)
            d = coords[b, sel][:, None] - coords[b, sel][None]
            bias = attn.relative_position_bias_table[(d[..., 0] + T - 1) * (2 * T - 1)
                                                     + d[..., 1] + T - 1].permute(2, 0, 1)
            a = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + bias).softmax(-1)
            out[b, sel] = (a @ v).transpose(0, 1).reshape(len(sel), -1)
    return attn.proj(out)


CASES = [  # H, W, window, table window, visible tokens per sample
    (8, 8, 4, 4, 20), (14, 14, 7, 7, 60), (9, 12, 4, 5, 30), (16, 16, 4, 4, 64), (4, 4, 4, 4, 3)]


@pytest.mark.parametrize('H,W,ws,T,N', CASES)
@pytest.mark.parametrize('group_size', [None, 0, 'window', 'two_windows'])
def test_group_attention_equals_naive(H, W, ws, T, N, group_size):
    gen = torch.Generator().manual_seed(H * 100 + N)
    torch.manual_seed(H + N)
    attn = WindowAttention(32, 4, T)
    coords = random_coords(3, H, W, N, gen)
    x = torch.randn(3, N, 32, generator=gen)
    g = {'window': ws * ws, 'two_windows': 2 * ws * ws}.get(group_size, group_size)
    for shift, plan in zip((0, ws // 2), plan_windows(coords, (H, W), ws, (0, ws // 2), T, 32,
                                                      group_size=g)):
        ref = naive(attn, x, coords, ws, shift, T)
        assert (attn(x, plan) - ref).abs().max().item() <= 1e-5, (shift, plan.rel_index.shape)


def test_groups_mix_samples_and_gradients_match():
    """Groups of several windows from different samples (per-sample masks): outputs and the
    gradients of the input and of the bias table equal the naive ones."""
    gen = torch.Generator().manual_seed(0)
    attn = WindowAttention(16, 2, 4)
    coords = random_coords(4, 8, 8, 10, gen)
    x = torch.randn(4, 10, 16, generator=gen, requires_grad=True)
    plan, = plan_windows(coords, (8, 8), 4, (2,), 4, 16, group_size=20)
    assert plan.index is not None and plan.rel_index.shape[0] < 4 * 4  # several windows per group
    out = attn(x, plan)
    gx, gt = torch.autograd.grad(out.square().sum(), (x, attn.relative_position_bias_table))
    ref = naive(attn, x, coords, 4, 2, 4)
    rx, rt = torch.autograd.grad(ref.square().sum(), (x, attn.relative_position_bias_table))
    assert (out - ref).abs().max() <= 1e-5
    assert (gx - rx).abs().max() <= 1e-5 and (gt - rt).abs().max() <= 1e-5


def test_one_visible_window_and_full_windows():
    gen = torch.Generator().manual_seed(1)
    attn = WindowAttention(16, 2, 4)
    # one visible window: 5 tokens of one 4×4 window -> a single group of exactly those tokens
    coords = torch.tensor([[[0, 0], [0, 3], [1, 1], [3, 2], [2, 0]]])
    x = torch.randn(1, 5, 16, generator=gen)
    plan, = plan_windows(coords, (8, 8), 4, (0,), 4, 16)
    assert tuple(plan.rel_index.shape) == (1, 5, 5)
    assert (attn(x, plan) - naive(attn, x, coords, 4, 0, 4)).abs().max() <= 1e-5
    # everything visible: one full window per group, no padding
    h, w = torch.meshgrid(torch.arange(8), torch.arange(8), indexing='ij')
    coords = torch.stack([h, w], -1).reshape(1, 64, 2).repeat(2, 1, 1)
    x = torch.randn(2, 64, 16, generator=gen)
    plan, = plan_windows(coords, (8, 8), 4, (0,), 4, 16)
    assert tuple(plan.rel_index.shape) == (8, 16, 16)
    assert (attn(x, plan) - naive(attn, x, coords, 4, 0, 4)).abs().max() <= 1e-5


@pytest.mark.parametrize('shift', [0, 2])
def test_dense_map_path_is_stock_swin(shift):
    """MapPlan: cyclic shift + region mask on a map that needs padding, against the same naive
    attention on the padded, rolled map with Swin's region labels as windows."""
    gen = torch.Generator().manual_seed(2)
    attn = WindowAttention(16, 2, 4)
    x = torch.randn(2, 6, 7, 16, generator=gen)
    Hp, Wp = 8, 8
    out = attn(x, MapPlan(4, shift, map_rel_index((Hp, Wp), 4, shift, 4, x.device)))
    xp = torch.nn.functional.pad(x, (0, 0, 0, 1, 0, 2)).roll((-shift, -shift), (1, 2))

    def region(n):
        i = torch.arange(n)
        return (i >= n - 4).long() + (i >= n - shift).long() if shift else torch.zeros(n).long()

    h, w = torch.meshgrid(torch.arange(Hp), torch.arange(Wp), indexing='ij')
    # window and region both folded into the key: tokens attend within (window, region)
    key = (h // 4) * 1000 + (w // 4) * 100 + region(Hp)[:, None] * 3 + region(Wp)[None, :]
    ref = torch.zeros_like(xp)
    qkv = attn.qkv(xp)
    for b in range(2):
        for k in key.unique():
            sel = (key == k).nonzero()
            q, kk, v = qkv[b, sel[:, 0], sel[:, 1]].view(len(sel), 3, 2, -1).permute(1, 2, 0, 3)
            d = (sel % 4)[:, None] - (sel % 4)[None]  # in-window offsets
            bias = attn.relative_position_bias_table[(d[..., 0] + 3) * 7 + d[..., 1] + 3]
            a = (q @ kk.transpose(-1, -2) * q.shape[-1] ** -0.5 + bias.permute(2, 0, 1)).softmax(-1)
            ref[b, sel[:, 0], sel[:, 1]] = (a @ v).transpose(0, 1).reshape(len(sel), -1)
    ref = attn.proj(ref).roll((shift, shift), (1, 2))[:, :6, :7]
    assert (out - ref).abs().max() <= 1e-5


# ------------------------------------------------------------------------------- grouping
def set_partitions(items):
    if not items:
        yield []
        return
    for p in set_partitions(items[1:]):
        for i in range(len(p)):
            yield p[:i] + [[items[0]] + p[i]] + p[i + 1:]
        yield [[items[0]]] + p


def brute_force(windows, batch, tokens, dim):
    """Cheapest cost over every partition of the windows into groups of every size g (groups of
    size >= tokens never beat one dense group per sample, which is included)."""
    best = attention_cost(batch, tokens, dim)
    parts = list(set_partitions(windows))
    for g in range(max(windows), tokens):
        fewest = min((len(p) for p in parts if all(sum(q) <= g for q in p)), default=None)
        if fewest is not None:
            best = min(best, attention_cost(fewest, g, dim))
    return best


def cost_of(hist, batch, tokens, dim):
    g, packing = choose_grouping(hist, batch, tokens, dim)
    return attention_cost(batch, tokens, dim) if packing is None else \
        attention_cost(num_groups(packing), g, dim)


def histogram(windows, size):
    hist = [0] * (size + 1)
    for w in windows:
        hist[w] += 1
    return hist


def test_choice_is_optimal_against_brute_force():
    rng = random.Random(0)
    checked = 0
    while checked < 120:
        batch, tokens = rng.choice([1, 2, 3]), rng.randint(3, 14)
        windows = []
        for _ in range(batch):  # split each sample's tokens into 1-3 windows
            cuts = sorted(rng.sample(range(1, tokens), min(rng.randint(0, 2), tokens - 1)))
            windows += [b - a for a, b in zip([0] + cuts, cuts + [tokens])]
        if len(windows) > 7:
            continue
        dim = rng.choice([1, 2, 4, 32])
        hist = histogram(windows, tokens)
        assert math.isclose(cost_of(hist, batch, tokens, dim),
                            brute_force(windows, batch, tokens, dim)), (windows, batch, dim)
        checked += 1


def test_exact_packing_and_bfd_fallback():
    # a classic case where best-fit decreasing needs 4 groups and 3 suffice
    windows = [44, 24, 24, 22, 21, 17, 8, 8, 6, 6]
    hist = histogram(windows, 60)
    assert num_groups(best_fit_decreasing(hist, 60)) == 4
    assert num_groups(exact_packing(hist, 60)) == 3 == num_groups(pack_windows(hist, 60))
    for pattern, _ in pack_windows(hist, 60):
        assert sum(pattern) <= 60
    assert sorted(s for p, n in pack_windows(hist, 60) for s in p * n) == sorted(windows)


def test_grouping_edge_cases():
    # all windows full: one window per group at g = ws²
    assert choose_grouping(histogram([16] * 8, 16), 2, 64, 32) == (16, [((16,), 8)])
    # one visible window: the dense path is that window
    assert choose_grouping(histogram([5], 5), 1, 5, 32) == (5, None)
    # windows of very different fill: the full one alone, the small ones together
    g, packing = choose_grouping(histogram([49, 1, 2, 3, 4, 5, 6, 7, 8, 12], 49), 1, 97, 128)
    assert g == 49 and num_groups(packing) == 2
    # few wide tokens whose windows pack badly: one dense attention over the sample is cheaper
    assert choose_grouping(histogram([20, 13, 9, 6], 48), 1, 48, 512) == (48, None)
    # ... but windows that pack without padding are grouped (g = 24: 12 + 12, 16 + 8)
    assert choose_grouping(histogram([16, 12, 12, 8], 48), 1, 48, 512)[0] == 24
