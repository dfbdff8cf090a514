# bert_tf developer commands. `make test` is what CI (.ci/run) runs.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= output/demo

.PHONY: install test test-all demo bench clean

# Creates the virtualenv and installs the package with its test extra (re-run when setup.py changes).
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The CI suite: fast tests only (tests marked `slow` are excluded).
test: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow" --timeout=600 --durations=15

# Everything, slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest tests -q --timeout=1800

# The main job on the embedded default: a BERT-tiny checkpoint in Google's format (randomly
# initialised until pretraining lands) encodes the sentences in configs/demo/sentences.txt.
demo: $(STAMP)
	$(PY) -m bert_tf.checkpoints.random_init --bert_config_file=configs/bert_tiny.json \
	  --vocab_file=configs/demo/vocab.txt --output_dir=$(DEMO)/bert_tiny
	$(PY) extract_features.py --input_file=configs/demo/sentences.txt \
	  --output_file=$(DEMO)/features.jsonl --init_checkpoint=$(DEMO)/bert_tiny/bert_model.ckpt \
	  --vocab_file=$(DEMO)/bert_tiny/vocab.txt --bert_config_file=$(DEMO)/bert_tiny/bert_config.json \
	  --layers=-1,-2 --max_seq_length=32 --batch_size=8
	@echo "features: $(DEMO)/features.jsonl"

# Benchmarks against peers (printed tables with ratios, peers run in the same process).
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/tokenization.py
	$(PY) bench/pretraining_data.py
	$(PY) bench/pretraining.py
	$(PY) bench/pretraining.py --head=classifier

clean:
	rm -rf $(VENV) output .pytest_cache
