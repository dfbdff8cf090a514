"""TensorFlow's `saved_model_cli` with tf-text's ops registered, for our string-input exports.

Plain `saved_model_cli run` cannot load a graph that contains tf-text ops (it never imports
tensorflow_text). This wrapper does, then hands over; every argument is saved_model_cli's:

    python -m bert_tf.cli.saved_model_cli run --dir serving/mrpc/1 --tag_set serve \\
      --signature_def serving_default --input_exprs 'text=["A sentence."]'

`run` loads the SavedModel with the TF1 session loader (the C++ loader TF Serving uses restores
the same graph and variables), so it doubles as the check that an export serves.
"""
import sys

import tensorflow_text  # noqa: F401  (registers the tf-text ops)
from tensorflow.python.tools.saved_model_cli import main

if __name__ == "__main__":
    sys.argv[0] = "saved_model_cli"
    sys.exit(main())
