"""The model zoo (``hvit://NAME``), offline: a local HTTP server (127.0.0.1, started here) serves
tiny checkpoints in each official format. Loading by name equals converting the file by hand;
tampered, truncated, pickled-code and half-downloaded files are refused and leave nothing in the
cache; a cached name trains with the server stopped; the repo manifest is consistent with configs
and converters."""
import functools
import glob
import hashlib
import http.server
import os
import re
import sys
import threading
import warnings
from pathlib import Path

import pytest
import timm
import torch
import yaml

from hvit_mm.checkpoints import CONVERTERS, greenmim, load_state_dict_file, to_hvit, um_mae, zoo
from hvit_mm.models.backbones.green_swin import GreenSwin
from hvit_mm.models.backbones.hiera import Hiera
from hvit_mm.models.backbones.um_pvt import UMPVT
from hvit_mm.models.backbones.um_swin import UMSwin
from hvit_mm.models.backbones.vit import ViT
from tests.conftest import REPO, load_tool

VIT = dict(embed_dims=32, depth=2, num_heads=2)
HIERA = dict(embed_dims=32, num_heads=1, stages=(1, 2, 2, 1))


# ------------------------------------------------------------------ tiny official-format files
def perturbed(model):
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():  # off the init, so a tensor that was not loaded shows
        p.data.add_(0.1 * torch.randn(p.shape, generator=g))
    return model.state_dict()


def timm_vit(**kw):
    return perturbed(timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, **kw))


def official_hiera(mae: bool):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import hiera
    off = dict(embed_dim=32, num_heads=1, stages=(1, 2, 2, 1), input_size=(64, 64))
    if mae:
        return perturbed(hiera.MaskedAutoencoderHiera(q_pool=2, decoder_embed_dim=32,
                                                      decoder_depth=1, decoder_num_heads=2, **off))
    return perturbed(hiera.Hiera(num_classes=5, **off))


def mae_lite_file(distilled: bool):
    sd = {f'module.model.{k}': v for k, v in timm_vit(num_classes=0).items()}
    if distilled:
        teacher = perturbed(timm.models.vision_transformer.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, num_classes=0))
        sd.update({f'module.tch_model.{k}': v for k, v in teacher.items()})
        sd['module.attn_adapter.adapter1.weight'] = torch.randn(2, 2, 1, 1)
    return {'model': sd, 'optimizer': {}, 'start_epoch': 400}


def via_official(cls, to_official):
    """A UM-MAE / GreenMIM file, written from a tiny backbone by the converter's inverse (these
    layouts have no reference implementation installable here)."""
    sd = perturbed(cls(**cls.tiny_cfg))
    return {'model': to_official({'backbone.' + k: v for k, v in sd.items()})}


def tiny(cls):
    return lambda **c: cls(**cls.tiny_cfg, **c)


def vit(**kw):
    return ViT(VIT, img_size=32, patch_size=8, **kw)


def mae_finetuned():
    sd = timm_vit(num_classes=3, global_pool='avg', fc_norm=True)
    return {'model': {k: v for k, v in sd.items() if not k.startswith('norm.')}}


FORMATS = {  # name: (file builder, converter, backbone, input side)
    'mae': (lambda: {'model': timm_vit(num_classes=0)}, 'mae', vit, 32),
    'mae_ft': (mae_finetuned, 'mae', lambda **c: vit(out_type='avg_featmap', final_norm=False, **c),
               32),
    'mae_lite': (lambda: mae_lite_file(False), 'mae_lite', vit, 32),
    'd_mae_lite': (lambda: mae_lite_file(True), 'mae_lite', vit, 32),
    'hiera': (lambda: {'model_state': official_hiera(False), 'epoch': 3}, 'hiera',
              lambda **c: Hiera(HIERA, img_size=64, **c), 64),
    'hiera_mae': (lambda: {'model_state': official_hiera(True)}, 'hiera',
                  lambda **c: Hiera(HIERA, img_size=64, **c), 64),
    'um_mae_swin': (lambda: via_official(UMSwin, um_mae.to_official), 'um_mae', tiny(UMSwin), 64),
    'um_mae_pvt': (lambda: via_official(UMPVT, um_mae.to_official), 'um_mae', tiny(UMPVT), 64),
    'greenmim': (lambda: via_official(GreenSwin, greenmim.to_official), 'greenmim',
                 tiny(GreenSwin), 64),  # the released files' old merge order, permuted back
}


