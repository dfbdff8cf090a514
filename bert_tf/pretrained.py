"""`from_pretrained`: one call for every model directory bert_tf reads.

Recognised, in this order:

- an exported SavedModel version directory (`saved_model.pb` + `assets.extra/bert_tf_export.json`),
- a sentence-transformers directory (`modules.json`; task "embedding"),
- a Hugging Face BERT directory (`config.json` + `model.safetensors` + `vocab.txt`),
- a keras-hub BERT preset directory (`metadata.json` + `model.weights.h5`; encoder only),
- a Google TF1 checkpoint directory or prefix (`bert_model.ckpt` + `bert_config.json` +
  `vocab.txt`), which includes a fine-tuned output_dir of ours (plus `labels.txt`; a run_squad
  output_dir's `run_info.json` gives its casing, max_seq_length and SQuAD settings),
- a Keras `.keras` file of one of our models (with `vocab.txt` beside it).

Example:
    >>> import bert_tf
    >>> loaded = bert_tf.from_pretrained("uncased_L-12_H-768_A-12",  # doctest: +SKIP
    ...                                  task="masked_lm")
    >>> loaded.model, loaded.do_lower_case, loaded.labels  # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import logging
import os

import keras
import tensorflow as tf

from bert_tf.checkpoints import google, huggingface
from bert_tf.checkpoints.names import CLASSIFIER, NEXT_SENTENCE, SPAN_QA
from bert_tf.config import BertConfig
from bert_tf.errors import InputError
from bert_tf.models import (BertClassifier, BertEncoder, BertPretrainer, BertSpanQA,
                            BertTokenClassifier)
from bert_tf.text.preprocessor import BertPreprocessor
from bert_tf.text.vocab import Vocab, load_vocab, looks_cased

logger = logging.getLogger("bert_tf")

# Our task names → model class. "masked_lm" is the pretrainer whose next-sentence head may be
# absent (HF BertForMaskedLM); "pretraining" needs both heads.
TASK_MODELS = {"encoder": BertEncoder, "masked_lm": BertPretrainer,
               "pretraining": BertPretrainer, "classifier": BertClassifier,
               "token_classifier": BertTokenClassifier, "question_answering": BertSpanQA}
TASKS = tuple(TASK_MODELS) + ("embedding",)
_HF_ARCHITECTURE_TASKS = {"BertModel": "encoder", "BertForMaskedLM": "masked_lm",
                          "BertForPreTraining": "pretraining",
                          "BertForSequenceClassification": "classifier",
                          "BertForTokenClassification": "token_classifier",
                          "BertForQuestionAnswering": "question_answering"}
# Task heads a bare checkpoint (encoder or pretraining heads) can be loaded into: the head
# starts new, to be fine-tuned.
_HEAD_TASKS = ("classifier", "token_classifier", "question_answering")
# Per task, the settings it was trained or exported with that its serving module takes
# (ExportSpec field names); Pretrained.settings holds those the files record.
TASK_SETTINGS = {"classifier": ("multi_label", "threshold", "label_separator"),
                 "token_classifier": ("doc_stride",),
                 "question_answering": ("doc_stride", "max_query_length", "max_answer_length",
                                        "version_2_with_negative", "null_score_diff_threshold")}
KERAS_NAME = "model.keras"  # what `convert --to_format=keras` writes, beside vocab.txt
FORMATS = ("saved_model", "sentence_transformers", "hf", "keras_hub", "google", "keras")


class PretrainedError(InputError):
    """A path from_pretrained cannot read, or a task the model there does not have."""


@dataclasses.dataclass
class Pretrained:
    """A loaded model and what its text needs: vocab, casing, labels, and where it came from.

    `model` is a Keras model (BertEncoder, BertPretrainer, BertClassifier, BertTokenClassifier,
    BertSpanQA or SentenceEmbedder). `settings`: the task's TASK_SETTINGS the files record (an
    export's doc_stride and SQuAD settings, a run_squad output_dir's run_info.json); pipelines
    default to them.
    """

    model: keras.Model
    config: BertConfig
    vocab: Vocab
    do_lower_case: bool
    task: str
    format: str
    path: str
    labels: list[str] | None = None
    max_seq_length: int | None = None
    settings: dict = dataclasses.field(default_factory=dict)

    def preprocessor(self, seq_length: int | None = None, **kwargs) -> BertPreprocessor:
        """The BertPreprocessor the model expects (seq_length: given, else the model's own,
        else 128 or max_position_embeddings if smaller)."""
        if seq_length is None:
            seq_length = self.max_seq_length or min(128, self.config.max_position_embeddings)
        self.config.check_max_seq_length(seq_length, "seq_length")
        return BertPreprocessor(self.vocab, do_lower_case=self.do_lower_case,
                                seq_length=seq_length,
                                max_position_embeddings=self.config.max_position_embeddings,
                                **kwargs)


def detect_format(path: str | os.PathLike) -> str:
    """Which of FORMATS `path` is; PretrainedError listing what was looked for otherwise."""
    path = os.fspath(path)
    if path.endswith(".keras") and os.path.isfile(path):
        return "keras"
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, KERAS_NAME)):
            return "keras"
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return "saved_model"
        if os.path.isfile(os.path.join(path, "modules.json")):
            return "sentence_transformers"
        if huggingface.is_hf_directory(path):
            return "hf"
        if os.path.isfile(os.path.join(path, "metadata.json")) and os.path.isfile(
                os.path.join(path, "model.weights.h5")):
            return "keras_hub"
    try:
        google.resolve_checkpoint(path)
        return "google"
    except google.CheckpointError:
        pass
    raise PretrainedError(
        f"{path}: not a model bert_tf reads. Expected an exported SavedModel (saved_model.pb), "
        f"a sentence-transformers directory (modules.json), a Hugging Face directory "
        f"(config.json + model.safetensors), a keras-hub preset, a Google checkpoint "
        f"(bert_model.ckpt.index + bert_config.json) or a .keras file")


def from_pretrained(path: str | os.PathLike, task: str | None = None,
                    do_lower_case: bool | None = None, strict: bool = True) -> Pretrained:
    """Loads any model directory bert_tf reads (see the module docstring) for `task`.

    Args:
        path: the directory (or checkpoint prefix, or .keras file).
        task: one of TASKS; None takes the task the files were saved for (HF `architectures`,
            the heads in a Google checkpoint, an export's task).
        do_lower_case: overrides the casing read from the files (Google checkpoints carry none:
            it is then guessed from the vocab).
        strict: passed to the checkpoint loaders (every missing/unexpected weight is an error).
    Returns:
        A Pretrained.
    """
    path = os.fspath(path)
    if task is not None and task not in TASKS:
        raise PretrainedError(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    kind = detect_format(path)
    if kind == "sentence_transformers":
        return _from_sentence_transformers(path, task, do_lower_case, strict)
    if task == "embedding" and kind != "saved_model":
        raise PretrainedError(f"{path} is a {kind} model, not a sentence-transformers directory "
                              f"(modules.json): build a SentenceEmbedder on its encoder to "
                              f"choose the pooling")
    loader = {"saved_model": _from_saved_model, "hf": _from_hf, "google": _from_google,
              "keras": _from_keras, "keras_hub": _from_keras_hub}[kind]
    loaded = loader(path, task, strict)
    if do_lower_case is not None:
        loaded.do_lower_case = do_lower_case
    return loaded


def _check_task(task: str | None, found: str, path: str) -> str:
    """The task to build: `found` (what the files hold) unless `task` asks for one they can
    fill — fewer heads, or a classifier to fine-tune (its head then starts new)."""
    if task is None or task == found:
        return found
    if task == "encoder" or (task == "masked_lm" and found == "pretraining"):
        return task
    if task in _HEAD_TASKS and found not in _HEAD_TASKS:
        return task
    raise PretrainedError(f"{path} holds a {found} model without the heads task={task!r} "
                          f"needs")


def _optional_groups(task: str) -> tuple[str, ...]:
    return {"masked_lm": (NEXT_SENTENCE,), "classifier": (CLASSIFIER,),
            "token_classifier": (CLASSIFIER,), "question_answering": (SPAN_QA,)}.get(task, ())


def _build(task: str, config: BertConfig, num_classes: int | None) -> keras.Model:
    if task == "classifier":
        return BertClassifier(config, num_classes=num_classes or 2)
    if task == "token_classifier":
        return BertTokenClassifier(BertEncoder(config), num_labels=num_classes or 2)
    return TASK_MODELS[task](config)


def _from_hf(path: str, task: str | None, strict: bool) -> Pretrained:
    directory = huggingface.read_hf_directory(path)
    found = _HF_ARCHITECTURE_TASKS.get(directory.architecture, "encoder")
    task = _check_task(task, found, path)
    model = _build(task, directory.config, len(directory.labels or []))
    huggingface.load_hf_weights(model, path, strict=strict,
                                optional_groups=_optional_groups(task))
    return Pretrained(model, directory.config, load_vocab(directory.vocab_file),
                      directory.do_lower_case, task, "hf", path, directory.labels)


def _google_task(prefix: str) -> str:
    names = {name for name, _ in tf.train.list_variables(prefix)}
    if "cls/squad/output_weights" in names:  # run_squad's span head
        return "question_answering"
    if "output_weights" in names:
        return "classifier"
    if "cls/seq_relationship/output_weights" in names:
        return "pretraining"
    if "cls/predictions/output_bias" in names:
        return "masked_lm"
    return "encoder"


def _beside(prefix: str, name: str) -> str:
    return os.path.join(os.path.dirname(prefix), name)


def _guess_lower_case(vocab: Vocab, path: str) -> bool:
    lower = not looks_cased(vocab)
    logger.info("%s: no casing recorded; do_lower_case=%s from its vocab (pass do_lower_case "
                "to override)", path, lower)
    return lower


def _from_google(path: str, task: str | None, strict: bool) -> Pretrained:
    from bert_tf.serving.export import checkpoint_num_classes, read_labels_file

    prefix = google.resolve_checkpoint(path)
    config = google.config_for_checkpoint(prefix)
    vocab_file = _beside(prefix, google.VOCAB_NAME)
    if not os.path.isfile(vocab_file):
        raise PretrainedError(f"no {google.VOCAB_NAME} beside checkpoint {prefix}")
    vocab = load_vocab(vocab_file)
    config.check_vocab_fits(len(vocab), vocab_file)
    found = _google_task(prefix)
    if found == "classifier" and task == "token_classifier":
        found = task  # both heads are Google's output_weights/output_bias: the caller decides
    task = _check_task(task, found, path)
    labels = read_labels_file(prefix) if task in ("classifier", "token_classifier") else None
    model = _build(task, config, checkpoint_num_classes(prefix) or len(labels or []))
    google.load_google_checkpoint(model, prefix, strict=strict,
                                  optional_groups=_optional_groups(task))
    run = google.read_run_info(prefix)
    lower = run.get("do_lower_case")
    if not isinstance(lower, bool):
        lower = _guess_lower_case(vocab, path)
    max_seq_length = run.get("max_seq_length")
    return Pretrained(model, config, vocab, lower, task, "google", path, labels,
                      max_seq_length if isinstance(max_seq_length, int) else None,
                      _run_settings(task, run, prefix))


def _run_settings(task: str, run: dict, prefix: str) -> dict:
    """TASK_SETTINGS a fine-tuning run recorded in its run_info.json: a run_classifier.py
    --multi_label run's (threshold, separator), a run_squad run's SQuAD settings."""
    if task == "classifier":
        from bert_tf.serving.export import multi_label_settings

        return multi_label_settings(prefix)
    return _squad_settings(run) if task == "question_answering" else {}


def _squad_settings(run: dict) -> dict:
    """TASK_SETTINGS of a run_squad output_dir's run_info.json ({} for another run's)."""
    if run.get("task_name") not in ("squad", "squad_v2"):
        return {}
    settings = {k: run[k] for k in ("doc_stride", "max_query_length")
                if isinstance(run.get(k), int)}
    settings["version_2_with_negative"] = run["task_name"] == "squad_v2"
    return settings


def _from_saved_model(path: str, task: str | None, strict: bool) -> Pretrained:
    from bert_tf.serving.export import load_exported

    spec, model = load_exported(path)
    found = {"masked_lm": "masked_lm", "classifier": "classifier"}.get(spec.task, spec.task)
    if task not in (None, found):
        raise PretrainedError(f"{path} is an exported {spec.task} model, not {task!r}")
    settings = {k: getattr(spec, k) for k in TASK_SETTINGS.get(found, ())
                if getattr(spec, k) is not None}
    return Pretrained(model, spec.bert_config, spec.vocab, spec.do_lower_case, found,
                      "saved_model", path, spec.labels or None, spec.max_seq_length, settings)


def _from_keras(path: str, task: str | None, strict: bool) -> Pretrained:
    if os.path.isdir(path):
        path = os.path.join(path, KERAS_NAME)
    model = keras.saving.load_model(path)
    found = {BertEncoder: "encoder", BertClassifier: "classifier",
             BertTokenClassifier: "token_classifier",
             BertSpanQA: "question_answering"}.get(type(model), "pretraining")
    task = _check_task(task, found, path)
    vocab_file = os.path.join(os.path.dirname(path), google.VOCAB_NAME)
    if not os.path.isfile(vocab_file):
        raise PretrainedError(f"no {google.VOCAB_NAME} beside {path}")
    vocab = load_vocab(vocab_file)
    labels_file = os.path.join(os.path.dirname(path), google.LABELS_NAME)
    labels = None
    if os.path.isfile(labels_file):
        with open(labels_file, encoding="utf-8") as f:
            labels = [line.rstrip("\n") for line in f if line.strip()]
    if task == "encoder" and found != "encoder":
        model = model.encoder
    return Pretrained(model, model.config, vocab, _guess_lower_case(vocab, path), task, "keras",
                      path, labels)


def _from_keras_hub(path: str, task: str | None, strict: bool) -> Pretrained:
    from bert_tf.checkpoints.keras_hub_interop import load_keras_hub_preset

    task = _check_task(task, "encoder", path)
    encoder, tokens, lowercase = load_keras_hub_preset(path)
    return Pretrained(encoder, encoder.config, Vocab(tokens), lowercase, task, "keras_hub",
                      path)


# ----------------------------------------------------------------------------- writing
def _write_text_files(path: str, loaded: Pretrained) -> None:
    files = {google.VOCAB_NAME: loaded.vocab.tokens}
    if loaded.labels:
        files[google.LABELS_NAME] = loaded.labels
    for name, lines in files.items():
        tmp = os.path.join(path, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(f"{line}\n" for line in lines)
        os.replace(tmp, os.path.join(path, name))


def save_pretrained(loaded: Pretrained, path: str | os.PathLike, to_format: str) -> str:
    """Writes `loaded` to `path` as "google" (bert_model.ckpt + bert_config.json + vocab.txt
    [+ labels.txt]), "hf" (a transformers directory), "keras_hub" (a preset; the encoder only)
    or "keras" (model.keras + vocab.txt [+ labels.txt]). Returns the directory."""
    path = os.fspath(path)
    if to_format not in ("google", "hf", "keras_hub", "keras"):
        raise PretrainedError(f"unknown format {to_format!r}: expected google, hf, keras_hub or "
                              f"keras")
    if os.path.exists(path) and os.listdir(path):
        raise PretrainedError(f"output directory {path} exists and is not empty")
    os.makedirs(path, exist_ok=True)
    model = loaded.model
    if to_format == "hf":
        vocab_file = os.path.join(path, google.VOCAB_NAME)
        _write_text_files(path, dataclasses.replace(loaded, labels=None))
        huggingface.save_hf(model, path, vocab_file, loaded.do_lower_case, loaded.labels)
    elif to_format == "keras_hub":
        from bert_tf.checkpoints.keras_hub_interop import save_keras_hub_preset

        encoder = model if isinstance(model, BertEncoder) else model.encoder
        save_keras_hub_preset(encoder, loaded.vocab.tokens, loaded.do_lower_case, path)
    else:
        if to_format == "google":
            google.save_google_checkpoint(model, path)
        else:
            tmp = os.path.join(path, ".tmp." + KERAS_NAME)
            model.save(tmp)
            os.replace(tmp, os.path.join(path, KERAS_NAME))
        _write_text_files(path, loaded)
    return path


def _from_sentence_transformers(path: str, task: str | None, do_lower_case: bool | None,
                                strict: bool) -> Pretrained:
    from bert_tf.checkpoints.sentence_transformers import (build_sentence_embedder,
                                                           read_sentence_transformer)

    if task not in (None, "embedding"):
        raise PretrainedError(f"{path} is a sentence-transformers model: task must be "
                              f"'embedding', not {task!r}")
    directory = read_sentence_transformer(path)
    model = build_sentence_embedder(directory, strict=strict, do_lower_case=do_lower_case)
    return Pretrained(model, directory.transformer.config, model.preprocessor.vocab,
                      model.preprocessor.do_lower_case, "embedding", "sentence_transformers",
                      path, None, directory.max_seq_length)
