"""The command-line layer: one module per command, each defining its absl flags and `main`.

Only this package defines or reads absl flags; the library below it takes plain arguments.
`common` holds what the commands share (running a command, reporting errors as one line,
shared flag groups). Every command is a subcommand of the installed `bert-tf` command (the table
in `bert_tf.cli.main`; `bert-tf --help` lists them) and also runs as
`python -m bert_tf.cli.<name>`:

- `tokenize`, `build_vocab`, `bert_config`: text tools (tokenize a file, learn a vocab.txt,
  a bert_config.json for a vocab);
- `random_init`: a randomly initialised Google-format checkpoint;
- `extract_features`, `create_pretraining_data`, `export_saved_model`, `export_tflite`: also
  reachable under Google's script paths (extract_features.py, create_pretraining_data.py,
  export/export_saved_model.py, export/export_tflite.py);
- `compare`: one export through the SavedModel, gRPC, REST and TFLite;
- `saved_model_cli`: TensorFlow's saved_model_cli with the tf-text ops loaded.

Importing this package makes the command quiet (see `bert_tf.cli.startup`): it must therefore be
imported before TensorFlow, which every command and top-level script does.
"""
import sys as _sys

from bert_tf.cli import startup as _startup

_startup.configure(_sys.argv)
