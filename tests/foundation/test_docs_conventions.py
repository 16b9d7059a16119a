"""Docs and config conventions (issue 14): every method folder documents itself and is indexed, every
config says where its recipe comes from and is named the OpenMMLab way, and no doc link is dead.

Text and YAML only: no model is built, the whole file runs in well under a second.
"""
import re

import pytest
import yaml

from tests.conftest import REPO

CONFIGS = REPO / 'configs'
# folders of configs/ that are not methods: shared fragments, and stock smoke-test configs of the
# toy datasets (ResNet / UperNet R-50 / Mask R-CNN R-50, no hvit_mm method)
NOT_METHODS = {'_base_', 'toy'}
METHODS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name not in NOT_METHODS)

# Known gaps (none today), pinned so that a new one fails and a fixed one must be removed here
# (a rename or a metafile entry is the fix).
UNLISTED_IN_METAFILE = set()
NAMES_OFF_CONVENTION = set()

# OpenMMLab's {algorithm}_{backbone}[_{component}]_{gpus}xb{batch}[-{schedule}...]_{dataset}[-{size}]
# (mmpretrain / mmdet / mmseg): 1-3 lower-case words that start with a letter (fine-tunes may have
# the backbone only: `swin-tiny-w16_8xb128-coslr-100e_in1k-256px.py`), then the training part, then
# the dataset with an optional size (`in1k-256px`, `ade20k-512x512`, `coco`, `toy-in1k`).
WORD = r'[a-z][a-z0-9]*(?:-[a-z0-9]+)*'
TRAINING = r'\d+xb\d+(?:-[a-z0-9]+)*'
DATASET = r'[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*(?:-(?:\d+px|\d+x\d+))?'
NAME = re.compile(rf'(?:{WORD}_){{1,3}}{TRAINING}_{DATASET}\.py')
RECIPE = re.compile(r'# Recipe: \S.{8,}')


def rel(path) -> str:
    return str(path.relative_to(REPO))


def method_configs(method=None):
    folders = [method] if method else [p.name for p in CONFIGS.iterdir() if p.is_dir()
                                        and p.name != '_base_']
    return sorted(p for f in folders for p in (CONFIGS / f).rglob('*.py') if '_base_' not in p.parts)


def named_configs(metafile):
    data = yaml.safe_load(metafile.read_text()) or {}
    return {e['Config'] for section in ('Models', 'Checkpoints') for e in data.get(section) or []
            if e.get('Config')}


def test_name_pattern_takes_openmmlab_names_and_refuses_others():
    for good in ('mae_vit-base-p16_8xb512-amp-coslr-1600e_in1k.py',  # mmpretrain
                 'swin-tiny-w16_8xb128-coslr-100e_in1k-256px.py',  # backbone-only fine-tune
                 'mask-rcnn_r50_fpn_8xb2-1x_coco.py', 'upernet_r50_4xb2-80k_cityscapes-512x1024.py'):
        assert NAME.fullmatch(good), good
    for bad in ('mae_vit-base_in1k.py', 'MAE_vit-b_8xb512-1600e_in1k.py', 'vit_8x512_in1k.py',
                'mae_vit-b_8xb512-1600e_in1k_extra.py', 'mae_vit-b_8xb512_in1k-256.py'):
        assert not NAME.fullmatch(bad), bad


@pytest.mark.parametrize('method', METHODS)
def test_method_folder_has_a_readme_and_an_indexed_metafile(method):
    folder = CONFIGS / method
    assert (folder / 'README.md').is_file(), f'configs/{method}/README.md is missing'
    assert (folder / 'metafile.yml').is_file(), f'configs/{method}/metafile.yml is missing'
    assert f'configs/{method}/README.md' in (REPO / 'README.md').read_text(), \
        f'README.md does not link configs/{method}/README.md'


def test_model_index_imports_exactly_the_method_metafiles():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    assert sorted(index['Import']) == [f'configs/{m}/metafile.yml' for m in METHODS]


@pytest.mark.parametrize('method', METHODS)
def test_metafile_and_folder_name_the_same_configs(method):
    named = named_configs(CONFIGS / method / 'metafile.yml')
    assert not [c for c in named if not (REPO / c).is_file()], f'{method}: metafile names no file'
    unlisted = {rel(p) for p in method_configs(method)} - named
    assert unlisted - UNLISTED_IN_METAFILE == set(), f'add to configs/{method}/metafile.yml'
    stale = {c for c in UNLISTED_IN_METAFILE if c.startswith(f'configs/{method}/')} - unlisted
    assert not stale, f'listed now: drop {stale} from UNLISTED_IN_METAFILE'


@pytest.mark.parametrize('method', METHODS)
def test_readme_results_are_the_metafile_numbers(method):
    """A README's results table shows every number the metafile's Models report."""
    data = yaml.safe_load((CONFIGS / method / 'metafile.yml').read_text()) or {}
    readme = (CONFIGS / method / 'README.md').read_text()
    numbers = {(m['Name'], str(v)) for m in data.get('Models') or []
               for r in m.get('Results') or [] for v in (r.get('Metrics') or {}).values()}
    assert not [(name, v) for name, v in numbers if not re.search(rf'(?<![\d.]){re.escape(v)}(?!\d)',
                                                                 readme)]


def test_every_config_names_its_recipe_source_in_its_first_comments():
    missing = []
    for path in method_configs():
        head = []
        for line in path.read_text().splitlines():
            if not line.startswith('#'):
                break
            head.append(line)
        if not any(RECIPE.fullmatch(line) for line in head):
            missing.append(rel(path))
    assert not missing, 'add a "# Recipe: <source>" line to the first comments of:\n' + \
        '\n'.join(missing)


def test_config_names_follow_the_openmmlab_convention():
    off = {rel(p) for p in method_configs() if not NAME.fullmatch(p.name)}
    assert off - NAMES_OFF_CONVENTION == set(), \
        '{algorithm}_{backbone}_{gpus}xb{batch}-{schedule}_{dataset}[-{size}].py'
    assert NAMES_OFF_CONVENTION - off == set(), 'renamed: drop them from NAMES_OFF_CONVENTION'


# [text](target) and ![alt](target); targets with a scheme or only an anchor are not files
LINK = re.compile(r'!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')


def doc_files():
    return sorted([REPO / 'README.md', *(REPO / 'docs').glob('*.md'),
                   *CONFIGS.glob('*/README.md')])


@pytest.mark.parametrize('doc', doc_files(), ids=rel)
def test_relative_links_point_to_files_that_exist(doc):
    text = re.sub(r'```.*?```', '', doc.read_text(), flags=re.S)  # code blocks hold no links
    dead = []
    for target in LINK.findall(text):
        path = target.split('#', 1)[0]
        # work_dirs/ holds what `make demo` writes: not in a fresh clone, by design
        if not path or re.match(r'[a-z][a-z0-9+.-]*:', path) or path.startswith('work_dirs/'):
            continue
        if not (doc.parent / path).exists():
            dead.append(target)
    assert not dead, f'{rel(doc)}: links to nothing: {dead}'
