# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/lib/chromium/chromium

.PHONY: test test-fast lint demo demo-ports demo-serve serve venv browser nginx bench tensorboard clean clean-demo

venv: $(STAMP)

# (Re)build the environment whenever a requirements file or setup.py changes.
$(STAMP): requirements.txt requirements-test.txt requirements-tflite.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Debian's chromium for the browser tests (never `playwright install`).
browser:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's nginx for the web front's test and bench.slow_clients.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx-light >/dev/null; }

# Two pytest workers (pytest-xdist), each taking whole test files, so a module's shared
# fixture (a cluster run, an export) runs once. A test past its time limit ends its worker
# (pytest.ini); no other worker is started, so the run ends with that test failed.
test: lint browser nginx
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart=0

# A fast subset for development (docs/development.md): no browser, no cluster, no gunicorn or
# nginx, none of the tests marked slow, none of the end-to-end runs of the training, evaluation
# and export scripts or of model server processes, no export of each kind of network.
# `make test` stays the full suite that CI runs.
FAST_IGNORE := tests/web/test_gunicorn.py tests/web/test_nginx_front.py tests/web/test_failover.py \
  tests/web/test_hung_replica.py tests/web/test_web_load.py tests/test_train_ssd_network.py \
  tests/test_eval_ssd_network.py tests/test_export_model.py \
  tests/serving/test_model_server_process.py tests/export/test_manifest_serving.py
test-fast: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart=0 -m 'not slow and not browser' \
	  $(addprefix --ignore=,$(FAST_IGNORE))

lint: $(STAMP)
	$(BIN)/ruff check .

# ---- make demo: synthetic data -> train -> evaluate -> export -> serve -> web page ----
# Every stage is a file target, so running it again reuses what exists (an interrupted
# training resumes from its newest checkpoint). Override any of these on the command line.
DEMO_DIR ?= demo_work
DEMO_SEED ?= 0
DEMO_NUM_TRAIN ?= 2000
DEMO_NUM_TEST ?= 300
DEMO_MODEL ?= ssd_300_mobilenet_v2
DEMO_TRAIN_STEPS ?= 600
DEMO_TRAIN_SECS ?= 1200
GRPC_PORT ?= 8500
WEB_PORT ?= 5000
DEMO_VOC := $(DEMO_DIR)/shapes_voc
DEMO_RECORDS := $(DEMO_DIR)/records
DEMO_TRAIN := $(DEMO_DIR)/train
DEMO_EXPORT := $(DEMO_DIR)/exports/ssd

# Each stage also depends on a file holding the knobs it reads, rewritten only when a value
# changes: new data knobs redo everything, a new model or seed retrains from scratch, more
# steps or seconds resume the training; evaluation and export follow the training.
KNOBS := $(DEMO_DIR)/.knobs
knob = $(shell mkdir -p $(KNOBS) && { echo '$(2)' | cmp -s - $(KNOBS)/$(1) || echo '$(2)' > $(KNOBS)/$(1); })$(KNOBS)/$(1)
ifneq ($(filter demo,$(MAKECMDGOALS)),)
KNOB_DATA := $(call knob,data,$(DEMO_NUM_TRAIN) $(DEMO_NUM_TEST) $(DEMO_SEED))
KNOB_MODEL := $(call knob,model,$(DEMO_MODEL) $(DEMO_SEED) $(DEMO_NUM_TRAIN) $(DEMO_NUM_TEST))
KNOB_STEPS := $(call knob,steps,$(DEMO_TRAIN_STEPS) $(DEMO_TRAIN_SECS))
endif

demo: demo-ports $(STAMP) $(DEMO_DIR)/eval/metrics.json $(DEMO_EXPORT)/1/saved_model.pb demo-serve

# Fail before any work when a port the demo listens on is taken.
demo-ports:
	@$(PYTHON) -m common.ports GRPC_PORT=127.0.0.1:$(GRPC_PORT) WEB_PORT=127.0.0.1:$(WEB_PORT)

$(DEMO_VOC)/ImageSets/Main/test.txt: $(KNOB_DATA) | $(STAMP)
	rm -rf $(DEMO_VOC)
	$(BIN)/python datasets/make_shapes_dataset.py --output_dir $(DEMO_VOC) \
	  --num_train $(DEMO_NUM_TRAIN) --num_test $(DEMO_NUM_TEST) --seed $(DEMO_SEED) --num_workers 2

$(DEMO_RECORDS)/shapes_%_summary.json: $(DEMO_VOC)/ImageSets/Main/test.txt
	$(BIN)/python tf_convert_data.py --dataset_name=pascalvoc --dataset_dir=$(DEMO_VOC) \
	  --split_name=$* --labels_file=$(DEMO_VOC)/labels.txt --output_dir=$(DEMO_RECORDS) \
	  --output_name=shapes_$* --num_workers=2 --seed=$(DEMO_SEED)

