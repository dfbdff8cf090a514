"""Tests for bert_tf.text.vocab and the pure-Python reference tokenizer."""

from __future__ import annotations

import logging
import os
import unicodedata

import pytest
from shared_data import GOOGLE_CKPT_INDEX

from bert_tf.text import (
    FullTokenizer,
    Vocab,
    VocabError,
    basic_tokenize,
    check_do_lower_case,
    load_vocab,
    looks_cased,
    wordpiece_tokenize,
)

GOOGLE_DIR = str(GOOGLE_CKPT_INDEX)
UNCASED_VOCAB = os.path.join(GOOGLE_DIR, "uncased_L-4_H-256_A-4", "vocab.txt")
CHINESE_VOCAB = os.path.join(GOOGLE_DIR, "chinese_L-12_H-768_A-12", "vocab.txt")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

needs_uncased = pytest.mark.skipif(not os.path.isfile(UNCASED_VOCAB), reason="Google uncased vocab not available")
needs_chinese = pytest.mark.skipif(not os.path.isfile(CHINESE_VOCAB), reason="Google Chinese vocab not available")


def write(tmp_path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return str(path)


def write_tokens(tmp_path, name: str, tokens: list[str]) -> str:
    return write(tmp_path, name, "\n".join(tokens) + "\n")


# --------------------------------------------------------------------------- vocab loading


def test_load_vocab_ids_are_line_indices_and_lines_are_stripped(tmp_path):
    path = write(tmp_path, "vocab.txt", "[PAD]\n  [UNK] \n[CLS]\t\r\n[SEP]\n[MASK]\nhello\n\nworld")
    vocab = load_vocab(path)
    assert vocab.tokens == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "", "world"]
    assert len(vocab) == 8
    assert vocab.path == path
    assert vocab.token_to_id["hello"] == 5
    assert vocab.token_to_id[""] == 6  # a blank line still consumes an id
    assert vocab.id("world") == 7
    assert vocab.token(7) == "world"
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)
    assert "hello" in vocab and "  [UNK] " not in vocab and "nope" not in vocab


def test_load_vocab_trailing_newline_and_crlf(tmp_path):
    a = load_vocab(write(tmp_path, "a.txt", "\n".join(SPECIALS) + "\nx\n"))
    b = load_vocab(write(tmp_path, "b.txt", "\r\n".join(SPECIALS) + "\r\nx\r\n"))
    c = load_vocab(write(tmp_path, "c.txt", "\n".join(SPECIALS) + "\nx"))
    assert a.tokens == b.tokens == c.tokens == SPECIALS + ["x"]


def test_load_vocab_duplicates_last_occurrence_wins(tmp_path):
    vocab = load_vocab(write_tokens(tmp_path, "v.txt", SPECIALS + ["dup", "x", "dup"]))
    assert len(vocab) == 8
    assert vocab.id("dup") == 7
    assert vocab.token(5) == "dup" and vocab.token(7) == "dup"


