#include "CFuzzSupport.h"

#include <sanitizer/allocator_interface.h>
#include <stdatomic.h>

// Written from inside malloc: the hooks only add to an atomic counter (no
// allocation, no lock), as the sanitizer interface requires of them.
static _Atomic size_t total_bytes;

static void on_malloc(const volatile void *pointer, size_t size) {
    (void)pointer;
    atomic_fetch_add_explicit(&total_bytes, size, memory_order_relaxed);
}

static void on_free(const volatile void *pointer) {
    (void)pointer;
}

int fuzz_allocation_meter_install(void) {
    return __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}

size_t fuzz_allocation_meter_total_bytes(void) {
    return atomic_load_explicit(&total_bytes, memory_order_relaxed);
}

size_t fuzz_allocation_meter_live_bytes(void) {
    return __sanitizer_get_current_allocated_bytes();
}
