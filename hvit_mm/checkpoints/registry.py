"""Dispatch a foreign state dict to the converter that recognises it."""
from typing import Callable, Dict, List, NamedTuple


class Converter(NamedTuple):
    name: str
    detect: Callable[[Dict], bool]
    convert: Callable[[Dict], Dict]


CONVERTERS: List[Converter] = []


def register_converter(name: str, detect: Callable[[Dict], bool], convert: Callable[[Dict], Dict]):
    """Add a format; earlier registrations win when several detect the same dict."""
    CONVERTERS[:] = [c for c in CONVERTERS if c.name != name] + [Converter(name, detect, convert)]


def to_hvit(state_dict: Dict, fmt: str = 'auto') -> Dict:
    """Convert ``state_dict`` (already unwrapped) to hvit_mm names with the converter named ``fmt``,
    or the first that detects it. hvit_mm's own dicts pass through the ``hvit`` converter."""
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
