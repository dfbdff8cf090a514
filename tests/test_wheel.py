"""The wheel a clean checkout builds installs and runs, outside the checkout (slow: ~2-4 min).

The tracked files are copied to a fresh directory (no build outputs, no untracked files), a wheel
is built from them without downloading anything (`pip wheel --no-deps --no-build-isolation`),
and installed with `--no-deps` into a fresh venv. The venv sees the dependencies through a .pth
file naming this interpreter's site-packages (a plain path: .pth files there, such as an editable
install of a checkout, are not run), so `bert_tf` can only come from the wheel. Then, from an
empty directory: `bert-tf --help`, and tokenize, bert-config (a shipped config by name),
random-init, a few fine-tuning steps with an export, and a prediction through the export. Every
command's stderr is free of TensorFlow start-up noise.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_NOISE = re.compile(r"cuda|oneDNN|absl::InitializeLog|cpu_feature_guard|^[IWE]\d{4} ", re.I)

pytestmark = pytest.mark.slow


def _run(args, cwd, env=None, timeout=600):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def _clean_checkout(dest):
    """The tracked files of the working tree (symlinks kept), as a fresh clone would have."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = os.path.join(REPO, name), os.path.join(dest, name)
        if not os.path.lexists(source):
            continue  # deleted in the working tree
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src, dist, env_dir = root / "src", root / "dist", root / "venv"
    _clean_checkout(src)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", str(dist), str(src)], cwd=root)
    wheels = list(dist.glob("bert_tf-*.whl"))
    assert len(wheels) == 1, wheels
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=root)
    python = env_dir / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   cwd=root).stdout.strip()
    with open(os.path.join(purelib, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_path("purelib") + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", str(wheels[0])], cwd=root)
    return {"python": str(python), "bin": str(env_dir / "bin"), "root": root, "wheel": wheels[0]}


def _env(venv):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv['bin']}{os.pathsep}{env.get('PATH', '')}", CUDA_VISIBLE_DEVICES="")
    return env


def _quiet(result):
    noise = [line for line in result.stderr.splitlines() if TF_NOISE.search(line)]
    assert not noise, noise
    return result


def test_wheel_holds_the_package_data_and_the_command(venv):
    import zipfile

    names = zipfile.ZipFile(venv["wheel"]).namelist()
    assert "bert_tf/configs/bert_base.json" in names and "bert_tf/configs/demo/vocab.txt" in names
    assert "bert_tf/cli/main.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bert-tf = bert_tf.cli.main:main" in zipfile.ZipFile(venv["wheel"]).read(
        entry_points).decode()


def test_bert_tf_help_without_tensorflow(venv, tmp_path):
    result = _quiet(_run(["bert-tf", "--help"], cwd=tmp_path, env=_env(venv)))
    for command in ("classify", "pretrain", "export", "export-tflite", "tokenize", "build-vocab",
                    "random-init", "create-pretraining-data", "extract-features", "serve"):
        assert re.search(rf"^  {re.escape(command)} +\S", result.stdout, re.M), command
    where = _run([venv["python"], "-c", "import sys, bert_tf.cli.main as m; "
                  "print(m.__file__); print('tensorflow' in sys.modules)"],
                 cwd=tmp_path, env=_env(venv)).stdout.split()
    assert where[0].startswith(str(venv["root"])) and where[1] == "False"


def test_tiny_end_to_end_from_the_wheel(venv, tmp_path):
    env, run = _env(venv), lambda *args: _quiet(_run(["bert-tf", *args], cwd=tmp_path, env=env))
    words = ["good", "great", "fine", "bad", "awful", "poor", "film", "a", "very", "the"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp_path / "in.txt").write_text("a good film\nthe awful film\n")
    run("tokenize", "--vocab_file=vocab.txt", "--input_file=in.txt", "--output_file=pieces.txt")
    assert (tmp_path / "pieces.txt").read_text() == "a good film\nthe awful film\n"

    run("bert-config", "--base_config=bert_tiny", "--vocab_file=vocab.txt",
        "--output_file=bert_config.json")
    run("random-init", "--bert_config_file=bert_config.json", "--vocab_file=vocab.txt",
        "--output_dir=random")
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"{a} {w} film\t{'pos' if w in words[:3] else 'neg'}"
            for a in ("a", "the", "a very") for w in words[:6]]
    for split in ("train", "dev"):
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    trained = run("classify", "--task_name=tsv", f"--data_dir={data}", "--text_column=0",
                  "--label_column=1", "--labels=neg,pos", "--init_checkpoint=random/bert_model.ckpt",
                  "--do_train", "--do_eval", "--max_seq_length=16", "--train_batch_size=6",
                  "--num_train_epochs=1", "--learning_rate=1e-3", "--output_dir=classifier",
                  "--export_dir=serving", "--export_model_name=sentiment")
    assert "step 1/3" in trained.stdout and "first step" in trained.stdout  # progress at once
    assert (tmp_path / "classifier" / "labels.txt").read_text() == "neg\npos\n"
    assert (tmp_path / "classifier" / "vocab.txt").read_text().splitlines() == vocab

    predict = ("import tensorflow as tf, tensorflow_text\n"
               "f = tf.saved_model.load('serving/sentiment/1').signatures['serving_default']\n"
               "out = f(text=tf.constant(['a good film', 'the awful film']))\n"
               "print(' '.join(x.decode() for x in out['label'].numpy()))\n"
               "print(out['probabilities'].shape)\n")
    out = _run([venv["python"], "-c", predict], cwd=tmp_path, env=env).stdout.split("\n")
    assert set(out[0].split()) <= {"neg", "pos"} and len(out[0].split()) == 2
    assert out[1] == "(2, 2)"
    mode = os.stat(tmp_path / "serving" / "sentiment" / "1" / "saved_model.pb").st_mode
    assert mode & 0o044, oct(mode)  # readable by the server's user, not 0600
