"""Small defects of issue 9, pinned: no dead loss argument, no method announced before it lands."""
import inspect
import re

import pytest

from hvit_mm.models.pixel_loss import masked_mse
from tests.conftest import REPO


def test_masked_mse_has_no_unused_argument():
    assert list(inspect.signature(masked_mse).parameters) == ['pred', 'target', 'visible',
                                                              'norm_pix']


@pytest.mark.parametrize('method,folder', [('MAE', 'mae'), ('MAE-Lite', 'mae_lite'),
                                           ('HPViT', 'hpvit'), ('Hiera', 'hiera'),
                                           ('UM-MAE', 'um_mae'), ('GreenMIM', 'greenmim')])
def test_announced_methods_have_configs_and_a_metafile(method, folder):
    """README and the package description announce a method only with configs that the config
    matrix trains and a metafile the model index lists."""
    readme_intro = (REPO / 'README.md').read_text().split('\n## ', 1)[0]
    description = re.search(r'^description = "(.*)"$', (REPO / 'pyproject.toml').read_text(),
                            re.M).group(1)
    assert method in ' '.join(readme_intro.split()) and method in description
    assert 'in progress' not in readme_intro and 'in progress' not in description
    assert list((REPO / 'configs' / folder).glob('*.py')), folder
    assert f'configs/{folder}/metafile.yml' in (REPO / 'model-index.yml').read_text()
