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

# The CI suite: fast tests only (tests marked `slow` are excluded), in TEST_WORKERS processes,
# each test file in one of them (module fixtures are built once). On 2 cores, 2 workers halve the
# wall time: most of a test's time is single-threaded (imports, tracing, subprocess start-up).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile --timeout=600 \
	  --durations=15

# Everything, slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest tests -q -n $(TEST_WORKERS) --dist loadfile --timeout=1800

# The main job on the embedded default, end to end (4-6 minutes on 2 CPU cores): Python's
# stdlib docstrings -> WordPiece vocab -> BERT-tiny pretraining -> docs_topic classifier ->
# SavedModel + TFLite -> predictions in-process, over gRPC/REST and TFLite -> the model server
# with export/serving_client.py. Starts from an empty $(DEMO); every command is printed. Stage 7
# waits for the server's REST status page and stops the server even when a command fails.
DEMO_SEQ         ?= 64
DEMO_VOCAB_SIZE  ?= 4000
DEMO_STEPS       ?= 1200
DEMO_MODEL       ?= docs_topic
DEMO_SENTENCES   ?= configs/demo/docs_topic_sentences.txt
# Two free local ports (gRPC, REST) for the background server of stage 7.
FREE_PORTS = $(PY) -c 'import socket; s = [socket.socket() for _ in "ab"]; \
  [x.bind(("127.0.0.1", 0)) for x in s]; print(*[x.getsockname()[1] for x in s])'

