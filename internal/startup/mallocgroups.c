// Part of package startup (see startup.go): keeps musl's allocator from
// unmapping memory at every thread the Go runtime creates.
//
// The runtime's cgo thread start mallocs a 24-byte ThreadStart for each new
// thread, which the thread frees as it starts. musl's allocator (mallocng)
// unmaps a group of slots as soon as it is empty, so each thread creation
// maps and unmaps a page, and an munmap in a process whose threads have run
// on other CPUs costs a TLB shootdown there: an inter-processor interrupt,
// which in a virtual machine is a costly exit (~0.1 ms over nsh's start, as
// measured). One slot held for good in each of the smallest size classes
// keeps their groups mapped. With glibc's allocator (test builds) this is
// a few bytes that change nothing.
#include <stdlib.h>

void *volatile nsh_startup_kept[4];

__attribute__((constructor)) static void nsh_keep_malloc_groups(void) {
	// musl's first classes hold 12, 28, 44 and 60 bytes (plus a 4-byte
	// header each, in 16-byte units): one request for each.
	static const size_t sizes[4] = {12, 28, 44, 60};
	for (int i = 0; i < 4; i++)
		nsh_startup_kept[i] = malloc(sizes[i]);
}
