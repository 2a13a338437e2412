# Two entry points for a fresh clone: `make serve` and `make test`.
# Everything installs into .venv from this repository's own files.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU machines carry a local torch 2.13.0 wheel; elsewhere override, e.g. TORCH_SPEC='torch>=2.5'.
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: serve test lint format browser datasets docs

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Serving needs no torch.
$(VENV)/.serve-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[train,test,docs]'
	touch $@ $(VENV)/.serve-installed

serve: $(VENV)/.serve-installed
	$(VENV)/bin/bentoml serve --host $(HOST) --port $(PORT) --timeout-keep-alive 75

# The demo page's browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: chromium missing and not installable here; the browser tests will skip (fail under CI)"

# Fashion-MNIST from Debian (/usr/share/datasets/fashion-mnist), so the tests train on the real files.
datasets:
	@[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || { \
	  command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist; } || \
	  echo "warning: dataset-fashion-mnist missing and not installable here; its test will skip (fail under CI)"

test: $(VENV)/.dev-installed browser datasets
	$(PY) -m pytest

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

# The documentation site (docs/, mkdocs.yml): generated pages must be current, then a strict build into site/.
docs: $(VENV)/.dev-installed
	$(PY) scripts/gen_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
