"""Peak memory of one dense training step on the CPU: a detector config at real width, batch 1.

Builds the config's model (no pretrained weights are read), makes one synthetic image at the
config's training size with a few boxes and masks, and runs ``loss`` -> ``backward`` once in a
*separate process*, whose peak resident set size (``ru_maxrss``) is the number reported, so the
parent's imports and earlier runs do not count. Default: the ViTDet Mask R-CNN with ViT-B at
1024², activation checkpointing on (as the config); ``--no-cp`` measures the same step without it.

    python tools/analysis/dense_memory.py [CONFIG] [--size 1024] [--no-cp | --both] [--update-docs]

This costs minutes of CPU: run it by hand, not in tests.
"""
import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = 'configs/vitdet/mask-rcnn_vit-base-p16_16xb4-amp-lsj-100e_coco.py'
DOCS = os.path.join(REPO, 'docs', 'benchmarks.md')
BEGIN, END = '<!-- dense-memory:begin -->', '<!-- dense-memory:end -->'


def _no_pretrained(node):
    """Drop every Pretrained init_cfg: the step's memory does not depend on the weights."""
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for v in node.values():
            _no_pretrained(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _no_pretrained(v)


def child(config: str, size: int, with_cp: bool) -> dict:
    """Build, one forward+backward on a (1, 3, size, size) image; returns the measurements."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData
    sys.path.insert(0, REPO)
    import hvit_mm  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    _no_pretrained(cfg.model)
    if 'with_cp' in cfg.model.backbone:
        cfg.model.backbone.with_cp = with_cp
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    boxes = torch.tensor([[64., 96., 400., 512.], [500., 300., 900., 800.],
                          [100., 600., 300., 1000.]]) * size / 1024
    masks = torch.zeros(len(boxes), size, size, dtype=torch.uint8)
    for m, (x0, y0, x1, y1) in zip(masks, boxes.long().tolist()):
        m[y0:y1, x0:x1] = 1
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1, 2]),
                                       masks=BitmapMasks(masks.numpy(), size, size))
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]), training=True)
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    loss = sum(v.sum() for k, v in losses.items() if 'loss' in k and torch.is_tensor(v)) + \
        sum(sum(x.sum() for x in v) for k, v in losses.items() if 'loss' in k and isinstance(v, list))
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    grads = sum(p.grad is not None for p in model.parameters())
    return dict(config=os.path.relpath(config, REPO), size=size, with_cp=with_cp,
                params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                backbone_params_m=round(sum(p.numel() for p in model.backbone.parameters()) / 1e6,
                                        2),
                input_shape=list(data['inputs'].shape), loss=round(float(loss), 4),
                params_with_grad=grads, forward_s=round(t1 - t0, 1), backward_s=round(t2 - t1, 1),
                rss_after_build_mib=round(rss_built),
                peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                torch=torch.__version__, threads=torch.get_num_threads())


def measure(config: str, size: int, with_cp: bool) -> dict:
    """:func:`child` in a fresh interpreter; returns its JSON line."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), config, '--size', str(size),
                          '--child'] + ([] if with_cp else ['--no-cp']),
                         capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise RuntimeError(f'dense_memory child failed:\n{out.stderr[-4000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(results: list) -> str:
    r = results[0]
    gib = r['peak_rss_mib'] / 1024
    rows = [f"| `{os.path.basename(x['config'])}` | 1×3×{x['size']}² | "
            f"{'on' if x['with_cp'] else 'off'} | {x['params_m']} (backbone {x['backbone_params_m']}) "
            f"| {x['forward_s']} | {x['backward_s']} | {x['peak_rss_mib']} |" for x in results]
    return '\n'.join([
        f"Device: cpu ({platform.machine()}, {os.cpu_count()} cores), torch {r['torch']}, fp32, "
        f"{r['threads']} threads. `python tools/analysis/dense_memory.py` (one run, by hand).",
        '',
        '| config | input | activation checkpointing | params (M) | forward (s) | backward (s) '
        '| peak RSS (MiB) |',
        '| --- | --- | --- | ---: | ---: | ---: | ---: |',
        *rows,
        '',
        f"One Mask R-CNN training step (forward with the RPN/RoI losses, then backward) of the "
        f"ViTDet-style ViT-B (window 14, global blocks 2/5/8/11, decomposed relative position) + "
        f"SimpleFeaturePyramid at real width, batch 1, on a synthetic image with 3 boxes/masks; "
        f"peak RSS of a fresh process with activation checkpointing "
        f"{'on' if r['with_cp'] else 'off'} = {gib:.1f} GiB (the model alone: "
        f"{r['rss_after_build_mib']} MiB); the issue allows 24 GB. No weights are loaded (memory "
        f"does not depend on them). Backbone parameters include the fixed 64×64 position table "
        f"(3.1M, not trained); the input is padded to 1024² by the config's BatchFixedSizePad. "
        f"Times are one step on 2 cores that other sessions were sharing.",
    ])


def update_docs(text: str) -> None:
    """Replace (or append) the dense section between the markers; other sections stay intact."""
    body = f'{BEGIN}\n{text}\n{END}'
    old = open(DOCS).read() if os.path.isfile(DOCS) else '# Benchmarks\n'
    if BEGIN in old and END in old:
        new = re.sub(re.escape(BEGIN) + '.*?' + re.escape(END), lambda _: body, old, flags=re.S)
    else:
        new = old.rstrip('\n') + '\n\n## Dense transfer: memory of one training step\n\n' + body + '\n'
    with open(DOCS, 'w') as f:
        f.write(new)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', nargs='?', default=os.path.join(REPO, DEFAULT))
    p.add_argument('--size', type=int, default=1024)
    p.add_argument('--no-cp', action='store_true', help='activation checkpointing off')
    p.add_argument('--both', action='store_true', help='measure with and without checkpointing')
    p.add_argument('--update-docs', action='store_true', help=f'write the section into {DOCS}')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.config, args.size, not args.no_cp)))
        return
    modes = [True, False] if args.both else [not args.no_cp]
    results = [measure(args.config, args.size, cp) for cp in modes]
    print(json.dumps(results, indent=1))
    if args.update_docs:
        update_docs(render(results))


if __name__ == '__main__':
    main()
