"""The demo's data, made offline on any machine from the docstrings of Python's standard library.

    python -m bert_tf.data.demo corpus --output_file=output/demo/corpus.txt
    python -m bert_tf.data.demo topics --output_dir=output/demo/docs_topic
    python -m bert_tf.data.demo report --pretrain_dir=output/demo/pretrain \\
        --init_eval_dir=output/demo/pretrain_init --classifier_dir=output/demo/classifier \\
        --data_dir=output/demo/docs_topic [--vocab_file=output/demo/vocab.txt \\
        --record_file=output/demo/pretrain.tfrecord]

* `corpus`: one document per standard-library module (public submodules of packages count as
  modules: `http.client`, `asyncio.tasks`, ...): the module's docstring, then the docstrings of
  its functions, classes and their methods, in name order, one sentence per line and a blank line
  between documents — the input `create_pretraining_data.py` and `build_vocab` expect.
* `topics` ("docs_topic"): a labelled dataset from the same sentences — which family of modules
  a docstring sentence comes from: `files` (file system, archives, file formats), `network`
  (sockets, HTTP, URLs, e-mail), `concurrency` (threads, processes, asyncio) or `debugging`
  (unittest, doctest, pdb, profiling, tracebacks). `train.tsv`, `dev.tsv`, `test.tsv` with a
  `sentence<TAB>label` header; every label has the same number of rows in a split (so the
  majority-class baseline is 1 / number of labels); no sentence text is in two splits (a
  sentence's split is a hash of its text).
* `report`: the masked-LM accuracy before and after pretraining (run_pretraining.py's
  eval_results.txt of a `--do_eval`-only run at random init and of the trained run), next to
  chance and to always guessing the most frequent masked token; the classifier's dev accuracy
  against the majority-class baseline.

The corpus and the dataset depend only on the running Python's standard library: the same
interpreter writes byte-identical files on every run, whatever the process imported before.
The library functions take arguments, never flags; the CLI is `main()`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import io
import os
import pkgutil
import random
import re
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from typing import Iterable, Mapping, Sequence

from bert_tf.errors import InputError
from bert_tf.io import atomic_output


# Top-level names (prefixes) never imported: side effects (antigravity opens a browser, this
# prints), GUIs, test suites, deprecated packages that setuptools may replace (distutils), and
# private modules. Also skipped: any module whose dotted name has a part starting with "_" or
# named test/tests, and the codec modules under encodings.
_SKIP = ("antigravity", "this", "idlelib", "tkinter", "turtle", "test", "lib2to3", "ensurepip",
         "venv", "pydoc_data", "xxsubtype", "_")
_SKIP_TREES = ("distutils", "encodings", "ctypes.macholib")
_SKIP_PARTS = ("test", "tests", "__main__")

# The docs_topic labels, in label-id order, and the top-level modules of each family.
TOPICS: dict[str, tuple[str, ...]] = {
    "files": ("os", "posix", "posixpath", "genericpath", "pathlib", "shutil", "glob", "fnmatch",
              "tempfile", "filecmp", "fileinput", "stat", "io", "zipfile", "tarfile", "gzip",
              "bz2", "lzma", "zlib", "dbm", "shelve", "csv", "configparser", "tomllib",
              "plistlib", "mmap", "linecache"),
    "network": ("socket", "ssl", "selectors", "select", "socketserver", "http", "urllib",
                "email", "smtplib", "imaplib", "poplib", "ftplib", "nntplib", "telnetlib",
                "mailbox", "mimetypes", "ipaddress", "xmlrpc", "wsgiref", "webbrowser", "cgi",
                "smtpd", "netrc"),
    "concurrency": ("threading", "multiprocessing", "concurrent", "asyncio", "subprocess",
                    "sched", "queue", "signal", "contextvars"),
    "debugging": ("unittest", "doctest", "pdb", "bdb", "trace", "traceback", "cProfile",
                  "profile", "pstats", "timeit", "faulthandler", "tracemalloc", "cgitb"),
}
TOPIC_HEADER = ("sentence", "label")
TOPIC_SPLITS = ("train", "dev", "test")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")
_PROMPT = re.compile(r"^(>>>|\.\.\.)(\s|$)")
_SPACE = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class Document:
    """One module's docstrings: `module` is its dotted name; `sentences` one per line."""

    module: str
    sentences: tuple[str, ...]


# ----------------------------------------------------------------------------- the corpus
def _skipped(name: str) -> bool:
    parts = name.split(".")
    return (name.startswith(_SKIP)
            or any(name == t or name.startswith(t + ".") for t in _SKIP_TREES)
            or any(p.startswith("_") or p in _SKIP_PARTS for p in parts[1:]))


