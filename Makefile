# Every target sets itself up: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
A3     := $(VENV)/bin/a3
OUT    ?= out/demo
STAMP  := $(VENV)/.installed

.PHONY: setup test demo demo-classify demo-caption demo-visualize demo-stylize demo-gan bench weights clean

setup: $(STAMP)

# torch/torchvision are pinned in pyproject.toml; on this project's machines pip takes
# them from local files (never another multi-GB build).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

demo: demo-classify demo-caption demo-visualize demo-stylize demo-gan

demo-classify: setup
	$(A3) info
	$(A3) classify examples/coffee.jpg examples/chelsea.jpg examples/rocket.jpg --top 3 \
		--out $(OUT)/classify.png --json $(OUT)/classify.json

demo-caption: setup

demo-visualize: setup

demo-stylize: setup

demo-gan: setup

# Small weights the project trains itself with its own code (weights/README.md says how).
WEIGHTS :=
weights: $(WEIGHTS)

# OpenBLAS variables that this machine may set slow NumPy down; unset them so the
# NumPy baseline is fair.
bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) benchmarks/bench_lstm.py

clean:
	rm -rf $(VENV) out .pytest_cache
