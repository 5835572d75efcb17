# Flint build. `make` builds everything; `make test` installs what is missing,
# builds and runs every test; `make run` starts flintd on a data directory
# under the checkout. See README.md.
#
# Layout rules the Makefile relies on, so that adding a module never means
# editing this file:
#   src/<module>/*.c        -> libflint.a (every module but flintd/ and cli/)
#   src/flintd/*.c          -> bin/flintd
#   src/cli/*.c             -> bin/flint
#   src/launcher/*.c        -> bin/flint-sandbox (the sandbox launcher)
#   src/wf/exprd/*.c        -> bin/flint-expr (the workflow expression evaluator)
#   runtimes/<name>/*.c     -> bin/flint-runtime-<name> (if any .c exists)
#   tests/unit/test_<m>.c   -> tests/test_<m>, run by `make test`
#   bench/bench_<x>.c       -> bench/bench_<x>; bench/*.sh run by `make bench`
#   fuzz/fuzz_<x>.c         -> fuzz/fuzz_<x> (libFuzzer), run by `make fuzz`

SANITIZE ?=
BUILD ?= build$(if $(SANITIZE),-san)
CC ?= cc
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

PKGS := libuv jansson sqlite3 yaml-0.1 libseccomp
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing -pthread \
	-Isrc -Iinclude $(PKG_CFLAGS)
LDLIBS = $(PKG_LIBS) -lhttp_parser -lnats -lcurl -lpthread -ldl -lm
# JavaScript (src/wf/js.h): the CLI, the expression evaluator and the tests
# link it; flintd never does (no workflow expression runs inside it).
JS_LIBS = -lmujs
ifneq ($(SANITIZE),)
CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

# -Wformat-truncation (part of -Wall) is on for every file: a path or
# message cut short by snprintf is a bug, so paths go through
# fl_path_join()/fl_path_fmt() (base/fs.h), which fail with -ENAMETOOLONG
# instead, and other buffers are sized to what they hold.

LIB_DIRS := $(filter-out src/flintd/ src/cli/ src/launcher/,$(sort $(dir $(wildcard src/*/*.c))))
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB := $(BUILD)/libflint.a

FLINTD_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/flintd/*.c))
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/cli/*.c))
LAUNCHER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/launcher/*.c))
EXPRD_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/wf/exprd/*.c))
RUNTIMES := $(notdir $(patsubst %/,%,$(sort $(dir $(wildcard runtimes/*/*.c)))))
RUNTIME_BINS := $(RUNTIMES:%=$(BUILD)/bin/flint-runtime-%)

BINS := $(if $(FLINTD_OBJS),$(BUILD)/bin/flintd) $(if $(CLI_OBJS),$(BUILD)/bin/flint) \
	$(if $(LAUNCHER_OBJS),$(BUILD)/bin/flint-sandbox) $(if $(EXPRD_OBJS),$(BUILD)/bin/flint-expr) \
	$(RUNTIME_BINS)

# The runtime tree flintd starts instances from (bin/../share/flint/runtimes): one
# directory per runtime with its scripts, builder and binary, bound
# read-only at /runtime inside the sandbox; the c builder gets fn.h there.
RUNTIME_FILES := $(filter-out %.c,$(wildcard runtimes/*/*))
RTREE := $(BUILD)/share/flint
RUNTIME_TREE := $(RUNTIME_FILES:%=$(RTREE)/%) \
	$(foreach r,$(RUNTIMES),$(RTREE)/runtimes/$(r)/flint-runtime-$(r)) \
	$(if $(wildcard runtimes/c),$(RTREE)/runtimes/c/include/flint/fn.h)
BINS += $(RUNTIME_TREE)

UNIT_SRCS := $(filter-out tests/unit/runner.c,$(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
RUNNER_OBJ := $(BUILD)/tests/unit/runner.o
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
BENCH_SRCS := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)

.PHONY: all binaries deps test test-unit test-e2e test-stress run bench fuzz clean format
.SUFFIXES:
.SECONDARY:

all: $(BINS) $(UNIT_BINS) $(HELPER_BINS) $(BENCH_BINS)

binaries: $(BINS)

deps:
	@scripts/install-deps build test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/flintd: $(FLINTD_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/flint: $(CLI_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(JS_LIBS)

# The launcher links nothing of Flint's: it is the small trusted step that
# drops to the sandbox's uid (see src/launcher/main.c).
$(BUILD)/bin/flint-sandbox: $(LAUNCHER_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lseccomp

# The workflow expression evaluator (src/wf/exprd, wf/expr.h): the one
# program that runs users' JavaScript, apart from flintd.
$(BUILD)/bin/flint-expr: $(EXPRD_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(JS_LIBS)

# One rule per runtime with C sources; -rdynamic exports the runtime's own
# functions (fn.h) to the functions it loads.
define runtime_rule
$(BUILD)/bin/flint-runtime-$(1): $(patsubst %.c,$(BUILD)/%.o,$(wildcard runtimes/$(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -rdynamic -o $$@ $$^ $$(LDLIBS)
endef
$(foreach r,$(RUNTIMES),$(eval $(call runtime_rule,$(r))))

$(RTREE)/runtimes/%: runtimes/%
	@mkdir -p $(dir $@)
	cp -p $< $@.tmp && mv -f $@.tmp $@

$(RTREE)/runtimes/c/include/%: include/%
	@mkdir -p $(dir $@)
	cp -p $< $@.tmp && mv -f $@.tmp $@

define runtime_tree_rule
$(RTREE)/runtimes/$(1)/flint-runtime-$(1): $(BUILD)/bin/flint-runtime-$(1)
	@mkdir -p $$(dir $$@)
	cp -p $$< $$@.tmp && mv -f $$@.tmp $$@
endef
$(foreach r,$(RUNTIMES),$(eval $(call runtime_tree_rule,$(r))))

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(RUNNER_OBJ) $(LIB) | $(BUILD)/bin/flint-sandbox $(BUILD)/bin/flint-expr
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(JS_LIBS)

$(BUILD)/tests/helpers/%: $(BUILD)/tests/helpers/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests: unit tests first (each test in its own process, see tests/unit/runner.c),
# then the end-to-end suite. Exit status is non-zero if anything failed.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory test-unit
	@$(MAKE) --no-print-directory test-e2e

test-unit: $(UNIT_BINS) $(HELPER_BINS)
	@scripts/run-unit-tests $(UNIT_BINS)

test-e2e: $(BINS) $(HELPER_BINS)
	@if [ -n "$$(ls tests/e2e/test_*.py 2>/dev/null)" ]; then \
	  FLINT_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/e2e; \
	else echo "no end-to-end tests"; fi

# The whole suite where CPU is scarce: on one core, then beside a CPU hog
# (scripts/run-stress-tests); every change is checked this way too.
test-stress: deps
	@$(MAKE) --no-print-directory all
	@MAKE="$(MAKE)" scripts/run-stress-tests

DATA ?= $(CURDIR)/.flint-data
run:
	@scripts/install-deps build run
	@echo "building flintd, flint and the runtimes..."
	@$(MAKE) --no-print-directory -s binaries
	@scripts/run-flintd $(BUILD) $(DATA)

bench:
	@scripts/install-deps build test bench
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/run-benchmarks

fuzz:
	@scripts/install-deps build fuzz
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-fuzzers $(FUZZ_SRCS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
