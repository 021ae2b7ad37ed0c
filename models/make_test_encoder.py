#!/usr/bin/env python3
"""Make the RANDOM-weight test encoder: a seeded fake SyncTalk_2D checkpoint and its ONNX export.

    python models/make_test_encoder.py [--seed 0] [--out models/audio_encoder.onnx]
                                       [--pth models/test_encoder.pth]

1. `synctalk_audio.testing.random_encoder_state_dict` makes seeded random
   weights with the exact key names of SyncTalk_2D's
   ``model/checkpoints/audio_visual_encoder.pth`` (no ``audio_encoder.``
   prefix), BatchNorm running statistics randomised too;
2. they are written with ``torch.save`` to ``--pth``, in the same format as
   the real checkpoint (so the upstream PyTorch code path can load it);
3. `synctalk_audio.export.export_onnx` exports that file to ``--out`` and
   checks ONNX Runtime against PyTorch before the file appears.

THE WEIGHTS ARE RANDOM. The features they give are meaningless for lip sync;
use them for tests, benchmarks and demos only. For real features export the
real checkpoint:

    synctalk-audio export --checkpoint model/checkpoints/audio_visual_encoder.pth \
        --output models/audio_encoder.onnx

Needs PyTorch (``pip install 'synctalk-audio[export]'``). The outputs are
generated files; they are not committed (see models/README.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

BANNER = """\
WARNING: {onnx} holds RANDOM weights (seed {seed}), for tests and demos only.
         Its features are meaningless for lip sync. To use SyncTalk_2D's real encoder:
             synctalk-audio export --checkpoint model/checkpoints/audio_visual_encoder.pth \\
                 --output models/audio_encoder.onnx"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a seeded RANDOM SyncTalk_2D AudioEncoder checkpoint (.pth) and export"
        " it to ONNX (checked against PyTorch). For tests and demos only.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--out",
        default=os.path.join(HERE, "audio_encoder.onnx"),
        help="ONNX model to write (default: models/audio_encoder.onnx)",
    )
    parser.add_argument(
        "--pth",
        default=os.path.join(HERE, "test_encoder.pth"),
        help="checkpoint to write, SyncTalk_2D format without the"
        " 'audio_encoder.' prefix (default: models/test_encoder.pth)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print only the RANDOM-weights warning"
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")

    try:
        from synctalk_audio.export import export_onnx
        from synctalk_audio.testing import random_encoder_state_dict, save_state_dict_pth
    except ImportError:  # run from a source tree without the package installed
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))
        from synctalk_audio.export import export_onnx
        from synctalk_audio.testing import random_encoder_state_dict, save_state_dict_pth

    started = time.perf_counter()
    for path in (args.out, args.pth):
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            parser.error(f"directory {folder} does not exist")
    state = random_encoder_state_dict(args.seed)
    pth = save_state_dict_pth(state, args.pth)
    report = export_onnx(
        pth,
        args.out,
        opset=args.opset,
        metadata={
            "synctalk_audio.weights": f"RANDOM (seed {args.seed}) - for tests and demos only",
        },
    )
    print(BANNER.format(onnx=report.onnx_path, seed=args.seed))
    if not args.quiet:
        print(f"wrote {pth} (random checkpoint, SyncTalk_2D key format)")
        print(report)
        print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
