"""Import KServe without letting it parse this process's command line.

``kserve.model_server`` runs ``argparse.parse_known_args()`` on ``sys.argv`` at import time, so an
unrelated flag that abbreviates one of its options (``pytest --co`` -> ``--configure_logging``) exits
the process. Every serving module imports KServe names from here instead.

It is also the one place that touches KServe's private tensor fields: :func:`raw_bytes` and
:func:`infer_input` read and set an ``InferInput``'s raw (binary-extension / gRPC raw contents) bytes.
"""

from __future__ import annotations

import sys
from typing import Any

from grpc_interceptor.exceptions import Unimplemented

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse, Model, model_server
    from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
    from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
    from kserve.model import InferenceVerb
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.infer_type import InferInput, RequestedOutput
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
finally:
    sys.argv = _argv


class ModelBoundDataPlane(DataPlane):
    """KServe's data plane whose liveness follows the served model: a server whose model is not ready
    fails liveness (REST 503, gRPC ``live: false``) along with readiness, so Kubernetes restarts it.
    A module-level class, so REST worker processes can unpickle it."""

    def __init__(self, model_registry: Any, model: Model) -> None:
        super().__init__(model_registry)
        self.model = model

    async def live(self) -> dict[str, str]:  # type: ignore[override]  # KServe's is a staticmethod
        return {"status": "alive" if self.model.ready else "model not ready"}


def limit_grpc_contents(max_values: int) -> None:
    """gRPC ``ModelInfer`` refuses typed ``contents`` of more than ``max_values`` values in all
    (INVALID_ARGUMENT) before KServe turns them into Python lists (8+ bytes a value: a 57 MB message
    of UINT8 pixels cost 2.5 GB). Raw contents are not counted: they stay bytes. Installed by
    replacing the servicer class KServe's gRPC server instantiates; call before the server starts."""
    from kserve.protocol.grpc import server as grpc_server
    from kserve.protocol.grpc.servicer import InferenceServicer

    class BoundedServicer(InferenceServicer):
        async def ModelInfer(self, request: Any, context: Any) -> Any:
            values = sum(len(getattr(t.contents, f)) for t in request.inputs for f in _TYPED_CONTENTS)
            if values > max_values:
                raise InvalidInput(
                    f"request carries {values} typed values, above the limit {max_values} "
                    "(send tensors and images as raw_input_contents)"
                )
            return await super().ModelInfer(request, context)

    grpc_server.InferenceServicer = BoundedServicer  # type: ignore[misc]


_TYPED_CONTENTS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "uint64_contents",
    "fp32_contents",
    "fp64_contents",
    "bytes_contents",
)


class PinnedRepository(ModelRepositoryExtension):
    """KServe's model-repository extension with load and unload refused (gRPC UNIMPLEMENTED, logged
    without a traceback): the server serves the one bundle it started with."""

    async def load(self, model_name: str) -> None:
        raise Unimplemented("the model repository API is disabled: this server serves one pinned bundle")

    async def unload(self, model_name: str) -> None:
        raise Unimplemented("the model repository API is disabled: this server serves one pinned bundle")


def raw_bytes(inp: InferInput) -> bytes | memoryview | None:
    """The input's raw tensor bytes (gRPC ``raw_input_contents`` or the REST binary extension), if any.

    KServe 0.21 keeps them in the private ``_raw_data`` and offers only ``as_numpy()``, which turns BYTES
    tensors into UTF-8 strings and copies numeric ones; the decoders need the bytes themselves. A REST
    request's are a view into its body (no copy of a large binary section)."""
    return inp._raw_data


def infer_input(
    name: str,
    shape: list[int],
    datatype: str,
    parameters: dict[str, Any],
    *,
    data: object = None,
    raw: bytes | memoryview | None = None,
) -> InferInput:
    """An ``InferInput`` holding either JSON ``data`` or ``raw`` tensor bytes (as a gRPC request would)."""
    inp = InferInput(name=name, shape=shape, datatype=datatype, data=data, parameters=parameters)
    if raw is not None:
        inp._raw_data = raw
    return inp


__all__ = [
    "INFERENCE_CONTENT_LENGTH_HEADER",
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceVerb",
    "InvalidInput",
    "Model",
    "ModelBoundDataPlane",
    "ModelNotFound",
    "ModelNotReady",
    "PinnedRepository",
    "RequestedOutput",
    "infer_input",
    "kserve",
    "limit_grpc_contents",
    "model_server",
    "raw_bytes",
]