def test_check_unique_names_the_token_and_its_lines(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nthe\ncat\nthe\n##s\n##s\n")
    vocab = load_vocab(path, required_special_tokens=())
    with pytest.raises(VocabError, match=r"'the' on lines 3, 5 \(1 more repeated token"):
        vocab.check_unique()
    Vocab(["[PAD]", "the", "##the"]).check_unique()  # unique: no error


def test_vocab_lookup_errors(tmp_path):
    vocab = load_vocab(write_tokens(tmp_path, "v.txt", SPECIALS))
    with pytest.raises(KeyError):
        vocab.id("missing")
    with pytest.raises(IndexError):
        vocab.token(5)
    with pytest.raises(IndexError):
        vocab.token(-1)


def test_in_memory_vocab_missing_special_property():
    vocab = Vocab(["a", "[CLS]"])
    assert vocab.path is None
    assert vocab.cls_id == 1
    with pytest.raises(VocabError, match=r"\[SEP\]"):
        _ = vocab.sep_id


def test_vocab_error_is_value_error():
    assert issubclass(VocabError, ValueError)


def test_load_vocab_missing_file(tmp_path):
    path = str(tmp_path / "nope" / "vocab.txt")
    with pytest.raises(VocabError, match="not found") as e:
        load_vocab(path)
    assert path in str(e.value)


def test_load_vocab_directory(tmp_path):
    with pytest.raises(VocabError) as e:
        load_vocab(str(tmp_path))
    assert str(tmp_path) in str(e.value)


@pytest.mark.parametrize("content", ["", "\n", "  \n\t\n"])
def test_load_vocab_empty_file(tmp_path, content):
    path = write(tmp_path, "empty.txt", content)
    with pytest.raises(VocabError, match="empty") as e:
        load_vocab(path)
    assert path in str(e.value)


def test_load_vocab_invalid_utf8(tmp_path):
    data = "[PAD]\n[UNK]\n".encode() + b"ab\xffc\n" + "\n".join(SPECIALS[2:]).encode()
    path = write(tmp_path, "bad.txt", data)
    with pytest.raises(VocabError) as e:
        load_vocab(path)
    msg = str(e.value)
    assert path in msg
    assert "UTF-8" in msg
    assert "line 3" in msg
    assert "byte offset 14" in msg


def test_load_vocab_missing_special_tokens_lists_all(tmp_path):
    path = write_tokens(tmp_path, "v.txt", ["[PAD]", "[UNK]", "[SEP]", "hello"])
    with pytest.raises(VocabError) as e:
        load_vocab(path)
    msg = str(e.value)
    assert path in msg
    assert "[CLS]" in msg and "[MASK]" in msg
    assert "[PAD]" not in msg and "[SEP]" not in msg
    # Not required -> loads fine.
    assert load_vocab(path, required_special_tokens=()).tokens == ["[PAD]", "[UNK]", "[SEP]", "hello"]
    assert load_vocab(path, required_special_tokens=("[UNK]",)).unk_id == 1


# --------------------------------------------------------------------------- casing checks

UNCASED_WORDS = ["the", "of", "and", "hello", "world", "paris", "##ing", "##s", "é", "ß"] * 10
CASED_WORDS = ["the", "The", "of", "Paris", "London", "hello", "Hello", "world", "##ing", "##S"]


@pytest.fixture
def uncased_vocab(tmp_path) -> Vocab:
    tokens = SPECIALS + ["[unused0]", "[unused1]", "1", "!"] + UNCASED_WORDS
    return load_vocab(write_tokens(tmp_path, "uncased_vocab.txt", tokens))


@pytest.fixture
def cased_vocab(tmp_path) -> Vocab:
    return load_vocab(write_tokens(tmp_path, "cased_vocab.txt", SPECIALS + CASED_WORDS))


@pytest.fixture
def cjk_vocab(tmp_path) -> Vocab:
    return load_vocab(write_tokens(tmp_path, "cjk_vocab.txt", SPECIALS + ["中", "文", "##文", "。"]))


def test_looks_cased_small_vocabs(uncased_vocab, cased_vocab, cjk_vocab):
    assert looks_cased(uncased_vocab) is False
    assert looks_cased(cased_vocab) is True
    assert looks_cased(cjk_vocab) is False


def test_looks_cased_threshold():
    lower = [f"x{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(100)]
    assert len(set(lower)) == 100 and all(w.isalpha() for w in lower)
    assert looks_cased(Vocab(SPECIALS + lower + ["Abc"])) is False  # 1 of 101 < 5%
    assert looks_cased(Vocab(SPECIALS + lower + ["Ab", "Ac", "Ad", "Ae", "Af"])) is False  # 5/105 < 5%
    assert looks_cased(Vocab(SPECIALS + lower + ["Ab", "Ac", "Ad", "Ae", "Af", "Ag"])) is True  # 6/106
    # Specials, [unusedN], "##" pieces and non-alphabetic tokens are ignored.
    assert looks_cased(Vocab(SPECIALS + ["[UNUSED]", "##Ing", "A1", "abc"])) is False
    assert looks_cased(Vocab(["Abc"])) is True


def test_check_do_lower_case_vocab(uncased_vocab, cased_vocab, cjk_vocab, caplog):
    assert check_do_lower_case(uncased_vocab, True) is None
    assert check_do_lower_case(cased_vocab, False) is None
    with caplog.at_level(logging.WARNING, logger="bert_tf"):
        msg = check_do_lower_case(cased_vocab, True)
    assert msg is not None
    assert cased_vocab.path in msg and "do_lower_case" in msg and "cased" in msg
    assert any(r.name == "bert_tf" and r.levelno == logging.WARNING and r.getMessage() == msg for r in caplog.records)

    msg = check_do_lower_case(uncased_vocab, False)
    assert msg is not None and uncased_vocab.path in msg and "do_lower_case=False" in msg and "uncased" in msg

    # Without any cased-script tokens there is nothing to judge.
    assert check_do_lower_case(cjk_vocab, True) is None
    assert check_do_lower_case(cjk_vocab, False) is None


def test_check_do_lower_case_accepts_path(cased_vocab):
    assert check_do_lower_case(cased_vocab.path, True) is not None
    assert check_do_lower_case(cased_vocab.path, False) is None


@pytest.mark.parametrize(
    "ckpt, model_is_cased",
    [
        ("/models/uncased_L-12_H-768_A-12/bert_model.ckpt", False),
        ("gs://bucket/uncased_L-24_H-1024_A-16/bert_model.ckpt", False),
        ("/m/multilingual_L-12_H-768_A-12/bert_model.ckpt", False),
        ("/m/chinese_L-12_H-768_A-12/bert_model.ckpt", False),
        ("/m/uncased_L-4_H-256_A-4", False),
        ("/m/uncased_L-2_H-128_A-2/bert_model.ckpt", False),
        ("/m/uncased_L-10_H-512_A-8/bert_model.ckpt", False),
        ("C:\\models\\uncased_L-8_H-512_A-8\\bert_model.ckpt", False),
        ("/m/cased_L-12_H-768_A-12/bert_model.ckpt", True),
        ("/m/cased_L-24_H-1024_A-16/bert_model.ckpt", True),
        ("/m/multi_cased_L-12_H-768_A-12/bert_model.ckpt", True),
    ],
)
def test_check_do_lower_case_checkpoint_names(cjk_vocab, ckpt, model_is_cased):
    # cjk_vocab gives no vocab-based opinion, isolating the checkpoint rule.
    good = not model_is_cased
    assert check_do_lower_case(cjk_vocab, good, init_checkpoint=ckpt) is None
    msg = check_do_lower_case(cjk_vocab, not good, init_checkpoint=ckpt)
    assert msg is not None
    assert ckpt in msg and "do_lower_case" in msg


@pytest.mark.parametrize(
    "ckpt",
    [
        "/m/my_model/bert_model.ckpt",
        "/m/uncased_L-3_H-256_A-4/bert_model.ckpt",  # not a released small BERT shape
        "/m/xuncased_L-12_H-768_A-12/ckpt",
        "",
    ],
)
def test_check_do_lower_case_unknown_checkpoint(cjk_vocab, ckpt):
    assert check_do_lower_case(cjk_vocab, True, init_checkpoint=ckpt) is None
    assert check_do_lower_case(cjk_vocab, False, init_checkpoint=ckpt) is None


def test_check_do_lower_case_cased_name_not_matched_inside_uncased(cjk_vocab):
    ckpt = "/m/uncased_L-12_H-768_A-12/bert_model.ckpt"
    msg = check_do_lower_case(cjk_vocab, False, init_checkpoint=ckpt)
    assert msg is not None and "uncased" in msg


def test_check_do_lower_case_both_problems(cased_vocab):
    ckpt = "/m/cased_L-12_H-768_A-12/bert_model.ckpt"
    msg = check_do_lower_case(cased_vocab, True, init_checkpoint=ckpt)
    assert msg is not None and cased_vocab.path in msg and ckpt in msg


@needs_uncased
def test_genuine_uncased_vocab():
    vocab = load_vocab(UNCASED_VOCAB)
    assert len(vocab) == 30522
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 100, 101, 102, 103)
    assert vocab.token(1) == "[unused0]"
    assert looks_cased(vocab) is False
    assert check_do_lower_case(vocab, True) is None
    msg = check_do_lower_case(vocab, False)
    assert msg is not None and UNCASED_VOCAB in msg and "do_lower_case" in msg
    assert check_do_lower_case(vocab, True, init_checkpoint=os.path.dirname(UNCASED_VOCAB)) is None
    assert check_do_lower_case(vocab, False, init_checkpoint=os.path.dirname(UNCASED_VOCAB)) is not None


@needs_chinese
def test_genuine_chinese_vocab():
    vocab = load_vocab(CHINESE_VOCAB)
    assert len(vocab) == 21128
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 100, 101, 102, 103)
    assert looks_cased(vocab) is False
    assert check_do_lower_case(vocab, True) is None
    assert check_do_lower_case(vocab, False) is not None
    ckpt = os.path.join(os.path.dirname(CHINESE_VOCAB), "bert_model.ckpt")
    msg = check_do_lower_case(vocab, False, init_checkpoint=ckpt)
    assert msg is not None and "chinese_L-12_H-768_A-12" in msg


