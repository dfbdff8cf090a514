"""One-line predictions, shaped like Hugging Face pipelines' results.

    >>> import bert_tf
    >>> fill = bert_tf.pipeline("fill-mask", "uncased_L-12_H-768_A-12")  # doctest: +SKIP
    >>> fill("The capital of France is [MASK].")[0]  # doctest: +SKIP
    {'score': 0.41, 'token': 3000, 'token_str': 'paris',
     'sequence': 'The capital of France is paris.'}

`model` is anything `bert_tf.from_pretrained` reads (Google checkpoint, fine-tuned output_dir,
Hugging Face or sentence-transformers directory, keras-hub preset, .keras, exported SavedModel)
or a `Pretrained`. Inputs are batched (`batch_size`) through the same in-graph tokenization and
serving modules as the SavedModel export, so a pipeline and the served model agree.

Named entities (a run_ner.py output_dir, a HF `BertForTokenClassification` directory, an
exported token_classifier) and answers (run_squad.py, HF `BertForQuestionAnswering`, an exported
question_answering model):

    >>> ner = bert_tf.pipeline("ner", "out/wnut17")  # doctest: +SKIP
    >>> ner("Jim Henson lived in New York.")  # doctest: +SKIP
    [{'entity_group': 'person', 'score': 0.97, 'word': 'Jim Henson', 'start': 0, 'end': 10},
     {'entity_group': 'location', 'score': 0.93, 'word': 'New York', 'start': 20, 'end': 28}]
    >>> qa = bert_tf.pipeline("question-answering", "out/squad")  # doctest: +SKIP
    >>> qa(question="Where did he live?", context="Jim Henson lived in New York.")  # doctest: +SKIP
    {'score': 9.8, 'start': 20, 'end': 28, 'answer': 'New York'}

Tasks are registered in `PIPELINES` (`register_pipeline` adds one): fill-mask,
text-classification (single texts and pairs), embedding, token-classification (alias ner),
question-answering.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.data.conll import check_labels
from bert_tf.errors import InputError
from bert_tf.pretrained import Pretrained, from_pretrained
from bert_tf.serving.export import ExportSpec
from bert_tf.serving.modules import (MASK_TOKEN, ClassifierServingModule, EmbeddingServingModule,
                                     MaskedLMServingModule)

PIPELINES: dict[str, type["Pipeline"]] = {}
ALIASES = {"sentiment-analysis": "text-classification", "sentence-embedding": "embedding",
           "feature-extraction": "embedding", "ner": "token-classification"}


class PipelineError(InputError):
    """An input a pipeline cannot predict on (e.g. fill-mask text without [MASK])."""


def register_pipeline(task: str) -> Callable[[type["Pipeline"]], type["Pipeline"]]:
    """Class decorator: makes `pipeline(task, ...)` build this Pipeline subclass."""
    def register(cls):
        PIPELINES[task] = cls
        return cls
    return register


class Pipeline:
    """Base: loads the model for `model_task`, builds the serving module, batches inputs.

    Subclasses set `model_task` (a from_pretrained task), `_module` and `_results`.
    """

    model_task: str = ""
    takes_pairs: bool = True  # whether inputs may be (text, text_pair) pairs
    # max_seq_length when neither the caller nor the model's files give one (None: 128).
    default_max_seq_length: int | None = None

    def __init__(self, model: str | os.PathLike | Pretrained, batch_size: int = 32,
                 max_seq_length: int | None = None):
        self.pretrained = model if isinstance(model, Pretrained) else from_pretrained(
            model, task=self.model_task)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PipelineError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        if max_seq_length is None and self.pretrained.max_seq_length is None \
                and self.default_max_seq_length:
            max_seq_length = min(self.default_max_seq_length,
                                 self.pretrained.config.max_position_embeddings)
        self.module = self._module(self.pretrained.preprocessor(max_seq_length))

    def _export_module(self, preprocessor, **settings):
        """The task's serving module exactly as the SavedModel export builds it
        (`ExportSpec.serving_module`), with the settings the model's files record
        (`Pretrained.settings`) unless given here (None: not given)."""
        loaded = self.pretrained
        if loaded.task != self.model_task:
            raise PipelineError(f"{loaded.path or 'the model'} is a {loaded.task} model; this "
                                f"pipeline needs a {self.model_task} model")
        given = {k: v for k, v in settings.items() if v is not None}
        spec = ExportSpec(self.model_task, loaded.config, loaded.vocab,
                          do_lower_case=loaded.do_lower_case,
                          max_seq_length=preprocessor.seq_length, labels=loaded.labels or [],
                          **{**loaded.settings, **given})
        return spec.serving_module(loaded.model, preprocessor)

    def _module(self, preprocessor):
        raise NotImplementedError

    def _results(self, texts: list[str], pairs: list[str] | None, out: dict[str, np.ndarray]
                 ) -> list[Any]:
        raise NotImplementedError

    def _run(self, texts: list[str], pairs: list[str] | None) -> dict[str, np.ndarray]:
        if pairs is None:
            out = self.module.serve_text(tf.constant(texts, tf.string))
        else:
            out = self.module.serve_text_pair(tf.constant(texts, tf.string),
                                              tf.constant(pairs, tf.string))
        return {k: v.numpy() for k, v in out.items()}

    def __call__(self, inputs, text_pair: str | Sequence[str] | None = None) -> Any:
        """Predicts one input (a str, or a (text, text_pair) pair) or a list of them; returns
        one result or a list of results."""
        single = isinstance(inputs, (str, dict)) or (isinstance(inputs, tuple)
                                                     and len(inputs) == 2
                                                     and all(isinstance(x, str) for x in inputs))
        items = [inputs] if single else _input_list(inputs, "a string or a (text, text_pair) pair")
        if text_pair is not None:
            seconds = [text_pair] if isinstance(text_pair, str) else _input_list(
                text_pair, "a text_pair string")
            if len(seconds) != len(items):
                raise PipelineError(f"{len(items)} texts but {len(seconds)} text_pair entries")
            items = list(zip(items, seconds))
        texts, pairs = _split_pairs(items)
        if not self.takes_pairs and any(p is not None for p in pairs):
            i = next(i for i, p in enumerate(pairs) if p is not None)
            raise PipelineError(f"input {i}: {type(self).__name__} takes single texts, not "
                                f"(text, text_pair) pairs")
        results = []
        for start, end in _batches(pairs, self.batch_size):
            batch_pairs = None if pairs[start] is None else pairs[start:end]
            results += self._results(texts[start:end], batch_pairs,
                                     self._run(texts[start:end], batch_pairs))
        return results[0] if single else results


def _input_list(inputs, what: str) -> list:
    """`inputs` as a list (any iterable but a str, bytes or dict); PipelineError otherwise."""
    if not isinstance(inputs, (str, bytes, dict)):
        try:
            return list(inputs)
        except TypeError:
            pass
    raise PipelineError(f"expected {what} or a list of them, got {inputs!r}")


def _batches(pairs: list[str | None], batch_size: int):
    """(start, end) of runs of at most `batch_size` inputs that are all single texts or all
    pairs (a model call takes one kind), in input order."""
    start = 0
    while start < len(pairs):
        end = start + 1
        while (end < len(pairs) and end - start < batch_size
               and (pairs[end] is None) == (pairs[start] is None)):
            end += 1
        yield start, end
        start = end


def _split_pairs(items: list) -> tuple[list[str], list[str | None]]:
    """Texts and second texts (None for a single text); HF's {"text", "text_pair"} dicts too."""
    texts, pairs = [], []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = (item.get("text"), item.get("text_pair"))
        if isinstance(item, str):
            item = (item, None)
        if not (isinstance(item, (tuple, list)) and len(item) == 2
                and isinstance(item[0], str) and isinstance(item[1], (str, type(None)))):
            raise PipelineError(f"input {i}: expected a string or a (text, text_pair) pair, got "
                                f"{item!r}")
        texts.append(item[0])
        pairs.append(item[1])
    return texts, pairs


@register_pipeline("fill-mask")
class FillMaskPipeline(Pipeline):
    """Top-k tokens for each literal `[MASK]`: per text a list of
    {score, token, token_str, sequence} (a list of such lists when the text has several masks,
    as HF's); `sequence` is the text with that mask filled."""

    model_task = "masked_lm"

    def __init__(self, model, top_k: int = 5, **kwargs):
        self.top_k = top_k
        super().__init__(model, **kwargs)

    def _module(self, preprocessor):
        return MaskedLMServingModule(self.pretrained.model, preprocessor, top_k=self.top_k)

    def _results(self, texts, pairs, out):
        results = []
        for i, text in enumerate(texts):
            masks = text.count(MASK_TOKEN) + (pairs[i].count(MASK_TOKEN) if pairs else 0)
            if masks == 0:
                raise PipelineError(f"fill-mask: text {text!r} has no {MASK_TOKEN}")
            kept = int(np.sum(out["masked_lm_positions"][i] >= 0))
            if kept < masks:
                raise PipelineError(f"fill-mask: {masks - kept} {MASK_TOKEN} of text {text!r} "
                                    f"fall beyond max_seq_length (truncated)")
            per_mask = [[{"score": float(out["top_k_scores"][i, m, k]),
                          "token": int(out["top_k_ids"][i, m, k]),
                          "token_str": out["top_k_tokens"][i, m, k].decode("utf-8"),
                          "sequence": _fill(text, m, out["top_k_tokens"][i, m, k]
                                            .decode("utf-8"))}
                         for k in range(out["top_k_ids"].shape[-1])] for m in range(masks)]
            results.append(per_mask[0] if masks == 1 else per_mask)
        return results


def _fill(text: str, index: int, token: str) -> str:
    """`text` with its `index`-th [MASK] replaced by `token` ("##" pieces join the word before)."""
    parts = text.split(MASK_TOKEN)
    if index >= len(parts) - 1:  # a mask of the pair's second text: keep the first as is
        return text
    left = parts[index]
    if token.startswith("##"):
        token, left = token[2:], left.rstrip()
    return MASK_TOKEN.join(parts[:index] + [left + token + parts[index + 1]] + parts[index + 2:])


@register_pipeline("text-classification")
class TextClassificationPipeline(Pipeline):
    """Per text (or pair): {label, score} of the best class, or the `top_k` best as a list
    (`top_k=None`: all classes); a regression model gives {score}. A multi-label model
    (run_classifier.py --multi_label) scores each label by its sigmoid probability, as HF's
    pipeline does for such models (`top_k=None`: every label's)."""

    model_task = "classifier"

    def __init__(self, model, top_k: int | None = 1, **kwargs):
        self.top_k = top_k
        super().__init__(model, **kwargs)

    def _module(self, preprocessor):
        classifier = self.pretrained.model
        labels = self.pretrained.labels
        if not labels and classifier.num_classes > 1:
            labels = [f"LABEL_{i}" for i in range(classifier.num_classes)]
        return ClassifierServingModule(classifier, preprocessor, labels=labels,
                                       **self.pretrained.settings)

    def _results(self, texts, pairs, out):
        if "score" in out:
            return [{"score": float(s)} for s in out["score"]]
        results = []
        labels = self.module.labels
        for row in out["probabilities"]:
            order = np.argsort(-row, kind="stable")[:self.top_k or len(row)]
            ranked = [{"label": labels[j], "score": float(row[j])} for j in order]
            results.append(ranked[0] if self.top_k == 1 else ranked)
        return results


@register_pipeline("embedding")
class EmbeddingPipeline(Pipeline):
    """Per text, its sentence embedding as a list of floats (a sentence-transformers model)."""

    model_task = "embedding"

    def _module(self, preprocessor):
        return EmbeddingServingModule(self.pretrained.model, preprocessor)

    def _results(self, texts, pairs, out):
        return [row.tolist() for row in out["embedding"]]


@register_pipeline("token-classification")
class TokenClassificationPipeline(Pipeline):
    """Per text, its entities as HF's token-classification pipeline gives them with
    `aggregation_strategy="first"`: a list of {entity_group, score, word, start, end}, in text
    order ([] when there is none). `start`/`end` are Python str offsets (code points) and
    `word` is `text[start:end]`; a word's tag is the argmax at its first piece, an entity's score
    the mean over its words of that tag's probability, entities follow conlleval's IOB2 rules.
    Texts longer than `max_seq_length` are read in doc-stride windows (`doc_stride`, default the
    model's export's, else half a window). The outputs are `TokenClassifierServingModule`'s,
    the exported SavedModel's."""

    model_task = "token_classifier"
    takes_pairs = False

    def __init__(self, model, doc_stride: int | None = None,
                 aggregation_strategy: str = "first", **kwargs):
        if aggregation_strategy != "first":
            raise PipelineError(f"aggregation_strategy must be 'first' (a word's tag is its "
                                f"first piece's, as in training), got {aggregation_strategy!r}")
        self.doc_stride = doc_stride
        super().__init__(model, **kwargs)

    def _module(self, preprocessor):
        if not self.pretrained.labels:
            raise PipelineError(f"{self.pretrained.path}: a token classifier needs its IOB2 "
                                f"labels (labels.txt beside the checkpoint, or config.json "
                                f"id2label)")
        check_labels(self.pretrained.labels, f"{self.pretrained.path}: the model's labels")
        return self._export_module(preprocessor, doc_stride=self.doc_stride)

    def _results(self, texts, pairs, out):
        return [[{"entity_group": out["entity_type"][i, j].decode("utf-8"),
                  "score": float(out["score"][i, j]),
                  "word": out["entity_text"][i, j].decode("utf-8"),
                  "start": int(out["start"][i, j]), "end": int(out["end"][i, j])}
                 for j in range(out["num_entities"][i])] for i in range(len(texts))]


@register_pipeline("question-answering")
class QuestionAnsweringPipeline(Pipeline):
    """The answer to a question in a context, as HF's question-answering pipeline gives it:
    {score, start, end, answer} with `context[start:end] == answer` (Python str offsets).

    Call `qa(question=..., context=...)` (str or lists; one str is paired with every entry of
    the other list), `qa({"question": ..., "context": ...})`, `qa((question, context))`, or a
    list of dicts / pairs; one input gives one result, a list a list. The answer is Google's
    run_squad one (`QuestionAnsweringServingModule`, the exported SavedModel's outputs): the best
    valid span over all doc-stride windows; `score` is its start_logit + end_logit (not a
    probability). A SQuAD 2.0 model (`version_2_with_negative`, read from an export or a
    run_squad output_dir's run_info.json; give it for a HF model) answers "" with start = end =
    -1 when null_score_diff > `null_score_diff_threshold`, and its results also carry
    `null_score_diff` (Google's null_odds.json value). Only the best answer is computed (no
    top_k). Settings default to what the model's files record, else Google's run_squad
    defaults (max_seq_length 384 or max_position_embeddings, doc_stride 128, max_query_length
    64, max_answer_length 30).
    """

    model_task = "question_answering"
    default_max_seq_length = 384  # run_squad's

    def __init__(self, model, doc_stride: int | None = None, max_query_length: int | None = None,
                 max_answer_length: int | None = None,
                 version_2_with_negative: bool | None = None,
                 null_score_diff_threshold: float | None = None, **kwargs):
        self.settings = {"doc_stride": doc_stride, "max_query_length": max_query_length,
                         "max_answer_length": max_answer_length,
                         "version_2_with_negative": version_2_with_negative,
                         "null_score_diff_threshold": null_score_diff_threshold}
        super().__init__(model, **kwargs)

    def _module(self, preprocessor):
        return self._export_module(preprocessor, **self.settings)

    def __call__(self, inputs=None, *, question=None, context=None) -> Any:
        """Answers one (question, context) input or a list of them (see the class docstring)."""
        items, single = _question_context_pairs(inputs, question, context)
        results = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start:start + self.batch_size]
            out = self.module.serve(tf.constant([q for q, _ in batch], tf.string),
                                    tf.constant([c for _, c in batch], tf.string))
            out = {k: v.numpy() for k, v in out.items()}
            for i in range(len(batch)):
                result = {"score": float(out["score"][i]), "start": int(out["start"][i]),
                          "end": int(out["end"][i]), "answer": out["answer"][i].decode("utf-8")}
                if "null_score_diff" in out:
                    result["null_score_diff"] = float(out["null_score_diff"][i])
                results.append(result)
        return results[0] if single else results


def _question_context_pairs(inputs, question, context) -> tuple[list[tuple[str, str]], bool]:
    """(question, context) pairs and whether one input was given, from the ways HF's
    question-answering pipeline takes them; PipelineError naming the input otherwise."""
    if inputs is not None and (question is not None or context is not None):
        raise PipelineError("give the inputs either positionally or as question=/context=, "
                            "not both")
    if inputs is None:
        if question is None or context is None:
            raise PipelineError("question-answering needs question= and context= (or "
                                "{'question': ..., 'context': ...} inputs)")
        single = isinstance(question, str) and isinstance(context, str)
        questions = [question] if isinstance(question, str) else _input_list(
            question, "a question string")
        contexts = [context] if isinstance(context, str) else _input_list(
            context, "a context string")
        if len(questions) == 1 and len(contexts) > 1 and isinstance(question, str):
            questions = questions * len(contexts)
        if len(contexts) == 1 and len(questions) > 1 and isinstance(context, str):
            contexts = contexts * len(questions)
        if len(questions) != len(contexts):
            raise PipelineError(f"{len(questions)} questions but {len(contexts)} contexts")
        items = list(zip(questions, contexts))
    else:
        single = isinstance(inputs, dict) or (isinstance(inputs, tuple) and len(inputs) == 2
                                              and all(isinstance(x, str) for x in inputs))
        items = [inputs] if single else _input_list(
            inputs, "a {'question', 'context'} dict or a (question, context) pair")
    pairs = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            item = (item.get("question"), item.get("context"))
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise PipelineError(f"input {i}: expected a {{'question': str, 'context': str}} "
                                f"dict or a (question, context) pair, got {item!r}")
        for name, value in zip(("question", "context"), item):
            if not isinstance(value, str):
                raise PipelineError(f"input {i}: {name} must be a string, got {value!r}")
            if not value.strip():
                raise PipelineError(f"input {i}: {name} is empty")
        pairs.append(tuple(item))
    return pairs, single


def pipeline(task: str, model: str | os.PathLike | Pretrained, **kwargs) -> Pipeline:
    """A Pipeline for `task` (see PIPELINES; HF's "sentiment-analysis", "feature-extraction"
    and "ner" are aliases) on `model` (anything from_pretrained reads). `kwargs`: batch_size,
    max_seq_length, and the task's own (top_k; doc_stride; the SQuAD settings)."""
    name = ALIASES.get(task, task)
    if name not in PIPELINES:
        raise PipelineError(f"unknown pipeline task {task!r}: expected one of "
                            f"{', '.join(sorted(PIPELINES) + sorted(ALIASES))}")
    accepted = _keyword_arguments(PIPELINES[name])
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise PipelineError(f"pipeline {name!r} takes no argument {', '.join(unknown)} (it "
                            f"takes: {', '.join(accepted)})")
    return PIPELINES[name](model, **kwargs)


def _keyword_arguments(cls: type[Pipeline]) -> list[str]:
    """The keyword arguments a Pipeline class takes: its __init__'s and its bases'."""
    names = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and issubclass(klass, Pipeline):
            names += [name for name, p in inspect.signature(klass.__init__).parameters.items()
                      if name not in ("self", "model", *names)
                      and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    return names
