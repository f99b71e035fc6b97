#ifndef SIXTEEN_FUZZ_SUPPORT_H
#define SIXTEEN_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver, called from each target's main.swift. SwiftPM on ELF
// renames an executable's `main` to `<Module>_main` and aliases `main` to
// it at link time, so libFuzzer's own `main` is never the one that runs
// (the target would run its top-level code and exit 0, fuzzing nothing):
// the targets start libFuzzer themselves, as libFuzzer allows for programs
// with a `main` of their own.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

// What the process allocates, as AddressSanitizer's allocator sees it: the
// parsers' targets check that a parser's memory stays bounded and that its
// work stays linear in its input. Needs AddressSanitizer (the targets are
// always built with it: see Fuzz/run).

/// Installs the malloc hook that counts bytes allocated; 0 if it could not.
int fuzz_allocation_meter_install(void);

/// Bytes handed out by malloc and friends since the process started (never decreases).
size_t fuzz_allocation_meter_total_bytes(void);

/// Bytes allocated and not yet freed, now.
size_t fuzz_allocation_meter_live_bytes(void);

#endif
