"""A pure-Python reference of Google's run_squad feature creation, for the tests.

It follows Google's original algorithm step by step (its own window loop and max-context check,
Python tokenization through bert_tf.text.python_tokenizer.FullTokenizer), independently of
bert_tf.data.squad, which tokenizes in the graph and uses bert_tf.data.windows. Returns plain
dicts so the tests compare field by field.
"""
from __future__ import annotations

import json

from bert_tf.text.python_tokenizer import FullTokenizer


def read_examples(path, is_training, version_2_with_negative, ids=None):
    """Google's read_squad_examples; `ids` restricts to those question ids (in file order)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            words, char_to_word = [], []
            previous_space = True
            for c in context:
                space = c in (" ", "\t", "\r", "\n") or ord(c) == 0x202F
                if space:
                    previous_space = True
                else:
                    if previous_space:
                        words.append(c)
                    else:
                        words[-1] = words[-1] + c
                    previous_space = False
                char_to_word.append(len(words) - 1)
            for qa in paragraph["qas"]:
                if ids is not None and qa["id"] not in ids:
                    continue
                ex = {"qas_id": qa["id"], "question_text": qa["question"], "doc_tokens": words,
                      "orig_answer_text": None, "start_position": None, "end_position": None,
                      "is_impossible": False}
                if is_training:
                    if version_2_with_negative:
                        ex["is_impossible"] = qa["is_impossible"]
                    if not ex["is_impossible"]:
                        answer = qa["answers"][0]
                        text, offset = answer["text"], answer["answer_start"]
                        ex["orig_answer_text"] = text
                        ex["start_position"] = char_to_word[offset]
                        ex["end_position"] = char_to_word[offset + len(text) - 1]
                        actual = " ".join(words[ex["start_position"]:ex["end_position"] + 1])
                        if actual.find(" ".join(text.strip().split())) == -1:
                            continue
                    else:
                        ex["start_position"] = ex["end_position"] = -1
                        ex["orig_answer_text"] = ""
                out.append(ex)
    return out


def _improve(doc_tokens, start, end, tokenizer, text):
    wanted = " ".join(tokenizer.tokenize(text))
    for s in range(start, end + 1):
        for e in range(end, s - 1, -1):
            if " ".join(doc_tokens[s:e + 1]) == wanted:
                return s, e
    return start, end


def _is_max_context(spans, index, position):
    best_score, best = None, None
    for i, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best = score, i
    return index == best


def convert(examples, tokenizer: FullTokenizer, max_seq_length, doc_stride, max_query_length,
            is_training):
    """Google's convert_examples_to_features; returns a list of feature dicts."""
    unique_id = 1000000000
    features = []
    for example_index, ex in enumerate(examples):
        query = tokenizer.tokenize(ex["question_text"])[:max_query_length]
        tok_to_orig, orig_to_tok, doc = [], [], []
        for i, word in enumerate(ex["doc_tokens"]):
            orig_to_tok.append(len(doc))
            for piece in tokenizer.tokenize(word):
                tok_to_orig.append(i)
                doc.append(piece)
        tok_start = tok_end = None
        if is_training and ex["is_impossible"]:
            tok_start = tok_end = -1
        if is_training and not ex["is_impossible"]:
            tok_start = orig_to_tok[ex["start_position"]]
            if ex["end_position"] < len(ex["doc_tokens"]) - 1:
                tok_end = orig_to_tok[ex["end_position"] + 1] - 1
            else:
                tok_end = len(doc) - 1
            tok_start, tok_end = _improve(doc, tok_start, tok_end, tokenizer,
                                          ex["orig_answer_text"])
        max_tokens = max_seq_length - len(query) - 3
        spans, offset = [], 0
        while offset < len(doc):
            length = min(len(doc) - offset, max_tokens)
            spans.append((offset, length))
            if offset + length == len(doc):
                break
            offset += min(length, doc_stride)
        for span_index, (start, length) in enumerate(spans):
            tokens = ["[CLS]"] + query + ["[SEP]"]
            segment_ids = [0] * len(tokens)
            to_orig, max_ctx = {}, {}
            for i in range(length):
                to_orig[len(tokens)] = tok_to_orig[start + i]
                max_ctx[len(tokens)] = _is_max_context(spans, span_index, start + i)
                tokens.append(doc[start + i])
                segment_ids.append(1)
            tokens.append("[SEP]")
            segment_ids.append(1)
            input_ids = tokenizer.convert_tokens_to_ids(tokens)
            input_mask = [1] * len(input_ids)
            while len(input_ids) < max_seq_length:
                input_ids.append(0)
                input_mask.append(0)
                segment_ids.append(0)
            start_position = end_position = None
            if is_training and not ex["is_impossible"]:
                if tok_start >= start and tok_end <= start + length - 1:
                    start_position = tok_start - start + len(query) + 2
                    end_position = tok_end - start + len(query) + 2
                else:
                    start_position = end_position = 0
            if is_training and ex["is_impossible"]:
                start_position = end_position = 0
            features.append({
                "unique_id": unique_id, "example_index": example_index,
                "doc_span_index": span_index, "tokens": tokens, "token_to_orig_map": to_orig,
                "token_is_max_context": max_ctx, "input_ids": input_ids,
                "input_mask": input_mask, "segment_ids": segment_ids,
                "start_position": start_position, "end_position": end_position})
            unique_id += 1
    return features
