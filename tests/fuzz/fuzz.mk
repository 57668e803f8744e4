# fuzz.mk - the libFuzzer targets, built and run by `make fuzz` (GNU make).
#
# The library's objects are built with gcc and libtool for everything else;
# a fuzz target needs every object it links compiled with clang's
# -fsanitize=fuzzer-no-link, so this file compiles the sources it needs
# itself, into objects of its own under the build tree's tests/fuzz.
#
# Given by the top Makefile: top_srcdir, top_builddir (absolute), FUZZ_CC,
# DEP_CFLAGS, DEP_LIBS, FUZZ_SECONDS.
#
#   make fuzz                       every target for FUZZ_SECONDS (60) each
#   make fuzz FUZZ_TARGETS='oci'    only those
#   make fuzz FUZZ_SECONDS=600      longer
#
# A target that crashes, leaks, hangs or breaks an invariant fails the run;
# the input that did it is kept as crashes/<target>-crash-<sha1> (and the
# log as logs/<target>.log).  New inputs the fuzzer found are kept in
# corpus/<target>; the seeds in the source tree (tests/fuzz/seeds/<target>)
# are run first, every time.

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= config manifest response history oci unpack elf ldcache junit playwright sigv4

F := $(top_srcdir)/tests/fuzz
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS_F := -std=gnu11 -g -O1 -Wall -Wextra -Wno-unused-parameter -Werror $(SAN) \
	-fsanitize=fuzzer-no-link -MMD -MP
CPPFLAGS_F := -I$(top_srcdir)/include -I$(top_builddir) -I$(F) \
	-I$(top_srcdir)/libhypertest/core -I$(top_srcdir)/libhypertest/elf \
	-I$(top_srcdir)/libhypertest/oci -I$(top_srcdir)/libhypertest/commands \
	-DHT_PLUGINDIR='"/nonexistent"' -DHT_BINDIR='"/nonexistent"' $(DEP_CFLAGS)

LIB_SRCS := $(patsubst $(top_srcdir)/%,%,$(wildcard $(top_srcdir)/libhypertest/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=obj/%.o)

# what each target links besides its own file and fuzz-util
PLUGIN_COMMON := obj/plugins/common/text.o obj/plugins/common/xml.o obj/plugins/common/basics.o
EXTRA_config := libht-fuzz.a
EXTRA_manifest := libht-fuzz.a
EXTRA_response := libht-fuzz.a
EXTRA_history := libht-fuzz.a
EXTRA_oci := libht-fuzz.a
EXTRA_unpack := libht-fuzz.a
EXTRA_elf := libht-fuzz.a
EXTRA_ldcache := libht-fuzz.a
EXTRA_junit := $(PLUGIN_COMMON)
EXTRA_playwright := obj/plugins/runner-playwright/report.o \
	obj/plugins/runner-playwright/grep.o $(PLUGIN_COMMON)
EXTRA_sigv4 := obj/plugins/provider-aws/sigv4.o obj/plugins/common/basics.o

obj/plugins/common/%.o: PLUGIN_INC = -I$(top_srcdir)/plugins/common
obj/plugins/runner-playwright/%.o: PLUGIN_INC = -I$(top_srcdir)/plugins/runner-playwright \
	-I$(top_srcdir)/plugins/common
obj/plugins/provider-aws/%.o: PLUGIN_INC = -I$(top_srcdir)/plugins/provider-aws
obj/fuzz-junit.o: PLUGIN_INC = -I$(top_srcdir)/plugins/common
obj/fuzz-playwright.o: PLUGIN_INC = -I$(top_srcdir)/plugins/runner-playwright \
	-I$(top_srcdir)/plugins/common
obj/fuzz-sigv4.o: PLUGIN_INC = -I$(top_srcdir)/plugins/provider-aws

# (run-% are not .PHONY: make looks for no pattern rule for those)
# dictionaries of tokens the inputs are made of
DICT_unpack := -dict=$(F)/dict/unpack.dict
DICT_oci := -dict=$(F)/dict/oci.dict
DICT_junit := -dict=$(F)/dict/junit.dict
DICT_config := -dict=$(F)/dict/json.dict
DICT_manifest := -dict=$(F)/dict/json.dict
DICT_response := -dict=$(F)/dict/json.dict
DICT_history := -dict=$(F)/dict/json.dict
DICT_playwright := -dict=$(F)/dict/json.dict

.PHONY: all run
.SECONDARY:

all: $(FUZZ_TARGETS:%=fuzz-%)

obj/%.o: $(top_srcdir)/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS_F) $(PLUGIN_INC) $(CPPFLAGS_F) -c -o $@ $<

obj/%.o: $(F)/%.c $(F)/fuzz-util.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS_F) $(PLUGIN_INC) $(CPPFLAGS_F) -c -o $@ $<

libht-fuzz.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

.SECONDEXPANSION:
fuzz-%: obj/fuzz-%.o obj/fuzz-util.o $$(EXTRA_$$*)
	$(FUZZ_CC) $(SAN) -fsanitize=fuzzer -o $@ $^ $(DEP_LIBS)

# Run one target: the seeds first, then FUZZ_SECONDS of fuzzing.  (Absolute
# paths: a target may change its working directory.)
run-%: fuzz-%
	@mkdir -p corpus/$* crashes logs
	@if ./fuzz-$* -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 $(DICT_$*) \
		-artifact_prefix=$(CURDIR)/crashes/$*- $(CURDIR)/corpus/$* $(F)/seeds/$* \
		>logs/$*.log 2>&1; then \
		echo "FUZZ PASS: $* ($$(sed -n 's/^Done \([0-9]*\) runs.*/\1 runs/p' logs/$*.log), \
	$$(ls corpus/$* | wc -l) inputs in the corpus)"; \
	else \
		echo "FUZZ FAIL: $* (log: $(CURDIR)/logs/$*.log; input: $$(ls -t crashes/$*-* 2>/dev/null | head -1))"; \
		grep -E -A25 '^==[0-9]+==ERROR|runtime error|SUMMARY|fuzz-unpack:|ERROR: libFuzzer' logs/$*.log | head -60; \
		exit 1; \
	fi

run: $(FUZZ_TARGETS:%=run-%)

# headers: what each object included when it was last compiled
-include $(shell find obj -name '*.d' 2>/dev/null)
