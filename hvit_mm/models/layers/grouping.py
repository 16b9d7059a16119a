"""GreenMIM's optimal grouping: windows of sparse tokens packed into equal-size groups.

A *window* here is one (sample, window) pair holding the visible tokens of that window of that
sample, so a batch whose samples have different masks packs like one big bag of windows. Groups
have one size g; a group holds whole windows (never a split one) and is padded up to g.

Cost model (GreenMIM's, from Swin's W-MSA FLOPs): one group of g tokens and C channels costs
``4·g·C²`` (q, k, v and output projections) ``+ 2·g²·C`` (q·kᵀ and attention·v), so a grouping
costs ``#groups · (4gC² + 2g²C)`` (:func:`attention_cost`). hvit_mm projects the real tokens only
(the gather happens after ``qkv``), which makes padding cheaper than the model says; both favour
little padding and small groups, and the model also decides when one dense masked attention per
sample (g = tokens per sample, no padding) is cheaper than grouping.

Packing: for every candidate g (from the largest window upwards, stopped by the bound below) the
windows are packed by *best-fit decreasing* (BFD) over the histogram of window sizes: it needs no
per-window Python loop (identical windows move in bulk), never splits a window, and is within
11/9 of the optimum; the official repeated 0/1 knapsack is quadratic in the number of windows per
group it forms. When BFD misses the lower bound ``ceil(tokens/g)`` on a small bag, an exact search
(memoised over multisets of sizes, maximal fills only) replaces it, so small cases are optimal.
The search over g stops once ``tokens · (4gC² + 2g²C) / g`` (a lower bound of every larger g)
reaches the best cost found, which makes the choice optimal whenever the packings are.
"""
import math
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

Pattern = Tuple[int, ...]  # visible-token counts of the windows sharing one group, descending
Packing = List[Tuple[Pattern, int]]  # (pattern, number of groups packed that way)

EXACT_MAX_WINDOWS = 16   # bags up to this many windows get the exact search when BFD is not tight
EXACT_MAX_NODES = 20000  # and the search gives up (keeps BFD) past this many states


def attention_cost(num_groups: int, group_size: int, dim: int) -> float:
    """FLOP model of ``num_groups`` attentions over ``group_size`` tokens of ``dim`` channels."""
    return num_groups * (4 * group_size * dim * dim + 2 * group_size * group_size * dim)


def num_groups(packing: Packing) -> int:
    return sum(n for _, n in packing)


