"""Text processing: vocab.txt, Google's tokenization rules in the graph, packing, preprocessing.

- `BertTokenizer`: in-graph WordPiece tokenizer matching Google's `FullTokenizer`.
- `pack_inputs` / `pack_inputs_tflite`: `[CLS] A [SEP] (B [SEP])` with Google's truncation.
- `BertPreprocessor`: the Keras layer combining both (strings → encoder inputs).
- `FullTokenizer`, `pack_tokens`: the pure-Python reference implementations of the same rules.
"""
from bert_tf.text.packer import pack_inputs, pack_inputs_tflite
from bert_tf.text.packing import pack_tokens, truncate_seq_pair
from bert_tf.text.preprocessor import BertPreprocessor
from bert_tf.text.python_tokenizer import FullTokenizer, basic_tokenize, wordpiece_tokenize
from bert_tf.text.tokenizer import BertTokenizer
from bert_tf.text.vocab import Vocab, VocabError, check_do_lower_case, load_vocab, looks_cased

__all__ = [
    "BertPreprocessor",
    "BertTokenizer",
    "FullTokenizer",
    "Vocab",
    "VocabError",
    "basic_tokenize",
    "check_do_lower_case",
    "load_vocab",
    "looks_cased",
    "pack_inputs",
    "pack_inputs_tflite",
    "pack_tokens",
    "truncate_seq_pair",
    "wordpiece_tokenize",
]
