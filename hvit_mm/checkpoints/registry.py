"""Dispatch a foreign state dict to the converter that recognises it.

Each converter is registered with a ``priority``: ``to_hvit(sd)`` asks the converters in
decreasing priority whether they recognise ``sd`` and uses the first that does, so the outcome
never depends on which module happened to be imported first. Two converters may not share a
priority (registration refuses it): of two formats that can both match a dict, the more specific
one must say so with the higher number. Bands in use: 100 hvit_mm's own files; 50-69 formats
recognised by a namespace or a backbone-specific key; 10-29 generic plain-ViT layouts.
"""
from typing import Callable, Dict, List, NamedTuple


class Converter(NamedTuple):
    name: str
    detect: Callable[[Dict], bool]
    convert: Callable[[Dict], Dict]
    priority: float


CONVERTERS: List[Converter] = []  # sorted by decreasing priority


def register_converter(name: str, detect: Callable[[Dict], bool], convert: Callable[[Dict], Dict],
                       priority: float) -> Converter:
    """Add (or replace, by ``name``) a format; detection tries higher ``priority`` first.

    Raises ValueError when another converter already has this priority.
    """
    others = [c for c in CONVERTERS if c.name != name]
    clash = [c.name for c in others if c.priority == priority]
    if clash:
        raise ValueError(f'checkpoint converter {name!r}: priority {priority} is already '
                         f'{clash[0]!r}\'s; give one of them another number (detection order '
                         f'must not depend on import order). Taken: {priorities()}')
    conv = Converter(name, detect, convert, priority)
    CONVERTERS[:] = sorted(others + [conv], key=lambda c: -c.priority)
    return conv


def priorities() -> Dict[str, float]:
    """name -> priority, in detection order."""
    return {c.name: c.priority for c in CONVERTERS}


def to_hvit(state_dict: Dict, fmt: str = 'auto') -> Dict:
    """Convert ``state_dict`` (already unwrapped) to hvit_mm names with the converter named ``fmt``,
    or the highest-priority one that detects it. hvit_mm's own dicts pass through the ``hvit``
    converter."""
    if fmt != 'auto':
        by_name = {c.name: c for c in CONVERTERS}
        if fmt not in by_name:
            raise KeyError(f'unknown checkpoint format {fmt!r}; known: {sorted(by_name)}')
        return by_name[fmt].convert(state_dict)
    for conv in CONVERTERS:
        if conv.detect(state_dict):
            return conv.convert(state_dict)
    sample = sorted(state_dict)[:8]
    raise ValueError(f'no converter recognises this checkpoint (first keys: {sample}); known formats: '
                     f'{[c.name for c in CONVERTERS]}. Pass fmt=... or convert it with '
                     'tools/model_converters/.')


_SCRIPTS = {'greenmim-swin-order': 'greenmim_to_hvit.py --swin-order',
            'swin': 'greenmim_to_hvit.py', 'twins': 'greenmim_to_hvit.py'}


def detect_format(state_dict: Dict) -> str:
    """Name of the highest-priority converter that recognises ``state_dict``; '' when none does."""
    for conv in CONVERTERS:
        try:
            if conv.detect(state_dict):
                return conv.name
        except Exception:  # noqa: BLE001  (a detector choking on a foreign dict: not its format)
            continue
    return ''


def converter_hint(state_dict: Dict) -> str:
    """What to do with weights that do not fit a model: the converter script for a foreign format
    (``tools/model_converters/<format>_to_hvit.py``), or, for hvit_mm's own layout, a pointer to
    the config that matches the file."""
    import os.path as osp
    name = detect_format(state_dict)
    if name == 'hvit':
        return ('the file is already in hvit_mm layout but written for another model: use the '
                'config it was trained with (or fix the arch / widths to match it)')
    tools = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools',
                     'model_converters')
    # greenmim_to_hvit.py converts any format it detects (official Swin / Twins files included)
    script = _SCRIPTS.get(name, f'{name}_to_hvit.py')
    if name and osp.isfile(osp.join(tools, script.split()[0])):
        return (f'it looks like a {name!r} file: convert it with tools/model_converters/{script} '
                'SRC DST, then use DST')
    return ('use a checkpoint of this model, or convert it first with a tool in '
            'tools/model_converters/ (the known formats: '
            f'{", ".join(c.name for c in CONVERTERS)})')
