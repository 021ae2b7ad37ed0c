"""Encoder backends: the `Encoder` protocol and ONNX Runtime (`encoders.onnx`)."""
