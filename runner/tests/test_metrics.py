import ast
import os
import subprocess
import sys
import unittest

from retentionlib import metrics, vocab
from retentionlib.cells import CELLS
from retentionlib.expfile import load_expected, parse_expected_text, select_bounds

RUNNER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(RUNNER_DIR, 'retentionlib')
DATA = os.path.join(RUNNER_DIR, 'tests', 'data')


def phases(**rss):
    out = {}
    for name, v in rss.items():
        out[name] = {'phase': name, 'rss_kb': v, 'floor_kb': 40000 if name not in ('baseline', 'peak') else -1,
                     'live_objects': 100, 'live_bytes': 2400}
    return out


SEED = phases(baseline=2700, peak=643000, after_free=642000, after_trim=43000, after_idle=44000)


def result(ph=SEED, **kw):
    r = {'phases': ph, 'run_ok': True, 'status': 'pass', 'reason': ''}
    r.update(kw)
    return r


def bound(line, cell='native'):
    exp = parse_expected_text('[%s]\n# why\n%s\n' % (cell, line), 'expected/t.exp')
    return exp.sections[0].bounds[0]


def run_check(line, cell, r, refs=None):
    values, errors = metrics.compute_all(CELLS[cell], r, refs or {})
    return metrics.check(bound(line, cell), CELLS[cell], r, values, errors)


class Compute(unittest.TestCase):
    def test_retained(self):
        v = metrics.METRICS['retained'].compute(result(), {})
        self.assertAlmostEqual(v, (642000 - 2700) / (643000 - 2700.0))

    def test_retained_drop(self):
        r = result(phases(baseline=2700, peak=643000, after_free=3000))
        self.assertAlmostEqual(metrics.METRICS['retained'].compute(r, {}), 300 / 640300.0)

    def test_retained_needs_growth(self):
        with self.assertRaises(metrics.NotComputable) as cm:
            metrics.METRICS['retained'].compute(result(phases(baseline=2700, peak=2700, after_free=2700)), {})
        self.assertIn('not above baseline', str(cm.exception))

    def test_retained_missing_phase(self):
        with self.assertRaises(metrics.NotComputable) as cm:
            metrics.METRICS['retained'].compute(result(phases(baseline=1, peak=2)), {})
        self.assertEqual(str(cm.exception), "no 'after_free' phase reported")

    def test_rss_not_reported(self):
        with self.assertRaises(metrics.NotComputable) as cm:
            metrics.METRICS['retained'].compute(result(phases(baseline=1, peak=-1, after_free=1)), {})
        self.assertIn("phase 'peak' reports no rss_kb", str(cm.exception))

    def test_floor_ratio(self):
        v = metrics.METRICS['floor_ratio'].compute(result(), {})
        self.assertAlmostEqual(v, 43000 / (2700 + 40000.0))

    def test_floor_ratio_needs_after_trim(self):
        with self.assertRaises(metrics.NotComputable) as cm:
            metrics.METRICS['floor_ratio'].compute(result(phases(baseline=1, peak=2, after_free=2)), {})
        self.assertEqual(str(cm.exception), "no 'after_trim' phase reported")

    def test_floor_ratio_needs_floor(self):
        ph = phases(baseline=1, peak=2, after_free=2, after_trim=2)
        ph['after_trim']['floor_kb'] = -1
        with self.assertRaises(metrics.NotComputable) as cm:
            metrics.METRICS['floor_ratio'].compute(result(ph), {})
        self.assertIn('no floor_kb', str(cm.exception))

    def test_shim_over_trim(self):
        trim = result(phases(baseline=2700, peak=643000, after_free=642000, after_trim=40000))
        v = metrics.METRICS['shim_over_trim'].compute(result(), {'trim': trim})
        self.assertAlmostEqual(v, 44000 / 40000.0)

    def test_shim_over_trim_discounts_the_shims_own_footprint(self):
        # The shim cell starts 150 kB higher (the preloaded library and its thread); only what the
        # heap keeps beyond that counts: (1850 - 150) / 1700 = 1.0, not 1850 / 1700 = 1.09.
        trim = result(phases(baseline=1400, peak=650000, after_free=1700, after_trim=1700))
        shim = result(phases(baseline=1550, peak=650150, after_free=1850, after_idle=1850))
        v = metrics.METRICS['shim_over_trim'].compute(shim, {'trim': trim})
        self.assertAlmostEqual(v, 1.0)
        # ...but heap memory the shim failed to return still counts in full.
        lazy = result(phases(baseline=1550, peak=650150, after_free=1850, after_idle=2400))
        v = metrics.METRICS['shim_over_trim'].compute(lazy, {'trim': trim})
        self.assertAlmostEqual(v, (2400 - 150) / 1700.0)

    def test_shim_over_trim_reads_growth_from_anonymous_memory(self):
        # Two runs of one program differ by ~150 kB of file-backed RSS (library pages); the heap's
        # pages are anonymous. Same anonymous growth: 1.0 although total RSS differs by 10%.
        def with_anon(ph, **anon):
            for name, v in anon.items():
                ph[name]['anon_kb'] = v
            return result(ph)
        trim = with_anon(phases(baseline=1400, peak=650000, after_free=1700, after_trim=1700),
                         baseline=100, peak=648000, after_free=300, after_trim=180)
        shim = with_anon(phases(baseline=1500, peak=650150, after_free=1850, after_idle=1870),
                         baseline=116, peak=648016, after_free=320, after_idle=196)
        self.assertAlmostEqual(metrics.METRICS['shim_over_trim'].compute(shim, {'trim': trim}), 1.0)
        # 1 MB of heap kept anonymous counts in full
        shim['phases']['after_idle']['anon_kb'] = 196 + 1000
        self.assertAlmostEqual(metrics.METRICS['shim_over_trim'].compute(shim, {'trim': trim}),
                               (1700 + 1000) / 1700.0)
        # one cell without the anonymous figure (statm only): both fall back to RSS growth
        shim['phases']['baseline']['anon_kb'] = -1
        self.assertAlmostEqual(metrics.METRICS['shim_over_trim'].compute(shim, {'trim': trim}),
                               (1700 + (1870 - 1500) - (1700 - 1400)) / 1700.0)

    def test_shim_over_trim_reference_problems(self):
        m = metrics.METRICS['shim_over_trim']
        with self.assertRaises(metrics.NotComputable) as cm:
            m.compute(result(), {})
        self.assertIn("reference cell 'trim' did not run", str(cm.exception))
        with self.assertRaises(metrics.NotComputable) as cm:
            m.compute(result(), {'trim': result(run_ok=False, status='fail', reason='killed by signal SIGSEGV')})
        self.assertIn("reference cell 'trim' failed: killed by signal SIGSEGV", str(cm.exception))
        with self.assertRaises(metrics.NotComputable) as cm:
            m.compute(result(), {'trim': result(status='skip', reason='x')})
        self.assertIn('was skipped', str(cm.exception))

    def test_memcheck_metrics(self):
        r = result(memcheck={'definitely_lost_bytes': 16, 'errors': 2})
        self.assertEqual(metrics.METRICS['definitely_lost_bytes'].compute(r, {}), 16)
        self.assertEqual(metrics.METRICS['errors'].compute(r, {}), 2)
        with self.assertRaises(metrics.NotComputable):
            metrics.METRICS['errors'].compute(result(memcheck=None), {})


