"""The platform's steps as one layer: what the CLI, ``aidetect demo``, ``bench/`` and the KFP components call.

Each flow takes typed references (:mod:`aidetect.flows.refs`) and an explicit :class:`Stores` (where
datasets and the registry live), and returns the reference the next step needs. Because every entry point
goes through these functions, "a registered model" means the same thing however it was made: a version
with lineage tags, its checkpoint and reports, the serving bundle stamped with its final name and version,
and the drift reference profile.
"""

from aidetect.flows.data import grow, ingest, validate
from aidetect.flows.model import GateFailedError, evaluate, optimize, register, train
from aidetect.flows.refs import BundleRef, DatasetRef, Evaluation, Registration, TrainedModel
from aidetect.flows.stores import Stores

__all__ = [
    "BundleRef",
    "DatasetRef",
    "Evaluation",
    "GateFailedError",
    "Registration",
    "Stores",
    "TrainedModel",
    "evaluate",
    "grow",
    "ingest",
    "optimize",
    "register",
    "train",
    "validate",
]
