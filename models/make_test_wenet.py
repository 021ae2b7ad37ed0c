#!/usr/bin/env python3
"""Make a RANDOM-weight stand-in for Ultralight-Digital-Human's WeNet ``encoder.onnx``.

    python models/make_test_wenet.py [--seed 0] [--out models/test_wenet_encoder.onnx]
                                     [--size tiny|full]

Ultralight's ``data_utils/wenet_infer.py`` runs ``encoder.onnx`` (a streaming
WeNet U2++ conformer, ~110 MB, downloaded by users) once per 67-frame fbank
chunk, with these inputs and outputs (names are the ones upstream passes):

=============  =======  ================  =========================================
name           type     shape             upstream feeds / takes
=============  =======  ================  =========================================
chunk          float32  (1, 1, 67, 80)    ``np.expand_dims(feat, 0)``, feat (1, 67, 80)
offset         int64    (1,)              ``np.ones((1,), np.int64) * 100``
att_cache      float32  (3, 8, 16, 128)   zeros, never carried between chunks
cnn_cache      float32  (3, 1, 512, 14)   zeros, never carried between chunks
output         float32  (1, 16, 512)      ``outs[0][0]``: one (16, 512) row
r_att_cache    float32  (3, 8, 16, 128)   (ignored upstream)
r_cnn_cache    float32  (3, 1, 512, 14)   (ignored upstream)
=============  =======  ================  =========================================

The 4-D ``chunk`` is what upstream feeds (a WeNet export usually takes
(1, T, 80)); the cache shapes say 3 layers, 8 heads, 16 cached frames,
``d_k`` 64 (keys and values side by side: 128) and a 15-tap causal depthwise
convolution over 512 channels (14 cached frames).

The stand-in has that interface and the same kind of computation, so that
every input matters and a wrong one shows in the output:

1. global CMVN inside the model, ``(chunk - mean) * istd`` per mel bin;
2. WeNet's ``Conv2dSubsampling4``: two 3x3 stride-2 convolutions with ReLU,
   67 x 80 -> 33 x 39 -> 16 x 19, then a linear layer to 512;
3. ``x * sqrt(512)`` plus a sinusoidal position encoding of
   ``offset + [0, 16)`` (so the offset changes every row);
4. 3 blocks, each: half feed-forward (SiLU); 8-head attention whose keys
   and values are the cached 16 frames of ``att_cache`` followed by the
   chunk's own 16 (the new keys and values are returned as ``r_att_cache``);
   a convolution module whose 15-tap depthwise convolution runs over the 14
   cached frames of ``cnn_cache`` followed by the chunk (the last 14 frames
   are returned as ``r_cnn_cache``); half feed-forward; LayerNorm;
5. a final LayerNorm.

``--size tiny`` (default, ~4.4 MB): 16 subsampling channels, feed-forward width
64, attention and pointwise projections of rank 32. ``--size full``
(~96 MB): 512 channels, feed-forward 2048, full 512 x 512 projections: about
the real model's size and cost, for benchmarks.

Weights: each tensor from its own NumPy PCG64 generator seeded with (seed,
CRC-32 of its name): matrices and kernels ~ N(0, 1/fan_in), biases
~ N(0, 0.1^2), LayerNorm weights ~ U(0.5, 1.5) and biases ~ N(0, 0.2^2), CMVN
mean ~ N(10, 2^2) and inverse std ~ U(0.2, 0.5) (log-mel energies of int16
speech are around 5 to 20).

The model is exported with PyTorch's TorchScript exporter (opset 17), then
checked in ONNX Runtime before the file appears: the output agrees with
PyTorch within 1e-4 on a random chunk, and changing any one input (a chunk
row, the offset, either cache) changes the output.

THE WEIGHTS ARE RANDOM: for tests and benchmarks only. The ONNX metadata
says so (``synctalk_audio.weights``). Needs ``torch``, ``onnx`` and
``onnxruntime``; the output is a generated file (``/models/*.onnx`` is not
committed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
import zlib
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

INPUT_NAMES = ["chunk", "offset", "att_cache", "cnn_cache"]
OUTPUT_NAMES = ["output", "r_att_cache", "r_cnn_cache"]
CHUNK_FRAMES = 67
N_MELS = 80
D_MODEL = 512
LAYERS = 3
HEADS = 8
D_K = 64
CACHE_FRAMES = 16
CNN_KERNEL = 15
OUT_FRAMES = 16
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"channels": 16, "ffn": 64, "rank": 32},
    "full": {"channels": 512, "ffn": 2048, "rank": None},
}

BANNER = """\
WARNING: {out} is a RANDOM-weight stand-in (seed {seed}) for Ultralight-Digital-Human's
         WeNet encoder.onnx, for tests and benchmarks only. Its features are meaningless."""


def input_shapes() -> dict[str, tuple[int, ...]]:
    return {
        "chunk": (1, 1, CHUNK_FRAMES, N_MELS),
        "offset": (1,),
        "att_cache": (LAYERS, HEADS, CACHE_FRAMES, 2 * D_K),
        "cnn_cache": (LAYERS, 1, D_MODEL, CNN_KERNEL - 1),
    }


def build_model(size: str) -> Any:
    """The stand-in encoder as a torch module (weights not yet set)."""
    import torch
    from torch import nn

    dims = SIZES[size]

    def projection(n_in: int, n_out: int) -> nn.Module:
        rank = dims["rank"]
        if rank is None:
            return nn.Linear(n_in, n_out)
        return nn.Sequential(nn.Linear(n_in, rank, bias=False), nn.Linear(rank, n_out))

    class FeedForward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(D_MODEL)
            self.w1 = nn.Linear(D_MODEL, dims["ffn"])
            self.w2 = nn.Linear(dims["ffn"], D_MODEL)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.w2(torch.nn.functional.silu(self.w1(self.norm(x))))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ff1 = FeedForward()
            self.att_norm = nn.LayerNorm(D_MODEL)
            self.q = projection(D_MODEL, D_MODEL)
            self.k = projection(D_MODEL, D_MODEL)
            self.v = projection(D_MODEL, D_MODEL)
            self.o = projection(D_MODEL, D_MODEL)
            self.conv_norm = nn.LayerNorm(D_MODEL)
            self.depthwise = nn.Conv1d(D_MODEL, D_MODEL, CNN_KERNEL, groups=D_MODEL)
            self.pointwise = projection(D_MODEL, D_MODEL)
            self.ff2 = FeedForward()
            self.out_norm = nn.LayerNorm(D_MODEL)

        def forward(
            self, x: torch.Tensor, att_cache: torch.Tensor, cnn_cache: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            # x (16, 512); att_cache (8, 16, 128); cnn_cache (1, 512, 14)
            x = x + 0.5 * self.ff1(x)
            h = self.att_norm(x)
            q = self.q(h).reshape(OUT_FRAMES, HEADS, D_K).transpose(0, 1)
            k = self.k(h).reshape(OUT_FRAMES, HEADS, D_K).transpose(0, 1)
            v = self.v(h).reshape(OUT_FRAMES, HEADS, D_K).transpose(0, 1)
            keys = torch.cat([att_cache[:, :, :D_K], k], dim=1)  # (8, 32, 64)
            values = torch.cat([att_cache[:, :, D_K:], v], dim=1)
            scores = torch.matmul(q, keys.transpose(1, 2)) / math.sqrt(D_K)
            att = torch.matmul(torch.softmax(scores, dim=-1), values)  # (8, 16, 64)
            x = x + self.o(att.transpose(0, 1).reshape(OUT_FRAMES, D_MODEL))
            new_att = torch.cat([k, v], dim=2)  # (8, 16, 128)
            h = self.conv_norm(x).transpose(0, 1).unsqueeze(0)  # (1, 512, 16)
            h = torch.cat([cnn_cache, h], dim=2)  # (1, 512, 30)
            new_cnn = h[:, :, -(CNN_KERNEL - 1) :]
            h = torch.nn.functional.silu(self.depthwise(h))[0].transpose(0, 1)  # (16, 512)
            x = x + self.pointwise(h)
            x = x + 0.5 * self.ff2(x)
            return self.out_norm(x), new_att, new_cnn

    class StandInEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            channels = dims["channels"]
            self.cmvn_mean = nn.Parameter(torch.zeros(N_MELS))
            self.cmvn_istd = nn.Parameter(torch.ones(N_MELS))
            self.conv1 = nn.Conv2d(1, channels, 3, stride=2)
            self.conv2 = nn.Conv2d(channels, channels, 3, stride=2)
            sub_mels = ((N_MELS - 1) // 2 - 1) // 2  # 80 -> 39 -> 19
            self.embed = nn.Linear(channels * sub_mels, D_MODEL)
            self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.after_norm = nn.LayerNorm(D_MODEL)
            inv_freq = torch.exp(
                torch.arange(0, D_MODEL, 2, dtype=torch.float32) * (-math.log(10000.0) / D_MODEL)
            )
            self.register_buffer("inv_freq", inv_freq, persistent=False)

        def forward(
            self,
            chunk: torch.Tensor,
            offset: torch.Tensor,
            att_cache: torch.Tensor,
            cnn_cache: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            x = (chunk - self.cmvn_mean) * self.cmvn_istd  # (1, 1, 67, 80)
            x = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # (1, C, 16, 19)
            x = x[0].transpose(0, 1).reshape(x.shape[2], -1)  # (16, C * 19)
            x = self.embed(x) * math.sqrt(D_MODEL)
            positions = offset.to(torch.float32) + torch.arange(OUT_FRAMES, dtype=torch.float32)
            angles = positions.unsqueeze(1) * self.inv_freq.unsqueeze(0)  # (16, 256)
            x = x + torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
            new_att, new_cnn = [], []
            for index, block in enumerate(self.blocks):
                x, att, cnn = block(x, att_cache[index], cnn_cache[index])
                new_att.append(att)
                new_cnn.append(cnn)
            out = self.after_norm(x).unsqueeze(0)  # (1, 16, 512)
            return out, torch.stack(new_att), torch.stack(new_cnn)

    return StandInEncoder().eval()


def random_tensor(key: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded random float32 values for one parameter (rules in the module docstring)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    name = key.rsplit(".", 1)[-1]
    if key == "cmvn_mean":
        values = rng.normal(10.0, 2.0, shape)
    elif key == "cmvn_istd":
        values = rng.uniform(0.2, 0.5, shape)
    elif "norm" in key and name == "weight":
        values = rng.uniform(0.5, 1.5, shape)
    elif "norm" in key and name == "bias":
        values = rng.normal(0.0, 0.2, shape)
    elif name == "bias":
        values = rng.normal(0.0, 0.1, shape)
    else:
        fan_in = int(np.prod(shape[1:]))
        values = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
    return np.ascontiguousarray(values, dtype=np.float32)


def set_random_weights(model: Any, seed: int) -> int:
    import torch

    count = 0
    with torch.no_grad():
        for key, param in model.named_parameters():
            param.copy_(torch.from_numpy(random_tensor(key, tuple(param.shape), seed)))
            count += param.numel()
    return count


def example_inputs(seed: int) -> dict[str, np.ndarray]:
    """Inputs like upstream's (offset 100, zero caches) with a random log-mel chunk."""
    rng = np.random.default_rng([seed, 67])
    shapes = input_shapes()
    return {
        "chunk": rng.normal(10.0, 3.0, shapes["chunk"]).astype(np.float32),
        "offset": np.full(shapes["offset"], 100, dtype=np.int64),
        "att_cache": np.zeros(shapes["att_cache"], dtype=np.float32),
        "cnn_cache": np.zeros(shapes["cnn_cache"], dtype=np.float32),
    }