class Checks(unittest.TestCase):
    def test_every_operator(self):
        # value 10 (memcheck errors) against bounds around it
        r = result(memcheck={'errors': 10})
        table = [('<', 11, True), ('<', 10, False), ('<=', 10, True), ('<=', 9, False),
                 ('==', 10, True), ('==', 11, False), ('>=', 10, True), ('>=', 11, False),
                 ('>', 9, True), ('>', 10, False)]
        for op, b, want in table:
            c = run_check('errors %s %d' % (op, b), 'memcheck', r)
            self.assertEqual(c['ok'], want, (op, b))
            self.assertEqual((c['value'], c['bound'], c['op']), (10, b, op))

    def test_float_bounds(self):
        self.assertTrue(run_check('retained >= 0.90', 'native', result())['ok'])
        self.assertFalse(run_check('retained <= 0.05', 'native', result())['ok'])

    def test_broken_behaviour_fails_the_bound(self):
        # A native case whose RSS falls back after free must fail 'retained >= 0.90'.
        dropped = result(phases(baseline=2700, peak=643000, after_free=3000))
        c = run_check('retained >= 0.90', 'native', dropped)
        self.assertFalse(c['ok'])
        self.assertLess(c['value'], 0.01)
        # A trim that left the peak resident must fail 'floor_ratio <= 1.20'.
        untrimmed = result(phases(baseline=2700, peak=643000, after_free=642000, after_trim=642000))
        self.assertFalse(run_check('floor_ratio <= 1.20', 'trim', untrimmed)['ok'])
        # A shim that gave nothing back must fail 'shim_over_trim <= 1.05'.
        lazy = result(phases(baseline=2700, peak=643000, after_free=642000, after_idle=642000))
        self.assertFalse(run_check('shim_over_trim <= 1.05', 'shim', lazy, {'trim': result()})['ok'])
        # A leak must fail 'definitely_lost_bytes == 0'.
        self.assertFalse(run_check('definitely_lost_bytes == 0', 'memcheck',
                                   result(memcheck={'definitely_lost_bytes': 16}))['ok'])

    def test_figure_bounds(self):
        r = result(memcheck={'still_reachable_blocks': 100, 'still_reachable_bytes': 2400})
        c = run_check('still_reachable_blocks == live_objects', 'memcheck', r)
        self.assertTrue(c['ok'])
        self.assertEqual(c['bound'], 100)
        self.assertFalse(run_check('still_reachable_blocks == live_objects', 'memcheck',
                                   result(memcheck={'still_reachable_blocks': 99}))['ok'])
        c = run_check('still_reachable_bytes <= live_bytes * 2', 'memcheck', r)
        self.assertEqual(c['bound'], 4800)
        self.assertTrue(c['ok'])
        self.assertFalse(run_check('still_reachable_bytes < live_bytes * 0.5', 'memcheck', r)['ok'])

    def test_figure_missing(self):
        r = result(phases(baseline=1, peak=2), memcheck={'still_reachable_blocks': 1})
        c = run_check('still_reachable_blocks == live_objects', 'memcheck', r)
        self.assertFalse(c['ok'])
        self.assertIn("no 'after_free' phase reported", c['error'])

    def test_metric_not_computed_in_cell(self):
        c = run_check('retained >= 0.9', 'memcheck', result(memcheck={'errors': 0}))
        self.assertFalse(c['ok'])
        self.assertIn("metric 'retained' is not computed in cell 'memcheck'", c['error'])
        c = run_check('floor_ratio <= 1.2', 'native', result())
        self.assertFalse(c['ok'])
        self.assertIn("not computed in cell 'native'", c['error'])

    def test_uncomputable_metric_fails(self):
        c = run_check('floor_ratio <= 1.2', 'trim', result(phases(baseline=1, peak=5, after_free=5)))
        self.assertFalse(c['ok'])
        self.assertEqual(c['error'], "floor_ratio: no 'after_trim' phase reported")

    def test_check_record(self):
        c = run_check('retained >= 0.90', 'native', result())
        self.assertEqual(c['why'], 'why')
        self.assertEqual(c['where'], 'expected/t.exp:3')
        self.assertEqual(c['bound_expr'], '0.90')
        self.assertEqual(c['bound'], 0.9)

    def test_check_names_the_cell_bounds_file_and_line(self):
        # What run -v prints after each check and the JSON's checks[].where: for a bound from
        # cells.exp, cells.exp's line, not the case's file.
        exp = load_expected(os.path.join(DATA, 'cellbounds'), 'plain', DATA)
        bounds, _ = select_bounds(exp, 'shim', {}, 'glibc')
        values, errors = metrics.compute_all(CELLS['shim'], result(), {'trim': result()})
        c = metrics.check(bounds[0], CELLS['shim'], result(), values, errors)
        self.assertEqual((c['where'], c['section'], c['why']), ('cellbounds/cells.exp:5', '[shim]',
                                                                'the shim matches trim'))
        self.assertTrue(c['ok'])