# --------------------------------------------------------------------------- tokenizer

TOY_TOKENS = SPECIALS + [
    "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",", ".", "!", "hello", "world",
    "##aff", "##able", "中", "文", "a", "ab", "##b", "##a", "cafe", "ok", "Hello",
]


@pytest.fixture
def toy_vocab(tmp_path) -> Vocab:
    return load_vocab(write_tokens(tmp_path, "toy_vocab.txt", TOY_TOKENS))


@pytest.fixture
def tok(toy_vocab) -> FullTokenizer:
    return FullTokenizer(toy_vocab, do_lower_case=True)


def test_lowercase_and_accent_stripping():
    assert basic_tokenize("Héllo", True) == ["hello"]
    assert basic_tokenize("Héllo", False) == ["Héllo"]
    assert basic_tokenize("ÀÉÎÕÜ ñ", True) == ["aeiou", "n"]
    assert basic_tokenize(" \tHeLLo!How  \n Are yoU?  ", True) == ["hello", "!", "how", "are", "you", "?"]
    assert basic_tokenize(" \tHeLLo!How  \n Are yoU?  ", False) == ["HeLLo", "!", "How", "Are", "yoU", "?"]


def test_punctuation_split():
    assert basic_tokenize("Hello, world!", True) == ["hello", ",", "world", "!"]
    assert basic_tokenize("...", True) == [".", ".", "."]
    # All non-alphanumeric printable ASCII counts as punctuation, symbols included.
    assert basic_tokenize("$5^`~a+b<c=d>e|f", False) == ["$", "5", "^", "`", "~", "a", "+", "b", "<", "c", "=", "d", ">", "e", "|", "f"]
    # Unicode P* splits; non-ASCII symbols (Sc, Sm, So) do not.
    assert basic_tokenize("a¿b«c»d—e", False) == ["a", "¿", "b", "«", "c", "»", "d", "—", "e"]
    assert basic_tokenize("a€b a±b", False) == ["a€b", "a±b"]
    assert basic_tokenize("don't", True) == ["don", "'", "t"]


