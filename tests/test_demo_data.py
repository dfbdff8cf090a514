"""The demo's data generators (bert_tf.data.demo): the stdlib docstring corpus and docs_topic."""
import collections
import os
import subprocess
import sys

import pytest

from bert_tf.data import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["csv", "http", "json", "shutil", "socket", "threading", "timeit", "unittest"]


def test_docstring_sentences_joins_paragraph_lines_and_splits_sentences():
    doc = """Return the thing.  It is
    computed lazily! Is it? yes.

        >>> thing()
        ... more
        42

    Second paragraph, e.g. this one."""
    assert demo.docstring_sentences(doc) == [
        "Return the thing.", "It is computed lazily!", "Is it? yes.", "42",
        "Second paragraph, e.g. this one."]
    assert demo.docstring_sentences(None) == []
    assert demo.docstring_sentences("   ") == []


def test_module_names_skip_side_effects_tests_private_and_main():
    names = demo.stdlib_module_names(["json", "http", "antigravity", "this", "_thread",
                                      "unittest", "no_such_module"])
    assert names == sorted(names)
    assert {"json", "json.decoder", "http", "http.client", "unittest",
            "unittest.mock"} <= set(names)
    assert not {"antigravity", "this", "_thread", "no_such_module"} & set(names)
    assert not [n for n in names if any(p.startswith("_") or p in ("test", "tests")
                                        for p in n.split(".")[1:])]


def test_documents_are_sorted_nonempty_single_line_sentences():
    docs = demo.stdlib_documents(demo.stdlib_module_names(SMALL))
    modules = [d.module for d in docs]
    assert modules == sorted(modules) and len(set(modules)) == len(modules)
    assert {"csv", "http.client", "json", "shutil", "socket", "threading"} <= set(modules)
    for d in docs:
        assert len(d.sentences) >= 2
        for s in d.sentences:
            assert s and s == s.strip() and "\n" not in s and "\t" not in s
    # A class re-exported by a package is documented once, in its own module.
    by_module = {d.module: d.sentences for d in docs}
    decoder_doc = "Simple JSON <https://json.org> decoder"
    assert decoder_doc in by_module["json.decoder"] and decoder_doc not in by_module["json"]
    assert demo.stdlib_documents(demo.stdlib_module_names(SMALL)) == docs


def test_corpus_format_is_create_pretraining_data_input(tmp_path):
    docs = [demo.Document("a", ("One.", "Two.")), demo.Document("b", ("Three.", "Four."))]
    assert demo.corpus_text(docs) == "One.\nTwo.\n\nThree.\nFour.\n\n"
    path = tmp_path / "corpus.txt"
    assert demo.write_corpus(path, docs) == (2, 4)
    assert path.read_bytes() == b"One.\nTwo.\n\nThree.\nFour.\n\n"


def test_full_corpus_is_deterministic_across_processes(tmp_path):
    """The CLI in a fresh interpreter writes the bytes a process that imported TensorFlow,
    Keras and bert_tf computes: the corpus does not depend on what was imported before. (Both
    run in children: pytest's own process may hold packages that patch the stdlib, e.g. torch
    replaces inspect.getfile, whose docstring then is not the stdlib's.)"""
    here = tmp_path / "here.txt"
    subprocess.run([sys.executable, "-c", "import tensorflow, keras, bert_tf.models; "
                    "from bert_tf.data import demo; import sys; demo.write_corpus(sys.argv[1])",
                    str(here)], cwd=ROOT, check=True, capture_output=True)
    there = tmp_path / "there.txt"
    subprocess.run([sys.executable, "-m", "bert_tf.data.demo", "corpus",
                    f"--output_file={there}"], cwd=ROOT, check=True, capture_output=True)
    assert here.read_bytes() == there.read_bytes()
    text = here.read_text(encoding="utf-8")
    documents = text.split("\n\n")
    assert documents[-1] == "" and len(documents) > 200
    assert all(documents[:-1]) and "\n\n\n" not in text
    assert sum(len(d.split("\n")) for d in documents[:-1]) > 5000


def _synthetic_documents():
    docs = []
    for module, label in [("shutil", "files"), ("socket", "network"),
                          ("threading", "concurrency"), ("unittest.case", "debugging")]:
        sentences = [f"The {label} sentence number {i} about {module} things." for i in range(80)]
        sentences += ["This sentence is in two families at once."]
        docs.append(demo.Document(module, tuple(sentences)))
    docs.append(demo.Document("json", ("A sentence from a module without a topic.",) * 3))
    return docs


def test_topic_dataset_is_balanced_disjoint_and_deterministic():
    splits = demo.topic_dataset(_synthetic_documents())
    assert set(splits) == {"train", "dev", "test"}
    seen = {}
    for split, rows in splits.items():
        counts = collections.Counter(label for _, label in rows)
        assert set(counts) == set(demo.TOPICS) and len(set(counts.values())) == 1, counts
        for sentence, label in rows:
            assert sentence not in seen, "a sentence in two splits"
            seen[sentence] = split
            assert label in sentence  # the synthetic sentences name their family
    assert "This sentence is in two families at once." not in seen
    assert "A sentence from a module without a topic." not in seen
    assert len(splits["train"]) > len(splits["dev"]) > 0
    assert demo.topic_dataset(_synthetic_documents()) == splits
    assert demo.topic_dataset(_synthetic_documents(), seed=1) != splits