demo: export TF_CPP_MIN_LOG_LEVEL = 2
demo: $(STAMP)
	@echo "== stage 0/7 [$$(date +%T)] start clean"
	rm -rf $(DEMO)
	@echo "== stage 1/7 [$$(date +%T)] corpus: the docstrings of Python's standard library, one document per module"
	$(PY) -m bert_tf.data.demo corpus --output_file=$(DEMO)/corpus.txt
	@echo "== stage 2/7 [$$(date +%T)] WordPiece vocab learned from the corpus; BERT-tiny config with its size"
	$(PY) -m bert_tf.cli.build_vocab --input_file=$(DEMO)/corpus.txt --vocab_size=$(DEMO_VOCAB_SIZE) \
	  --do_lower_case=true --output_file=$(DEMO)/vocab.txt
	$(PY) -m bert_tf.cli.bert_config --base_config=configs/bert_tiny.json \
	  --vocab_file=$(DEMO)/vocab.txt --output_file=$(DEMO)/bert_config.json
	@echo "== stage 3/7 [$$(date +%T)] pretraining: records, masked-LM accuracy at random init, $(DEMO_STEPS) steps"
	$(PY) create_pretraining_data.py --input_file=$(DEMO)/corpus.txt --output_file=$(DEMO)/pretrain.tfrecord \
	  --vocab_file=$(DEMO)/vocab.txt --do_lower_case=true --max_seq_length=$(DEMO_SEQ) \
	  --max_predictions_per_seq=10 --dupe_factor=5 --progress=false
	$(PY) run_pretraining.py --bert_config_file=$(DEMO)/bert_config.json --input_file=$(DEMO)/pretrain.tfrecord \
	  --output_dir=$(DEMO)/pretrain_init --do_eval --eval_batch_size=32 --max_eval_steps=20 \
	  --max_seq_length=$(DEMO_SEQ) --max_predictions_per_seq=10 --seed=1
	$(PY) run_pretraining.py --bert_config_file=$(DEMO)/bert_config.json --input_file=$(DEMO)/pretrain.tfrecord \
	  --output_dir=$(DEMO)/pretrain --do_train --do_eval --train_batch_size=32 --eval_batch_size=32 \
	  --max_eval_steps=20 --max_seq_length=$(DEMO_SEQ) --max_predictions_per_seq=10 \
	  --num_train_steps=$(DEMO_STEPS) --num_warmup_steps=300 --learning_rate=1e-3 --log_steps=250 --seed=1
	cp $(DEMO)/vocab.txt $(DEMO)/pretrain/vocab.txt
	@echo "   fill-mask with the pretrained model (bert_tf.pipeline through its command line):"
	$(PY) -m bert_tf.cli.predict --model=$(DEMO)/pretrain --task=fill-mask --top_k=3 --max_seq_length=$(DEMO_SEQ) \
	  --text="Open a [MASK] to the mail server and send the message." \
	  --text="Wait until every worker [MASK] has finished its task." \
	  --text="Return the [MASK] of the file as a string."
	@echo "== stage 4/7 [$$(date +%T)] fine-tuning: docs_topic (which module family a docstring sentence is from)"
	$(PY) -m bert_tf.data.demo topics --output_dir=$(DEMO)/$(DEMO_MODEL)
	$(PY) run_classifier.py --task_name=tsv --data_dir=$(DEMO)/$(DEMO_MODEL) --header \
	  --text_column=sentence --label_column=label --labels=files,network,concurrency,debugging \
	  --init_checkpoint=$(DEMO)/pretrain/bert_model.ckpt --do_lower_case=true --do_train --do_eval \
	  --max_seq_length=$(DEMO_SEQ) --train_batch_size=32 --eval_batch_size=32 --learning_rate=5e-4 \
	  --num_train_epochs=5 --log_steps=100 --seed=1 --output_dir=$(DEMO)/classifier \
	  --export_dir=$(DEMO)/serving --export_model_name=$(DEMO_MODEL)
	@echo "== stage 5/7 [$$(date +%T)] TFLite conversion of the exported classifier"
	$(PY) export/export_tflite.py --saved_model_dir=$(DEMO)/serving/$(DEMO_MODEL)/1 --quantize=none \
	  --output_file=$(DEMO)/tflite/model.tflite
	@echo "== stage 6/7 [$$(date +%T)] predictions: SavedModel in-process | gRPC | REST (server on free ports) | TFLite"
	$(PY) -m bert_tf.cli.compare --saved_model_dir=$(DEMO)/serving/$(DEMO_MODEL)/1 \
	  --tflite_file=$(DEMO)/tflite/model.tflite --texts_file=$(DEMO_SENTENCES)
	@echo "== stage 7/7 [$$(date +%T)] the model server in the background, queried by export/serving_client.py"
	@set -e; set -- $$($(FREE_PORTS)); \
	server="$(PY) -m bert_tf.cli.serve --model_base_path=$(DEMO)/serving/$(DEMO_MODEL) --model_name=$(DEMO_MODEL) --port=$$1 --rest_api_port=$$2"; \
	echo "$$server > $(DEMO)/server.log 2>&1 &"; \
	$$server > $(DEMO)/server.log 2>&1 & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true' EXIT INT TERM; \
	ready=0; for i in $$(seq 120); do \
	  kill -0 $$pid 2>/dev/null || { cat $(DEMO)/server.log; echo "demo: the server exited" >&2; exit 1; }; \
	  if $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
	    http://127.0.0.1:$$2/v1/models/$(DEMO_MODEL) 2>/dev/null; then ready=1; break; fi; sleep 1; \
	done; \
	[ $$ready = 1 ] || { cat $(DEMO)/server.log; echo "demo: the server did not come up in 120 s" >&2; exit 1; }; \
	echo "$(PY) export/serving_client.py --server=127.0.0.1:$$1 --protocol=grpc --model_name=$(DEMO_MODEL) --input_file=$(DEMO_SENTENCES)"; \
	$(PY) export/serving_client.py --server=127.0.0.1:$$1 --protocol=grpc --model_name=$(DEMO_MODEL) --input_file=$(DEMO_SENTENCES); \
	echo "kill -TERM $$pid   # stop the server"; \
	kill -TERM $$pid; wait $$pid; trap - EXIT INT TERM; echo "server stopped"
	@echo "== done [$$(date +%T)]"
	@$(PY) -m bert_tf.data.demo report --pretrain_dir=$(DEMO)/pretrain --init_eval_dir=$(DEMO)/pretrain_init \
	  --classifier_dir=$(DEMO)/classifier --data_dir=$(DEMO)/$(DEMO_MODEL) --vocab_file=$(DEMO)/vocab.txt \
	  --record_file=$(DEMO)/pretrain.tfrecord
	@echo "outputs in $(DEMO)/: corpus.txt vocab.txt bert_config.json pretrain/ (Google checkpoint) $(DEMO_MODEL)/ (TSVs)"
	@echo "  classifier/ (fine-tuned Google checkpoint) serving/$(DEMO_MODEL)/1 (SavedModel) tflite/model.tflite"

# Benchmarks against peers → BENCHMARKS.md: bench/report.py runs every bench/ script (tokenization,
# pretraining_data, pretraining, pretraining --head=classifier|token_classifier|span_qa, serving,
# serving_ner, serving_qa; peers in the same run) and
# writes machine, versions, commands and one table per benchmark (JSON and logs in output/bench/).
# BENCH_QUICK=1: tiny models and one repeat, a smoke test of the pipeline (written to
# output/bench-quick/BENCHMARKS.md, never to BENCHMARKS.md).
BENCH_QUICK ?=
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/report.py $(if $(filter 1 true yes,$(BENCH_QUICK)),--quick,--noquick)

clean:
	rm -rf $(VENV) output .pytest_cache
