# The two commands a new user needs:  `make demo`  and  `make test`.
# Each creates the virtual environment on first use (scripts/bootstrap.sh).
VENV ?= .venv
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export ANONYMIZED_TELEMETRY ?= False

.PHONY: demo test test-all bench setup clean-models

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) ./scripts/bootstrap.sh

demo: setup
	$(VENV)/bin/dca demo

test: setup
	$(VENV)/bin/python -m pytest -q tests

test-all: setup
	DCA_SLOW=1 $(VENV)/bin/python -m pytest -q tests

clean-models:
	rm -rf $${DCA_HOME:-$$HOME/.cache/dca}/models