$(DEMO_TRAIN)/.done: $(DEMO_RECORDS)/shapes_trainval_summary.json $(KNOB_MODEL) $(KNOB_STEPS)
	cmp -s $(KNOBS)/model $(DEMO_TRAIN)/.knobs || rm -rf $(DEMO_TRAIN)
	$(BIN)/python train_ssd_network.py --dataset_dir=$(DEMO_RECORDS) --dataset_name=shapes \
	  --dataset_split_name=trainval --model_name=$(DEMO_MODEL) --train_dir=$(DEMO_TRAIN) \
	  --batch_size=8 --optimizer=adam --learning_rate=0.0015 --learning_rate_decay_type=cosine \
	  --warmup_steps=100 --end_learning_rate=0.00001 --weight_decay=0.00004 \
	  --max_number_of_steps=$(DEMO_TRAIN_STEPS) --max_train_secs=$(DEMO_TRAIN_SECS) \
	  --seed=$(DEMO_SEED) --log_every_n_steps=20 --save_interval_secs=120
	cp $(KNOBS)/model $(DEMO_TRAIN)/.knobs
	touch $@

$(DEMO_DIR)/eval/metrics.json: $(DEMO_TRAIN)/.done $(DEMO_RECORDS)/shapes_test_summary.json
	$(BIN)/python eval_ssd_network.py --checkpoint_path=$(DEMO_TRAIN) --dataset_dir=$(DEMO_RECORDS) \
	  --dataset_name=shapes --dataset_split_name=test --model_name=$(DEMO_MODEL) \
	  --eval_dir=$(DEMO_DIR)/eval --num_visualizations=8

$(DEMO_EXPORT)/1/saved_model.pb: $(DEMO_TRAIN)/.done
	rm -rf $(DEMO_EXPORT)
	$(BIN)/python export_model.py --checkpoint_path=$(DEMO_TRAIN) --model_name=$(DEMO_MODEL) \
	  --export_dir=$(DEMO_EXPORT) --version=1 --labels_file=$(DEMO_RECORDS)/labels.txt

# The local model server on an export (the demo's, or MODEL_BASE_PATH=...), then (once it
# serves the model) the web app, in the foreground: `make serve MODEL_BASE_PATH=exports/ssd`.
# Ctrl-C (or SIGTERM) stops both and exits 0: common.foreground gives the servers' shell the
# terminal, so Ctrl-C reaches it and not make (which would end with `make: *** ... Interrupt`);
# SIGTERM to each, SIGKILL to what is left after 10 s; if either dies, the other is stopped
# (exit 1). MODEL_HINT is a line shown on the page.
MODEL_BASE_PATH ?= $(DEMO_EXPORT)
# Ctrl-C or SIGTERM stops both servers. gunicorn's master is given 25 s, more than its
# graceful_timeout (20 s, web/gunicorn.conf.py), after which it kills a worker that has not
# ended itself; killing the master sooner would leave such a worker behind.
serve: demo-ports $(STAMP)
	@$(BIN)/python -m common.foreground $(SHELL) -c '\
	stop() { kill $$server $$web 2>/dev/null; \
	  for i in $$(seq 250); do kill -0 $$server 2>/dev/null || kill -0 $$web 2>/dev/null || break; sleep 0.1; done; \
	  kill -9 $$server $$web 2>/dev/null; wait; }; \
	trap "stop; exit 0" INT TERM; \
	$(BIN)/python -m serving.model_server --host=127.0.0.1 --port=$(GRPC_PORT) --model_name=ssd \
	  --model_base_path=$(abspath $(MODEL_BASE_PATH)) & server=$$!; \
	$(BIN)/python -m web.wait_ready --serving_address=127.0.0.1:$(GRPC_PORT) --timeout=180 \
	  || { stop; exit 1; }; \
	SERVING_ADDRESS=127.0.0.1:$(GRPC_PORT) MODEL_NAME=ssd MODEL_HINT="$(MODEL_HINT)" \
	  WEB_BIND=127.0.0.1:$(WEB_PORT) WEB_WORKERS=2 \
	  $(BIN)/gunicorn -c web/gunicorn.conf.py "web:create_app()" & web=$$!; \
	if $(BIN)/python -m web.wait_ready --url=http://127.0.0.1:$(WEB_PORT)/healthz --timeout=180; then \
	  echo; echo "  Open http://127.0.0.1:$(WEB_PORT)/  (Ctrl-C stops the model server and the web app)"; echo; \
	  wait -n; fi; \
	stop; exit 1'

# `serve` on the demo's export, with a hint on the page.
demo-serve: MODEL_HINT = The demo model knows only synthetic shapes; try its test images, $(abspath $(DEMO_VOC))/JPEGImages/test_*.jpg.
demo-serve: serve

# Training and evaluation curves of the demo (or TRAIN_DIR=... EVAL_DIR=...) side by side, as
# the runs `train` and `eval`, on http://127.0.0.1:$(TB_PORT)/.
TRAIN_DIR ?= $(DEMO_TRAIN)
EVAL_DIR ?= $(DEMO_DIR)/eval
TB_PORT ?= 6006
tensorboard: $(STAMP)
	@$(PYTHON) -m common.ports TB_PORT=127.0.0.1:$(TB_PORT)
	$(BIN)/tensorboard --logdir_spec=train:$(TRAIN_DIR),eval:$(EVAL_DIR) --host=127.0.0.1 \
	  --port=$(TB_PORT)

bench: $(STAMP)
	for b in convert input_pipeline nets train serving web_load distributed; do $(BIN)/python -m bench.$$b || exit 1; done

# clean-demo removes the demo's outputs only; clean also removes .venv.
clean-demo:
	rm -rf $(DEMO_DIR)

clean: clean-demo
	rm -rf $(VENV) build *.egg-info