class Vocabulary(unittest.TestCase):
    def test_metrics_are_the_vocabulary_names_in_order(self):
        self.assertEqual(tuple(metrics.METRICS), vocab.METRIC_NAMES)
        self.assertEqual(set(metrics._BY_NAME), set(vocab.METRIC_NAMES))
        for name in vocab.MEMCHECK_METRICS:
            self.assertIn(name, CELLS['memcheck'].metrics)

    def test_every_metric_a_cell_computes_is_known(self):
        for cell in CELLS.values():
            for name in cell.metrics:
                self.assertIn(name, vocab.METRIC_NAMES, cell.name)


def _imports(path):
    """(module-level imports, imports inside functions) of a module, as 'from .X' names."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    top, nested = set(), set()

    def name(node):
        if isinstance(node, ast.ImportFrom):
            return '.' * node.level + (node.module or '')
        return ','.join(a.name for a in node.names)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.add(name(node))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    nested.add(name(inner))
    return top, nested


class ModuleLayout(unittest.TestCase):
    """The parsers and the metrics share vocab and do not import each other."""

    MODULES = ('vocab', 'lines', 'casefile', 'expfile', 'metrics')

    def test_no_cycle_and_no_import_inside_a_function(self):
        imports = {}
        for m in self.MODULES:
            top, nested = _imports(os.path.join(PACKAGE, m + '.py'))
            self.assertEqual(nested, set(), m)
            imports[m] = top
        self.assertEqual(set(i for i in imports['vocab'] if i.startswith('.')), set())
        self.assertNotIn('.metrics', imports['expfile'])
        self.assertNotIn('.expfile', imports['metrics'])
        self.assertNotIn('.casefile', imports['expfile'])
        self.assertIn('.vocab', imports['expfile'])
        self.assertIn('.vocab', imports['metrics'])

    def test_each_module_imports_on_its_own(self):
        for m in self.MODULES:
            p = subprocess.Popen([sys.executable, '-c', 'import retentionlib.%s' % m], cwd=RUNNER_DIR,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, '%s: %s' % (m, err))


if __name__ == '__main__':
    unittest.main()
