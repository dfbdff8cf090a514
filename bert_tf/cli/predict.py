"""One-line predictions from the command line, one JSON line per input.

    python -m bert_tf.cli.predict --model=uncased_L-12_H-768_A-12 --task=fill-mask \
        --text="The capital of France is [MASK]."
    python -m bert_tf.cli.predict --model=out/mrpc --task=text-classification \
        --input_file=pairs.txt        # one text per line; "text_a ||| text_b" for a pair
    python -m bert_tf.cli.predict --model=out/wnut17 --task=ner --text="Jim lives in Paris."
    python -m bert_tf.cli.predict --model=out/squad --task=question-answering \
        --text="Where does Jim live? ||| Jim lives in Paris."

`--model` is anything `bert_tf.from_pretrained` reads. Each output line is
`{"text": ..., ["text_pair": ...,] "result": <the pipeline's result>}`; question answering's
`question ||| context` lines give `{"question": ..., "context": ..., "result": ...}`.
"""
from __future__ import annotations

import json
import sys

from absl import flags

from bert_tf.cli.common import run

PAIR_SEPARATOR = " ||| "
flags.DEFINE_string("model", None, "Model directory (any format from_pretrained reads).")
flags.DEFINE_string("task", None, "fill-mask, text-classification (sentiment-analysis), "
                    "embedding (sentence-embedding), token-classification (ner), "
                    "question-answering, or another registered pipeline.")
flags.DEFINE_multi_string("text", [], "A text to predict on (repeatable; 'a ||| b' for a pair, "
                          "'question ||| context' for question answering).")
flags.DEFINE_string("input_file", None, "A UTF-8 file with one text (or 'a ||| b' pair) per line.")
flags.DEFINE_integer("top_k", None, "fill-mask / text-classification: results per input.")
flags.DEFINE_integer("max_seq_length", None, "Tokens per input (default: the model's, or 128).")
flags.DEFINE_integer("batch_size", 32, "Inputs per model call.")
# Token classification and question answering (default: what the model's files record).
flags.DEFINE_integer("doc_stride", None, "ner / question-answering: window stride for long texts.")
flags.DEFINE_integer("max_query_length", None, "question-answering: question pieces kept.")
flags.DEFINE_integer("max_answer_length", None, "question-answering: longest answer in pieces.")
flags.DEFINE_bool("version_2_with_negative", None, "question-answering: a SQuAD 2.0 model (may "
                  "answer nothing).")
flags.DEFINE_float("null_score_diff_threshold", None, "question-answering (SQuAD 2.0): no answer "
                   "when null_score_diff exceeds it.")
_TASK_FLAGS = ("top_k", "doc_stride", "max_query_length", "max_answer_length",
               "version_2_with_negative", "null_score_diff_threshold")
flags.mark_flags_as_required(["model", "task"])
FLAGS = flags.FLAGS


def read_inputs(texts: list[str], input_file: str | None) -> list[str | tuple[str, str]]:
    """The --text values then the --input_file lines (blank lines skipped), pairs split."""
    from bert_tf.errors import InputError

    lines = list(texts)
    if input_file:
        try:
            with open(input_file, encoding="utf-8") as f:
                lines += [line.rstrip("\n") for line in f if line.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"--input_file {input_file}: {e}") from None
    if not lines:
        raise InputError("nothing to predict: give --text or --input_file")
    return [tuple(line.split(PAIR_SEPARATOR, 1)) if PAIR_SEPARATOR in line else line
            for line in lines]


def main(argv):
    del argv
    from bert_tf.pipelines import pipeline

    kwargs = {"batch_size": FLAGS.batch_size, "max_seq_length": FLAGS.max_seq_length}
    kwargs.update({name: FLAGS[name].value for name in _TASK_FLAGS
                   if FLAGS[name].value is not None})
    predict = pipeline(FLAGS.task, FLAGS.model, **kwargs)
    inputs = read_inputs(FLAGS.text, FLAGS.input_file)
    names = ("question", "context") if predict.model_task == "question_answering" else (
        "text", "text_pair")
    for item, result in zip(inputs, predict(inputs)):
        line = {names[0]: item} if isinstance(item, str) else dict(zip(names, item))
        line["result"] = result
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    run(main)
