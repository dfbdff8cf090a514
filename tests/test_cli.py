"""The command-line layer: commands live in bert_tf.cli, the library reads no flags."""
import os
import re
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


# ----------------------------------------------------------------------------- bert-tf, quiet
from bert_tf.cli import startup  # noqa: E402
from bert_tf.cli.main import COMMANDS, available_commands, usage  # noqa: E402

# Lines TensorFlow 2.21 printed on this CPU-only machine before any command's own output.
TF_STARTUP_LINES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796541303.061539   16611 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796541303.061819   16611 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.",
    "I0000 00:00:1796541303.120493   16611 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796541306.153130   16611 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796543094.649350   29884 util.cc:131] oneDNN supports DT_INT64 only on "
    "platforms with AVX-512. Falling back to the default Eigen-based implementation if present.",
    # the TFLite converter's custom-op report and the interpreter's banner
    "Custom ops: FastBertNormalize, FastWordpieceTokenizeWithOffsets",
    "Details:",
    "\ttf.FastBertNormalize(tensor<1x!tf_type.string>, tensor<1393800xui8>) -> (tensor<?x!tf_type"
    ".string>) : {device = \"\", get_offsets = false}",
    "See instructions: https://www.tensorflow.org/lite/guide/ops_custom",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]


def test_startup_noise_pattern_drops_tf_lines_and_keeps_ours():
    for line in TF_STARTUP_LINES:
        assert startup.STARTUP_NOISE.match(line.encode()), line
    kept = ["07:15:11 wrote 33 tokens to v.txt",
            "I1206 07:15:11.859686 139726172765056 build_vocab.py:29] wrote 33 tokens",
            "E0000 00:00:1796541306.153130   16611 saver.cc:52] could not write checkpoint",
            "Traceback (most recent call last):", "bert-tf tokenize: error: --vocab_file ..."]
    for line in kept:
        assert not startup.STARTUP_NOISE.match(line.encode()), line


def test_requested_verbosity():
    assert startup.requested_verbosity(["x"]) == 0
    assert startup.requested_verbosity(["x", "--verbosity=debug"]) == 1
    assert startup.requested_verbosity(["x", "--verbosity", "-1"]) == -1
    assert startup.requested_verbosity(["x", "-v", "1"]) == 1
    assert startup.requested_verbosity(["x", "-v=2", "--flag"]) == 2
    assert startup.requested_verbosity(["x", "--", "-v", "1"]) == 0
    assert startup.is_debug(["x", "--verbosity=DEBUG"]) and not startup.is_debug(["x", "-v", "0"])


def test_command_table_lists_importable_modules_only():
    import importlib.util

    listed = available_commands()
    for name, (module, description) in COMMANDS.items():
        importable = importlib.util.find_spec(f"bert_tf.cli.{module}") is not None
        assert (name in listed) == importable, name
        assert description and "\n" not in description
    for name in ("classify", "pretrain", "export", "export-tflite", "tokenize", "build-vocab"):
        assert re.search(rf"^  {name} +\S", usage(), re.M), name


def _bert_tf(*args, verbose_env=False, cwd=REPO):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must be quiet on its own
    return subprocess.run([sys.executable, "-m", "bert_tf.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env=env)


def test_bert_tf_help_lists_commands_without_tensorflow():
    code = ("import sys\nsys.argv = ['bert-tf', '--help']\nfrom bert_tf.cli import main\n"
            "try:\n    main.main()\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage: bert-tf <command>" in result.stdout and result.stdout.endswith("False\n")
    unknown = _bert_tf("nope")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("bert-tf: error: unknown command 'nope'; one of: pretrain")


def test_commands_are_quiet_unless_asked(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "##b"]) + "\n")
    (tmp_path / "in.txt").write_text("ab a\n")
    args = ("tokenize", f"--vocab_file={vocab}", f"--input_file={tmp_path / 'in.txt'}",
            f"--output_file={tmp_path / 'out.txt'}")
    quiet = _bert_tf(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert (tmp_path / "out.txt").read_text() == "a ##b a\n"
    assert re.fullmatch(r"\d\d:\d\d:\d\d tokenized 1 lines into \S+out\.txt\n", quiet.stderr)
    verbose = _bert_tf(*args, "--verbosity=debug")  # absl's flag takes numbers: 1 here
    assert verbose.returncode == 0, verbose.stderr
    tf_lines = [line for line in verbose.stderr.splitlines()
                if startup.STARTUP_NOISE.match(line.encode())]
    assert tf_lines, verbose.stderr  # TensorFlow's own start-up lines are back
    assert re.search(r"^I\d{4} [\d:.]+ +\d+ tokenize\.py:\d+\] tokenized 1 lines", verbose.stderr,
                     re.M)  # and our lines in absl's full format
    error = _bert_tf("tokenize", f"--vocab_file={tmp_path / 'missing.txt'}",
                     f"--input_file={tmp_path / 'in.txt'}", f"--output_file={tmp_path / 'o.txt'}")
    assert error.returncode == 2
    assert error.stderr.startswith("bert-tf tokenize: error: ") and len(
        error.stderr.splitlines()) == 1, error.stderr


def test_verbosity_names_become_absl_numbers():
    argv = ["x", "--verbosity=debug", "-v", "Warning", "--", "-v", "debug"]
    startup.number_verbosity_names(argv)
    assert argv == ["x", "--verbosity=1", "-v", "-1", "--", "-v", "debug"]


def test_every_command_runs_its_main(tmp_path):
    """Each subcommand reaches its main (classify once had no __main__ block and did nothing)."""
    result = _bert_tf("classify", "--task_name=tsv", f"--data_dir={tmp_path}",
                      f"--output_dir={tmp_path / 'out'}")
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("bert-tf classify: error: at least one of --do_train, --do_eval or "
                             "--do_predict must be set\n")


def test_library_info_lines_are_dropped_ours_kept():
    import logging

    from bert_tf.cli.common import drop_library_info

    def record(path, level=logging.INFO):
        return logging.LogRecord("absl", level, path, 1, "message", None, None)

    tf_file = "/venv/lib/python3.11/site-packages/tensorflow/python/saved_model/builder_impl.py"
    assert not drop_library_info(record(tf_file))
    assert not drop_library_info(record("/venv/site-packages/keras/src/saving/saving_lib.py"))
    assert drop_library_info(record(tf_file, logging.WARNING))
    assert drop_library_info(record("/venv/site-packages/bert_tf/serving/export.py"))