def export(model: Any, path: str, opset: int) -> None:
    import torch

    example = example_inputs(0)
    args = tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated since PyTorch 2.9
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(model, args, path, opset)


def _export(model: Any, args: Any, path: str, opset: int) -> None:
    import torch

    torch.onnx.export(
        model,
        args,
        path,
        dynamo=False,
        input_names=INPUT_NAMES,
        output_names=OUTPUT_NAMES,
        opset_version=opset,
        do_constant_folding=True,
        export_params=True,
    )


def check(model: Any, path: str, seed: int) -> float:
    """ONNX Runtime against PyTorch, and every input must change the output."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    outs = [o.name for o in session.get_outputs()]
    if names != INPUT_NAMES or outs != OUTPUT_NAMES:
        raise SystemExit(
            f"exported names {names} -> {outs}, wanted {INPUT_NAMES} -> {OUTPUT_NAMES}"
        )
    feed = example_inputs(seed + 1)
    got = session.run(None, feed)
    with torch.no_grad():
        want = model(*(torch.from_numpy(feed[n]) for n in INPUT_NAMES))
    error = max(float(np.max(np.abs(g - w.numpy()))) for g, w in zip(got, want, strict=True))
    if error > 1e-4:
        raise SystemExit(f"ONNX Runtime differs from PyTorch by {error:.3g}")
    if got[0].shape != (1, OUT_FRAMES, D_MODEL):
        raise SystemExit(f"output shape {got[0].shape}")
    rng = np.random.default_rng([seed, 2])
    changes = {
        "chunk (one row)": {**feed, "chunk": feed["chunk"].copy()},
        "offset": {**feed, "offset": feed["offset"] + 1},
        "att_cache": {**feed, "att_cache": rng.standard_normal(feed["att_cache"].shape)},
        "cnn_cache": {**feed, "cnn_cache": rng.standard_normal(feed["cnn_cache"].shape)},
    }
    changes["chunk (one row)"]["chunk"][0, 0, 40] += 1.0
    for what, other in changes.items():
        other = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in other.items()}
        moved = float(np.max(np.abs(session.run(["output"], other)[0] - got[0])))
        if moved < 1e-3:
            raise SystemExit(f"changing {what} moves the output by only {moved:.3g}")
    return error


def add_metadata(path: str, seed: int, size: str) -> None:
    import onnx

    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key = "synctalk_audio.weights"
    entry.value = f"RANDOM (seed {seed}, size {size}) stand-in for Ultralight's WeNet encoder.onnx"
    proto.producer_name = "synctalk_audio models/make_test_wenet.py"
    onnx.save(proto, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a seeded RANDOM stand-in for Ultralight-Digital-Human's WeNet"
        " encoder.onnx (same inputs and outputs). For tests and benchmarks only.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="tiny",
        help="tiny test model (default) or full: about the real encoder's size and cost",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="ONNX file to write (default: models/test_wenet_encoder[_full].onnx)",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print only the RANDOM-weights warning"
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    default_name = (
        "test_wenet_encoder.onnx" if args.size == "tiny" else "test_wenet_encoder_full.onnx"
    )
    out = os.path.abspath(args.out or os.path.join(HERE, default_name))
    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        parser.error(f"directory {folder} does not exist")

    started = time.perf_counter()
    model = build_model(args.size)
    n_params = set_random_weights(model, args.seed)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(out)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        export(model, tmp, args.opset)
        add_metadata(tmp, args.seed, args.size)
        error = check(model, tmp, args.seed)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    print(BANNER.format(out=out, seed=args.seed))
    if not args.quiet:
        print(
            f"wrote {out}: {args.size} stand-in, {n_params:,} parameters,"
            f" {os.path.getsize(out) / 1e6:.1f} MB"
        )
        print(
            f"checked: ONNX Runtime vs PyTorch max |diff| {error:.2g}; the output depends on"
            " chunk, offset, att_cache and cnn_cache"
        )
        print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
