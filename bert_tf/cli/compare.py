"""Compare one exported model four ways: the SavedModel in-process, the model server over gRPC
and REST, and its TFLite conversion (see `bert_tf.serving.compare`).

    python -m bert_tf.cli.compare --saved_model_dir=serving/docs_topic/1 \
        --tflite_file=tflite/model.tflite --texts_file=sentences.txt [--text="..."] \
        [--model_name=docs_topic] [--tolerance=1e-4]

Classifiers, regression, embedding, token-classification (NER) and question-answering exports
(`question ||| context` lines; neither of the last two has a TFLite conversion). Exit status 1
when a path predicts otherwise than the SavedModel (another label; other entity spans, types
or texts; another answer or offsets) or its probabilities / scores differ by more than
--tolerance.
"""
import sys

from absl import flags

from bert_tf.cli import common as cli
from bert_tf.errors import InputError

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model_dir", None, "Exported version directory "
                    "(<model_base_path>/<version>).")
flags.DEFINE_string("tflite_file", None, "The TFLite conversion of the same model.")
flags.DEFINE_string("texts_file", None, "One text (or `text_a ||| text_b`, or `question ||| "
                    "context` for a question-answering model) per line.")
flags.DEFINE_multi_string("text", None, "A text to predict; repeatable.")
flags.DEFINE_string("model_name", None, "Name to serve the model under (default: the "
                    "model base path's name).")
flags.DEFINE_bool("server", True, "Also predict through a model server (gRPC and REST).")
flags.DEFINE_float("tolerance", 1e-4, "Largest accepted |difference| of a probability or "
                   "score from the in-process SavedModel's.")
flags.mark_flags_as_required(["saved_model_dir"])


def main(argv) -> None:
    del argv
    from bert_tf.serving.compare import SAVED_MODEL, compare_paths, read_texts

    texts = list(FLAGS.text or [])
    if FLAGS.texts_file:
        texts.extend(read_texts(FLAGS.texts_file))
    if not texts:
        raise InputError("give --texts_file or --text")
    if not FLAGS.tolerance >= 0:
        raise InputError(f"--tolerance must be a non-negative number, got {FLAGS.tolerance}")
    result = compare_paths(FLAGS.saved_model_dir, texts, tflite_file=FLAGS.tflite_file,
                           model_name=FLAGS.model_name, server=FLAGS.server)
    print(result.table(), flush=True)
    bad = result.disagreements(FLAGS.tolerance)
    if bad:
        print(f"compare: paths disagree with {SAVED_MODEL}: " + "; ".join(bad), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    from bert_tf.serving.client import ServingError

    cli.run(main, user_errors=(ServingError,))
