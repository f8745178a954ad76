# lm: live migration for PostgreSQL.  make, make check, make install.
# make lint before a commit: shellcheck, gcc -fanalyzer and strict warnings.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
# lm-migrate's libraries (bin/lm-migrate/lib/*.sh); the installed lm-migrate
# finds them relative to its own real path
LIBDIR ?= $(PREFIX)/lib
MIGRATE_LIBDIR = $(LIBDIR)/lm/lm-migrate
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
OPT ?= -O2 -g
WARN = -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# CI=true (.ci/run sets it, as CI services do): a warning fails the build;
# elsewhere it is shown. The fuzz build (scripts/fuzz) has flags of its own.
ifeq ($(CI),true)
  WARN += -Werror
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpq libzstd 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs libpq libzstd 2>/dev/null)
ifeq ($(SANITIZE),1)
  OPT = -O1 -g -fno-omit-frame-pointer
  SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
CFLAGS ?=
CFLAGS += $(OPT) $(WARN) -std=gnu11 -D_GNU_SOURCE $(SANFLAGS) $(PKG_CFLAGS) -Icommon
LDFLAGS += $(SANFLAGS)
LDLIBS += $(PKG_LIBS) -lm

PROGS = lm-slot lm-snapshot lm-decode lm-apply lm-cat
SCRIPTS = lm-migrate
COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:.c=.o)
# made by scripts/gen-constants from the one table of what C and shell share
CONSTANTS = common/constants.tab
GEN_HDR = common/exitcodes.h
GEN_SH = bin/lm-migrate/lib/constants.sh
MIGRATE_LIBS := $(sort $(filter-out $(GEN_SH),$(wildcard bin/lm-migrate/lib/*.sh)) $(GEN_SH))
COMMON_HDR := $(sort $(wildcard common/*.h) $(GEN_HDR))
LIB = common/liblm.a
BUILT := $(foreach p,$(PROGS),$(if $(wildcard bin/$(p)/*.c),bin/$(p)/$(p)))
TOOLS := $(if $(wildcard tests/tools/lm-testgen.c),tests/tools/lm-testgen)
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT := $(if $(UNIT_SRC),tests/unit/unit)
MAN1 := $(wildcard man/*.1)
MAN5 := $(wildcard man/*.5)
MAN7 := $(wildcard man/*.7)
# bash completion of every program, made from their --help (scripts/gen-completion);
# installed as lm-migrate, the others' names link to it (bash-completion
# loads a completion by the command's name)
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
COMPLETION = build/bash-completion/lm-migrate

.PHONY: all unit check check-faults deps install uninstall clean fuzz bench demo demo-timescaledb shellcheck lint

all: $(GEN_SH) $(BUILT) $(TOOLS) $(UNIT)

$(GEN_HDR): $(CONSTANTS) scripts/gen-constants
	scripts/gen-constants c $(CONSTANTS) > $@.tmp && mv $@.tmp $@ || { rm -f $@.tmp; false; }

$(GEN_SH): $(CONSTANTS) scripts/gen-constants
	@mkdir -p $(dir $@)
	scripts/gen-constants sh $(CONSTANTS) > $@.tmp && mv $@.tmp $@ || { rm -f $@.tmp; false; }

# rebuild everything when the flags change (SANITIZE=1 and back)
FLAGS_STAMP := .build-flags
$(shell echo '$(CC) $(CFLAGS) $(LDFLAGS)' | cmp -s - $(FLAGS_STAMP) 2>/dev/null || echo '$(CC) $(CFLAGS) $(LDFLAGS)' > $(FLAGS_STAMP))

common/%.o: common/%.c $(COMMON_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -c -o $@ $<

# made afresh: an object whose source was removed or renamed must not stay in it
$(LIB): $(COMMON_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

# each program: bin/NAME/*.c linked against the common library
define PROG_RULE
bin/$(1)/$(1): $(wildcard bin/$(1)/*.c) $(wildcard bin/$(1)/*.h) $(LIB) $(COMMON_HDR) $(FLAGS_STAMP)
	$$(CC) $$(CFLAGS) -Ibin/$(1) -o $$@ $(wildcard bin/$(1)/*.c) $(LIB) $$(LDFLAGS) $$(LDLIBS)
endef
$(foreach p,$(PROGS),$(if $(wildcard bin/$(p)/*.c),$(eval $(call PROG_RULE,$(p)))))

tests/tools/%: tests/tools/%.c $(LIB) $(COMMON_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

# unit tests of common/: no server, no ports, a second or less
tests/unit/unit: $(UNIT_SRC) tests/unit/unit.h $(LIB) $(COMMON_HDR) $(FLAGS_STAMP)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $(UNIT_SRC) $(LIB) $(LDFLAGS) $(LDLIBS)

unit: $(UNIT) $(GEN_SH)
	tests/unit/unit

# everything the suites use: the fault suite fuzzes with clang, the bench
# smoke test runs pgcopydb
deps:
	@scripts/install-deps all

# make check: installs what is missing, builds, runs the unit tests (they
# fail fast, before any cluster starts), then every suite.
#   TESTS=tests/lm-cat.bats to run some; VALGRIND=1 / SANITIZE=1 for checkers
# Under SANITIZE=1 the programs' exit-time leaks (one-shot processes) are not
# reported, except in the format and lm-cat suites, which turn it back on;
# memory errors and undefined behaviour always fail.
SAN_ENV = $(if $(SANFLAGS),ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
check: deps
	$(MAKE) all
	$(MAKE) unit
	$(SAN_ENV) scripts/run-tests $(TESTS)

check-faults: deps
	$(MAKE) all
	ROUNDS=$(or $(ROUNDS),2) FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) scripts/run-tests tests/faults.bats

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(BUILT) $(DESTDIR)$(BINDIR)/
	for s in $(SCRIPTS); do [ ! -f bin/$$s/$$s ] || install -m 755 bin/$$s/$$s $(DESTDIR)$(BINDIR)/; done
	install -d $(DESTDIR)$(MIGRATE_LIBDIR)
	install -m 644 $(MIGRATE_LIBS) $(DESTDIR)$(MIGRATE_LIBDIR)/
	rel=$$(realpath -m --relative-to=$(BINDIR) $(MIGRATE_LIBDIR)) && \
		sed -i "s|^LM_MIGRATE_LIB=lib\$$|LM_MIGRATE_LIB=$$rel|" $(DESTDIR)$(BINDIR)/lm-migrate
	$(if $(MAN1),install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/)
	$(if $(MAN5),install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/)
	$(if $(MAN7),install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/)
	install -d $(DESTDIR)$(COMPLETIONDIR)
	install -m 644 $(COMPLETION) $(DESTDIR)$(COMPLETIONDIR)/lm-migrate
	for p in $(notdir $(BUILT)); do ln -sf lm-migrate $(DESTDIR)$(COMPLETIONDIR)/$$p; done

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(PROGS) $(SCRIPTS))
	rm -f $(addprefix $(DESTDIR)$(MIGRATE_LIBDIR)/,$(notdir $(MIGRATE_LIBS)))
	rmdir $(DESTDIR)$(MIGRATE_LIBDIR) $(DESTDIR)$(LIBDIR)/lm 2>/dev/null || true
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(MAN7)))
	rm -f $(addprefix $(DESTDIR)$(COMPLETIONDIR)/,lm-migrate $(PROGS))

clean:
	rm -f common/*.o $(LIB) $(FLAGS_STAMP) $(foreach p,$(PROGS),bin/$(p)/$(p)) $(TOOLS) $(UNIT) \
		$(GEN_HDR) $(GEN_SH)
	rm -rf build

# the completion: lm-migrate's commands and options, the C programs' long
# options, as their --help gives them
install: $(COMPLETION)
$(COMPLETION): scripts/gen-completion $(BUILT) bin/lm-migrate/lm-migrate \
		$(wildcard bin/lm-migrate/lib/*.sh) $(GEN_SH)
	@mkdir -p $(dir $@)
	scripts/gen-completion bin/lm-migrate/lm-migrate $(BUILT) > $@.tmp && mv $@.tmp $@ || { rm -f $@.tmp; false; }

# make deb: build/deb/lm_VERSION-1_ARCH.deb, what make install DESTDIR=...
# PREFIX=/usr installs, built afresh in build/deb/src with Debian's
# hardening flags (scripts/build-deb; control file, copyright and lintian
# overrides in packaging/deb/); dpkg-dev only, no debhelper.
.PHONY: deb
deb:
	@scripts/install-deps deb
	scripts/build-deb build/deb

# The README's first command: a live migration between throwaway clusters.
demo: deps
	$(MAKE) all
	scripts/demo

# The same with TimescaleDB on both sides: hypertables that keep making
# chunks while they are migrated.
demo-timescaledb: deps
	$(MAKE) all
	scripts/demo --timescaledb

# Benchmarks side by side with the peers (BENCH_ARGS="--scale 10").
bench: deps
	scripts/install-deps bench
	$(MAKE) all
	scripts/bench $(BENCH_ARGS)

# libFuzzer targets (FUZZ_SECONDS per target).
fuzz: deps $(GEN_HDR)
	scripts/install-deps fuzz
	scripts/fuzz $(or $(FUZZ_SECONDS),60)

shellcheck:
	shellcheck -x bin/lm-migrate/lm-migrate $(filter-out $(GEN_SH),$(MIGRATE_LIBS)) \
		$(filter-out %.md,$(wildcard scripts/*)) tests/*.bash

# make lint: shellcheck, then every C file (the fuzz targets and test tools
# too) through gcc's static analyzer and the stricter warnings pgBackRest
# builds with; any warning fails. Not -Wcast-qual (execve's argv, argv[0]
# set to the program name), -Wdeclaration-after-statement (C99 code)
# or -Wunused-parameter (callbacks). make -j2 lint runs two at once.
LINT_CC ?= gcc
LINT_WARN = -fanalyzer -Wconversion -Wformat=2 -Wformat-signedness -Wmissing-format-attribute \
	-Wduplicated-cond -Wduplicated-branches -Wnull-dereference -Wpointer-arith -Wvla \
	-Wwrite-strings -Wundef -Werror
LINT_C := $(addprefix lint/,$(COMMON_SRC) $(wildcard bin/*/*.c tests/tools/*.c tests/fuzz/*.c tests/unit/*.c))
.PHONY: $(LINT_C)
lint: shellcheck $(LINT_C)
$(LINT_C): lint/%: $(GEN_HDR)
	@echo "lint $*"
	@$(LINT_CC) $(CFLAGS) $(LINT_WARN) -I$(dir $*) -c -o /dev/null $*
