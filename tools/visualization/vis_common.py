"""What the picture tools of tools/visualization share: a labelled grid of image panels and an
atomic PNG writer, both on matplotlib's object API (``Figure`` + Agg canvas: no pyplot state, no
display needed).
"""
import os
import os.path as osp
import tempfile
from typing import Optional, Sequence

import numpy as np


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure drawn by the Agg canvas (works headless, leaves pyplot untouched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def image_grid(rows: Sequence[Sequence[np.ndarray]], col_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), title: Optional[str] = None,
               panel_in: float = 1.8, legend=None,
               panel_titles: Sequence[Sequence[str]] = ()):
    """rows[i][j]: (H, W, 3) uint8 RGB panel of row i, column j (every row the same length).
    Column titles go over the first row, ``panel_titles[i][j]`` over any panel, row titles left of
    each row; ``legend`` is a list of matplotlib artists (e.g. ``Patch``) put under the grid.
    Returns the Figure."""
    n_rows, n_cols = len(rows), len(rows[0]) if rows else 0
    if not n_rows or any(len(r) != n_cols for r in rows):
        raise ValueError(f'image_grid: rows must be a non-empty list of equally long lists of '
                         f'panels, got row lengths {[len(r) for r in rows]}')
    h, w = rows[0][0].shape[:2]
    pw = panel_in * max(1.0, w / h)  # wide panels (a detection image) keep their aspect
    top = 0.45 if title else 0.0
    bottom = 0.45 if legend else 0.05
    header = 0.3 if col_titles or panel_titles else 0.05
    gap = 0.18 if panel_titles else 0.04  # room for the titles of the rows below the first
    fig = new_figure(pw * n_cols + (0.35 if row_titles else 0.1),
                     panel_in * n_rows * (1 + gap) + header + top + bottom)
    axes = fig.subplots(n_rows, n_cols, squeeze=False,
                        gridspec_kw=dict(wspace=0.04, hspace=gap))
    for i, row in enumerate(rows):
        for j, panel in enumerate(row):
            ax = axes[i][j]
            ax.imshow(panel, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if i < len(panel_titles) and j < len(panel_titles[i]):
                ax.set_title(panel_titles[i][j], fontsize=7)
            elif i == 0 and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=9)
            if j == 0 and i < len(row_titles):
                ax.set_ylabel(row_titles[i], fontsize=8)
    fig.subplots_adjust(left=(0.3 if row_titles else 0.05) / fig.get_figwidth(),
                        right=1 - 0.05 / fig.get_figwidth(),
                        top=1 - (header + top) / fig.get_figheight(),
                        bottom=bottom / fig.get_figheight())
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig.get_figheight(), va='top')
    if legend:
        fig.legend(handles=legend, loc='lower center', ncol=len(legend), fontsize=8,
                   frameon=False)
    return fig


def save_figure(fig, out: str, dpi: int = 100) -> str:
    """Write ``fig`` as PNG to ``out`` atomically (temp file + rename, so a reader never sees half a
    file); returns ``out``."""
    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix='.png')
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format='png')
    except BaseException:
        os.remove(tmp)
        raise
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a picture is for everyone to read
    os.replace(tmp, out)
    return out
