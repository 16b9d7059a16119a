# make install: .venv with the verified stack (first time ~20 min, mostly the mmcv build; then seconds)
# make test:    install if needed, then the whole test suite
# make demo:    toy data, then the main jobs end to end on it (see README)
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: install test demo clean

install:
	bash tools/install.sh

test: install
	$(PY) tools/dataset_converters/make_toy_datasets.py data/toy
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	bash tools/demo.sh

clean:
	rm -rf work_dirs data/toy data/demo
