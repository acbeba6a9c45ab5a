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

CARTKG := $(VENV)/bin/cartkg
EXAMPLES := data/examples

demo: $(STAMP)
	@rm -rf $(OUT) && mkdir -p $(OUT)/exports
	@echo "== 1/6 read + extract the bundled records -> $(OUT)/extractions.jsonl (the per-trial JSON contract)"
	$(CARTKG) extract $(EXAMPLES) > $(OUT)/extractions.jsonl
	@echo "== 2/6 build the graph: Oxigraph store on disk, graph.ttl/.trig, build report, ontology docs"
	$(CARTKG) build $(EXAMPLES) --out $(OUT)/graph --docs --format trig --jobs 2
	@echo "== 3/6 validate with the SHACL shapes"
	$(CARTKG) validate $(OUT)/graph --report $(OUT)/validation-report.ttl
	@echo "== 4/6 exports for Gephi / Cytoscape / yEd / Neo4j"
	for v in design antigen-cotargeting trial-similarity endpoints; do \
	  $(CARTKG) export --graph $(OUT)/graph --format graphml --view $$v -o $(OUT)/exports/$$v.graphml || exit 1; done
	$(CARTKG) export --graph $(OUT)/graph --format cyjs --view design -o $(OUT)/exports/design.cyjs
	$(CARTKG) export --graph $(OUT)/graph --format gexf --view antigen-cotargeting -o $(OUT)/exports/antigen-cotargeting.gexf
	$(CARTKG) export --graph $(OUT)/graph --format neo4j --view design -o $(OUT)/exports/neo4j
	@echo "== 5/6 the design-landscape report"
	$(CARTKG) report --graph $(OUT)/graph -o $(OUT)/report.html
	@echo "== 6/6 three headline questions"
	@echo "-- Which trials target CD22 with a 4-1BB construct? (cq01)"
	@$(CARTKG) query cq01 --param antigen=CD22 --param costim=4-1BB --graph $(OUT)/graph
	@echo "-- Which dual-target trials are sequential rather than bispecific? (cq02)"
	@$(CARTKG) query cq02 --param strategy=sequential --graph $(OUT)/graph
	@echo "-- What is the longest OS/PFS/DOR follow-up among allogeneic products? (cq11)"
	@$(CARTKG) query cq11 --param cell_source=allogeneic --graph $(OUT)/graph
	@echo
	@echo "Outputs in $(OUT)/: extractions.jsonl, graph/ (store, graph.ttl, ontology.html, build-report.json),"
	@echo "  validation-report.ttl, exports/, report.html.  $$($(CARTKG) query --list | wc -l) named queries: $(CARTKG) query --list"
	@echo "Start the read-only SPARQL endpoint:  $(CARTKG) serve --graph $(OUT)/graph   then open http://127.0.0.1:8000/"

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
# benchmarks/, the tables in benchmarks/RESULTS.md and in README.md (between the bench markers).  Long on 2 cores; BENCH_FLAGS tunes the time limits.
BENCH_TRIALS ?= 1000 10000
BENCH_FLAGS  ?= --runs 3 --processes 1 --validate-timeout 1800 --whole-timeout 600 --rdflib-timeout 1800
bench: $(STAMP)
	@mkdir -p benchmarks
	for n in $(BENCH_TRIALS); do \
	  $(VENV)/bin/cartkg bench --trials $$n --json $(BENCH_FLAGS) > benchmarks/bench-$$n.json || exit 1; \
	done
	$(PY) -m kg.bench report $(foreach n,$(BENCH_TRIALS),benchmarks/bench-$(n).json) > benchmarks/RESULTS.md
	$(PY) -m kg.bench report --readme README.md $(foreach n,$(BENCH_TRIALS),benchmarks/bench-$(n).json) > /dev/null
	@cat benchmarks/RESULTS.md