def test_topic_of_maps_submodules_by_their_top_level_module():
    assert demo.topic_of("http.client") == "network"
    assert demo.topic_of("asyncio.tasks") == "concurrency"
    assert demo.topic_of("os") == "files"
    assert demo.topic_of("unittest.mock") == "debugging"
    assert demo.topic_of("json") is None
    tops = [m for members in demo.TOPICS.values() for m in members]
    assert len(tops) == len(set(tops)), "a module in two topics"


def test_topic_files_read_by_run_classifier_tsv_processor(tmp_path):
    from bert_tf.data.glue import TsvProcessor

    splits = demo.topic_dataset(demo.stdlib_documents(demo.stdlib_module_names(SMALL)))
    counts = demo.write_topic_dataset(tmp_path, splits)
    assert counts == {split: len(rows) for split, rows in splits.items()}
    processor = TsvProcessor(text_column="sentence", label_column="label", header=True,
                             labels=list(demo.TOPICS))
    train = processor.get_train_examples(str(tmp_path))
    dev = processor.get_dev_examples(str(tmp_path))
    assert [(e.text_a, e.label) for e in train] == splits["train"]
    assert [(e.text_a, e.label) for e in dev] == splits["dev"]
    assert len(processor.get_test_examples(str(tmp_path))) == counts["test"]
    assert demo.label_counts(tmp_path / "dev.tsv") == dict(
        collections.Counter(label for _, label in splits["dev"]))
    first = (tmp_path / "train.tsv").read_bytes()
    demo.write_topic_dataset(tmp_path, splits)
    assert (tmp_path / "train.tsv").read_bytes() == first


def test_full_topic_dataset_sizes():
    splits = demo.topic_dataset(demo.stdlib_documents())
    for split, minimum in [("train", 2000), ("dev", 200), ("test", 200)]:
        counts = collections.Counter(label for _, label in splits[split])
        assert len(set(counts.values())) == 1 and sum(counts.values()) >= minimum, (split, counts)


def test_report_shows_baselines_before_after(tmp_path):
    import tensorflow as tf

    for name, text in [("init", "masked_lm_accuracy = 0.0001\nnext_sentence_accuracy = 0.5\n"
                        "global_step = 0\n"),
                       ("pre", "masked_lm_accuracy = 0.3\nnext_sentence_accuracy = 0.7\n"
                        "global_step = 1500\n"),
                       ("cls", "accuracy = 0.75\neval_loss = 0.6\nglobal_step = 300\n")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "eval_results.txt").write_text(text)
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\na b\tx\nc d\ty\ne f\tx\ng h\ty\n")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                               + [f"w{i}" for i in range(995)]) + "\n")
    records = tmp_path / "pretrain.tfrecord"
    with tf.io.TFRecordWriter(str(records)) as writer:
        for ids, weights in [([7, 7, 9, 0], [1, 1, 1, 0]), ([7, 8, 0, 0], [1, 1, 0, 0])]:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "masked_lm_ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids)),
                "masked_lm_weights": tf.train.Feature(float_list=tf.train.FloatList(
                    value=weights))})).SerializeToString())
    assert demo.most_frequent_masked_token(records) == (7, 0.6)
    report = demo.demo_report(str(tmp_path / "pre"), str(tmp_path / "init"),
                              str(tmp_path / "cls"), str(tmp_path), str(vocab), str(records))
    for expected in ["1000 tokens", "0.10%", "'w2'", "60.00%", "0.01%", "1500 steps", "30.00%",
                     "50.00%", "75.00%"]:
        assert expected in report, report


@pytest.mark.parametrize("limit", [1, 50])
def test_bench_corpus_lines(limit):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import corpus
    finally:
        sys.path.remove(os.path.join(ROOT, "bench"))
    lines = corpus.stdlib_docstring_lines(limit)
    assert len(lines) == limit and all(line == line.strip() and line for line in lines)


def test_comparison_table_differences_and_label_mismatches():
    import numpy as np

    from bert_tf.serving.compare import Comparison

    def out(label, probabilities):
        return {"label": np.array(label.encode()), "probabilities": np.array(probabilities)}

    result = Comparison(["Open a socket.", "Run the tests."], {
        "SavedModel": [out("network", [0.1, 0.9]), out("debugging", [0.8, 0.2])],
        "gRPC": [out("network", [0.1, 0.9]), out("debugging", [0.8, 0.2])],
        "TFLite": [{"label": np.array("network"), "probabilities": np.array([0.1, 0.9])},
                   {"label": np.array("network"), "probabilities": np.array([0.4, 0.6])}],
    })
    assert result.max_abs_diff == {"gRPC": 0.0, "TFLite": pytest.approx(0.4)}
    assert result.label_mismatches == {"gRPC": 0, "TFLite": 1}
    table = result.table()
    assert "network 0.9000" in table and "debugging 0.8000" in table
    assert "TFLite 4.00e-01" in table and table.splitlines()[0].startswith("text")
