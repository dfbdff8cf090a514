"""Data: Google's pretraining TFRecords (records.py), their creation (pretraining_data.py),
the training input pipeline (pretraining_dataset.py) and dynamic masking."""
from bert_tf.data.records import (RecordError, TrainingInstance, check_record_shapes,
                                  decode_record, encode_example, feature_spec,
                                  inspect_record_file)

__all__ = ["RecordError", "TrainingInstance", "check_record_shapes", "decode_record",
           "encode_example", "feature_spec", "inspect_record_file"]
