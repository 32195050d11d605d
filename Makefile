# nsh — a Starlark shell for Linux namespaces.
GO      ?= go
BIN     ?= ./nsh
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Static link: nsh starts faster without the dynamic loader, and the spawn
# helper's C code runs before anything else in the child.
# internal/spawn is cgo: link externally and statically (netgo/osusergo keep
# the Go resolver and user lookup, so no glibc NSS is needed at run time).
LDFLAGS ?= -s -w -X main.version=$(VERSION) -linkmode external -extldflags '-static'
TAGS    ?= netgo,osusergo
# The C library linked in: musl when musl-gcc is installed (Debian package
# musl-tools), else glibc. A static glibc spends ~0.5 ms of every start in
# its CPU-feature and cache-size probes (cpuid, which traps in a VM); musl
# has none, and nsh needs nothing of glibc's.
STATIC_CC ?= $(shell command -v musl-gcc 2>/dev/null || echo gcc)
ROOTLESS_USER ?= 65534
TESTBIN := $(CURDIR)/.testbin

.PHONY: build demo deps test test-root test-rootless soak install lint bench fuzz clean

build:
	CC=$(STATIC_CC) $(GO) build -tags '$(TAGS)' -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nsh

demo: build
	$(BIN) scripts/two-netns-ping.star

# What the tests run beyond Go: installed with apt-get when root on Debian,
# else named (tests needing a missing command skip, naming it).
deps:
	@tools/deps.sh

# The whole suite as root, then its rootless part as an unprivileged user.
test: deps lint
	$(MAKE) test-root
	$(MAKE) test-rootless

test-root:
	$(GO) test -p 1 -count=1 ./...   # packages one at a time: their leak checks watch the same host

# Test binaries are built as the current user and run as ROOTLESS_USER, each
# in its package directory (where its testdata lives). Tests that need the
# host's namespaces skip themselves there.
test-rootless: build
	rm -rf $(TESTBIN) && mkdir -p $(TESTBIN) && chmod 755 $(TESTBIN)
	cp $(BIN) $(TESTBIN)/nsh
	$(GO) build -tags nshfault -o $(TESTBIN)/nsh-fault ./cmd/nsh   # the fault injector's build (internal/fault)
	set -e; for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./...); do \
		name=$$(basename $$pkg); \
		$(GO) test -c -o $(TESTBIN)/$$name.test $$pkg; \
		chmod -R a+rX $(TESTBIN) $$pkg; \
		echo "== rootless: $$name"; \
		(cd $$pkg && NSH_BIN=$(TESTBIN)/nsh NSH_FAULT_BIN=$(TESTBIN)/nsh-fault HOME=/tmp setpriv --reuid=$(ROOTLESS_USER) --regid=$(ROOTLESS_USER) --clear-groups \
			$(TESTBIN)/$$name.test -test.count=1) || exit 1; \
	done
	rm -rf $(TESTBIN)

# The long forms of the reliability tests (README "Reliability").
soak:
	NSH_SOAK=1 $(GO) test -p 1 -count=1 -timeout 3h ./cmd/nsh -run 'StepOfRecipes|KillAtRandomTimes' -v >soak-faults.log 2>&1; s=$$?; grep -E '^(--- |ok|FAIL)|injected|SIGKILLs' soak-faults.log; exit $$s
	NSH_SOAK_CYCLES=$${NSH_SOAK_CYCLES:-100000} $(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./cmd/nsh
	NSH_SOAK=1 $(GO) test -p 1 -count=1 -timeout 30m -run 'TestMountSymlinkSwapRace' ./builtins/
	NSH_SOAK=1 $(GO) test -p 1 -count=1 -timeout 30m -run 'TestConcurrentRunsSameObjects' ./cmd/nsh/

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/nsh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags nshfault ./internal/fault ./internal/change

# Every Go fuzz target (func FuzzXxx in a _test.go file) for FUZZTIME, each
# with FUZZPARALLEL workers, FUZZJOBS targets at a time (under nice -n
# FUZZNICE). Each target's output goes to fuzz-logs/PKG_TARGET.log; a line per
# target gives its last "elapsed … execs" figure. New failing inputs land in the
# package's testdata/fuzz/FuzzXxx; plain `go test` (make test) runs the seed
# corpora there. README's "Reliability" has the last figures.
FUZZTIME     ?= 10m
FUZZPARALLEL ?= 1
FUZZJOBS     ?= 1
FUZZNICE     ?= 0
fuzz:
	@mkdir -p fuzz-logs; \
	for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "$$(dirname $$file) $$target"; \
		done; \
	done | xargs -P $(FUZZJOBS) -L 1 sh -c ' \
		log=fuzz-logs/$$(echo "$${0#./}" | tr / _)_$$1.log; echo "== $$0 $$1 (started $$(date -u +%H:%M:%S))"; \
		nice -n $(FUZZNICE) $(GO) test -run "^$$" -fuzz "^$$1\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPARALLEL) "$$0" >"$$log" 2>&1; s=$$?; \
		echo "== $$0 $$1: exit $$s, $$(grep "elapsed:" "$$log" | tail -1)"; \
		[ $$s = 0 ] || tail -20 "$$log"; exit $$s'

# The long soak (issue 18 item 5): TestSoak with 100,000 create/destroy
# cycles in one nsh (make test runs 500). NSH_SOAK_CYCLES=N for another count.

# One table of medians and ratios against our raw programs (bench/run says how).
bench: build
	NSH=$(BIN) bench/run

clean:
	rm -rf $(BIN) $(TESTBIN) soak-faults.log
