/* libemptylib.so: a preloaded library that does nothing. alloc-bench's "empty" mode: the A/A
 * control for preloading itself (one more object in the search order, its constructor run),
 * against which the idle thread and the shim are read. */
__attribute__((visibility("default"))) int emptylib_present(void);
int emptylib_present(void) { return 1; }
