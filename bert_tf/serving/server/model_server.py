"""`ModelServer`: the gRPC and REST front ends over one ModelManager, with the version poller
and a graceful drain."""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from bert_tf.errors import InputError
from bert_tf.serving.server.grpc_api import ModelService, PredictionService
from bert_tf.serving.server.http_transport import HttpServer, make_http_server
from bert_tf.serving.server.manager import ModelManager
from bert_tf.serving.server.rest_api import RestApi
from bert_tf.serving.server.status import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_REQUEST_BYTES

logger = logging.getLogger(__name__)

DEFAULT_DRAIN_SECONDS = 10.0


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def check_port(name: str, port: int | None) -> None:
    """A TCP port is 0 (pick a free one) .. 65535; None disables that API."""
    if port is not None and (isinstance(port, bool) or not 0 <= port <= 65535):
        raise InputError(f"--{name} must be a TCP port 0..65535 (0: pick a free one), "
                         f"got {port}")


class ModelServer:
    """TF Serving's gRPC and REST APIs for the SavedModels under `model_base_path`, in-process.

    `grpc_port` / `rest_port`: 0 picks a free port, None disables that API. `max_batch_size`
    (default DEFAULT_MAX_BATCH_SIZE, None: no cap) rejects larger batches with TF Serving's
    batching error, before a request's values are expanded; `max_request_bytes` caps request
    bodies and gRPC messages; `poll_seconds > 0` re-scans `model_base_path` for new versions.
    `start()` binds (the actual ports are then in `.grpc_port` / `.rest_port`); `stop()` or the
    context manager shuts down; `drain(grace)` stops accepting and lets requests in flight
    finish first.
    """

    def __init__(self, model_base_path: str | os.PathLike, model_name: str, *,
                 host: str = "127.0.0.1", grpc_port: int | None = 0, rest_port: int | None = 0,
                 max_batch_size: int | None = DEFAULT_MAX_BATCH_SIZE,
                 max_request_bytes: int | None = DEFAULT_MAX_REQUEST_BYTES,
                 poll_seconds: float = 0.0, grpc_workers: int = 16):
        if not model_name:
            raise InputError("--model_name must not be empty")
        if max_batch_size is not None and max_batch_size < 1:
            raise InputError(f"--max_batch_size must be positive, got {max_batch_size}")
        check_port("port", grpc_port)
        check_port("rest_api_port", rest_port)
        self.model_base_path = os.fspath(model_base_path)
        self.model_name = model_name
        self.host = host
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.max_request_bytes = max_request_bytes or None
        self.poll_seconds = poll_seconds
        self.manager = ModelManager(self.model_base_path, model_name, max_batch_size)
        self.rest_api = RestApi(self.manager)
        self._grpc_workers = grpc_workers
        self._grpc_server: grpc.Server | None = None
        self._http_server: HttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def version(self) -> int | None:
        """The served model version."""
        return self.manager.version

    @property
    def grpc_address(self) -> str:
        """`host:port` of the gRPC API (after start())."""
        return _host_port(self.host, self.grpc_port)

    @property
    def rest_url(self) -> str:
        """`http://host:port` of the REST API (after start())."""
        return f"http://{_host_port(self.host, self.rest_port)}"

    def start(self) -> ModelServer:
        """Loads the newest version, binds the ports and starts serving; returns self."""
        if not tf.io.gfile.isdir(self.model_base_path):
            raise InputError(f"--model_base_path {self.model_base_path} is not a directory")
        self.manager.scan()
        if self.manager.version is None and self.poll_seconds <= 0:
            if self.manager.available_versions():
                raise InputError(f"the newest version under {self.model_base_path} failed to "
                                 "load (see the log)")
            raise InputError(f"no version under {self.model_base_path} (expected "
                             "<model_base_path>/<version>/saved_model.pb)")
        self._stopping.clear()
        try:
            if self.grpc_port is not None:
                self._start_grpc()
            if self.rest_port is not None:
                self._start_rest()
        except BaseException:
            self.stop()
            raise
        if self.poll_seconds > 0:
            self._start_thread(self._poll, "model-version-poller")
        logger.info(
            "Development model server (use TF Serving in production): model %s version %s "
            "from %s; gRPC on %s, REST on %s", self.model_name, self.manager.version,
            self.model_base_path,
            self.grpc_address if self._grpc_server else "off",
            self.rest_url if self._http_server else "off")
        return self

    def _start_thread(self, target, name: str, **kwargs) -> None:
        thread = threading.Thread(target=target, name=name, kwargs=kwargs, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_grpc(self) -> None:
        options = [("grpc.so_reuseport", 0), ("grpc.max_send_message_length", -1),
                   ("grpc.max_receive_message_length", self.max_request_bytes or -1)]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._grpc_workers,
                                                        thread_name_prefix="grpc-predict"),
                             options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.manager), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.manager), server)
        address = _host_port(self.host, self.grpc_port)
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as e:
            raise OSError(f"cannot bind gRPC to {address}: {e}") from e
        if not port:
            raise OSError(f"cannot bind gRPC to {address}")
        server.start()
        self._grpc_server, self.grpc_port = server, port

    def _start_rest(self) -> None:
        server = make_http_server(self.host, self.rest_port, self.rest_api,
                                  self.max_request_bytes)
        self._http_server, self.rest_port = server, server.server_address[1]
        self._start_thread(server.serve_forever, "rest-api", poll_interval=0.2)

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            try:
                self.manager.scan()
            except Exception:  # noqa: BLE001 - keep polling
                logger.exception("model %s: scanning %s failed", self.model_name,
                                 self.model_base_path)

    def reload(self) -> bool:
        """Re-scans model_base_path now; returns whether the served version changed."""
        return self.manager.scan()

    def drain(self, grace: float = DEFAULT_DRAIN_SECONDS) -> bool:
        """Graceful shutdown: stops accepting requests on both APIs, waits up to `grace`
        seconds (in all) for the requests in flight, then stops. Returns whether all of them
        finished."""
        self._stopping.set()
        deadline = time.monotonic() + grace
        grpc_done = None
        if self._grpc_server is not None:
            # Refuses new RPCs at once; those in flight get the grace period (non-blocking).
            grpc_done = self._grpc_server.stop(grace)
            self._grpc_server = None
        unfinished = 0
        if self._http_server is not None:
            unfinished = self._http_server.drain(grace)
            self._http_server = None
        if grpc_done is not None and not grpc_done.wait(max(0.0, deadline - time.monotonic())
                                                        + 1.0):
            unfinished += 1
        self.stop()
        return unfinished == 0

    def stop(self, grace: float | None = 1.0) -> None:
        """Stops both APIs (in-flight gRPC calls get `grace` seconds) and the poller."""
        self._stopping.set()
        if self._grpc_server is not None:
            self._grpc_server.stop(grace).wait()
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def wait(self) -> None:
        """Blocks until stop() is called (from another thread or a signal handler)."""
        while not self._stopping.wait(1.0):
            pass

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
