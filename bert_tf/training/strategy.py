"""tf.distribute strategies for pretraining and fine-tuning, chosen by name.

    >>> from bert_tf.training.strategy import create_strategy
    >>> strategy = create_strategy("one_device")          # GPU:0 if there is one, else CPU:0
    >>> strategy.num_replicas_in_sync
    1

Every strategy is driven by the same custom loop (`bert_tf.training.trainer`): Keras 3's
`model.fit` does not work under MultiWorkerMirroredStrategy.

Notes:
  * Create the strategy at the start of the program, before any other TensorFlow op:
    MultiWorkerMirroredStrategy and TPUs must configure the runtime first, and logical devices
    (`tf.config.set_logical_device_configuration`, used by the tests to get several CPU
    "devices") can only be set before the runtime is initialised.
  * "mirrored" without GPUs mirrors over every logical CPU device (one replica unless logical
    CPUs were configured).
  * "multi_worker_mirrored" reads the cluster from the `TF_CONFIG` environment variable; without
    it the strategy runs as a single worker.
"""
from __future__ import annotations

import json
import logging
import os

import tensorflow as tf
from bert_tf.errors import InputError

logger = logging.getLogger("bert_tf")

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


class StrategyError(InputError):
    """An unknown strategy name, or a strategy the machine cannot provide."""


def create_strategy(distribution_strategy: str, num_gpus: int = 0,
                    tpu: str | None = None) -> tf.distribute.Strategy:
    """Creates a tf.distribute strategy.

    Args:
      distribution_strategy: "one_device" (GPU:0 if available, else CPU:0), "mirrored"
        (`num_gpus` GPUs, or all local GPUs, or all logical CPUs when there is no GPU),
        "multi_worker_mirrored" (cluster from TF_CONFIG) or "tpu".
      num_gpus: for "mirrored": how many GPUs to use (0: all local GPUs / logical CPUs). For
        "one_device", 0 forces the CPU only if no GPU is visible; GPU:0 is used otherwise.
      tpu: for "tpu": the TPU name or grpc:// address given to `TPUClusterResolver` (None or ""
        on a TPU VM / Colab: the local TPU).

    Raises:
      StrategyError: an unknown name, more GPUs requested than visible, or a malformed
        TF_CONFIG.
    """
    name = (distribution_strategy or "").strip().lower()
    if name not in STRATEGIES:
        raise StrategyError(f"unknown distribution_strategy {distribution_strategy!r}; "
                            f"choose one of {', '.join(STRATEGIES)}")
    if num_gpus is None or int(num_gpus) < 0:
        raise StrategyError(f"num_gpus must be >= 0, got {num_gpus!r}")
    num_gpus = int(num_gpus)

    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        device = "/gpu:0" if gpus else "/cpu:0"
        logger.info("OneDeviceStrategy on %s", device)
        return tf.distribute.OneDeviceStrategy(device)

    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if num_gpus > len(gpus):
            raise StrategyError(f"--num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible")
        if num_gpus:
            devices = [f"/gpu:{i}" for i in range(num_gpus)]
        elif gpus:
            devices = [f"/gpu:{i}" for i in range(len(gpus))]
        else:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        logger.info("MirroredStrategy over %d device(s): %s", len(devices), ", ".join(devices))
        return tf.distribute.MirroredStrategy(devices)

    if name == "multi_worker_mirrored":
        tf_config = os.environ.get("TF_CONFIG")
        if tf_config:
            try:
                parsed = json.loads(tf_config)
                parsed["cluster"], parsed["task"]["type"], parsed["task"]["index"]
            except (ValueError, KeyError, TypeError) as e:
                raise StrategyError(
                    f"TF_CONFIG must be JSON with 'cluster' and 'task' {{'type', 'index'}}: "
                    f"{e!r}") from None
        else:
            logger.warning("multi_worker_mirrored without TF_CONFIG: running as a single worker")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("MultiWorkerMirroredStrategy: %d replica(s) in sync",
                    strategy.num_replicas_in_sync)
        return strategy

    # tpu
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as e:
        raise StrategyError(f"cannot connect to TPU {tpu or '(local)'}: {e}") from None
    strategy = tf.distribute.TPUStrategy(resolver)
    logger.info("TPUStrategy: %d replica(s)", strategy.num_replicas_in_sync)
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process is the one that writes checkpoints, summaries and results.

    True for single-worker strategies; with a cluster, the "chief" task, or worker 0 when the
    cluster has no chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    cluster = resolver.cluster_spec().as_dict()
    return task_type == "worker" and int(task_id or 0) == 0 and "chief" not in cluster


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether the strategy spans several worker processes."""
    extended = strategy.extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())