def test_cjk_spacing():
    assert basic_tokenize("中文abc", True) == ["中", "文", "abc"]
    assert basic_tokenize("我爱北京", False) == ["我", "爱", "北", "京"]
    assert basic_tokenize("x\U00020000y\uf900z\u3400", False) == ["x", "\U00020000", "y", "\uf900", "z", "\u3400"]
    # Ideographic full stop is punctuation (Po), not an ideograph, but splits anyway.
    assert basic_tokenize("中。文", False) == ["中", "。", "文"]


def test_hangul_and_kana_not_split_per_char():
    assert basic_tokenize("안녕하세요 세계", False) == ["안녕하세요", "세계"]
    # Lower-casing NFD-decomposes Hangul syllables into jamo (still one token), as Google does.
    assert basic_tokenize("안녕하세요", True) == [unicodedata.normalize("NFD", "안녕하세요")]
    assert basic_tokenize("カタカナひらがな", False) == ["カタカナひらがな"]
    # Google quirk: NFD + dropping Mn removes the dakuten when lower-casing.
    assert basic_tokenize("が", True) == ["か"]


def test_control_characters_removed():
    assert basic_tokenize("a\x00b", True) == ["ab"]
    assert basic_tokenize("a\x07b\x1bc", True) == ["abc"]
    assert basic_tokenize("a\ufffdb", True) == ["ab"]
    assert basic_tokenize("a\x7fb\x85c", True) == ["abc"]  # DEL and NEL are Cc -> dropped
    assert basic_tokenize("a\ue000b", False) == ["ab"]  # private use (Co) -> dropped


def test_tab_newline_cr_are_whitespace():
    assert basic_tokenize("a\tb\nc\rd", True) == ["a", "b", "c", "d"]


def test_zero_width_and_format_characters_dropped():
    assert basic_tokenize("a\u200bb", True) == ["ab"]  # ZWSP, Cf
    assert basic_tokenize("a\u200db\ufeffc\u00adD", True) == ["abcd"]  # ZWJ, BOM, soft hyphen


def test_unicode_spaces():
    assert basic_tokenize("a\u00a0b", True) == ["a", "b"]  # NBSP (Zs)
    assert basic_tokenize("a\u3000b\u2009c\u1680d", True) == ["a", "b", "c", "d"]  # Zs
    # U+2028 (Zl) is neither whitespace nor control in Google's rules, but str.split() splits it.
    assert basic_tokenize("a\u2028b", True) == ["a", "b"]


def test_bytes_input_decoded_ignoring_invalid_utf8(tok):
    assert basic_tokenize(b"caf\xc3\xa9 \xff ok", True) == ["cafe", "ok"]
    assert tok.tokenize(b"caf\xc3\xa9 \xffok") == ["cafe", "ok"]


@pytest.mark.parametrize("text", ["", " ", "  \t\n\r ", "\u00a0\u3000", "\x00\u200b", b""])
def test_empty_and_whitespace_only(tok, text):
    assert basic_tokenize(text, True) == []
    assert tok.tokenize(text) == []


