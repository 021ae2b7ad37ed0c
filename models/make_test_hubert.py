#!/usr/bin/env python3
"""Make a RANDOM-weight HuBERT checkpoint directory laid out as users have it from HuggingFace.

    python models/make_test_hubert.py [--seed 0] [--out models/test_hubert] [--size tiny|large]
                                      [--arch ctc|base] [--weights safetensors|bin]

Ultralight-Digital-Human's ``data_utils/hubert.py`` loads
``facebook/hubert-large-ls960-ft`` with ``HubertModel.from_pretrained`` and
``Wav2Vec2Processor.from_pretrained``. What users have in their HuggingFace
cache for it is a directory with

- ``config.json``: a ``HubertConfig`` (``model_type`` "hubert",
  ``architectures`` ["HubertForCTC"]);
- the weights, ``model.safetensors`` or ``pytorch_model.bin``, in the
  ``HubertForCTC`` layout: every encoder key under the ``hubert.`` prefix plus
  a CTC head ``lm_head.{weight,bias}`` (32 characters), and the positional
  convolution's weight norm stored under its legacy names
  ``pos_conv_embed.conv.weight_g`` / ``weight_v``;
- ``preprocessor_config.json`` for ``Wav2Vec2FeatureExtractor``
  (``do_normalize`` true, 16 kHz, ``feature_size`` 1, ``padding_value`` 0);
- the CTC tokenizer files ``vocab.json``, ``tokenizer_config.json`` and
  ``special_tokens_map.json`` (so ``Wav2Vec2Processor.from_pretrained`` works).

This script writes the same set of files with seeded random weights.

``--size tiny`` (default, ~19 MB): the real convolutional feature extractor
(7 layers, kernels (10,3,3,3,3,2,2), strides (5,2,2,2,2,2,2), conv bias,
``feat_extract_norm='layer'``, ``do_stable_layer_norm=True``) with 32
channels per layer instead of 512, and a transformer of the real width (1024,
16 heads, so ``last_hidden_state`` rows are 1024 wide as ``aud_hu.npy``
needs) but 1 layer, a 64-wide feed-forward and a 16-tap positional
convolution in 64 groups (the real one: 24 layers, 4096, 128 taps in 16
groups). ``--size large`` writes hubert-large's real architecture (316 M
parameters, ~1.26 GB), for speed and memory benchmarks.

The dropout and LayerDrop probabilities are the real checkpoint's (0.1), so
a model left in train mode gives different numbers: put it in eval mode
(``from_pretrained`` does).

Weights: every tensor comes from its own NumPy PCG64 generator seeded with
(seed, CRC-32 of its key), so the same seed gives the same values on every
machine and with every transformers version. Matrices and convolution kernels
~ N(0, 1/fan_in); LayerNorm weights ~ U(0.5, 1.5) and biases ~ N(0, 0.2^2)
(no LayerNorm is the identity); other biases ~ N(0, 0.1^2); the weight-norm
magnitudes ``weight_g`` ~ U(2, 6) and directions ``weight_v`` ~ N(0, 1);
``masked_spec_embed`` ~ U(0, 1).

THE WEIGHTS ARE RANDOM: the features are meaningless for lip sync. The
config says so (``synctalk_audio_weights``) and so does this script every
time it runs. After writing, the directory is loaded back with
``HubertModel.from_pretrained`` and checked: no missing key, every tensor
equal to the one written, eval mode, finite output of width 1024.

Needs ``torch``, ``transformers`` and ``safetensors``. The directory is a
generated file set: it holds a ``.gitignore`` of ``*`` so it is never
committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# The architecture of facebook/hubert-large-ls960-ft (its config.json), by field.
LARGE: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "conv_dim": [512] * 7,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
}
TINY: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 1,
    "num_attention_heads": 16,
    "intermediate_size": 64,
    "conv_dim": [32] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 64,
}
COMMON: dict[str, Any] = {
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": True,
    "feat_extract_norm": "layer",
    "feat_extract_activation": "gelu",
    "do_stable_layer_norm": True,
    "feat_proj_layer_norm": True,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "feat_proj_dropout": 0.1,
    "final_dropout": 0.1,
    "layerdrop": 0.1,
    "mask_time_prob": 0.05,
    "vocab_size": 32,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

PREPROCESSOR = {
    "do_normalize": True,
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "padding_side": "right",
    "padding_value": 0,
    "return_attention_mask": False,
    "sampling_rate": 16000,
}

# The 32-symbol character vocabulary of the LibriSpeech CTC fine-tuned checkpoints.
VOCAB_SYMBOLS = ["<pad>", "<s>", "</s>", "<unk>", "|", *"ETAONIHSRDLUMWCFGYPBVK'XJQZ"]
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
}
TOKENIZER_CONFIG = {
    **SPECIAL_TOKENS,
    "do_lower_case": False,
    "word_delimiter_token": "|",
    "tokenizer_class": "Wav2Vec2CTCTokenizer",
}

BANNER = """\
WARNING: {out} holds RANDOM HuBERT weights (seed {seed}), for tests and benchmarks only.
         Its features are meaningless for lip sync; users' real checkpoint is
         facebook/hubert-large-ls960-ft from HuggingFace."""


def legacy_key(key: str) -> str:
    """The key as stored in the published checkpoints (weight norm under weight_g / weight_v)."""
    return key.replace("parametrizations.weight.original0", "weight_g").replace(
        "parametrizations.weight.original1", "weight_v"
    )


def random_tensor(key: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Seeded random float32 values for one checkpoint tensor (rules in the module docstring)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    name = key.rsplit(".", 1)[-1]
    if "layer_norm" in key and name == "weight":
        values = rng.uniform(0.5, 1.5, shape)
    elif "layer_norm" in key and name == "bias":
        values = rng.normal(0.0, 0.2, shape)
    elif name == "weight_g":
        values = rng.uniform(2.0, 6.0, shape)
    elif name == "weight_v":
        values = rng.standard_normal(shape)
    elif name == "masked_spec_embed":
        values = rng.uniform(0.0, 1.0, shape)
    elif name == "bias" or len(shape) < 2:
        values = rng.normal(0.0, 0.1, shape)
    else:
        fan_in = int(np.prod(shape[1:]))
        values = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
    return np.ascontiguousarray(values, dtype=np.float32)


def make_config(size: str, arch: str, seed: int) -> Any:
    from transformers import HubertConfig

    fields = {**COMMON, **(TINY if size == "tiny" else LARGE)}
    architecture = "HubertForCTC" if arch == "ctc" else "HubertModel"
    return HubertConfig(
        **fields,
        architectures=[architecture],
        synctalk_audio_weights=f"RANDOM (seed {seed}, size {size}) - for tests and benchmarks only",
    )


def random_state(config: Any, arch: str, seed: int) -> dict[str, np.ndarray]:
    """Checkpoint tensors: the model's own key set (legacy weight-norm names), random values."""
    import torch
    from transformers import HubertForCTC, HubertModel

    with torch.device("meta"):  # key names and shapes only, no memory
        model = HubertForCTC(config) if arch == "ctc" else HubertModel(config)
    state = {}
    for key, tensor in model.state_dict().items():
        stored = legacy_key(key)
        state[stored] = random_tensor(stored, tuple(tensor.shape), seed)
    return state


