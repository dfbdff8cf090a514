"""Google TF1 checkpoints <-> our Keras weights, through one name table (`names.py`)."""
from bert_tf.checkpoints.google import (CheckpointError, CheckpointMismatchError, LoadReport,
                                        build_from_google_checkpoint, config_for_checkpoint,
                                        infer_num_classes,
                                        load_google_checkpoint, resolve_checkpoint,
                                        save_google_checkpoint)
from bert_tf.checkpoints.names import google_name_table

__all__ = ["CheckpointError", "CheckpointMismatchError", "LoadReport",
           "build_from_google_checkpoint", "config_for_checkpoint", "google_name_table",
           "infer_num_classes",
           "load_google_checkpoint", "resolve_checkpoint", "save_google_checkpoint"]
