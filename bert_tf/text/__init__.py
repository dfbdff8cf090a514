"""Text processing: vocabularies and tokenizers."""

from bert_tf.text.packing import pack_tokens, truncate_seq_pair
from bert_tf.text.python_tokenizer import FullTokenizer, basic_tokenize, wordpiece_tokenize
from bert_tf.text.vocab import (
    Vocab,
    VocabError,
    check_do_lower_case,
    load_vocab,
    looks_cased,
)

__all__ = [
    "FullTokenizer",
    "Vocab",
    "VocabError",
    "basic_tokenize",
    "check_do_lower_case",
    "load_vocab",
    "looks_cased",
    "pack_tokens",
    "truncate_seq_pair",
    "wordpiece_tokenize",
]
