/*
 * tests/fuzz/fuzz.h — the one entry point every fuzz target defines.
 *
 *   libFuzzer (clang -fsanitize=fuzzer) ─┐
 *   replay.c (meson test, any compiler) ─┴─▶ LLVMFuzzerTestOneInput(data, size)
 *
 * Contract: the target reads size bytes at data (never past them), returns
 * 0, and aborts on a finding.  It may keep static state between calls but
 * must not depend on it.
 */
#ifndef REDSNANO_TESTS_FUZZ_H
#define REDSNANO_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
