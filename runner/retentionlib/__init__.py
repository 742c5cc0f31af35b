"""The runner of the retention suite (python >= 3.6, standard library only).

Modules:
  errors    ConfigError (file:line) and UsageError
  lines     the line parser shared by case files and expected files
  casefile  cases/NAME.case
  expfile   expected/NAME.exp, platform sections, bound selection
  platforminfo  the platform key (glibc, distro, THP, page size, arch)
  elf       PT_INTERP detection (static binaries cannot be preloaded)
  cells     the cell table: how each cell builds argv/env, its phases, metrics and references
  execute   scrubbed environment, process-group timeout, phase lines
  memcheck  valgrind --xml=yes parsing
  metrics   metric computation and checks against bounds
  runner    runs case x cell and judges the result
  report    table, JSON, JUnit
  explain   retention explain PID: a live process's RSS through gdb and malloc_info (leak or retention?)
  cli       the command line
"""
