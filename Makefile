# `make demo`: set up and train on real data, printing the metrics.  `make test`: set up and run the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast bench clean fortunes

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# aeon only for the BasicMotions recordings it ships (never imported): its pins would downgrade numpy and pandas.
	$(BIN)/pip install --quiet --no-deps 'aeon==1.6.0'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/breast_cancer/make_data.py
	cd examples/breast_cancer && ../../$(BIN)/lamina train config.yaml --output-dir ../../runs
	$(BIN)/python examples/credit_default/make_data.py
	cd examples/credit_default && ../../$(BIN)/lamina train config.yaml --output-dir ../../runs
	$(BIN)/python examples/digits/make_data.py
	cd examples/digits && ../../$(BIN)/lamina train config.yaml --output-dir ../../runs

# Debian's fortune cookies (the 40-topic text set of examples/fortunes and its tests): installed when missing, as root.
fortunes:
	@if [ ! -d /usr/share/games/fortunes ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes >/dev/null; fi

test: $(BIN)/.installed fortunes
	$(BIN)/pytest -q --durations=15

test-fast: $(BIN)/.installed fortunes
	$(BIN)/pytest -q -m "not slow"

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/classical.py
	$(BIN)/python benchmarks/images.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/recommend.py
	$(BIN)/python benchmarks/compare.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) runs build examples/*/data.csv examples/digits/digits examples/digits/mnist examples/digits/digits.csv
