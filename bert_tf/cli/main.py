"""`bert-tf`: the installed command; `bert-tf <command> [flags]` runs one of the commands below.

    bert-tf --help                       # the commands, one line each (no TensorFlow import)
    bert-tf classify --helpfull          # a command's flags
    bert-tf classify --task_name=MRPC --do_train ...

COMMANDS is the one place to add a command: its name, the bert_tf.cli module that implements it
(absl flags + `main`, run under `if __name__ == "__main__"`), and a one-line description. Only
the chosen module is imported, because every command module defines its absl flags at import
and two commands' flags would collide. A module that is not importable in this installation is
left out of the list.
"""
from __future__ import annotations

import importlib.util
import sys
import types

# name -> (module under bert_tf.cli, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("pretrain", "pretrain BERT on TFRecords (Google's run_pretraining.py)"),
    "classify": ("classify", "fine-tune a classifier on GLUE or your TSV/CSV "
                             "(Google's run_classifier.py)"),
    "ner": ("ner", "fine-tune a token classifier on CoNLL-format NER data (run_ner.py)"),
    "squad": ("squad", "fine-tune and predict SQuAD question answering (run_squad.py)"),
    "export": ("export_saved_model", "export a checkpoint as a string-in TF Serving SavedModel"),
    "export-tflite": ("export_tflite", "convert a classifier or encoder to TFLite, tokenizer "
                                       "inside"),
    "serve": ("serve", "the TF Serving-compatible development model server"),
    "client": ("serving_client", "send texts to a served model and print the replies"),
    "predict": ("predict", "run an exported model or checkpoint on a text file"),
    "tokenize": ("tokenize", "tokenize a text file with the in-graph WordPiece tokenizer"),
    "build-vocab": ("build_vocab", "learn a WordPiece vocab.txt from raw text"),
    "convert": ("convert", "convert checkpoints between Google, Hugging Face, keras-hub and .keras"),
    "create-pretraining-data": ("create_pretraining_data", "make pretraining TFRecords from "
                                                           "raw text"),
    "extract-features": ("extract_features", "contextual token features as JSON lines "
                                             "(Google's extract_features.py)"),
    "random-init": ("random_init", "a randomly initialised Google-format checkpoint"),
    "bert-config": ("bert_config", "write a bert_config.json for a vocab (from a base config)"),
    "compare": ("compare", "one export through SavedModel, gRPC, REST and TFLite"),
    "saved-model-cli": ("saved_model_cli", "TensorFlow's saved_model_cli with tf-text ops "
                                           "loaded"),
}

PROG = "bert-tf"


def available_commands() -> dict[str, tuple[str, str]]:
    """The COMMANDS whose module exists in this installation (found without importing it)."""
    return {name: entry for name, entry in COMMANDS.items()
            if importlib.util.find_spec(f"bert_tf.cli.{entry[0]}") is not None}


def usage() -> str:
    """The text of `bert-tf --help`."""
    commands = available_commands()
    width = max(map(len, commands))
    lines = [f"usage: {PROG} <command> [flags]   ({PROG} <command> --help for its flags)",
             "", "BERT for TensorFlow 2 / Keras 3: Google checkpoints, in-graph tokenization, "
             "training, serving, TFLite.", "", "commands:"]
    lines += [f"  {name:<{width}}  {description}"
              for name, (_, description) in commands.items()]
    lines += ["", "Every command takes --verbosity=debug (or -v 1) to show TensorFlow's own "
              "start-up and C++ logs."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """The console entry point: runs `bert-tf <command> ...` as that command's module."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if len(argv) >= 2 else 2)
    if argv[1] == "--version":
        from bert_tf import __version__

        print(f"{PROG} {__version__}")
        return
    name = argv[1]
    commands = available_commands()
    if name not in commands:
        print(f"{PROG}: error: unknown command {name!r}; one of: {', '.join(commands)} "
              f"(see {PROG} --help)", file=sys.stderr)
        sys.exit(2)
    # The command sees itself as the program: `bert-tf classify` in its usage and error lines.
    sys.argv = [f"{PROG} {name}"] + argv[2:]
    from bert_tf.cli import startup

    startup.configure(sys.argv)  # before the command's module imports TensorFlow
    run_as_main(f"bert_tf.cli.{commands[name][0]}")


def run_as_main(module_name: str) -> None:
    """Executes a module as `__main__` (as `python -m` does), keeping sys.argv[0]: runpy's
    alter_sys would replace it by the module's file, and absl names the program and files the
    command's flags under sys.argv[0]."""
    spec = importlib.util.find_spec(module_name)
    module = types.ModuleType("__main__", None)
    module.__file__, module.__spec__, module.__loader__ = spec.origin, spec, spec.loader
    module.__package__ = spec.parent
    sys.modules["__main__"] = module
    code = spec.loader.get_code(module_name)
    exec(code, module.__dict__)  # noqa: S102 - our own module
    if "__main__" not in code.co_consts and callable(module.__dict__.get("main")):
        # A command module without its own `if __name__ == "__main__"` block: run its main.
        from bert_tf.cli import common

        common.run(module.main)


if __name__ == "__main__":
    main()