def best_fit_decreasing(hist: Sequence[int], capacity: int) -> Packing:
    """Pack windows by best-fit decreasing, in bulk over the size histogram.

    Args:
        hist: ``hist[s]`` = number of windows holding s tokens (``hist[0]`` is ignored); every
            s with windows must be <= ``capacity``.
        capacity: group size g.
    Returns:
        the packing: each window goes to the fullest group it still fits in, a new group when none.
    """
    by_rem: Dict[int, Counter] = {}  # remaining room -> Counter(pattern -> groups)

    def add(rem: int, pattern: Pattern, n: int) -> None:
        by_rem.setdefault(rem, Counter())[pattern] += n

    for s in range(len(hist) - 1, 0, -1):
        m = int(hist[s])
        if m and s > capacity:
            raise ValueError(f'a window of {s} tokens does not fit groups of {capacity}')
        while m:
            rem = next((r for r in range(s, capacity + 1) if by_rem.get(r)), None)
            if rem is None:  # open groups; each takes as many size-s windows as fit
                k = min(capacity // s, m)
                full, part = divmod(m, k)
                add(capacity - k * s, (s,) * k, full)
                if part:
                    add(capacity - part * s, (s,) * part, 1)
                break
            pattern, n = next(iter(by_rem[rem].items()))
            take = min(n, m)
            by_rem[rem][pattern] -= take
            if not by_rem[rem][pattern]:
                del by_rem[rem][pattern]
            add(rem - s, pattern + (s,), take)
            m -= take
    return [(p, n) for groups in by_rem.values() for p, n in groups.items() if n]


class _OverBudget(Exception):
    pass


def exact_packing(hist: Sequence[int], capacity: int,
                  max_nodes: int = EXACT_MAX_NODES) -> Optional[Packing]:
    """A packing with the fewest groups (exact), or None when the search exceeds ``max_nodes``.

    State = multiset of unpacked sizes. The group holding the largest unpacked window is filled
    in every *maximal* way (no unpacked window still fits: adding one never costs a group).
    """
    sizes = [s for s in range(len(hist) - 1, 0, -1) if hist[s]]
    start = tuple(int(hist[s]) for s in sizes)
    memo: Dict[Tuple[int, ...], Tuple[int, Tuple[Tuple[int, ...], ...]]] = {}
    nodes = [0]

    def fills(state, i, room, chosen):
        if i == len(sizes):
            left = [sizes[j] for j in range(len(sizes)) if state[j] > chosen[j]]
            if not left or min(left) > room:  # maximal
                yield tuple(chosen)
            return
        top = min(state[i], room // sizes[i])
        low = 1 if i == first_of(state) else 0
        for c in range(top, low - 1, -1):
            chosen[i] = c
            yield from fills(state, i + 1, room - c * sizes[i], chosen)
        chosen[i] = 0

    def first_of(state):
        return next(j for j, c in enumerate(state) if c)

    def solve(state):
        if not any(state):
            return 0, ()
        if state in memo:
            return memo[state]
        nodes[0] += 1
        if nodes[0] > max_nodes:
            raise _OverBudget
        bound = math.ceil(sum(c * s for c, s in zip(state, sizes)) / capacity)
        best = None
        for fill in fills(state, 0, capacity, [0] * len(sizes)):
            rest = tuple(a - b for a, b in zip(state, fill))
            n, groups = solve(rest)
            if best is None or n + 1 < best[0]:
                best = (n + 1, (fill,) + groups)
                if best[0] == bound:
                    break
        memo[state] = best
        return best

    if any(s > capacity for s in sizes):
        raise ValueError(f'a window of {sizes[0]} tokens does not fit groups of {capacity}')
    try:
        _, groups = solve(start)
    except _OverBudget:
        return None
    patterns = Counter(tuple(s for s, c in zip(sizes, fill) for _ in range(c)) for fill in groups)
    return list(patterns.items())


def pack_windows(hist: Sequence[int], capacity: int) -> Packing:
    """BFD, replaced by the exact packing on small bags where BFD misses the lower bound."""
    packing = best_fit_decreasing(hist, capacity)
    total = sum(s * int(n) for s, n in enumerate(hist))
    if num_groups(packing) > math.ceil(total / capacity) \
            and sum(int(n) for n in hist[1:]) <= EXACT_MAX_WINDOWS:
        exact = exact_packing(hist, capacity)
        if exact is not None and num_groups(exact) < num_groups(packing):
            packing = exact
    return packing


def choose_grouping(hist: Sequence[int], batch: int, tokens: int, dim: int
                    ) -> Tuple[int, Optional[Packing]]:
    """The cheapest way to attend over ``batch`` samples of ``tokens`` visible tokens each.

    Args:
        hist: window-size histogram over all (sample, window) pairs (``hist[0]`` ignored).
        batch, tokens: B and N; ``sum(s · hist[s]) == B·N``.
        dim: channels C of the cost model.
    Returns:
        ``(g, packing)`` for grouping, or ``(tokens, None)`` for the dense masked path (one
        attention over each sample's N tokens, windows separated by the mask).
    """
    total = batch * tokens
    largest = max((s for s in range(1, len(hist)) if hist[s]), default=0)
    if total == 0 or largest == 0:
        raise ValueError('choose_grouping: no visible tokens')

    def per_token(g):  # cost per token of a full group: lower bound of any packing at size g
        return attention_cost(1, g, dim) / g

    best_cost, best = attention_cost(batch, tokens, dim), (tokens, None)
    for g in range(largest, tokens):
        if total * per_token(g) >= best_cost:  # per_token grows with g: no larger g can win
            break
        if attention_cost(math.ceil(total / g), g, dim) >= best_cost:
            continue
        packing = pack_windows(hist, g)
        cost = attention_cost(num_groups(packing), g, dim)
        if cost < best_cost:
            best_cost, best = cost, (g, packing)
    return best


def slot_assignment(packing: Packing, hist: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Group and offset of every window, windows sorted by size descending (ties in any order).

    Returns:
        ``(group, offset)`` lists of length ``sum(hist[1:])``: the window at rank r of the sorted
        order goes to group ``group[r]`` and occupies slots ``offset[r] .. offset[r] + size - 1``.
    """
    per_size: Dict[int, Tuple[List[int], List[int]]] = {}
    gid = 0
    for pattern, n in packing:
        off = 0
        for s in pattern:
            groups, offsets = per_size.setdefault(s, ([], []))
            groups.extend(range(gid, gid + n))
            offsets.extend([off] * n)
            off += s
        gid += n
    group, offset = [], []
    for s in range(len(hist) - 1, 0, -1):
        if hist[s]:
            groups, offsets = per_size[s]
            if len(groups) != hist[s]:
                raise AssertionError('packing does not hold every window')
            group += groups
            offset += offsets
    return group, offset
