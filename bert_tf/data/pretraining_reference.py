"""Google's create_pretraining_data algorithm in pure Python, on token strings, one process.

This is Google's script as it is written (FullTokenizer strings, one `random.Random(seed)`, one
`encode_example` per record): the oracle that `bert_tf.data.pretraining_data`'s fast path is
tested against (`exact_rng=True` gives byte-identical records) and the peer that
bench/pretraining_data.py measures it against.
"""
from __future__ import annotations

import random
import time
from typing import Sequence

from bert_tf.data.pretraining_corpus import (REQUIRED_TOKENS, check_options, expand_input_files,
                                             read_lines, split_list)
from bert_tf.data.pretraining_instances import instance_statistics, summarize
from bert_tf.data.records import TrainingInstance, encode_example
from bert_tf.text.vocab import CLS_TOKEN, MASK_TOKEN, SEP_TOKEN, Vocab, load_vocab

__all__ = ["create_instances_reference", "create_masked_lm_predictions_reference",
           "create_pretraining_data_reference", "read_documents_reference",
           "truncate_seq_pair_random", "write_instances_reference"]



def read_documents_reference(input_files: Sequence[str], tokenizer) -> list[list[list[str]]]:
    """Google's reading loop: documents of tokenized sentences (empty documents dropped)."""
    documents: list[list[list[str]]] = [[]]
    for path in input_files:
        for line in read_lines(path):
            if not line:
                documents.append([])
            tokens = tokenizer.tokenize(line)
            if tokens:
                documents[-1].append(tokens)
    return [d for d in documents if d]


def truncate_seq_pair_random(tokens_a: list, tokens_b: list, max_num_tokens: int,
                             rng: random.Random) -> None:
    """Google's pretraining truncation: pops from the longer list (B on ties), one token at a
    time, from the front or the back at random (one `rng.random()` per token)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        trunc = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del trunc[0]
        else:
            trunc.pop()


def create_masked_lm_predictions_reference(tokens: list[str], masked_lm_prob: float,
                                           max_predictions_per_seq: int,
                                           vocab_words: Sequence[str], rng: random.Random,
                                           do_whole_word_mask: bool = False
                                           ) -> tuple[list[str], list[int], list[str]]:
    """Google's `create_masked_lm_predictions`: (output tokens, sorted positions, labels)."""
    cand_indexes: list[list[int]] = []
    for i, token in enumerate(tokens):
        if token == CLS_TOKEN or token == SEP_TOKEN:
            continue
        if do_whole_word_mask and cand_indexes and token.startswith("##"):
            cand_indexes[-1].append(i)
        else:
            cand_indexes.append([i])
    rng.shuffle(cand_indexes)
    output_tokens = list(tokens)
    num_to_predict = min(max_predictions_per_seq,
                         max(1, int(round(len(tokens) * masked_lm_prob))))
    masked: list[tuple[int, str]] = []
    covered: set[int] = set()
    for index_set in cand_indexes:
        if len(masked) >= num_to_predict:
            break
        if len(masked) + len(index_set) > num_to_predict:
            continue
        if any(index in covered for index in index_set):
            continue
        for index in index_set:
            covered.add(index)
            if rng.random() < 0.8:
                masked_token = MASK_TOKEN
            elif rng.random() < 0.5:
                masked_token = tokens[index]
            else:
                masked_token = vocab_words[rng.randint(0, len(vocab_words) - 1)]
            output_tokens[index] = masked_token
            masked.append((index, tokens[index]))
    masked.sort(key=lambda x: x[0])
    return output_tokens, [m[0] for m in masked], [m[1] for m in masked]


