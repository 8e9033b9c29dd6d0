"""Serving: the inference backends, ONNX export, int8 quantisation and batch prediction."""
