"""README.md's runnable examples run as written (so the README cannot drift from the code).

A fenced block preceded by `<!-- readme-test: run ... -->` is run: a ```python block with the
interpreter, a ```bash block with bash -e. Both run in a fresh directory that holds what the
README's examples read, generated here (tiny inputs, nothing downloaded): `configs/` (the
shipped configs), `vocab.txt` (the demo vocab), `in.txt` and `corpus/*.txt` (a few sentences),
`.venv/bin/python` (this interpreter) and a `bert-tf` command on PATH (this checkout's).
Blocks without the marker (downloads, long training, servers) are not run.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = re.compile(r"^<!-- readme-test: run\b[^\n]*-->\n```(\w+)\n(.*?)^```$", re.M | re.S)
# Start-up noise that a quiet command must not print (see bert_tf.cli.startup).
TF_NOISE = re.compile(r"cuda|oneDNN|absl::InitializeLog|cpu_feature_guard", re.I)

SENTENCES = ["The quick brown fox jumps over the lazy dog.",
             "A tokenizer splits words into word pieces.",
             "BERT reads the whole sentence at once.",
             "Unaffable people are rare."]


def readme_blocks() -> list[tuple[str, str]]:
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in MARKER.finditer(f.read())]


def test_readme_marks_its_runnable_blocks():
    languages = [language for language, _ in readme_blocks()]
    assert languages.count("python") >= 2 and languages.count("bash") >= 2, languages


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    os.symlink(os.path.join(REPO, "bert_tf", "configs"), d / "configs")
    shutil.copy(os.path.join(REPO, "bert_tf", "configs", "demo", "vocab.txt"), d / "vocab.txt")
    (d / "in.txt").write_text("\n".join(SENTENCES) + "\n")
    (d / "corpus").mkdir()
    for i in range(2):
        (d / "corpus" / f"part{i}.txt").write_text("\n".join(SENTENCES * 3) + "\n")
    (d / ".venv" / "bin").mkdir(parents=True)
    os.symlink(sys.executable, d / ".venv" / "bin" / "python")
    bin_dir = d / "bin"
    bin_dir.mkdir()
    (bin_dir / "bert-tf").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bert_tf.cli.main "$@"\n')
    (bin_dir / "bert-tf").chmod(0o755)
    return d


def _env(workdir):
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="",
               PATH=f"{workdir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the commands must be quiet on their own
    return env


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_block_runs(index, workdir):
    language, code = readme_blocks()[index]
    command = {"python": [sys.executable, "-c", code],
               "bash": ["bash", "-e", "-o", "pipefail", "-c", code]}[language]
    result = subprocess.run(command, cwd=workdir, env=_env(workdir), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"README block {index}:\n{code}\n{result.stderr[-3000:]}"
    if language == "bash":
        noise = [line for line in result.stderr.splitlines() if TF_NOISE.search(line)]
        assert not noise, noise
    assert not os.path.exists(os.path.join(REPO, "classifier.keras"))


def test_readme_commands_wrote_their_outputs(workdir):
    """The bash blocks ran against the fixtures (after test_readme_block_runs)."""
    pieces = workdir / "pieces.txt"
    if not pieces.exists():
        pytest.skip("the tokenize block did not run first")
    assert len(pieces.read_text().splitlines()) == len(SENTENCES)
    vocab = (workdir / "my_vocab.txt").read_text().splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and "the" in vocab
    assert sorted(os.listdir(workdir / "tiny_random"))[:2] == ["bert_config.json",
                                                             "bert_model.ckpt.data-00000-of-00001"]
