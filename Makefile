# Consortium: `make dev` runs it, `make test` passes every test. Both set up what they need first.
PNPM_VERSION := 10.34.9
MANIFESTS := package.json pnpm-lock.yaml pnpm-workspace.yaml $(wildcard packages/*/package.json plugins/*/package.json test/*/package.json bench/package.json)

.PHONY: setup build dev test lint format bench clean

# pnpm is pinned and installed by the project itself, so a fresh machine needs only Node.js.
node_modules/.setup-stamp: $(MANIFESTS)
	@if [ "$$(pnpm --version 2>/dev/null)" != "$(PNPM_VERSION)" ]; then npm install -g pnpm@$(PNPM_VERSION); fi
	pnpm install --frozen-lockfile
	@touch $@

setup: node_modules/.setup-stamp

build: setup
	pnpm exec tsc --build
	node packages/consort/scripts/bundle.mjs
	node packages/console/scripts/build.mjs

# Runs Consortium in one process (web, master, worker) with the embedded store in ./.data.
# PORT=9090 make dev picks another port; it prints `url:`, an admin `token:` and the web `console:` address.
PORT ?= 8080
dev: build
	@echo "consort, in another shell: alias consort='node $(CURDIR)/packages/consort/bin/consort.js'"
	@echo "  export CONSORT_URL=http://127.0.0.1:$(PORT) CONSORT_TOKEN=<the token printed below>"
	node packages/server/bin/consortium.js dev --port $(PORT) --data-dir .data

# etcd is a system package the integration tests need; the script installs it when missing (as root).
test: build
	@bash scripts/install-system-deps.sh
	node scripts/run-tests.mjs

lint: setup
	node scripts/workspace-refs.mjs --check
	pnpm exec tsc -p tsconfig.check.json
	pnpm exec tsc -p packages/console/tsconfig.app.json
	pnpm exec eslint . --max-warnings 0
	pnpm exec prettier --check .

format: setup
	pnpm exec prettier --write .

# `make bench` runs every benchmark; `make bench BENCH=planner` one of them.
bench: build
	node --import tsx bench/run.ts $(BENCH)

clean:
	rm -rf node_modules packages/*/dist plugins/*/dist test/*/dist .ci/out