def _import(name: str):
    """The module, or None when it does not import here (platform-specific modules); its
    warnings and any output on import are swallowed."""
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
                redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - ImportError, OSError, SystemExit on other platforms
        return None


def stdlib_module_names(top_level: Sequence[str] | None = None) -> list[str]:
    """The importable standard-library modules in name order: each top-level module (of
    `top_level`, default `sys.stdlib_module_names`) and, for packages, their public submodules.
    """
    names = sorted(set(top_level if top_level is not None else sys.stdlib_module_names))
    out: list[str] = []
    for name in names:
        if _skipped(name) or _import(name) is None:
            continue
        out.append(name)
        package = sys.modules[name]
        if not hasattr(package, "__path__"):
            continue
        stack = [(package.__path__, name)]
        while stack:  # walk subpackages without importing the skipped ones
            path, prefix = stack.pop()
            for info in sorted(pkgutil.iter_modules(path, prefix + "."), key=lambda i: i.name):
                if _skipped(info.name):
                    continue
                module = _import(info.name)
                if module is None:
                    continue
                out.append(info.name)
                if info.ispkg and hasattr(module, "__path__"):
                    stack.append((module.__path__, info.name))
    return sorted(out)


def docstring_sentences(doc: str | None) -> list[str]:
    """A docstring as sentences: paragraphs (split at blank lines) joined into one line each,
    doctest prompt lines dropped, then split after `.`, `!` or `?` before a capital letter."""
    if not doc:
        return []
    sentences = []
    for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        lines = [line.strip() for line in paragraph.splitlines()]
        text = _SPACE.sub(" ", " ".join(line for line in lines if line and not _PROMPT.match(line)))
        sentences.extend(s.strip() for s in _SENTENCE_END.split(text) if s.strip())
    return sentences


def stdlib_documents(modules: Sequence[str] | None = None, min_sentences: int = 2
                     ) -> list[Document]:
    """One `Document` per module of `modules` (default: `stdlib_module_names()`), in name order.

    A function or class re-exported by several modules of one package counts once, in the
    module that defines it when that is in the list; a docstring text seen before (inherited or
    copied) is skipped; documents with fewer than `min_sentences` sentences are dropped.
    """
    names = list(modules) if modules is not None else stdlib_module_names()
    wanted = set(names)
    seen_objects: set[int] = set()
    seen_docs: set[str] = set()
    documents = []
    for name in sorted(names):
        module = _import(name)
        if module is None:
            continue
        sentences: list[str] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated modules warn on attribute access
            docstrings = _docstrings_of(module, wanted, seen_objects)
        for doc in docstrings:
            key = inspect.cleandoc(doc)
            if key in seen_docs:
                continue
            seen_docs.add(key)
            sentences.extend(docstring_sentences(doc))
        if len(sentences) >= min_sentences:
            documents.append(Document(name, tuple(sentences)))
    return documents


def _docstrings_of(module, wanted: set[str], seen_objects: set[int]) -> list[str]:
    top = module.__name__.split(".")[0]
    out = [module.__doc__] if isinstance(module.__doc__, str) else []
    namespace = vars(module)
    for name, obj in sorted(namespace.items()):
        if name.startswith("_"):
            continue
        # sys keeps the original of a hook a program may replace (pytest replaces
        # sys.unraisablehook) as sys.__<name>__: document the original.
        obj = namespace.get(f"__{name}__", obj)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        owner = getattr(obj, "__module__", None)
        owner = owner if isinstance(owner, str) else module.__name__
        if owner != module.__name__ and (owner.split(".")[0] != top or owner in wanted):
            continue  # imported from another package, or documented in its own module
        if id(obj) in seen_objects:
            continue
        seen_objects.add(id(obj))
        if isinstance(obj.__doc__, str):
            out.append(obj.__doc__)
        if inspect.isclass(obj):
            for member_name, member in sorted(vars(obj).items()):
                if member_name.startswith("_"):
                    continue
                member = getattr(member, "__func__", member)  # classmethod / staticmethod
                if ((inspect.isroutine(member) or isinstance(member, property))
                        and _from_stdlib(member) and isinstance(member.__doc__, str)):
                    out.append(member.__doc__)
    return out


def _from_stdlib(member) -> bool:
    """False for a method another package patched into a stdlib class (transformers adds
    methods to logging.Logger on import): the corpus must not depend on what was imported."""
    owner = getattr(getattr(member, "fget", member), "__module__", None)
    return not isinstance(owner, str) or owner.split(".")[0] in sys.stdlib_module_names


def corpus_text(documents: Iterable[Document]) -> str:
    """create_pretraining_data's input format: one sentence per line, a blank line after each
    document."""
    return "".join("\n".join(d.sentences) + "\n\n" for d in documents)


