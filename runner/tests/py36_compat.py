#!/usr/bin/env python3
"""Fails on Python code that needs more than 3.6, the python3 of EL 7 (the founding report's platform).

    py36_compat.py [FILE...]     default: every Python source of the project (runner, bench)

Prints one line per finding, `FILE:LINE: WHAT is Python X.Y+`, and exits 1 if there is any, 0 if
none, 2 for a file it cannot read. It parses with the standard library's `ast` only; nothing is
imported or run. Two kinds of check:
  - syntax, by the parser itself (`feature_version=(3, 6)`, Python >= 3.8): the walrus operator,
    positional-only parameters, f"{x=}", parenthesized context managers, match; plus what that
    parser accepts all the same: subscripted builtins (`list[int]`, an error at run time on 3.6),
    `return *a, *b` without parentheses, `from __future__ import annotations`;
  - the standard library: modules, functions, keyword arguments and methods added after 3.6,
    from the tables below (each entry names the version that added it, from the Python docs'
    "New in version" / "Changed in version" notes).
It is a guard against the common mistakes, not a proof: a call through an alias it cannot follow
(a function stored in a variable), or dict union on a value it cannot type, goes unseen.
"""
import ast
import os
import sys

# Modules whose import alone needs a newer Python.
MODULES = {
    'dataclasses': '3.7', 'contextvars': '3.7', 'importlib.resources': '3.7',
    'importlib.metadata': '3.8', 'zoneinfo': '3.9', 'graphlib': '3.9', 'tomllib': '3.11',
}

# module attribute -> version; matched through `import m` / `import m as a` / `from m import x`.
ATTRIBUTES = {
    ('time', 'time_ns'): '3.7', ('time', 'monotonic_ns'): '3.7', ('time', 'perf_counter_ns'): '3.7',
    ('time', 'process_time_ns'): '3.7', ('time', 'clock_gettime_ns'): '3.7',
    ('time', 'thread_time'): '3.7', ('contextlib', 'nullcontext'): '3.7',
    ('contextlib', 'asynccontextmanager'): '3.7', ('asyncio', 'run'): '3.7',
    ('asyncio', 'create_task'): '3.7', ('asyncio', 'get_running_loop'): '3.7',
    ('math', 'prod'): '3.8', ('math', 'isqrt'): '3.8', ('math', 'dist'): '3.8',
    ('math', 'comb'): '3.8', ('math', 'perm'): '3.8', ('math', 'lcm'): '3.9',
    ('statistics', 'fmean'): '3.8', ('statistics', 'quantiles'): '3.8',
    ('statistics', 'geometric_mean'): '3.8', ('shlex', 'join'): '3.8',
    ('functools', 'cached_property'): '3.8', ('functools', 'cache'): '3.9',
    ('functools', 'singledispatchmethod'): '3.8', ('itertools', 'pairwise'): '3.10',
    ('os', 'waitstatus_to_exitcode'): '3.9', ('os', 'pidfd_open'): '3.9',
    ('os', 'memfd_create'): '3.8', ('os', 'register_at_fork'): '3.7',
    ('signal', 'raise_signal'): '3.8', ('signal', 'strsignal'): '3.8',
    ('signal', 'valid_signals'): '3.8', ('signal', 'pidfd_send_signal'): '3.9',
    ('sys', 'unraisablehook'): '3.8', ('sys', 'breakpointhook'): '3.7',
    ('threading', 'excepthook'): '3.8', ('threading', 'get_native_id'): '3.8',
    ('ast', 'unparse'): '3.9', ('argparse', 'BooleanOptionalAction'): '3.9',
    ('typing', 'Literal'): '3.8', ('typing', 'Final'): '3.8', ('typing', 'Protocol'): '3.8',
    ('typing', 'TypedDict'): '3.8', ('typing', 'get_origin'): '3.8', ('typing', 'get_args'): '3.8',
    ('typing', 'ForwardRef'): '3.7', ('re', 'Pattern'): '3.7', ('re', 'Match'): '3.7',
    ('datetime.datetime', 'fromisoformat'): '3.7', ('datetime.date', 'fromisoformat'): '3.7',
}

# (call, keyword) -> version. The call is 'module.function' when it resolves to one, else
# '.method' for a method call on any object (argparse's add_subparsers, a Path's unlink).
KEYWORDS = {
    ('subprocess.run', 'capture_output'): '3.7', ('subprocess.run', 'text'): '3.7',
    ('subprocess.Popen', 'text'): '3.7', ('subprocess.check_output', 'text'): '3.7',
    ('subprocess.call', 'text'): '3.7', ('subprocess.check_call', 'text'): '3.7',
    ('.add_subparsers', 'required'): '3.7', ('argparse.ArgumentParser', 'exit_on_error'): '3.9',
    ('shutil.copytree', 'dirs_exist_ok'): '3.8', ('.unlink', 'missing_ok'): '3.8',
    ('zip', 'strict'): '3.10',
}