class _Payload(str):
    """Pickles as a call of os.makedirs(self): must never run when a checkpoint is loaded."""

    def __reduce__(self):
        return os.makedirs, (str(self),)


# -------------------------------------------------------------------------- server and manifest
class _Handler(http.server.SimpleHTTPRequestHandler):
    timeout = 10  # bounded: a stuck client cannot hold a server thread
    cut, log = set(), []  # names served half then dropped (once); every GET

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.lstrip('/')
        type(self).log.append(name)
        if name in self.cut:
            self.cut.discard(name)
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        super().do_GET()


class Zoo:
    """A served folder, a manifest of tiny entries, and a cache, all under tmp_path."""

    def __init__(self, tmp_path):
        self.root, self.cache = tmp_path / 'served', tmp_path / 'cache'
        self.root.mkdir()
        self.index, self.entries = tmp_path / 'index.yml', []
        _Handler.cut, _Handler.log = set(), []
        self.server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), functools.partial(_Handler, directory=str(self.root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.running = True

    def stop(self):
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False

    def add(self, name, ckpt, converter, pin=True, serve=None):
        """Save ``ckpt`` as NAME.pth; the manifest pins its sha256 when ``pin``;
        ``serve(bytes) -> bytes`` alters what the server sends."""
        path = self.root / f'{name}.pth'
        torch.save(ckpt, path)
        good = path.read_bytes()
        if serve:
            path.write_bytes(serve(good))
        self.entries.append({'Name': name, 'Weights': f'https://example.invalid/zoo/{name}.pth',
                             'Converter': converter, 'License': 'CC-BY-NC-4.0',
                             'SHA256': hashlib.sha256(good).hexdigest() if pin else None})
        self.index.write_text(yaml.safe_dump({'Checkpoints': self.entries}, sort_keys=False))
        return path

    def files(self):
        return sorted(str(p.relative_to(self.cache)) for p in self.cache.rglob('*') if p.is_file())

    def env(self):
        return dict(HVIT_MM_HOME=str(self.cache), HVIT_MM_ZOO_INDEX=str(self.index),
                    HVIT_MM_ZOO_URL_PREFIX=self.url)


@pytest.fixture
def served(tmp_path, monkeypatch):
    z = Zoo(tmp_path)
    for key, value in z.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv('HVIT_MM_OFFLINE', raising=False)
    yield z
    z.stop()


def loaded(factory, checkpoint):
    model = factory(init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    model.init_weights()
    return model.eval()


# ---------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize('fmt', sorted(FORMATS))
def test_name_loads_like_the_file_converted_by_hand(served, tmp_path, fmt):
    build, converter, factory, side = FORMATS[fmt]
    pin = fmt in ('mae', 'hiera', 'd_mae_lite', 'greenmim')  # the others: trust on first use
    raw = served.add(f'test_{fmt}', build(), converter, pin=pin)
    by_hand = tmp_path / 'by_hand.pth'
    want_sd = to_hvit(load_state_dict_file(str(raw)), fmt=converter)
    torch.save({'state_dict': want_sd}, by_hand)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = loaded(factory, f'hvit://test_{fmt}')
    assert any('compare it with the publisher' in str(w.message) for w in caught) != pin
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        got, want = model(x), loaded(factory, str(by_hand))(x)
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    key = next(k for k in sorted(want_sd) if k.endswith('.mlp.fc1.weight'))  # loaded, not random
    assert torch.equal(model.state_dict()[key[len('backbone.'):]], want_sd[key])
    # mmengine's scheme (load_from, stock Pretrained) reads the same cached file, no new request
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(f'hvit://test_{fmt}', map_location='cpu')
    assert sorted(ckpt['state_dict']) == sorted(want_sd)
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in want_sd.items())
    assert _Handler.log == [f'test_{fmt}.pth']


def flip(data):  # one bit of the file
    return data[:-40] + bytes([data[-40] ^ 1]) + data[-39:]


@pytest.mark.parametrize('case,pin,serve,error', [
    ('tampered', True, flip, 'has sha256 .* expected'),
    ('truncated', True, lambda d: d[:len(d) // 2], 'has sha256 .* expected'),
    ('truncated_tofu', False, lambda d: d[:len(d) // 2], 'not a readable checkpoint'),
    ('pickled_code', False, None, 'pickled code'),
    ('web_page', False, lambda d: b'<!DOCTYPE html><html>quota exceeded</html>', 'a web page'),
])
def test_bad_files_are_refused_and_leave_nothing(served, tmp_path, case, pin, serve, error):
    marker = tmp_path / 'payload_ran'
    ckpt = {'model': timm_vit(num_classes=0)}
    if case == 'pickled_code':
        ckpt['evil'] = _Payload(str(marker))
    served.add('test_bad', ckpt, 'mae', pin=pin, serve=serve)
    with pytest.raises(zoo.ZooError, match=error):
        zoo.fetch('hvit://test_bad', progress=False)
    assert not marker.exists()  # never executed
    assert served.files() == []  # no partial, bad or converted file, no record


def test_killed_download_leaves_a_cache_the_next_call_fills(served):
    served.add('test_cut', {'model': timm_vit(num_classes=0)}, 'mae')
    _Handler.cut.add('test_cut.pth')
    with pytest.raises(zoo.ZooError, match='stopped after .* bytes; nothing was kept'):
        zoo.fetch('test_cut', progress=False)
    assert served.files() == []
    path = zoo.fetch('test_cut', progress=True)  # tqdm (or the simple bar) on stderr
    assert served.files() == ['hashes.json', 'test_cut/test_cut.hvit.pth', 'test_cut/test_cut.pth']
    assert zoo.load('test_cut').keys() == torch.load(path, weights_only=True)['state_dict'].keys()


def test_first_use_record_is_checked_later(served):
    served.add('test_tofu', {'model': timm_vit(num_classes=0)}, 'mae', pin=False)
    with pytest.warns(UserWarning, match='no sha256.*compare it with the publisher'):
        zoo.fetch('test_tofu', progress=False)
    record = zoo.read_records()['test_tofu']
    served_bytes = (served.root / 'test_tofu.pth').read_bytes()
    assert record['sha256'] == hashlib.sha256(served_bytes).hexdigest()
    assert record['trust'] == 'first use'
    for victim in ('test_tofu/test_tofu.pth', 'test_tofu/test_tofu.hvit.pth'):
        with open(served.cache / victim, 'ab') as f:
            f.write(b'x')
        with pytest.raises(zoo.ZooError, match='does not match the sha256 recorded'):
            zoo.fetch('test_tofu')
        assert victim not in served.files()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            zoo.fetch('test_tofu', progress=False)
        assert not [w for w in caught if 'publisher' in str(w.message)]  # the record was kept
    (served.root / 'test_tofu.pth').write_bytes(flip((served.root / 'test_tofu.pth').read_bytes()))
    os.remove(served.cache / 'test_tofu' / 'test_tofu.pth')
    os.remove(served.cache / 'test_tofu' / 'test_tofu.hvit.pth')
    with pytest.raises(zoo.ZooError, match='recorded on first download'):
        zoo.fetch('test_tofu', progress=False)  # the publisher's file changed under the same URL


def test_offline_names_the_missing_file_and_a_full_cache_needs_no_network(served, monkeypatch):
    served.add('test_off', {'model': timm_vit(num_classes=0)}, 'mae')
    monkeypatch.setenv('HVIT_MM_OFFLINE', '1')
    missing = re.escape(str(served.cache / 'test_off' / 'test_off.pth'))
    with pytest.raises(zoo.ZooError, match=f'HVIT_MM_OFFLINE is set and the cache lacks {missing}'):
        zoo.fetch('test_off')
    assert _Handler.log == [] and served.files() == []
    monkeypatch.delenv('HVIT_MM_OFFLINE')
    zoo.fetch('test_off', progress=False)
    served.stop()
    monkeypatch.setenv('HVIT_MM_OFFLINE', '1')
    assert zoo.load('hvit://test_off')['backbone.cls_token'].shape == (1, 1, 32)


def test_manifest_refuses_malformed_entries(tmp_path):
    base = {'Name': 'x', 'Weights': 'https://e.invalid/x.pth', 'Converter': 'mae', 'License': 'MIT'}
    for bad, error in [({'SHA256': 'abc123'}, 'not a full sha256'),
                       ({'SHA256': 'g' * 64}, 'not a full sha256'),
                       ({'Sha256': 'a' * 64}, 'unknown keys'),
                       ({'Name': 'X/../y'}, 'lower-case'),
                       ({'File Name': '../x.pth'}, 'plain file name'),
                       ({'License': None}, 'missing')]:
        (tmp_path / 'm.yml').write_text(yaml.safe_dump({'Checkpoints': [{**base, **bad}]}))
        with pytest.raises(zoo.ZooError, match=error):
            zoo.load_manifest(str(tmp_path / 'm.yml'))
    (tmp_path / 'm.yml').write_text(yaml.safe_dump({'Import': ['n.yml'], 'Checkpoints': [base]}))
    (tmp_path / 'n.yml').write_text(yaml.safe_dump({'Checkpoints': [base]}))
    with pytest.raises(zoo.ZooError, match="'x' is in both"):
        zoo.load_manifest(str(tmp_path / 'm.yml'))
    with pytest.raises(zoo.ZooError, match='did you mean mae_vit-base-p16'):
        zoo.get_entry('hvit://mae_vit-bse-p16', zoo.REPO_INDEX)


def test_cli_download_list_and_converter_tools_accept_names(served, tmp_path, capsys, monkeypatch):
    served.add('test_cli', {'model': timm_vit(num_classes=0)}, 'mae')
    cli = load_tool('tools/model_converters/download.py')
    assert cli.main(['--list']) == 0
    assert re.search(r'test_cli\s+CC-BY-NC-4.0\s+\?', capsys.readouterr().out)
    assert cli.main(['test_cli', 'test_nope', '--no-progress']) == 1
    out, err = capsys.readouterr()
    assert 'test_cli.hvit.pth' in out and 'not in the model zoo' in err
    dst = tmp_path / 'converted.pth'
    monkeypatch.setattr(sys, 'argv', ['mae_to_hvit.py', 'hvit://test_cli', str(dst)])
    load_tool('tools/model_converters/_convert.py').main('auto', 'convert')
    assert torch.load(dst, weights_only=True)['state_dict'].keys() == zoo.load('test_cli').keys()


def test_config_with_a_name_trains_offline_from_the_cache(served, toy_root, tmp_path, monkeypatch):
    from mmengine.config import Config
    from mmengine.runner import Runner
    toy = timm.models.vision_transformer.VisionTransformer(  # the toy MAE config's encoder
        img_size=64, patch_size=8, embed_dim=128, depth=4, num_heads=4, num_classes=0)
    want = perturbed(toy)
    served.add('test_toy', {'model': want}, 'mae')
    zoo.fetch('hvit://test_toy', progress=False)
    served.stop()
    monkeypatch.setenv('HVIT_MM_OFFLINE', '1')
    cfg = tmp_path / 'toy_from_zoo.py'
    cfg.write_text(f"""_base_ = '{REPO}/configs/mae/mae_vit-tiny-p8_1xb32-coslr-600i_toy-in1k.py'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='hvit://test_toy')))
load_from = 'hvit://test_toy'
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        dataset=dict(times=1, dataset=dict(data_root='{toy_root}/imagenet')))
train_cfg = dict(max_iters=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
work_dir = '{tmp_path / 'work'}'
experiment_name = 'test_zoo_{os.getpid()}'
""")
    runner = Runner.from_cfg(Config.fromfile(str(cfg)))
    runner.train()
    assert runner.iter == 2 and (tmp_path / 'work' / 'iter_2.pth').is_file()
    got = runner.model.backbone.blocks[3].mlp.fc1.weight  # 2 steps at lr ~1e-5 from the file
    assert (got - want['blocks.3.mlp.fc1.weight']).abs().max() < 1e-3
    assert _Handler.log == ['test_toy.pth']  # one download, before the server stopped


# ------------------------------------------------------------------------- the repo's manifest
def test_repo_manifest_lists_every_metafile_converter_and_config():
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    metafiles = sorted(os.path.relpath(p, REPO)
                       for p in glob.glob(str(REPO / 'configs/*/metafile.yml')))
    assert sorted(index['Import']) == metafiles
    entries = zoo.load_manifest(zoo.REPO_INDEX)
    known = {c.name for c in CONVERTERS}
    for e in entries.values():
        where = f'{e.name} ({e.source})'
        if e.pending:
            assert e.converter not in known, f'{where}: {e.converter} exists: drop Pending'
        else:
            assert e.converter in known, f'{where}: unknown converter {e.converter}'
        assert e.config is None or (REPO / e.config).is_file(), f'{where}: no {e.config}'
        assert e.license and e.url.startswith('https://'), where
        if e.drive:
            assert re.fullmatch(r'https://drive\.google\.com/uc\?export=download&id=[\w-]+', e.url)
    assert {'mae_vit-base-p16', 'mae_vit-large-p16', 'mae_vit-huge-p14', 'mae_vit-huge-p14_ft-in1k',
            'mae-lite_vit-tiny-p16', 'mae-lite_vit-small-p16', 'd-mae-lite_vit-tiny-p16',
            'hiera-mae_hiera-tiny-p4', 'hiera-mae_hiera-huge-p4_ft-in1k', 'greenmim_swin-base-w7',
            'um-mae_swin-tiny_ft-in1k', 'um-mae_pvt-small_ft-in1k', 'um-mae_swin-large_ft-in1k',
            'greenmim_swin-base-w14', 'greenmim_swin-large-w14'} <= set(entries)
    named = r'hvit://([a-z0-9][\w+-]*(?:\.[\w+-]+)*)'  # e.g. a Model's `Pretrained` metadata
    assert not [(m, n) for m in metafiles for n in re.findall(named, (REPO / m).read_text())
                if n not in entries]


def test_configs_start_from_zoo_names():
    """A shipped config that names a checkpoint uses an ``hvit://`` name of the manifest; only the
    outputs of this repo's own pretraining configs (``work_dirs/...``) are paths."""
    entries = zoo.load_manifest(zoo.REPO_INDEX)
    pattern = re.compile(r"""(?:pretrained|checkpoint|load_from)\s*=\s*\(?\s*['"]([^'"]+)['"]""")
    bad = []
    for path in sorted(REPO.glob('configs/**/*.py')):
        for value in pattern.findall(path.read_text()):
            name = value[len(zoo.SCHEME):] if value.startswith(zoo.SCHEME) else None
            if not value.startswith('work_dirs/') and name not in entries:
                bad.append(f'{path.relative_to(REPO)}: {value}')
    assert not bad, 'use hvit:// names (docs/model_zoo.md):\n' + '\n'.join(bad)
