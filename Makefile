# The two commands a new user needs (see README):
#   make explorer   set up and open the explorer on the bundled demo
#   make test       set up and run the whole test suite
VENV ?= .venv
PORT ?= 5006

.PHONY: setup setup-dev explorer test test-fast demo-checkpoint demo-embeddings demo-index demo-reports

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

explorer: setup
	$(VENV)/bin/panel serve explorer/app.py --address 127.0.0.1 --port $(PORT) \
		--allow-websocket-origin localhost:$(PORT) --allow-websocket-origin 127.0.0.1:$(PORT)

test: setup-dev
	$(VENV)/bin/python -m pytest

test-fast: setup-dev
	$(VENV)/bin/python -m pytest -m "not slow"

demo-checkpoint: setup
	PATH=$(VENV)/bin:$$PATH bash scripts/train_demo.sh

demo-embeddings: setup
	PATH=$(VENV)/bin:$$PATH bash scripts/build_demo_embeddings.sh
	PATH=$(VENV)/bin:$$PATH python -m explorer.prepare

demo-index: demo-embeddings  # its old name

demo-reports: setup
	PATH=$(VENV)/bin:$$PATH bash scripts/demo_reports.sh
