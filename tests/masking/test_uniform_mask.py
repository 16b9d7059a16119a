"""UM-MAE's uniform masking (``hvit_mm.models.masking.uniform_mask``): one kept unit per 2×2 grid,
grid-ordered ids, exact secondary share, positions balanced as the paper's generator does."""
import pytest
import torch

from hvit_mm.models.masking import uniform_mask


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def kept_positions(mask, units_hw):
    """(B, G) position (0..3 = TL, TR, BL, BR) of the kept unit of every 2×2 grid, grid order."""
    h, w = units_hw
    row, col = mask.ids_keep // w, mask.ids_keep % w
    return (row % 2) * 2 + col % 2


@pytest.mark.parametrize('units_hw', [(2, 2), (4, 6), (16, 16), (14, 8)])
def test_every_grid_keeps_exactly_one_unit(units_hw):
    h, w = units_hw
    m = uniform_mask(5, units_hw, generator=gen())
    per_grid = m.visible.view(5, h // 2, 2, w // 2, 2).sum(dim=(2, 4))
    assert (per_grid == 1).all()
    assert m.ids_keep.shape == (5, h * w // 4)
    # ids_keep and visible describe the same units
    assert torch.equal(m.visible.sum(1), torch.full((5,), h * w // 4))
    assert m.visible.gather(1, m.ids_keep).all()


def test_ids_keep_is_in_grid_order_not_raster_order():
    units_hw = (8, 12)
    m = uniform_mask(64, units_hw, generator=gen(1))
    h, w = units_hw
    row, col = m.ids_keep // w, m.ids_keep % w
    grid = (row // 2) * (w // 2) + col // 2
    assert torch.equal(grid, torch.arange(grid.shape[1]).expand_as(grid))
    # raster order would differ whenever two grids of a grid row keep different sub-rows
    assert not torch.equal(m.ids_keep, m.ids_keep.sort(dim=1).values)


@pytest.mark.parametrize('units_hw,ratio', [((16, 16), 0.25), ((14, 14), 0.25), ((4, 6), 0.5),
                                            ((8, 8), 0.1)])
def test_secondary_share_is_exact_and_inside_the_kept_units(units_hw, ratio):
    m = uniform_mask(7, units_hw, ratio, generator=gen(2))
    K = m.ids_keep.shape[1]
    assert torch.equal(m.replaced.sum(1), torch.full((7,), int(K * ratio)))
    assert not (m.replaced & ~m.visible).any()
    assert torch.equal(m.seen.sum(1), torch.full((7,), K - int(K * ratio)))


def test_no_secondary_masking_gives_no_replaced_units():
    assert uniform_mask(2, (4, 4), 0.0).replaced is None
    assert uniform_mask(2, (2, 2), 0.25).replaced is None  # int(1 · 0.25) = 0


def test_masks_differ_per_sample_and_follow_the_generator():
    a = uniform_mask(8, (16, 16), generator=gen(3))
    b = uniform_mask(8, (16, 16), generator=gen(3))
    assert torch.equal(a.ids_keep, b.ids_keep) and torch.equal(a.replaced, b.replaced)
    assert len({tuple(r.tolist()) for r in a.ids_keep}) == 8


def test_four_positions_are_balanced_like_the_papers_pool():
    """The paper shuffles a pool holding each position equally often, twice the number of grids,
    and takes the first G: per sample the count of a position is hypergeometric (mean G/4,
    variance about half of independent draws'), and every grid gets each position 1/4 of the
    time."""
    units_hw, B = (16, 16), 4000
    pos = kept_positions(uniform_mask(B, units_hw, generator=gen(4)), units_hw)
    G = pos.shape[1]  # 64 grids, pool of 128
    counts = torch.stack([(pos == j).sum(1) for j in range(4)], 1).float()  # (B, 4)
    assert (counts.mean(0) - G / 4).abs().max() < 0.3
    p, pool = 0.25, 128
    hyper_var = G * p * (1 - p) * (pool - G) / (pool - 1)  # 6.05; independent draws: 12
    assert abs(counts.var(0).mean() - hyper_var) < 0.15 * hyper_var
    per_grid = torch.stack([(pos == j).float().mean(0) for j in range(4)])  # (4, G)
    assert (per_grid - 0.25).abs().max() < 0.05


@pytest.mark.parametrize('units_hw', [(3, 4), (4, 5), (0, 4)])
def test_odd_unit_grids_are_refused_with_their_sizes(units_hw):
    with pytest.raises(ValueError, match=f'{units_hw[0]}x{units_hw[1]}'):
        uniform_mask(2, units_hw)


def test_bad_secondary_ratio_is_refused():
    with pytest.raises(ValueError, match='secondary_ratio'):
        uniform_mask(2, (4, 4), 1.0)