def _instances_from_document_reference(all_documents, document_index, max_seq_length,
                                       short_seq_prob, masked_lm_prob, max_predictions_per_seq,
                                       vocab_words, rng, do_whole_word_mask):
    document = all_documents[document_index]
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk: list[list[str]] = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = [t for seg in current_chunk[:a_end] for t in seg]
                tokens_b: list[str] = []
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    i -= len(current_chunk) - a_end  # put the unused sentences back
                else:
                    is_random_next = False
                    for seg in current_chunk[a_end:]:
                        tokens_b.extend(seg)
                truncate_seq_pair_random(tokens_a, tokens_b, max_num_tokens, rng)
                assert tokens_a and tokens_b
                tokens = [CLS_TOKEN, *tokens_a, SEP_TOKEN, *tokens_b, SEP_TOKEN]
                segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
                tokens, positions, labels = create_masked_lm_predictions_reference(
                    tokens, masked_lm_prob, max_predictions_per_seq, vocab_words, rng,
                    do_whole_word_mask)
                instances.append(TrainingInstance(tokens=tokens, segment_ids=segment_ids,
                                                  masked_lm_positions=positions,
                                                  masked_lm_labels=labels,
                                                  is_random_next=is_random_next))
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def create_instances_reference(input_files: str | Sequence[str], tokenizer,
                               max_seq_length: int = 128, dupe_factor: int = 10,
                               short_seq_prob: float = 0.1, masked_lm_prob: float = 0.15,
                               max_predictions_per_seq: int = 20,
                               rng: random.Random | int = 12345,
                               do_whole_word_mask: bool = False,
                               documents: list[list[list[str]]] | None = None
                               ) -> list[TrainingInstance]:
    """Google's `create_training_instances`, single process, pure Python (the test oracle).

    Args:
      input_files: comma-separated globs or a list of files (ignored if `documents` is given).
      tokenizer: a `bert_tf.text.FullTokenizer` (anything with `tokenize(str)` and `vocab`).
      rng: a `random.Random` (advanced in place) or an int seed.
      documents: already tokenized documents (lists of sentences of tokens) instead of files.
    Returns:
      The shuffled `TrainingInstance`s (tokens after masking, labels = original tokens).
    """
    check_options(max_seq_length, max_predictions_per_seq, masked_lm_prob, short_seq_prob,
                  dupe_factor)
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    if documents is None:
        documents = read_documents_reference(expand_input_files(input_files), tokenizer)
    else:
        documents = [[list(s) for s in d if s] for d in documents]
        documents = [d for d in documents if d]
    rng.shuffle(documents)
    vocab_words = list(tokenizer.vocab.token_to_id)
    instances: list[TrainingInstance] = []
    for _ in range(dupe_factor):
        for document_index in range(len(documents)):
            instances.extend(_instances_from_document_reference(
                documents, document_index, max_seq_length, short_seq_prob, masked_lm_prob,
                max_predictions_per_seq, vocab_words, rng, do_whole_word_mask))
    rng.shuffle(instances)
    return instances


def write_instances_reference(instances: Sequence[TrainingInstance], vocab: Vocab,
                              max_seq_length: int, max_predictions_per_seq: int,
                              output_files: str | Sequence[str]) -> list[int]:
    """Google's `write_instance_to_example_files` with `records.encode_example`: round-robin
    over the output files. Returns the number of records per file."""
    import tensorflow as tf

    paths = split_list(output_files)
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    counts = [0] * len(paths)
    for index, inst in enumerate(instances):
        k = index % len(writers)
        writers[k].write(encode_example(
            [vocab.id(t) for t in inst.tokens], inst.segment_ids, inst.masked_lm_positions,
            [vocab.id(t) for t in inst.masked_lm_labels], 1 if inst.is_random_next else 0,
            max_seq_length, max_predictions_per_seq))
        counts[k] += 1
    for w in writers:
        w.close()
    return counts


def create_pretraining_data_reference(input_files: str | Sequence[str],
                                      output_files: str | Sequence[str],
                                      vocab: Vocab | str, do_lower_case: bool = True,
                                      do_whole_word_mask: bool = False,
                                      max_seq_length: int = 128,
                                      max_predictions_per_seq: int = 20,
                                      random_seed: int = 12345, dupe_factor: int = 10,
                                      masked_lm_prob: float = 0.15,
                                      short_seq_prob: float = 0.1) -> dict:
    """Google's whole script in pure Python, single process (FullTokenizer, string tokens,
    `encode_example` per record): the benchmark peer. Returns the same summary as
    `create_pretraining_data`."""
    from bert_tf.text.python_tokenizer import FullTokenizer

    start = time.perf_counter()
    vocab = vocab if isinstance(vocab, Vocab) else load_vocab(vocab, REQUIRED_TOKENS)
    tokenizer = FullTokenizer(vocab, do_lower_case=do_lower_case)
    files = expand_input_files(input_files)
    documents = read_documents_reference(files, tokenizer)
    instances = create_instances_reference(
        files, tokenizer, max_seq_length, dupe_factor, short_seq_prob, masked_lm_prob,
        max_predictions_per_seq, random.Random(random_seed), do_whole_word_mask,
        documents=documents)
    counts = write_instances_reference(instances, vocab, max_seq_length,
                                       max_predictions_per_seq, output_files)
    return summarize(instance_statistics(instances), documents=len(documents),
                    sentences=sum(len(d) for d in documents),
                    records_per_file=counts, seconds=time.perf_counter() - start)
