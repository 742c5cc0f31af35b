"""`retention explain PID`: is a live process's RSS a leak, or memory its allocator keeps after
free? (README, "Is it a leak?", walks a user through it.)

How it works, module by module:
  procfs      /proc/PID/{status,stat,smaps,smaps_rollup} parsed: state, RSS split into anonymous,
              shared memory (by name) and file-backed, the mappings
  target      the live target: its /proc files read, its state, never left stopped (SIGCONT)
  ptrace      whether this process may attach, and if not why (capabilities, Yama, uids)
  gdb         one gdb driven over its machine interface (MI): attach, every thread's stack,
              detach and attach again, and calls bounded in time (a call asleep on a lock is
              undone with SIGURG; one that works is left to finish, up to 10x the timeout)
  elfsyms     a mapped object's dynamic symbols, function starts (.eh_frame_hdr), load bias and
              glibc's version string, read from the file: no debug info needed
  safety      which frames are the allocator's: before any call, no thread may be inside it
              (a single-threaded glibc takes no lock; a multi-threaded one may hold the lock the
              call needs)
  heaps       glibc's non-main arena heaps found in memory (HEAP_MAX-aligned mappings whose
              heap_info is consistent), and the arenas' malloc_state chain (which ends at
              main_arena)
  walk        the heap walk: main_arena and mp_ found in libc's data by their shape, every
              arena's chunks read from /proc/PID/mem and checked against each other (in use, in
              bins, fastbins, tcache), residency from /proc/PID/pagemap; from them exactly what
              malloc_trim(0) returns, the floor it leaves, and which live chunks pin free pages
  glibc       glibc's figures as the report the verdict is made from: from the walk, or from
              malloc_info's XML (mallocinfo) where the walk cannot be done; the mmap threshold
              advice from the free chunks' sizes
  others      jemalloc, tcmalloc, mimalloc: their own figures and release call through their API
  verdict     the verdict on a report (retention, live growth, nothing to fix), on the anonymous
              RSS, why, the fixes (the command named by paths.command_name)
  session     one explanation: Snapshot of /proc, the stops (looking at every thread, stopping
              again while one is inside the allocator), the walk or the calls, the document
  watch       --watch: cheap RSS samples and full readings over time, a leak told from churn
  shim        libtrimshim in the process: mapped or not, its state and figures from its
              TRIMSHIM_STATS file (found through /proc/PID/environ, parsed by ..promtext)
  render      the text report
commands/explain.py is the command line.

Everything that parses or judges is a pure function of text, bytes or numbers
(tests/test_explain.py); tests/gdb_explain.py runs it on real processes through the real gdb."""
