"""Word ↔ WordPiece alignment and windows for token classification: first-piece labels,
doc-stride windows with max-context scoring (every word scored exactly once), merging back to
words, and Chinese with Google's genuine Chinese vocab."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bert_tf import BertTokenizer
from bert_tf.data.token_alignment import FEATURE_NAMES, create_features, word_pieces
from bert_tf.data.windows import doc_spans, max_context_span
from bert_tf.errors import InputError
from bert_tf.text.python_tokenizer import FullTokenizer
from bert_tf.text.vocab import Vocab, load_vocab
from shared_data import GOOGLE_CKPT_INDEX

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "un",
         "##aff", "##able", ",", ".", "u", "s", "paris", "new", "york", "is", "big", "café"]
CHINESE_VOCAB = GOOGLE_CKPT_INDEX / "chinese_L-12_H-768_A-12" / "vocab.txt"


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB, do_lower_case=True)


def _reference_pieces(vocab, words, do_lower_case=True):
    """Google's FullTokenizer on each word; [UNK] for a word with no pieces."""
    full = FullTokenizer(vocab if isinstance(vocab, Vocab) else Vocab(vocab), do_lower_case)
    return [full.convert_tokens_to_ids(full.tokenize(w) or ["[UNK]"]) for w in words]


def test_first_piece_carries_the_label(tokenizer):
    words = ["Unaffable", "U.S.", "cat", "\u200b", "Café"]
    features = create_features(tokenizer, [words], [[3, 1, 0, 2, 4]], max_seq_length=12,
                               doc_stride=4)
    assert len(features) == 1
    pieces = _reference_pieces(VOCAB, words)
    assert [len(p) for p in pieces] == [3, 4, 1, 1, 1]  # un ##aff ##able | u . s . | ... [UNK]
    ids = [2] + [i for p in pieces for i in p] + [3]
    a = features.arrays
    np.testing.assert_array_equal(a["input_word_ids"][0], ids + [0] * (12 - len(ids)))
    np.testing.assert_array_equal(a["input_mask"][0], [1] * 12)
    np.testing.assert_array_equal(a["input_type_ids"][0], [0] * 12)
    first = [1, 4, 8, 9, 10]  # positions of the words' first pieces
    expected_labels = np.zeros(12, np.int32)
    expected_labels[first] = [3, 1, 0, 2, 4]
    np.testing.assert_array_equal(a["label_ids"][0], expected_labels)
    np.testing.assert_array_equal(np.nonzero(a["label_weights"][0])[0], first)
    assert a["input_word_ids"][0][9] == tokenizer.unk_id  # the zero-width word is [UNK]
    [merged] = features.merge(a["label_ids"])
    np.testing.assert_array_equal(merged, [3, 1, 0, 2, 4])


def test_dataset_has_the_model_features(tokenizer):
    features = create_features(tokenizer, [["the", "cat"], ["on"]], None, 6, 2)
    spec = features.dataset().element_spec
    assert sorted(spec) == sorted(FEATURE_NAMES)
    assert spec["input_word_ids"].dtype == tf.int32 and spec["label_weights"].dtype == tf.float32
    assert spec["label_ids"].shape == [6]
    batch = next(iter(features.dataset().batch(2)))
    np.testing.assert_array_equal(batch["label_ids"], np.zeros([2, 6]))
    np.testing.assert_array_equal(batch["label_weights"].numpy().sum(axis=1), [2, 1])


@pytest.mark.parametrize("max_seq_length,doc_stride", [(6, 1), (7, 2), (8, 3), (10, 8), (40, 5)])
def test_long_sentences_are_windowed_and_every_word_is_scored_once(tokenizer, max_seq_length,
                                                                   doc_stride):
    rng = np.random.RandomState(max_seq_length)
    choices = ["the", "cat", "unaffable", "U.S.", "paris", "New", "York", "big", ","]
    sentences = [list(rng.choice(choices, size=n)) for n in (1, 9, 17, 30)]
    labels = [list(rng.randint(0, 5, size=len(s))) for s in sentences]
    features = create_features(tokenizer, sentences, labels, max_seq_length, doc_stride)
    a = features.arrays
    for i, words in enumerate(sentences):
        pieces = _reference_pieces(VOCAB, words)
        flat = [p for word in pieces for p in word]
        starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])
        spans = doc_spans(len(flat), max_seq_length - 2, doc_stride)
        rows = np.nonzero(features.sentence_index == i)[0]
        assert len(rows) == len(spans)
        for row, span in zip(rows, spans):
            window = flat[span.start:span.end]
            np.testing.assert_array_equal(a["input_word_ids"][row][:len(window) + 2],
                                          [2] + window + [3])
            assert a["input_mask"][row].sum() == len(window) + 2
        # Each word is scored in its max-context window, at its first piece, with its label.
        for w, start in enumerate(starts):
            best = max_context_span(spans, int(start))
            row, position = rows[best], start - spans[best].start + 1
            assert features.word_index[row, position] == w
            assert a["label_ids"][row, position] == labels[i][w]
        assert a["label_weights"][rows].sum() == len(words)
    merged = features.merge(a["label_ids"])
    assert [m.tolist() for m in merged] == [list(map(int, x)) for x in labels]
    # Per-position vectors merge too (e.g. probabilities).
    probs = np.random.RandomState(0).rand(len(features), max_seq_length, 3)
    merged = features.merge(probs)
    assert merged[3].shape == (30, 3)


