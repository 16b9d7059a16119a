"""Swin window attention on dense maps and on sparse token sets (GreenMIM's group attention).

Sparse tokens are the visible tokens of a batch, (B, N, C) with their (h, w) coordinates
(B, N, 2); every sample may have its own mask, only N is shared. Window of a token for window ws
and shift s: ``((h + (ws - s) % ws) // ws, (w + (ws - s) % ws) // ws)``, the non-cyclic shifted
partition with partial windows at the borders, which is exactly what Swin's cyclic shift + region
mask computes on maps whose sides are multiples of ws. Each (sample, window) pair is one window of
the bag that :mod:`.grouping` packs into equal-size groups; :func:`plan_windows` turns the packing
into gather indices and one (G, g, g) index into the relative-position table per stage and shift,
with a single host-device sync for all shifts, and every block of the stage reuses it.

Relative position bias: index ``(dh + T - 1)·(2T - 1) + (dw + T - 1)`` into the standard
``(2T-1)² × heads`` ``relative_position_bias_table`` (Swin's, mmpretrain's and mmdet's convention),
T the window the table was built for, dh = h_query - h_key. Pairs that may not attend (different
windows, a real token and padding) index one extra row of -inf appended to the table, so bias and
mask are one gather and the core gets one float mask (SDPA, fused kernels where they exist).
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.init import trunc_normal_

from .attention import Attention, attend
from .grouping import choose_grouping, num_groups, pack_windows, slot_assignment


class GroupPlan(NamedTuple):
    """How one stage/shift attends over sparse tokens, shared by all its blocks.

    rel_index: (G, g, g) int32 into the bias table plus its -inf row (index ``(2T-1)²``).
    index: (G·g,) long, the flat token (row of the (B·N, ·) tokens) at each group slot, padding
        slots point at token 0; None for the dense masked path (G = B, g = N, tokens in place).
    inverse: (B·N,) long, the slot of every token; None with ``index``.
    """
    rel_index: Tensor
    index: Optional[Tensor] = None
    inverse: Optional[Tensor] = None


class MapPlan(NamedTuple):
    """Stock Swin windows on a dense (B, H, W, C) map: ``window``, cyclic ``shift`` and the
    (nW or 1, ws², ws²) int32 bias index of the padded map (region mask folded in)."""
    window: int
    shift: int
    rel_index: Tensor


def pair_index(h: Tensor, w: Tensor, key: Tensor, table_window: int) -> Tensor:
    """(..., L) coordinates and window keys -> (..., L, L) int32 index into the extended table;
    query i may attend key j iff ``key[i] == key[j]``, else the -inf row ``(2T-1)²``."""
    T = table_window
    # (dh + T-1)(2T-1) + (dw + T-1) = code_i - code_j + centre, code = h(2T-1) + w
    code = (h * (2 * T - 1) + w).int()
    idx = code[..., :, None] - code[..., None, :] + (T - 1) * (2 * T)
    key = key.int()
    return torch.where(key[..., :, None] == key[..., None, :], idx, (2 * T - 1) ** 2)


def window_keys(coords: Tensor, hw: Tuple[int, int], window: int, shift: int
                ) -> Tuple[Tensor, Tensor, int]:
    """coords (B, N, 2) (h, w) on an (H, W) map -> window id per token (B, N) (raster over the
    shifted partition), (sample, window) key per token (B·N,) and the windows per sample."""
    B, N, _ = coords.shape
    off = (window - shift) % window
    nwh, nww = (hw[0] + off + window - 1) // window, (hw[1] + off + window - 1) // window
    wid = ((coords[..., 0] + off) // window) * nww + (coords[..., 1] + off) // window
    keys = (wid + torch.arange(B, device=coords.device)[:, None] * (nwh * nww)).reshape(-1)
    return wid, keys, nwh * nww


def _to_device(values, device: torch.device) -> Tensor:
    t = torch.tensor(values, dtype=torch.long)
    if device.type == 'cuda':  # pinned + non_blocking: the copy does not wait for the GPU
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def plan_windows(coords: Tensor, hw: Tuple[int, int], window: int, shifts: Sequence[int],
                 table_window: int, dim: int, group_size: Optional[int] = None
                 ) -> Tuple[GroupPlan, ...]:
    """Plan the attention of sparse tokens for every shift of a stage (one host-device sync).

    Args:
        coords: (B, N, 2) long (h, w) of the visible tokens, per sample.
        hw: (H, W) of the stage's map; window: ws (<= ``table_window``); shifts: e.g. (0, ws//2).
        table_window: T of the bias table. dim: channels C of the cost model.
        group_size: None: the cost-optimal choice (:func:`~.grouping.choose_grouping`); 0: the
            dense masked path; g: groups of g tokens (benchmarks, tests).
    Returns:
        one :class:`GroupPlan` per shift.
    """
    B, N, _ = coords.shape
    per_shift, hists = [], []
    for shift in shifts:
        wid, keys, nwin = window_keys(coords, hw, window, shift)
        # scatter_add, not bincount: CUDA's bincount reads the max back (a sync per call)
        counts = keys.new_zeros(B * nwin).scatter_add_(0, keys, torch.ones_like(keys))
        per_shift.append((wid, keys, counts))
        hists.append(counts.new_zeros(window * window + 1).scatter_add_(
            0, counts, torch.ones_like(counts)))
    host = torch.stack(hists).cpu().tolist()  # the one sync of the stage
    plans = []
    flat = coords.reshape(B * N, 2)
    for (wid, keys, counts), hist in zip(per_shift, host):
        hist[0] = 0
        if group_size is None:
            g, packing = choose_grouping(hist, B, N, dim)
        elif group_size:
            g, packing = group_size, pack_windows(hist, group_size)
        else:
            g, packing = N, None
        if packing is None:  # dense masked path: one group per sample, tokens in place
            plans.append(GroupPlan(pair_index(coords[..., 0], coords[..., 1], wid, table_window)))
            continue
        group, offset = slot_assignment(packing, hist)
        G = num_groups(packing)
        order = torch.sort(counts, descending=True, stable=True).indices[:len(group)]
        win_slot = torch.zeros_like(counts)
        win_slot[order] = _to_device(group, keys.device) * g + _to_device(offset, keys.device)
        tok_order = torch.sort(keys, stable=True).indices  # tokens window by window
        k_sorted = keys[tok_order]
        start = torch.cumsum(counts, 0) - counts
        inverse = torch.empty_like(keys)
        inverse[tok_order] = win_slot[k_sorted] + torch.arange(B * N, device=keys.device) \
            - start[k_sorted]
        index = torch.zeros(G * g, dtype=torch.long, device=keys.device)
        index[inverse] = torch.arange(B * N, device=keys.device)
        slot_key = torch.full_like(index, -1)  # padding: a window of its own
        slot_key[inverse] = keys
        slot_hw = torch.zeros(G * g, 2, dtype=torch.long, device=keys.device)
        slot_hw[inverse] = flat
        slot_hw = slot_hw.view(G, g, 2)
        rel = pair_index(slot_hw[..., 0], slot_hw[..., 1], slot_key.view(G, g), table_window)
        plans.append(GroupPlan(rel, index, inverse))
    return tuple(plans)


def map_rel_index(padded_hw: Tuple[int, int], window: int, shift: int, table_window: int,
                  device: torch.device) -> Tensor:
    """Bias index of stock Swin windows on a (Hp, Wp) map (multiples of ``window``), after the
    cyclic shift: (nW, ws², ws²) with Swin's three-region mask when ``shift``, else
    (1, ws², ws²)."""
    r = torch.arange(window, device=device)
    h, w = r.repeat_interleave(window), r.repeat(window)  # (ws²,) in-window raster coordinates
    if not shift:
        return pair_index(h[None], w[None], torch.zeros_like(h)[None], table_window)

    def region(n):  # Swin's slices (0, -ws), (-ws, -shift), (-shift, None) of the rolled map
        i = torch.arange(n, device=device)
        return (i >= n - window).long() + (i >= n - shift).long()

    Hp, Wp = padded_hw
    ids = region(Hp)[:, None] * 3 + region(Wp)[None, :]  # (Hp, Wp)
    ids = ids.view(Hp // window, window, Wp // window, window).permute(0, 2, 1, 3)
    return pair_index(h[None], w[None], ids.reshape(-1, window * window), table_window)


class WindowAttention(Attention):
    """Swin's W-MSA with a relative position bias table (``attn.qkv``, ``attn.proj``,
    ``attn.relative_position_bias_table``), on sparse tokens (:class:`GroupPlan`) or on a dense
    map (:class:`MapPlan`).

    Args:
        dim: channels; num_heads: heads; window_size: T, the window the table is built for.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                         proj_drop=proj_drop)
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads))
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def bias(self, rel_index: Tensor, dtype: torch.dtype) -> Tensor:
        """(G, L, L) index -> (G, heads, L, L) additive bias, -inf where attention is forbidden."""
        table = self.relative_position_bias_table
        table = torch.cat([table, table.new_full((1, table.shape[1]), float('-inf'))])
        return F.embedding(rel_index, table).permute(0, 3, 1, 2).to(dtype).contiguous()

    def forward(self, x: Tensor, plan) -> Tensor:
        """Sparse: x (B, N, C) with a :class:`GroupPlan` -> (B, N, C). Dense: x (B, H, W, C) with
        a :class:`MapPlan` -> (B, H, W, C), stock Swin (zero padding to multiples of the window
        takes part in attention, as there)."""
        if isinstance(plan, MapPlan):
            return self._forward_map(x, plan)
        B, N, C = x.shape
        G, g = plan.rel_index.shape[:2]
        qkv = self.qkv(x).reshape(B * N, -1)
        if plan.index is not None:
            qkv = qkv.index_select(0, plan.index)  # (G·g, 3C): windows packed, padded
        q, k, v = qkv.view(G, g, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        drop = self.attn_drop if self.training else 0.0
        out = attend(q, k, v, self.bias(plan.rel_index, q.dtype), drop)  # (G, heads, g, hd)
        out = out.transpose(1, 2).reshape(G * g, -1)
        if plan.inverse is not None:
            out = out.index_select(0, plan.inverse)  # back to (B·N, C), padding dropped
        return self.proj_drop(self.proj(out.view(B, N, -1)))

    def _forward_map(self, x: Tensor, plan: MapPlan) -> Tensor:
        B, H, W, C = x.shape
        ws, shift = plan.window, plan.shift
        x = F.pad(x, (0, 0, 0, (-W) % ws, 0, (-H) % ws))
        Hp, Wp = x.shape[1:3]
        if shift:
            x = torch.roll(x, (-shift, -shift), dims=(1, 2))
        win = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
        q, k, v = self.split_heads(win.reshape(-1, ws * ws, C))  # (B·nW, heads, ws², hd)
        bias = self.bias(plan.rel_index, q.dtype)
        if bias.shape[0] > 1:  # per-window region masks, windows ordered (B, nW)
            bias = bias.repeat(B, 1, 1, 1)
        drop = self.attn_drop if self.training else 0.0
        out = self.merge_heads(attend(q, k, v, bias, drop))  # (B·nW, ws², C)
        out = out.view(B, Hp // ws, Wp // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(B, Hp, Wp, C)
        if shift:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        return out[:, :H, :W].contiguous()
