"""The command-line layer: commands live in bert_tf.cli, the library reads no flags."""
import os
import subprocess
import sys

from bert_tf.config import BertConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bert_config_command_sets_the_vocab_size(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"]) + "\n")
    out = tmp_path / "bert_config.json"
    base = os.path.join(REPO, "configs", "bert_tiny.json")
    result = subprocess.run(
        [sys.executable, "-m", "bert_tf.cli.bert_config", f"--base_config={base}",
         f"--vocab_file={vocab}", f"--output_file={out}"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: {base} with vocab_size=7" in result.stdout
    written, original = BertConfig.from_json_file(out).to_dict(), BertConfig.from_json_file(base)
    assert written == {**original.to_dict(), "vocab_size": 7}


def test_library_modules_define_no_flags():
    """Importing every library module defines no absl flag (only bert_tf.cli does)."""
    code = (
        "import importlib, pkgutil, bert_tf\n"
        "from absl import flags\n"
        # `import bert_tf` is lazy: TensorFlow's own absl flags (absl.logging) must be defined
        # before the baseline is taken, or they would be blamed on the first module importing TF.
        "import tensorflow, absl.logging\n"
        "before = set(flags.FLAGS)\n"
        "for m in pkgutil.walk_packages(bert_tf.__path__, 'bert_tf.'):\n"
        "    if not m.name.startswith('bert_tf.cli.'):\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(set(flags.FLAGS) - before))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=300,
                            env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
