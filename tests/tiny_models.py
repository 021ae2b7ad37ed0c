"""Tiny ONNX encoders built with onnx.helper: good ones and broken ones.

Each takes float32 (B, 1, 80, 16) windows and returns (B, 512): the input
flattened to (B, 1280) times a fixed seeded matrix, then an optional last
step that spoils the output (a NaN or infinite bias, a cast to float64 or
int64). They load in milliseconds, so tests can build them freely.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

KINDS = ("good", "nan", "inf", "float64", "int64")


def make_tiny_encoder(path: str | os.PathLike[str], kind: str = "good") -> str:
    """Write a (B, 1, 80, 16) -> (B, 512) encoder of ``kind`` to ``path``; return the path."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    rng = np.random.default_rng(7)
    weights = (rng.standard_normal((1280, 512)) * 0.01).astype(np.float32)
    bias = np.zeros(512, np.float32)
    if kind == "nan":
        bias[3] = np.nan
    elif kind == "inf":
        bias[100] = np.inf
    nodes = [
        helper.make_node("Flatten", ["mel"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["sum"]),
    ]
    out_type = {"float64": TensorProto.DOUBLE, "int64": TensorProto.INT64}.get(
        kind, TensorProto.FLOAT
    )
    nodes.append(helper.make_node("Cast", ["sum"], ["features"], to=out_type))
    graph = helper.make_graph(
        nodes,
        f"tiny_{kind}_encoder",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["B", 1, 80, 16])],
        [helper.make_tensor_value_info("features", out_type, ["B", 512])],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return os.fspath(path)
