"""Tokenization + packing throughput: our in-graph BertPreprocessor vs peers, in one run.

    .venv/bin/python bench/tokenization.py [--lines=20000] [--repeats=3] [--vocab_file=...]
        [--json_output=PATH]

Peers: the `tokenizers` package (Rust) configured as Google's BERT pipeline, and a pure-Python
implementation of Google's rules (bert_tf.text.FullTokenizer + pack_tokens). All three produce
`input_word_ids` [N, seq_length]; the table reports sentences/s (min and median over repeats),
the ratio to ours, and how many rows equal ours exactly. The corpus is the docstrings of Python's
standard library (offline everywhere); without --vocab_file a WordPiece vocab is learned from it.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("lines", 20000, "Number of corpus lines to tokenize.")
flags.DEFINE_integer("repeats", 3, "Timed repeats per implementation.")
flags.DEFINE_integer("seq_length", 128, "Packed sequence length.")
flags.DEFINE_integer("batch_size", 256, "Batch size for the in-graph preprocessor.")
flags.DEFINE_string("vocab_file", None, "vocab.txt to use (default: learn 8000 tokens).")
flags.DEFINE_bool("do_lower_case", True, "Uncased tokenization.")
flags.DEFINE_string("json_output", None, "Also write the results as JSON (bench/report.py's "
                    "format) to this path.")
FLAGS = flags.FLAGS


def _timed(fn, repeats: int) -> tuple[list[float], object]:
    result = fn()  # warm-up (graph tracing, thread pools)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def main(argv) -> None:
    del argv
    import numpy as np
    import tensorflow as tf
    import tokenizers
    from tokenizers import models, normalizers, pre_tokenizers, processors

    from bert_tf.text import BertPreprocessor, FullTokenizer, Vocab, load_vocab, pack_tokens
    from bert_tf.text.build_vocab import count_words, learn_vocab
    from corpus import stdlib_docstring_lines

    lines = stdlib_docstring_lines()
    lines = (lines * (FLAGS.lines // max(len(lines), 1) + 1))[:FLAGS.lines]
    lower, seq_length = FLAGS.do_lower_case, FLAGS.seq_length
    if FLAGS.vocab_file:
        vocab = load_vocab(FLAGS.vocab_file)
    else:
        vocab = Vocab(learn_vocab(count_words(lines, lower), vocab_size=8000))
    print(f"corpus: {len(lines)} lines of stdlib docstrings; vocab: {len(vocab)} tokens; "
          f"seq_length {seq_length}; {os.cpu_count()} CPUs")

    # ours ---------------------------------------------------------------------------------
    pre = BertPreprocessor(vocab, do_lower_case=lower, seq_length=seq_length)
    packed_fn = tf.function(lambda t: pre(t)["input_word_ids"],
                            input_signature=[tf.TensorSpec([None], tf.string)])
    batches = [tf.constant(lines[i:i + FLAGS.batch_size])
               for i in range(0, len(lines), FLAGS.batch_size)]

    def ours():
        return np.concatenate([packed_fn(b).numpy() for b in batches])

    # tokenizers (Rust) --------------------------------------------------------------------
    hf = tokenizers.Tokenizer(models.WordPiece(vocab=dict(vocab.token_to_id), unk_token="[UNK]",
                                               max_input_chars_per_word=200))
    hf.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                               strip_accents=lower, lowercase=lower)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    hf.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.cls_id), ("[SEP]", vocab.sep_id)])
    hf.enable_truncation(seq_length)
    hf.enable_padding(length=seq_length, pad_id=vocab.pad_id)

    def rust():
        return np.array([e.ids for e in hf.encode_batch(lines)], np.int32)

    # pure Python --------------------------------------------------------------------------
    full = FullTokenizer(vocab, do_lower_case=lower)

    def python():
        rows = []
        for line in lines:
            tokens, _ = pack_tokens(full.tokenize(line), None, seq_length)
            ids = full.convert_tokens_to_ids(tokens)
            rows.append(ids + [vocab.pad_id] * (seq_length - len(ids)))
        return np.array(rows, np.int32)

    results = {}
    for name, fn in (("bert_tf BertPreprocessor (in-graph, tf-text)", ours),
                     ("tokenizers (Rust), Google's BERT settings", rust),
                     ("pure Python, Google's rules", python)):
        times, ids = _timed(fn, FLAGS.repeats)
        results[name] = (times, ids)

    ours_times, ours_ids = next(iter(results.values()))
    ours_rate = len(lines) / min(ours_times)
    print()
    print("| implementation | sentences/s (best) | sentences/s (median) | ours ÷ this | rows equal to ours |")
    print("|---|---:|---:|---:|---:|")
    for name, (times, ids) in results.items():
        best, median = len(lines) / min(times), len(lines) / statistics.median(times)
        equal = float(np.mean(np.all(ids == ours_ids, axis=1)))
        print(f"| {name} | {best:,.0f} | {median:,.0f} | {ours_rate / best:.2f}× | "
              f"{equal:.2%} |")
    if FLAGS.json_output:
        from report import result_row, write_results

        rows = []
        for i, (name, (times, ids)) in enumerate(results.items()):
            rows.append(result_row(name, "throughput", "sentences/s",
                                   [len(lines) / t for t in times], better="higher", ours=i == 0))
        for i, (name, (times, ids)) in enumerate(results.items()):
            rows.append(result_row(name, "rows equal to ours", "%",
                                   [100 * float(np.mean(np.all(ids == ours_ids, axis=1)))],
                                   better=None, ours=i == 0))
        write_results(FLAGS.json_output, "tokenization", rows,
                      description=f"{len(lines):,} stdlib docstring lines → packed ids at "
                                  f"seq_length {seq_length}; vocab {len(vocab):,} tokens "
                                  f"({FLAGS.vocab_file or 'learned from the corpus'}); "
                                  f"{FLAGS.repeats} timed repeats after one warm-up call")


if __name__ == "__main__":
    app.run(main)