def test_wordpiece_greedy_longest_match(toy_vocab):
    assert wordpiece_tokenize("unwanted", toy_vocab) == ["un", "##want", "##ed"]
    assert wordpiece_tokenize("unaffable", toy_vocab) == ["un", "##aff", "##able"]
    assert wordpiece_tokenize("abb", toy_vocab) == ["ab", "##b"]  # "ab" preferred over "a"
    assert wordpiece_tokenize("aba", toy_vocab) == ["ab", "##a"]
    assert wordpiece_tokenize("unwanted running", toy_vocab) == ["un", "##want", "##ed", "runn", "##ing"]
    assert wordpiece_tokenize("", toy_vocab) == []


def test_wordpiece_unk_for_unmatchable_word(toy_vocab):
    assert wordpiece_tokenize("unwantedX", toy_vocab) == ["[UNK]"]
    assert wordpiece_tokenize("xyz", toy_vocab) == ["[UNK]"]
    assert wordpiece_tokenize("unwantedX running", toy_vocab) == ["[UNK]", "runn", "##ing"]
    assert wordpiece_tokenize("xyz", toy_vocab, unk_token="<unk>") == ["<unk>"]
    # Works with any container of strings.
    assert wordpiece_tokenize("abb", {"ab", "##b"}) == ["ab", "##b"]


def test_wordpiece_long_words(toy_vocab):
    assert wordpiece_tokenize("a" * 200, toy_vocab) == ["a"] + ["##a"] * 199
    assert wordpiece_tokenize("a" * 201, toy_vocab) == ["[UNK]"]
    assert wordpiece_tokenize("ab" * 3, toy_vocab, max_input_chars_per_word=5) == ["[UNK]"]
    assert wordpiece_tokenize("ab" * 2, toy_vocab, max_input_chars_per_word=4) == ["ab", "##a", "##b"]


def test_full_tokenizer(tok, toy_vocab):
    assert tok.tokenize("UNwant\u00e9d,running") == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tok.tokenize("Hello, world!") == ["hello", ",", "world", "!"]
    assert tok.tokenize("中文 unaffable") == ["中", "文", "un", "##aff", "##able"]
    assert tok.tokenize("hello " + "a" * 201 + " xyz.") == ["hello", "[UNK]", "[UNK]", "."]
    cased = FullTokenizer(toy_vocab, do_lower_case=False)
    assert cased.tokenize("Hello hello HELLO") == ["Hello", "hello", "[UNK]"]


def test_full_tokenizer_ids(tok, toy_vocab):
    tokens = tok.tokenize("unwanted, running")
    ids = tok.convert_tokens_to_ids(tokens)
    assert ids == [TOY_TOKENS.index(t) for t in ["un", "##want", "##ed", ",", "runn", "##ing"]]
    assert tok.convert_ids_to_tokens(ids) == tokens
    assert tok.convert_tokens_to_ids(["[CLS]", "[SEP]"]) == [2, 3]
    with pytest.raises(KeyError):
        tok.convert_tokens_to_ids(["nope"])


def test_full_tokenizer_from_path_without_specials(tmp_path):
    path = write_tokens(tmp_path, "v.txt", ["[UNK]", "hi", "##ya"])
    tok = FullTokenizer(path)
    assert tok.tokenize("Hiya there") == ["hi", "##ya", "[UNK]"]
    assert tok.convert_tokens_to_ids(tok.tokenize("Hiya there")) == [1, 2, 0]


@needs_uncased
def test_genuine_uncased_tokenization():
    tok = FullTokenizer(UNCASED_VOCAB, do_lower_case=True)
    assert tok.tokenize("Hello, world!") == ["hello", ",", "world", "!"]
    assert tok.convert_tokens_to_ids(tok.tokenize("Hello, world!")) == [7592, 1010, 2088, 999]
    assert tok.tokenize("The quick brown fox jumped over the lazy dog.") == [
        "the", "quick", "brown", "fox", "jumped", "over", "the", "lazy", "dog", ".",
    ]
    assert tok.tokenize("I am learning about BERT tokenization in São Paulo.") == [
        "i", "am", "learning", "about", "bert", "token", "##ization", "in", "sao", "paulo", ".",
    ]
    pieces = tok.tokenize("unaffable")
    assert len(pieces) > 1
    assert all(p in tok.vocab for p in pieces)
    assert pieces[0] + "".join(p[2:] for p in pieces[1:]) == "unaffable"
    assert all(p.startswith("##") for p in pieces[1:])
    assert tok.tokenize("x" * 201) == ["[UNK]"]