# Methods whose names belong to one builtin type's newer API and nothing else in this project.
METHODS = {
    'removeprefix': '3.9', 'removesuffix': '3.9', 'isascii': '3.7', 'bit_count': '3.10',
    'is_relative_to': '3.9', 'fromisoformat': '3.7', 'readlink': '3.9', 'with_stem': '3.9',
}

BUILTIN_GENERICS = {'list', 'dict', 'tuple', 'set', 'frozenset', 'type'}


class _Checker(ast.NodeVisitor):
    def __init__(self):
        self.findings = []
        self.aliases = {}   # local name -> 'module' or 'module.attr'

    def _add(self, node, what, version):
        self.findings.append((getattr(node, 'lineno', 0), '%s is Python %s+' % (what, version)))

    def visit_Import(self, node):
        for a in node.names:
            if a.name in MODULES:
                self._add(node, 'import %s' % a.name, MODULES[a.name])
            self.aliases[a.asname or a.name.split('.')[0]] = a.name if a.asname else a.name.split('.')[0]
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        mod = node.module or ''
        if mod == '__future__' and any(a.name == 'annotations' for a in node.names):
            self._add(node, 'from __future__ import annotations', '3.7')
        if mod in MODULES:
            self._add(node, 'from %s import' % mod, MODULES[mod])
        for a in node.names:
            full = '%s.%s' % (mod, a.name)
            if full in MODULES:
                self._add(node, 'import %s' % full, MODULES[full])
            if (mod, a.name) in ATTRIBUTES:
                self._add(node, '%s.%s' % (mod, a.name), ATTRIBUTES[(mod, a.name)])
            self.aliases[a.asname or a.name] = full
        self.generic_visit(node)

    def _qualname(self, node):
        """'module.attr' for a Name or Attribute that resolves through an import, else None."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id if node.id in ('zip',) else None)
        if isinstance(node, ast.Attribute):
            base = self._qualname(node.value)
            if base is not None:
                return '%s.%s' % (base, node.attr)
        return None

    def visit_Attribute(self, node):
        q = self._qualname(node)
        if q is not None and '.' in q:
            mod, attr = q.rsplit('.', 1)
            if (mod, attr) in ATTRIBUTES:
                self._add(node, q, ATTRIBUTES[(mod, attr)])
        if node.attr in METHODS and q is None:
            self._add(node, '.%s()' % node.attr, METHODS[node.attr])
        self.generic_visit(node)

    def visit_Call(self, node):
        q = self._qualname(node.func)
        names = [q] if q else []
        if isinstance(node.func, ast.Attribute):
            names.append('.' + node.func.attr)
        for kw in node.keywords:
            for name in names:
                v = KEYWORDS.get((name, kw.arg))
                if v:
                    self._add(node, '%s(%s=)' % (name.lstrip('.') if name[0] != '.' else name, kw.arg), v)
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in BUILTIN_GENERICS \
                and node.value.id not in self.aliases:
            self._add(node, '%s[...] (a subscripted builtin)' % node.value.id, '3.9')
        self.generic_visit(node)

    def _unparenthesized_star(self, node, keyword):
        value = node.value
        if isinstance(value, ast.Tuple) and value.elts and \
                any(isinstance(e, ast.Starred) for e in value.elts) and \
                (value.lineno, value.col_offset) == (value.elts[0].lineno, value.elts[0].col_offset):
            self._add(node, '%s *a, *b without parentheses' % keyword, '3.8')

    def visit_Return(self, node):
        self._unparenthesized_star(node, 'return')
        self.generic_visit(node)

    def visit_Yield(self, node):
        self._unparenthesized_star(node, 'yield')
        self.generic_visit(node)


def check_source(source, filename='<source>'):
    """[(line, message)] for one file's text; a syntax error newer than 3.6 is one finding."""
    try:
        if sys.version_info >= (3, 8):
            tree = ast.parse(source, filename, feature_version=(3, 6))
        else:
            tree = ast.parse(source, filename)
    except SyntaxError as e:
        return [(e.lineno or 0, 'syntax: %s' % e.msg)]
    checker = _Checker()
    checker.visit(tree)
    return sorted(checker.findings)


def project_sources(root):
    """Every Python file of the project: *.py under runner/ and bench/, and scripts whose first
    line names python (runner/retention, bench/shim-bench)."""
    found = []
    for top in ('runner', 'bench', 'ci'):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.endswith('.py'):
                    found.append(path)
                elif '.' not in name and os.path.isfile(path):
                    with open(path, 'rb') as f:
                        first = f.readline()
                    if first.startswith(b'#!') and b'python' in first:
                        found.append(path)
    return found


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = argv or project_sources(root)
    bad = 0
    for path in files:
        try:
            with open(path, encoding='utf-8') as f:
                source = f.read()
        except (OSError, UnicodeDecodeError) as e:
            print('py36_compat: cannot read %s: %s' % (path, e), file=sys.stderr)
            return 2
        for line, message in check_source(source, path):
            print('%s:%d: %s' % (os.path.relpath(path, root), line, message))
            bad += 1
    print('py36_compat: %d file(s), %d finding(s)' % (len(files), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