def write_corpus(output_file: str | os.PathLike, documents: Iterable[Document] | None = None
                 ) -> tuple[int, int]:
    """Writes the corpus (default: every stdlib module); returns (documents, sentences)."""
    documents = list(stdlib_documents() if documents is None else documents)
    _makedirs_for(output_file)
    with atomic_output(output_file) as f:
        f.write(corpus_text(documents))
    return len(documents), sum(len(d.sentences) for d in documents)


def stdlib_docstring_lines(limit: int | None = None) -> list[str]:
    """Non-empty docstring lines (as written, not split into sentences) of the importable
    top-level standard-library modules and their members, in a fixed order (bench/ corpus)."""
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(set(sys.stdlib_module_names)):
            if name.startswith(_SKIP):
                continue
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - platform-specific modules may not import
                continue
            for _, obj in [(name, module), *sorted(vars(module).items())]:
                doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
                if doc:
                    lines.extend(line.strip() for line in doc.splitlines() if line.strip())
            if limit and len(lines) >= limit:
                break
    return lines[:limit] if limit else lines


# ----------------------------------------------------------------------------- docs_topic
def topic_of(module: str, topics: Mapping[str, Sequence[str]] = TOPICS) -> str | None:
    """The topic label of a (dotted) module name, from its top-level module; None if none."""
    top = module.split(".")[0]
    for label, members in topics.items():
        if top in members:
            return label
    return None


