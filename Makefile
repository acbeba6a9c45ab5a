# Two commands on a fresh machine: `make demo` and `make test`.  Both create .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test venv clean lint vendor-yasgui

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
