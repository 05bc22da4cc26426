"""KFP components: one thin wrapper per pipeline step, mapping KFP artifacts to :mod:`aidetect.flows` calls.

``components.kfp_components`` builds them on the project's own images; the same flows run inside a KFP pod,
under ``kfp.local`` and in-process (CLI, demo, bench).
"""
