# The two commands of the quick start: `make demo` and `make test` (`make lint` first).
# Both create (or reuse) the virtual environment $(VENV) and install what they need into it.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
PYTEST_ARGS ?=
# Test files run on TEST_WORKERS pytest-xdist workers, each file whole on one worker (its
# module fixtures, such as a reference training run, are built once), in the order of
# tests/conftest.py (the longest files first); 0 runs them in this process.
TEST_WORKERS ?= 2

.PHONY: install install-test demo lint test clean

$(VENV)/.runtime: setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $@

# torch and facenet-pytorch are for the weight converters, the ONNX export (with onnx,
# onnxscript, onnxruntime from the test extra) and the PyTorch reference tests only; training, preparation (face crops included) and prediction never import them. facenet-pytorch 2.6.0 pins
# torch<2.3 and numpy<2 but works with these releases, hence --no-deps.
$(VENV)/.test: $(VENV)/.runtime
	$(PIP) -e '.[test]'
	$(PIP) torch==2.14.1 torchvision==0.29.1
	$(PIP) --no-deps facenet-pytorch==2.6.0
	$(PIP) requests
	touch $@

install: $(VENV)/.runtime
install-test: $(VENV)/.test

# ruff, configured in pyproject.toml; takes a second.
lint: $(VENV)/.test
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Trains configs/demo.py on the generated set (prepared on first use), evaluates the best
# checkpoint on the test split, writes the plots and prints where everything is. Running it
# again on a finished run only re-evaluates.
DEMO_WORKDIR ?= workdirs/demo
demo: $(VENV)/.runtime
	$(PY) -m hsnet_jax.train --config configs/demo.py --workdir $(DEMO_WORKDIR)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
