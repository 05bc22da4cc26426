"""Import KServe without letting it parse this process's command line.

``kserve.model_server`` runs ``argparse.parse_known_args()`` on ``sys.argv`` at import time, so an
unrelated flag that abbreviates one of its options (``pytest --co`` -> ``--configure_logging``) exits
the process. Every serving module imports KServe names from here instead.
"""

from __future__ import annotations

import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse, Model, model_server
    from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
    from kserve.model import InferenceVerb
    from kserve.protocol.infer_type import InferInput, RequestedOutput
finally:
    sys.argv = _argv

__all__ = [
    "INFERENCE_CONTENT_LENGTH_HEADER",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceVerb",
    "InvalidInput",
    "Model",
    "ModelNotFound",
    "ModelNotReady",
    "RequestedOutput",
    "kserve",
    "model_server",
]