def write_weights(state: dict[str, np.ndarray], folder: str, fmt: str) -> str:
    if fmt == "safetensors":
        from safetensors.numpy import save_file

        path = os.path.join(folder, "model.safetensors")
        save_file(state, path, metadata={"format": "pt"})
    else:
        import torch

        path = os.path.join(folder, "pytorch_model.bin")
        torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
    return path


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def check_loads(folder: str, state: dict[str, np.ndarray], arch: str) -> tuple[int, float]:
    """Load the directory as upstream does and check it is exactly what was written."""
    import torch
    from transformers import HubertModel, Wav2Vec2Processor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the expected lm_head notice of a CTC checkpoint
    model, info = HubertModel.from_pretrained(folder, output_loading_info=True)
    if info["missing_keys"] or info["mismatched_keys"] or info["error_msgs"]:
        raise SystemExit(f"the checkpoint does not load cleanly: {info}")
    expected_unexpected = {"lm_head.weight", "lm_head.bias"} if arch == "ctc" else set()
    if set(info["unexpected_keys"]) != expected_unexpected:
        raise SystemExit(f"unexpected keys when loading: {info['unexpected_keys']}")
    if model.training:
        raise SystemExit("HubertModel.from_pretrained returned a model in train mode")
    prefix = "hubert." if arch == "ctc" else ""
    for key, tensor in model.state_dict().items():
        written = state[prefix + legacy_key(key)]
        if not np.array_equal(tensor.detach().numpy(), written):
            raise SystemExit(f"{key} loads with other values than were written")
    processor = Wav2Vec2Processor.from_pretrained(folder)
    noise = np.random.default_rng(1).standard_normal(16000)
    values = processor(noise, return_tensors="pt", sampling_rate=16000).input_values
    with torch.no_grad():
        out = model(values).last_hidden_state[0].numpy()
    if out.shape != (49, 1024) or not np.isfinite(out).all():
        raise SystemExit(f"unexpected output {out.shape} (finite: {np.isfinite(out).all()})")
    return sum(v.size for v in state.values()), float(out.std())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a seeded RANDOM HuBERT checkpoint directory (HuggingFace layout)."
        " For tests and benchmarks only.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--size",
        choices=("tiny", "large"),
        default="tiny",
        help="tiny test model (default) or hubert-large's real architecture",
    )
    parser.add_argument(
        "--arch",
        choices=("ctc", "base"),
        default="ctc",
        help="ctc: HubertForCTC keys ('hubert.' prefix + lm_head) as hubert-large-ls960-ft"
        " (default); base: HubertModel keys without prefix",
    )
    parser.add_argument(
        "--weights",
        choices=("safetensors", "bin"),
        default="safetensors",
        help="model.safetensors (default) or pytorch_model.bin",
    )
    parser.add_argument(
        "--out", default=None, help="directory to write (default: models/test_hubert[_large])"
    )
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="print only the RANDOM-weights warning"
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be a non-negative integer")
    default_name = "test_hubert" if args.size == "tiny" else "test_hubert_large"
    out = os.path.abspath(args.out or os.path.join(HERE, default_name))
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        parser.error(f"directory {parent} does not exist")

    started = time.perf_counter()
    config = make_config(args.size, args.arch, args.seed)
    state = random_state(config, args.arch, args.seed)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", suffix=".tmp", dir=parent)
    try:
        config.save_pretrained(tmp)
        weights = write_weights(state, tmp, args.weights)
        _write_json(os.path.join(tmp, "preprocessor_config.json"), PREPROCESSOR)
        _write_json(os.path.join(tmp, "vocab.json"), {s: i for i, s in enumerate(VOCAB_SYMBOLS)})
        _write_json(os.path.join(tmp, "tokenizer_config.json"), TOKENIZER_CONFIG)
        _write_json(os.path.join(tmp, "special_tokens_map.json"), SPECIAL_TOKENS)
        with open(os.path.join(tmp, ".gitignore"), "w", encoding="utf-8") as f:
            f.write("# generated by models/make_test_hubert.py: never committed\n*\n")
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), 0o644)
        os.chmod(tmp, 0o755)
        n_params, out_std = check_loads(tmp, state, args.arch)
        weights_bytes = os.path.getsize(weights)
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(BANNER.format(out=out, seed=args.seed))
    if not args.quiet:
        print(
            f"wrote {out}: {args.size} HuBERT ({n_params:,} parameters, {args.arch} layout,"
            f" {os.path.basename(weights)} {weights_bytes / 1e6:.1f} MB)"
        )
        print(
            f"checked: loads with HubertModel.from_pretrained, eval mode, output std {out_std:.3f}"
        )
        print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
