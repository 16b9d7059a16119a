#!/usr/bin/env python
"""Download, verify and convert model-zoo checkpoints by name (as ``hvit://NAME`` on first use).

    python tools/model_converters/download.py --list
    python tools/model_converters/download.py mae_vit-base-p16 [hiera-mae_hiera-base-p4 ...]

Each file lands in the cache (``$HVIT_MM_HOME``, else ``<torch hub dir>/hvit_mm``), is checked
against its sha256 (or recorded on first download when the publisher gives none), converted to
hvit_mm's layout, and its converted path printed. ``--url-prefix`` fetches from a mirror
(``<prefix>/<file>``); ``HVIT_MM_OFFLINE=1`` forbids downloads. Most weights are CC-BY-NC-4.0:
non-commercial use only.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))


def _size(entry, records) -> str:
    size = entry.size or records.get(entry.name, {}).get('size')
    return f'{size / 2**20:.0f} MiB' if size else '?'


def _result(entry) -> str:
    """The first result, short: 'IN-1k top-1 83.6 (fine-tuned)'."""
    for res in entry.results:
        metrics = res.get('Metrics') or {}
        if metrics:
            key, value = next(iter(metrics.items()))
            key = {'Top 1 Accuracy': 'top-1'}.get(key, key)
            data = {'ImageNet-1k': 'IN-1k'}.get(res.get('Dataset'), res.get('Dataset', ''))
            after = ' (fine-tuned)' if 'after' in str(res.get('Note', '')) else ''
            return f'{data} {key} {value}{after}'
    return '-'


def list_models(index=None) -> None:
    from hvit_mm.checkpoints import CONVERTERS, zoo
    records = zoo.read_records()
    known = {c.name for c in CONVERTERS}
    rows = [('name', 'licence', 'size', 'result', 'state')]
    for e in zoo.list_entries(index):
        state = 'cached' if e.name in records else \
            ('pending: ' + (e.pending or 'no converter')) if e.converter not in known else \
            ('Google Drive' if e.drive else '')
        rows.append((e.name, e.license, _size(e, records), _result(e), state))
    widths = [min(max(len(r[i]) for r in rows), 48) for i in range(4)]
    for r in rows:
        print('  '.join(c.ljust(w) for c, w in zip(r, widths)) + '  ' + r[4])
    print(f'\ncache: {zoo.cache_dir()}  (size: the recorded download, ? until then)')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('names', nargs='*', help='zoo names (or hvit://NAME)')
    parser.add_argument('--list', action='store_true', help='list names with licence and size')
    parser.add_argument('--url-prefix', help='fetch <prefix>/<file name>, not the published URL')
    parser.add_argument('--index', help='manifest to read (default: the repo model-index.yml)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    from hvit_mm.checkpoints import zoo
    if args.list:
        list_models(args.index)
        return 0
    if not args.names:
        parser.error('give at least one NAME, or --list')
    failed = 0
    for name in args.names:
        try:
            path = zoo.fetch(name, url_prefix=args.url_prefix, index=args.index,
                             progress=not args.no_progress)
        except zoo.ZooError as e:
            print(f'error: {e}', file=sys.stderr)
            failed += 1
            continue
        entry = zoo.get_entry(name, args.index)
        sha = zoo.read_records()[entry.name]['sha256']
        print(f'{zoo.SCHEME}{entry.name}: {path}\n  licence {entry.license}; sha256 of the '
              f'published file {sha}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
