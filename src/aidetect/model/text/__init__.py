"""Text models trained from scratch: byte n-gram TF-IDF + logistic regression (ONNX graph built here) and
a compact byte-level CNN (torch, exported to ONNX). Both read :func:`aidetect.data.text.encode.encode_ids`
and output ``probabilities`` ``[N, C]`` in label order; evaluation and serving run the ONNX model.
"""