def test_bad_arguments(tokenizer):
    with pytest.raises(InputError, match="max_seq_length must be at least 3"):
        create_features(tokenizer, [["the"]], None, 2, 1)
    with pytest.raises(InputError, match="doc_stride must be positive"):
        create_features(tokenizer, [["the"]], None, 8, 0)
    with pytest.raises(ValueError, match="sentence 0: 2 words but 1 labels"):
        create_features(tokenizer, [["the", "cat"]], [[0]], 8, 2)


@pytest.mark.skipif(not CHINESE_VOCAB.exists(), reason="../shared Chinese vocab not present")
def test_chinese_characters_are_words_with_the_genuine_vocab():
    vocab = load_vocab(CHINESE_VOCAB)
    tokenizer = BertTokenizer(vocab, do_lower_case=True)
    # A character-per-line Chinese NER sentence, plus a multi-character CoNLL token and Latin.
    words = list("我爱北京天安门") + ["上海", "BERT模型"]
    labels = [0, 0, 1, 2, 1, 2, 2, 1, 3]
    pieces = word_pieces(tokenizer, [words])[0]
    assert [p.tolist() for p in pieces] == _reference_pieces(vocab, words)
    assert [len(p) for p in pieces] == [1] * 7 + [2, 4]  # CJK characters are single pieces
    features = create_features(tokenizer, [words], [labels], max_seq_length=8, doc_stride=3)
    assert len(features) > 1
    [merged] = features.merge(features.arrays["label_ids"])
    assert merged.tolist() == labels
    assert features.arrays["label_weights"].sum() == len(words)


def test_conll_features_map_tags_to_label_ids_and_reject_unknown_tags(tokenizer, tmp_path):
    from bert_tf.data.conll import ConllError, read_conll
    from bert_tf.data.token_alignment import conll_features

    path = tmp_path / "dev.txt"
    path.write_text("Paris B-LOC\nis O\n\nNew B-LOC\nYork I-LOC\n", encoding="utf-8")
    labels = ["O", "B-LOC", "I-LOC"]
    features = conll_features(tokenizer, read_conll(path), labels, 8, 3)
    assert [m.tolist() for m in features.merge(features.arrays["label_ids"])] == [[1, 0], [1, 2]]
    with pytest.raises(ConllError, match=f"{path}:1: tag 'B-LOC' is not one of"):
        conll_features(tokenizer, read_conll(path), ["O", "B-PER", "I-PER"], 8, 3)


UNCASED_VOCAB = GOOGLE_CKPT_INDEX / "uncased_L-4_H-256_A-4" / "vocab.txt"
WNUT17_DEV = GOOGLE_CKPT_INDEX.parent / "ner" / "wnut17" / "emerging.dev.conll"


@pytest.mark.skipif(not (UNCASED_VOCAB.exists() and WNUT17_DEV.exists()),
                    reason="../shared WNUT-17 / uncased vocab not present")
def test_real_wnut17_dev_every_word_scored_once_with_googles_pieces():
    from bert_tf.data.conll import labels_from, read_conll
    from bert_tf.data.token_alignment import conll_features

    vocab = load_vocab(UNCASED_VOCAB)
    tokenizer = BertTokenizer(vocab, do_lower_case=True)
    conll = read_conll(WNUT17_DEV)
    labels = labels_from(conll)
    features = conll_features(tokenizer, conll, labels, max_seq_length=32, doc_stride=16)
    assert features.arrays["label_weights"].sum() == conll.num_tokens == 15733
    assert len(features) > len(conll.sentences)  # some sentences need several windows
    merged = features.merge(features.arrays["label_ids"])
    assert [[labels[i] for i in m] for m in merged] == [list(s.tags) for s in conll.sentences]
    # The pieces are Google's FullTokenizer's, word by word (first 200 sentences).
    sentences = [s.words for s in conll.sentences[:200]]
    got = word_pieces(tokenizer, sentences)
    for words, pieces in zip(sentences, got):
        assert [p.tolist() for p in pieces] == _reference_pieces(vocab, words)
