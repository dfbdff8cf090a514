"""bert_tf.serving.compare's text reading (the comparison itself runs in test_demo_data)."""
from bert_tf.serving.compare import read_texts


def test_read_texts_splits_on_newline_only(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("one\x0ctwo\r\n\nthree\u2028four ||| five\x85six\n  \nseven".encode("utf-8"))
    assert read_texts(path) == ["one\x0ctwo", "three\u2028four ||| five\x85six", "seven"]
