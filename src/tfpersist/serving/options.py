"""What a server is started with: TF Serving's ports, the request limit, batching settings.

Kept apart from the server's modules (Granian, grpc, the model runtimes) so that the CLI's
parser reads the defaults without loading any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 8501  # TF Serving's REST port
DEFAULT_GRPC_PORT = 8500  # TF Serving's gRPC port
MAX_REQUEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Options:
    name: str = "model"
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    grpc_port: int | None = None  # None: no gRPC; 0: a free port
    max_request_bytes: int = MAX_REQUEST_BYTES
    poll_seconds: float = 1.0
    labels: tuple[tuple[str, int], ...] = ()
    batching: str = "auto"  # auto (models with a free batch dimension), on, off
    max_batch_size: int = 32
    batch_timeout_micros: int = 0
    max_queued: int = 1024
    request_timeout: float = 60.0
