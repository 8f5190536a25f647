# The spa engine's build. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12

.PHONY: help run build test test-race bench bench-go soak chaos failover lint generate migrate token cluster cluster-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## run a single node: embedded NATS and SQLite in ./data, HTTP on 127.0.0.1:8080 (no setup)
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/spa serve

build: ## build bin/spa
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/spa ./cmd/spa

test: ## what CI runs: vet, then every test with the race detector, on SQLite and PostgreSQL (started or installed if needed; required when CI=true)
	.ci/test.sh

test-race: ## hunt flakes: the concurrent packages five times over with the race detector
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(.ci/postgres.sh)}" $(GO) test -race -count=5 -timeout 30m ./persistence/... ./cluster/... ./gateway/... ./actors/...

bench: build ## the bare-HTTP ceiling, then both booking engines through the loadgen scenarios (keyed, hot and spread also unkeyed) on PostgreSQL, then the payments webhook burst (actors), the notifications fan-out and the WhatsApp bot under load; writes docs/benchmarks.md (~12 min; BENCH_DURATION=20s, keyed hot and spread tried BENCH_REPEAT=3 times, median judged)
	BIN=bin/spa .ci/bench.sh

soak: build ## not in CI: three nodes under mixed load for 30 min, one killed with SIGKILL every 4 min; heap, goroutines, open files and JetStream storage sampled, their slopes and every chunk's checks in bin/soak/report.md (SOAK_SECONDS, SOAK_KILL_EVERY, SOAK_RATE; docs/soak.md)
	BIN=bin/spa .ci/soak.sh

bench-go: ## Go benchmarks of the hot paths on both drivers (results are ratios within one run)
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(.ci/postgres.sh)}" $(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.txt

chaos: ## the chaos suite, full form, three runs in a row (root: network namespaces, iptables; PostgreSQL): partitions, database cut, latency and loss, SIGSTOP, kill -9, rolling restart under mixed load (~15 min; docs/chaos.md)
	mkdir -p bin; TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(.ci/postgres.sh)}" SPA_CHAOS_FULL=1 $(GO) test -count=3 -failfast -timeout 60m -run '^TestChaos$$' -v ./cmd/spa/ 2>&1 | tee bin/chaos.log | grep --line-buffered -E '^(=== RUN|--- |ok|FAIL|PASS)|CHAOS|chaos_test.go'; test $${PIPESTATUS[0]} = 0

failover: ## kill -9 a node of a three-node cluster under load 20 times (every other kill the lease bucket's Raft leader), restarting it each time; reports each fail-over and min/median/max, fails over 5s (SPA_FAILOVER_GOAL) or on a non-linearizable history. Not in CI (~3-5 min, PostgreSQL); SPA_FAILOVER_KILLS=n, SPA_FAILOVER_LOGS=1 adds the survivors' lease log lines
	set -o pipefail; TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$(.ci/postgres.sh)}" SPA_FAILOVER_KILLS="$${SPA_FAILOVER_KILLS:-20}" \
		$(GO) test -tags failover -run '^TestFailoverKills$$' -count=1 -timeout 30m -v ./cmd/spa | grep --line-buffered -v '^ *{"time"'

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

generate: ## regenerate committed code (protobuf messages); needs protoc (apt-get install protobuf-compiler)
	$(GO) install $(PROTOC_GEN_GO)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./...

migrate: ## apply the schema migrations to DATABASE_URL (or ./data/spa.db) and print them
	$(GO) run ./cmd/spa migrate

cluster: build ## three nodes on loopback (HTTP 8180-8182) against PostgreSQL (DATABASE_URL, or database spa_cluster on the local test server); prints how to reach them
	BIN=bin/spa deploy/local-cluster.sh start

cluster-stop: ## stop the nodes of make cluster gracefully
	deploy/local-cluster.sh stop

token: ## mint a one-hour admin token for manual testing: make token SUBJECT=me
	@$(GO) run ./cmd/spa token --subject "$${SUBJECT:-operator}" --role "$${ROLE:-admin}"
