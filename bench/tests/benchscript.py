"""A bench/ script (no .py suffix) loaded as a module, for the tests of its pure parts."""
import importlib.machinery
import importlib.util
import os

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/, above tests/


def load(script):
    """bench/<script> as a module named after it."""
    name = script.replace("-", "_")
    loader = importlib.machinery.SourceFileLoader(name, os.path.join(BENCH, script))
    spec = importlib.util.spec_from_loader(name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod
