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

Tasks are registered in `PIPELINES` (`register_pipeline` adds one, e.g. token classification or
question answering): fill-mask, text-classification (single texts and pairs), embedding.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import tensorflow as tf

from bert_tf.errors import InputError
from bert_tf.pretrained import Pretrained, from_pretrained
from bert_tf.serving.modules import (MASK_TOKEN, ClassifierServingModule, EmbeddingServingModule,
                                     MaskedLMServingModule)

PIPELINES: dict[str, type["Pipeline"]] = {}
ALIASES = {"sentiment-analysis": "text-classification", "sentence-embedding": "embedding",
           "feature-extraction": "embedding"}


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

    def __init__(self, model: str | os.PathLike | Pretrained, batch_size: int = 32,
                 max_seq_length: int | None = None):
        self.pretrained = model if isinstance(model, Pretrained) else from_pretrained(
            model, task=self.model_task)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise PipelineError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.module = self._module(self.pretrained.preprocessor(max_seq_length))

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
        items = [inputs] if single else list(inputs)
        if text_pair is not None:
            seconds = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if len(seconds) != len(items):
                raise PipelineError(f"{len(items)} texts but {len(seconds)} text_pair entries")
            items = list(zip(items, seconds))
        texts, pairs = _split_pairs(items)
        results = []
        for start, end in _batches(pairs, self.batch_size):
            batch_pairs = None if pairs[start] is None else pairs[start:end]
            results += self._results(texts[start:end], batch_pairs,
                                     self._run(texts[start:end], batch_pairs))
        return results[0] if single else results


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
    (`top_k=None`: all classes); a regression model gives {score}."""

    model_task = "classifier"

    def __init__(self, model, top_k: int | None = 1, **kwargs):
        self.top_k = top_k
        super().__init__(model, **kwargs)

    def _module(self, preprocessor):
        classifier = self.pretrained.model
        labels = self.pretrained.labels
        if not labels and classifier.num_classes > 1:
            labels = [f"LABEL_{i}" for i in range(classifier.num_classes)]
        return ClassifierServingModule(classifier, preprocessor, labels=labels)

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


def pipeline(task: str, model: str | os.PathLike | Pretrained, **kwargs) -> Pipeline:
    """A Pipeline for `task` (see PIPELINES; HF's "sentiment-analysis" and
    "feature-extraction" are aliases) on `model` (anything from_pretrained reads). `kwargs`:
    batch_size, max_seq_length, and the task's own (top_k)."""
    name = ALIASES.get(task, task)
    if name not in PIPELINES:
        raise PipelineError(f"unknown pipeline task {task!r}: expected one of "
                            f"{', '.join(sorted(PIPELINES) + sorted(ALIASES))}")
    return PIPELINES[name](model, **kwargs)
