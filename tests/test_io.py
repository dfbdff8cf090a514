"""bert_tf.io.atomic_output: whole files with the umask's permissions, or none."""
import os

import pytest

from bert_tf.data.conll import write_labels
from bert_tf.io import atomic_output


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield 0o022
    os.umask(previous)


def test_atomic_output_applies_the_umask(tmp_path, umask_022):
    target = tmp_path / "out.bin"
    with atomic_output(target, "wb") as f:
        f.write(b"data")
    assert target.read_bytes() == b"data"
    assert os.stat(target).st_mode & 0o777 == 0o644
    os.umask(0o077)
    with atomic_output(target) as f:
        f.write("again")
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_output_leaves_the_old_file_on_error(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as f:
            f.write("new, half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_labels_file_gets_normal_permissions(tmp_path, umask_022):
    path = tmp_path / "sub" / "labels.txt"
    write_labels(path, ["negative", "positive"])
    assert path.read_text() == "negative\npositive\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