def _usable(sentence: str, min_words: int, max_words: int) -> bool:
    words = sentence.split()
    return (min_words <= len(words) <= max_words and sum(c.isalpha() for c in sentence)
            >= len(sentence) // 2)


def _split_of(text: str, dev_fraction: float, test_fraction: float) -> str:
    bucket = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + dev_fraction:
        return "dev"
    return "train"


def topic_dataset(documents: Iterable[Document], topics: Mapping[str, Sequence[str]] = TOPICS,
                  dev_fraction: float = 0.1, test_fraction: float = 0.1, min_words: int = 4,
                  max_words: int = 48, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """The docs_topic splits: {"train"|"dev"|"test": [(sentence, label), ...]}.

    Sentences of `min_words`–`max_words` words (mostly letters) from the documents of the
    topics' modules; a sentence text found under two labels is dropped, one found twice under
    one label kept once. The split is a hash of the text; then every label is cut to the
    smallest label's count in that split (a seeded sample, in corpus order), so each split is
    balanced; rows are shuffled with `seed`.
    """
    labels_of: dict[str, set[str]] = {}
    order: list[str] = []
    for document in documents:
        label = topic_of(document.module, topics)
        if label is None:
            continue
        for sentence in document.sentences:
            sentence = _SPACE.sub(" ", sentence).strip()
            if not _usable(sentence, min_words, max_words):
                continue
            if sentence not in labels_of:
                labels_of[sentence] = set()
                order.append(sentence)
            labels_of[sentence].add(label)
    by_split: dict[str, dict[str, list[str]]] = {s: {label: [] for label in topics}
                                                 for s in TOPIC_SPLITS}
    for sentence in order:
        if len(labels_of[sentence]) == 1:
            (label,) = labels_of[sentence]
            by_split[_split_of(sentence, dev_fraction, test_fraction)][label].append(sentence)
    rng = random.Random(seed)
    splits = {}
    for split in TOPIC_SPLITS:
        per_label = min(len(v) for v in by_split[split].values())
        rows = []
        for label in topics:
            keep = sorted(rng.sample(range(len(by_split[split][label])), per_label))
            rows.extend((by_split[split][label][i], label) for i in keep)
        rng.shuffle(rows)
        splits[split] = rows
    return splits


def write_topic_dataset(output_dir: str | os.PathLike,
                        splits: Mapping[str, Sequence[tuple[str, str]]]) -> dict[str, int]:
    """Writes `<split>.tsv` (header `sentence<TAB>label`) per split; returns rows per split."""
    os.makedirs(output_dir, exist_ok=True)
    counts = {}
    for split, rows in splits.items():
        with atomic_output(os.path.join(output_dir, f"{split}.tsv")) as f:
            f.write("\t".join(TOPIC_HEADER) + "\n")
            for sentence, label in rows:
                if "\t" in sentence or "\n" in sentence or "\t" in label:
                    raise ValueError(f"a tab or newline in a row: {sentence!r}")
                f.write(f"{sentence}\t{label}\n")
        counts[split] = len(rows)
    return counts


# ----------------------------------------------------------------------------- report
def read_results(path: str | os.PathLike) -> dict[str, float]:
    """Google's `key = value` results file (eval_results.txt) as numbers where they parse."""
    results = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                key, value = (s.strip() for s in line.split("=", 1))
                try:
                    results[key] = float(value)
                except ValueError:
                    pass
    return results


def label_counts(tsv_file: str | os.PathLike) -> dict[str, int]:
    """Rows per label of a docs_topic file."""
    counts: dict[str, int] = {}
    with open(tsv_file, encoding="utf-8") as f:
        next(f, None)
        for line in f:
            label = line.rstrip("\n").split("\t")[-1]
            counts[label] = counts.get(label, 0) + 1
    return counts


def most_frequent_masked_token(record_file: str | os.PathLike) -> tuple[int, float]:
    """(token id, share of the masked positions) of the most frequent masked token of Google's
    pretraining records: the accuracy of always guessing that token."""
    import numpy as np
    import tensorflow as tf

    counts: dict[int, int] = {}
    for raw in tf.data.TFRecordDataset(os.fspath(record_file)).as_numpy_iterator():
        feature = tf.train.Example.FromString(raw).features.feature
        ids = np.asarray(feature["masked_lm_ids"].int64_list.value)
        weights = np.asarray(feature["masked_lm_weights"].float_list.value)
        for token in ids[weights > 0].tolist():
            counts[token] = counts.get(token, 0) + 1
    if not counts:
        raise InputError(f"{record_file}: no masked positions")
    token = max(sorted(counts), key=counts.__getitem__)
    return token, counts[token] / sum(counts.values())


def demo_report(pretrain_dir: str, init_eval_dir: str, classifier_dir: str, data_dir: str,
                vocab_file: str | None = None, record_file: str | None = None) -> str:
    """The demo's learning summary as printable lines: masked-LM accuracy at chance (uniform
    over the vocab), of always guessing the most frequent masked token, at random init and after
    pretraining; the classifier's dev accuracy and the majority-class baseline."""
    trained = read_results(os.path.join(pretrain_dir, "eval_results.txt"))
    untrained = read_results(os.path.join(init_eval_dir, "eval_results.txt"))
    classifier = read_results(os.path.join(classifier_dir, "eval_results.txt"))
    counts = label_counts(os.path.join(data_dir, "dev.tsv"))
    baseline = max(counts.values()) / sum(counts.values())
    rows = []
    if vocab_file:
        from bert_tf.text.vocab import load_vocab

        tokens = load_vocab(vocab_file, required_special_tokens=()).tokens
        rows.append((f"chance (uniform over the {len(tokens)} tokens)", 1 / len(tokens)))
        if record_file:
            token, share = most_frequent_masked_token(record_file)
            rows.append((f"always guessing the most frequent token {tokens[token]!r}", share))
    steps = int(trained.get("global_step", 0))
    rows += [("before pretraining (random init)", untrained["masked_lm_accuracy"]),
             (f"after pretraining ({steps} steps)", trained["masked_lm_accuracy"])]
    lines = ["masked-LM accuracy (evaluated on the pretraining records):"]
    lines += [f"  {name:<56}{value:7.2%}" for name, value in rows]
    lines += [
        f"  {'next-sentence accuracy before -> after':<56}"
        f"{untrained['next_sentence_accuracy']:7.2%} -> {trained['next_sentence_accuracy']:.2%}",
        f"docs_topic classifier, dev.tsv ({sum(counts.values())} sentences, {len(counts)} "
        f"labels):",
        f"  {'majority-class baseline':<56}{baseline:7.2%}",
        f"  {'fine-tuned from the pretrained checkpoint':<56}{classifier['accuracy']:7.2%}",
    ]
    return "\n".join(lines)


def _makedirs_for(path: str | os.PathLike) -> None:
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)


# ----------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bert_tf.data.demo",
                                     description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("corpus", help="write the stdlib docstring corpus")
    p.add_argument("--output_file", required=True)
    p = commands.add_parser("topics", help="write docs_topic train/dev/test.tsv")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    p = commands.add_parser("report", help="print MLM accuracy before/after, dev vs baseline")
    p.add_argument("--pretrain_dir", required=True)
    p.add_argument("--init_eval_dir", required=True)
    p.add_argument("--classifier_dir", required=True)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--vocab_file")
    p.add_argument("--record_file", help="the pretraining records (most-frequent-token line)")
    args = parser.parse_args(argv)

    if args.command == "corpus":
        docs, sentences = write_corpus(args.output_file)
        print(f"wrote {args.output_file}: {docs} documents (modules), {sentences} sentences")
    elif args.command == "topics":
        splits = topic_dataset(stdlib_documents(), seed=args.seed)
        counts = write_topic_dataset(args.output_dir, splits)
        print(f"wrote {args.output_dir}/{{train,dev,test}}.tsv: "
              + ", ".join(f"{split} {n}" for split, n in counts.items())
              + f" rows; labels {', '.join(TOPICS)} (balanced)")
    else:
        print(demo_report(args.pretrain_dir, args.init_eval_dir, args.classifier_dir,
                          args.data_dir, args.vocab_file, args.record_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
