"""Fault injection: damaged caches, full disks, unwritable outputs, SIGTERM (issue 12).

Every command must end with one line naming the path and the reason (exit 2), or for SIGTERM
one line and exit 128 + 15, and leave no partial output behind.
"""
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

import google_ckpt
from bert_tf.text import normalizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".",
         "a", "dog", "ran", "##s", "to", "it"]


def _env(cache_dir) -> dict:
    return dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2",
                BERT_TF_CACHE_DIR=str(cache_dir))


def _command(args, env, file_size_limit=None, **kw):
    def limit():
        # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG ("File too large"),
        # which is what a full disk looks like to the writer (ENOSPC).
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300,
                          preexec_fn=limit if file_size_limit else None, **kw)


def _one_error_line(result, *words):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(lines) == 1, result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty normalizer cache for this test (in this process and in its commands)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("BERT_TF_CACHE_DIR", str(path))
    normalizer.build_normalizer_model.cache_clear()
    yield path
    normalizer.build_normalizer_model.cache_clear()


# ----------------------------------------------------------------------------- normalizer cache
def _cached_file(cache_dir):
    files = [p for p in cache_dir.iterdir() if p.name.startswith("normalizer-cased-")]
    assert len(files) == 1, files
    return files[0]


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "empty"])
def test_damaged_normalizer_cache_is_rebuilt(cache_dir, damage):
    built = normalizer.build_normalizer_model(False)
    path = _cached_file(cache_dir)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:100])
    elif damage == "flipped byte":
        path.write_bytes(data[:-50] + bytes([data[-50] ^ 1]) + data[-49:])
    else:
        path.write_bytes(b"")
    normalizer.build_normalizer_model.cache_clear()
    assert normalizer.build_normalizer_model(False) == built
    assert path.read_bytes() == data  # rewritten whole


def test_unwritable_cache_dir_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BERT_TF_CACHE_DIR", str(blocker / "cache"))
    normalizer.build_normalizer_model.cache_clear()
    try:
        model = normalizer.build_normalizer_model(False)
    finally:
        normalizer.build_normalizer_model.cache_clear()
    monkeypatch.setenv("BERT_TF_CACHE_DIR", "")
    assert model == normalizer.build_normalizer_model.__wrapped__(False)
    assert blocker.read_text() == "not a directory"


def test_command_with_a_truncated_cache_file_does_not_crash(tmp_path, cache_dir, vocab_file):
    normalizer.build_normalizer_model(False)
    path = _cached_file(cache_dir)
    path.write_bytes(path.read_bytes()[:100])  # what crashed tf-text's kernel (exit 139)
    (tmp_path / "in.txt").write_text("The cat sat.\n")
    result = _command(["-m", "bert_tf.cli.tokenize", f"--vocab_file={vocab_file}",
                       "--do_lower_case=false", f"--input_file={tmp_path / 'in.txt'}",
                       f"--output_file={tmp_path / 'out.txt'}"], _env(cache_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out.txt").read_text() == "[UNK] cat sat .\n"


# ----------------------------------------------------------------------------- output paths
@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One normalizer cache for the commands below (building it costs seconds per process)."""
    return tmp_path_factory.mktemp("normalizer_cache")


@pytest.fixture
def _tokenize(tmp_path, vocab_file, shared_cache):
    def run(output_file, input_file=None, **kw):
        input_file = input_file or tmp_path / "in.txt"
        if not os.path.exists(input_file):
            (tmp_path / "in.txt").write_text("the cat sat on the mat .\n" * 20000)  # 500 KB
        return _command(["-m", "bert_tf.cli.tokenize", f"--vocab_file={vocab_file}",
                         f"--input_file={input_file}", f"--output_file={output_file}"],
                        _env(shared_cache), **kw)

    return run


def test_disk_full_leaves_no_partial_output(tmp_path, _tokenize):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = _tokenize(out_dir / "pieces.txt", file_size_limit=200_000)
    _one_error_line(result, str(out_dir / "pieces.txt"), "File too large")
    assert list(out_dir.iterdir()) == []


def test_output_path_under_a_file(tmp_path, _tokenize):
    (tmp_path / "plain").write_text("x")
    result = _tokenize(tmp_path / "plain" / "out.txt")
    _one_error_line(result, str(tmp_path / "plain" / "out.txt"), "Not a directory")


def test_directory_as_output_and_as_input(tmp_path, _tokenize):
    result = _tokenize(tmp_path)
    _one_error_line(result, str(tmp_path), "Is a directory")
    result = _tokenize(tmp_path / "o.txt", input_file=tmp_path)
    _one_error_line(result, "--input_file", str(tmp_path), "is a directory")
    assert not (tmp_path / "o.txt").exists()


def test_read_only_target(_tokenize):
    target = "/sys/bert_tf_test_output.txt"
    try:
        with open(target, "w"):
            pass
    except OSError:
        pass
    else:  # pragma: no cover - a machine where /sys is writable
        os.remove(target)
        pytest.skip("/sys is writable here")
    result = _tokenize(target)
    _one_error_line(result, target)
    assert "Permission denied" in result.stderr or "Read-only file system" in result.stderr


def test_extract_features_disk_full_leaves_no_partial_jsonl(tmp_path, shared_cache):
    config = google_ckpt.tiny_config(vocab_size=len(VOCAB))
    google_ckpt.write_google_checkpoint(str(tmp_path / "ckpt"), config, vocab_tokens=VOCAB)
    (tmp_path / "in.txt").write_text("the cat sat on the mat .\n" * 300)
    out = tmp_path / "out" / "features.jsonl"
    out.parent.mkdir()
    result = _command(["extract_features.py", f"--input_file={tmp_path / 'in.txt'}",
                       f"--output_file={out}", f"--init_checkpoint={tmp_path / 'ckpt'}",
                       "--max_seq_length=16", "--layers=-1,-2"], _env(shared_cache),
                      file_size_limit=300_000)
    _one_error_line(result, str(out), "File too large")
    assert list(out.parent.iterdir()) == []


# ----------------------------------------------------------------------------- SIGTERM
def test_sigterm_ends_a_command_with_one_line_and_no_output(tmp_path, vocab_file, shared_cache):
    words = VOCAB[5:]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(4000)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"{line}\n" + ("\n" if i % 20 == 19 else "")
                              for i, line in enumerate(lines)))
    out_dir = tmp_path / "records"
    proc = subprocess.Popen(
        [sys.executable, "create_pretraining_data.py", f"--input_file={corpus}",
         f"--output_file={out_dir / 'a.tfrecord'},{out_dir / 'b.tfrecord'}",
         f"--vocab_file={vocab_file}", "--max_seq_length=32", "--dupe_factor=400",
         "--num_processes=1", "--progress=true"],
        cwd=REPO, env=_env(shared_cache), stderr=subprocess.PIPE, text=True)
    stderr = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # wait until the records are being made, then stop the run
        stderr.append(line)
        if "tokenized" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    stderr.append(proc.stderr.read())
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, "".join(stderr)[-2000:]
    text = "".join(stderr)
    assert "Traceback" not in text
    assert "create_pretraining_data.py: error: terminated by SIGTERM" in text
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
