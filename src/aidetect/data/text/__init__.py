"""Text modality: labelled texts as content-addressed dataset versions (same store layout as images).

``settings`` (``configs/text_data.yaml``), ``normalize`` (the one normalisation and the per-text checks,
shared by ingest, training and serving), ``sources`` (CSV, JSONL, parquet), ``versions`` (ingest and
reading), ``features`` (drift features), ``validation`` (the Great Expectations suite).
"""
