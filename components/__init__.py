"""KFP components: one thin wrapper per pipeline step, mapping KFP artifacts to library calls.

``components.steps`` holds the step bodies as plain functions over local paths (no kfp import), so the
same steps run inside a KFP pod, under ``kfp.local`` and in-process. ``components.kfp_components``
wraps them as KFP components built on the project's own images.
"""
