"""Torch-free model serving: the ONNX bundle, the KServe V2 predictor, limits, metrics, inference log."""
