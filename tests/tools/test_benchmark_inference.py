"""tools/analysis/benchmark_inference.py: the markdown section writer keeps other sections, the
interleaved timer runs every contender every round, and a suite refuses models that disagree."""
import pytest
import torch

from tests.conftest import load_tool

bench = load_tool('tools/analysis/benchmark_inference.py')


def test_write_section_replaces_only_its_own_block(tmp_path):
    path = str(tmp_path / 'benchmarks.md')
    bench.write_section(path, 'a:cpu', 'first A\n')
    bench.write_section(path, 'b:cpu', 'B\n')
    bench.write_section(path, 'a:cpu', 'second A\n')
    text = open(path).read()
    assert text.count('<!-- benchmark:a:cpu -->') == 1 and 'second A' in text
    assert 'first A' not in text and 'B\n' in text and text.startswith('# Benchmarks')


def test_time_interleaved_rotates_and_counts():
    calls = []
    contenders = [bench.Contender(n, torch.nn.Identity(), lambda m, x, n=n: calls.append(n))
                  for n in 'abc']
    times = bench.time_interleaved(contenders, torch.zeros(1), warmup=1, rounds=3)
    assert {k: len(v) for k, v in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    assert calls[3:] == list('abc') + list('bca') + list('cab')


def test_suite_refuses_different_outputs(monkeypatch):
    ident = bench.Contender('x', torch.nn.Identity(), lambda m, x: m(x))
    bad = bench.Suite('t', [ident, ident], lambda x: {'ref': 1.0})
    monkeypatch.setitem(bench.SUITES, 'broken', lambda args: bad)
    with pytest.raises(SystemExit, match='outputs differ'):
        bench.main(['broken', '--batch', '2', '--img', '32'])
