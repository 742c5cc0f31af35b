"""The runner of the retention suite (python >= 3.6, standard library only).

Modules:
  cli           the command line: the table of commands, their errors turned into exit statuses
  commands/     one module per command (add_arguments, run): run, compare, matrix, demo, list,
                platform, explain; options.py the options and the case selection they share
  paths         where things are: repo, cases, expected, build dir, case programs, shim, valgrind, gdb
  errors        ConfigError (file:line), UsageError, Failure (and explain's ExplainError, ProcessGone)

  lines         the line parser shared by case files and expected files; display_path
  casefile      cases/NAME.case
  vocab         the words expected files and metrics share: operators, figures, metric names
  expfile       expected/NAME.exp and expected/cells.exp, platform sections, bound selection
  platforminfo  the platform key (glibc, distro, THP, page size, arch)
  elf           PT_INTERP detection (static binaries cannot be preloaded)
  cells         the cell table: how each cell builds argv/env, its phases, metrics and references
  scrubenv      the scrubbed environment of every case run (also bench/shim-bench's)
  execute       one case program: its process group, timeout, phase lines; signal_process
  memcheck      valgrind --xml=yes parsing
  metrics       metric computation and checks against bounds
  runner        runs case x cell and judges the result
  report        table, JSON, JUnit; number formatting
  compare       the cases x allocators table of `retention compare`
  matrix        the platform x case x cell table of `retention matrix`, from runs' --json files
  demo          the teaching demo's steps, narration and chart
  svgchart      a self-contained SVG line chart (the demo's RSS timeline)
  explain/      `retention explain PID`: a live process's RSS through gdb and malloc_info (leak or
                retention?); its own __init__ lists its modules
"""
