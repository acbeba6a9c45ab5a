# Two commands on a fresh machine: `make demo` and `make test`.  Both create .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test venv clean lint vendor-yasgui bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@mkdir -p $(OUT)
	$(VENV)/bin/cartkg records data/examples --format jsonl > $(OUT)/records.jsonl; \
	  status=$$?; echo "records written to $(OUT)/records.jsonl"; test $$status -eq 0

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info

# Refresh the vendored YASGUI editor (kg/static/yasgui/) from the npm registry.
YASGUI_VERSION ?= 4.6.2
vendor-yasgui:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent @zazuko/yasgui@$(YASGUI_VERSION) >/dev/null && \
	  tar xzf zazuko-yasgui-$(YASGUI_VERSION).tgz && \
	  cp package/build/yasgui.min.js package/build/yasgui.min.css $(CURDIR)/kg/static/yasgui/ && rm -rf $$tmp

# `make bench`: the pipeline benchmark on 1,000 and 10,000 synthetic trials (kg.synth), results as JSON in
# benchmarks/ and the tables in benchmarks/RESULTS.md.  Long on 2 cores; BENCH_FLAGS tunes the time limits.
BENCH_TRIALS ?= 1000 10000
BENCH_FLAGS  ?= --runs 3 --processes 1 --validate-timeout 1800 --whole-timeout 600 --rdflib-timeout 1800
bench: $(STAMP)
	@mkdir -p benchmarks
	for n in $(BENCH_TRIALS); do \
	  $(VENV)/bin/cartkg bench --trials $$n --json $(BENCH_FLAGS) > benchmarks/bench-$$n.json || exit 1; \
	done
	$(PY) -m kg.bench report $(foreach n,$(BENCH_TRIALS),benchmarks/bench-$(n).json) > benchmarks/RESULTS.md
	@cat benchmarks/RESULTS.md
