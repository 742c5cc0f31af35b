"""Issue 5's runner parts: `thp = disable` (prctl PR_SET_THP_DISABLE in the child), which
expected section judged a result (table and JSON), and `retention matrix`."""

import json
import os
import shutil
import tempfile
import unittest

from retentionlib import execute, matrix, platforminfo
from retentionlib.casefile import parse_case_text
from retentionlib.errors import ConfigError

from .helpers import Fixture, call, case_text


def thp_enabled_line(text):
    for line in text.splitlines():
        if line.startswith('THP_enabled:'):
            return line.split(':', 1)[1].strip()
    return None


def kernel_reports_thp_enabled():
    with open('/proc/self/status') as f:
        return thp_enabled_line(f.read()) is not None


class CaseFileThp(unittest.TestCase):
    def parse(self, text):
        return parse_case_text(text, 'x', 'cases/x.case')

    def test_default_is_the_system_mode(self):
        self.assertEqual(self.parse('# why\nprogram = p\ncells = native\n').thp, 'system')

    def test_disable(self):
        self.assertEqual(self.parse('# why\nprogram = p\ncells = native\nthp = disable\n').thp, 'disable')
        self.assertEqual(self.parse('# why\nprogram = p\ncells = native\nthp = system\n').thp, 'system')

    def test_bad_value_names_file_and_line(self):
        with self.assertRaises(ConfigError) as cm:
            self.parse('# why\nprogram = p\ncells = native\nthp = never\n')
        self.assertTrue(str(cm.exception).startswith('cases/x.case:4: '), str(cm.exception))
        self.assertIn("bad value for 'thp': 'never' (expected system or disable)", str(cm.exception))


@unittest.skipIf(execute.thp_disable_unsupported(), execute.thp_disable_unsupported())
class ProcessThp(unittest.TestCase):
    """The child and everything it execs run with THP disabled; the runner itself does not."""

    def setUp(self):
        if not kernel_reports_thp_enabled():
            self.skipTest('this kernel has no THP_enabled line in /proc/PID/status (Linux < 5.0)')
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def status_of_grandchild(self, thp_disable):
        # sh forks and execs cat: what cat sees is inherited across fork and exec.
        r = execute.run_process(['/bin/sh', '-c', 'cat /proc/self/status'], dict(os.environ), 10, self.dir,
                                thp_disable=thp_disable)
        self.assertEqual(r.returncode, 0, r.stderr)
        return thp_enabled_line(r.stdout)

    def test_disabled_in_the_child_and_its_children(self):
        self.assertEqual(self.status_of_grandchild(True), '0')

    def test_untouched_by_default_and_in_the_runner(self):
        with open('/proc/self/status') as f:
            mine = thp_enabled_line(f.read())
        self.assertEqual(mine, '1')
        self.assertEqual(self.status_of_grandchild(False), '1')


THP_PROGRAM = """#!/bin/sh
# Reports one phase per line with the THP_enabled figure of its own /proc status.
t=$(sed -n 's/^THP_enabled:[[:space:]]*//p' /proc/self/status)
for p in baseline:1000 peak:100000 after_free:99000; do
  echo "{\\"phase\\": \\"${p%%:*}\\", \\"rss_kb\\": ${p#*:}, \\"floor_kb\\": 10, \\"thp_enabled\\": \\"$t\\"}"
done
"""


class RunThp(unittest.TestCase):
    def setUp(self):
        self.fx = Fixture()
        self.fx.write(os.path.join(self.fx.build, 'cases', 'thpcheck'), THP_PROGRAM, 0o755)
        self.fx.exp('t', '[native]\n# keeps it\nretained >= 0.9\n')
        self.json = os.path.join(self.fx.root, 'out.json')

    def tearDown(self):
        self.fx.cleanup()

    def run_case(self, extra):
        self.fx.case('t', case_text(program='thpcheck', extra=extra))
        rc, out, err = self.fx.run('--json', self.json)
        with open(self.json) as f:
            return rc, out, json.load(f)['results'][0]

    def test_case_file_disables_thp_for_the_case(self):
        why = execute.thp_disable_unsupported()
        rc, out, r = self.run_case('thp = disable')
        if why:
            self.assertEqual(r['status'], 'skip')
            self.assertEqual(r['reason'], why)
            return
        self.assertEqual(rc, 0, out)
        self.assertTrue(r['thp_disabled'])
        if kernel_reports_thp_enabled():
            self.assertEqual(r['phases']['baseline']['thp_enabled'], '0')

    def test_default_leaves_thp_alone(self):
        rc, out, r = self.run_case('')
        self.assertEqual(rc, 0, out)
        self.assertFalse(r['thp_disabled'])
        if kernel_reports_thp_enabled():
            self.assertEqual(r['phases']['baseline']['thp_enabled'], '1')


class WhichSection(unittest.TestCase):
    """The table and the JSON say when a platform section, not the defaults, judged a result."""

    def setUp(self):
        self.fx = Fixture()
        self.fx.program('fake')
        self.json = os.path.join(self.fx.root, 'out.json')

    def tearDown(self):
        self.fx.cleanup()

    def run_json(self):
        rc, out, err = self.fx.run('--json', self.json)
        with open(self.json) as f:
            return rc, out, json.load(f)

    def test_defaults_only(self):
        self.fx.case('d', case_text())
        self.fx.exp('d', '[native]\n# keeps it\nretained >= 0.9\n[native glibc<1.0]\n# never here\nretained >= 0.5\n')
        rc, out, doc = self.run_json()
        self.assertEqual(rc, 0, out)
        self.assertEqual(doc['results'][0]['bounds_override'], [])
        self.assertIn('bounds: defaults only', out)
        self.assertNotIn('[bounds:', out)

    def test_override_is_named_in_row_summary_and_json(self):
        glibc = platforminfo.glibc_version()
        if not glibc:
            self.skipTest('not glibc')
        self.fx.case('o', case_text())
        self.fx.exp('o', '[native]\n# keeps it\nretained >= 0.9\n[native glibc>=1.0]\n# every glibc\n'
                         'retained >= 0.8\n')
        rc, out, doc = self.run_json()
        self.assertEqual(rc, 0, out)
        r = doc['results'][0]
        self.assertEqual(r['bounds_override'], ['[native glibc>=1.0]'])
        self.assertEqual(r['checks'][0]['bound_expr'], '0.8')
        row = [l for l in out.splitlines() if l.startswith('o ')][0]
        self.assertIn('[bounds: [native glibc>=1.0]]', row)
        self.assertIn('bounds: platform sections [native glibc>=1.0] in 1 of 1 results', out)


def result(case, cell, status='pass', metric='retained', value=1.0, ok=True, bound=0.9, override=(), reason=''):
    return {'case': case, 'cell': cell, 'status': status, 'reason': reason, 'reference': False,
            'bounds_from': ['expected/%s.exp:3 [%s]' % (case, cell)] if status != 'skip' else [],
            'bounds_override': list(override),
            'checks': [] if status == 'skip' else [
                {'metric': 'definitely_lost_bytes', 'op': '==', 'value': 0, 'bound': 0, 'ok': True},
                {'metric': metric, 'op': '>=', 'value': value, 'bound': bound, 'ok': ok}]}


def doc(glibc, results):
    passed = sum(1 for r in results if r['status'] == 'pass')
    failed = sum(1 for r in results if r['status'] == 'fail')
    return {'platform': {'glibc': glibc, 'distro_id': 'debian', 'distro_version': glibc, 'thp': 'madvise'},
            'results': results,
            'summary': {'passed': passed, 'failed': failed, 'skipped': len(results) - passed - failed}}


class Matrix(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, name, d):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            json.dump(d, f)
        return path

    def test_table(self):
        a = self.write('a.json', doc('2.31', [
            result('seed', 'native', value=0.97, override=['[native glibc<2.33]']),
            result('seed', 'memcheck', metric='still_reachable_blocks', value=10000, bound=10000),
            result('seed', 'jemalloc', status='skip', reason='jemalloc not installed')]))
        b = self.write('b.json', doc('2.41', [
            result('seed', 'native', status='fail', value=0.5, ok=False),
            result('seed', 'memcheck', metric='still_reachable_blocks', value=10000, bound=10000)]))
        out_json = os.path.join(self.dir, 'm.json')
        rc, out, err = call(['matrix', 'bullseye=' + a, b, '--json', out_json])
        self.assertEqual(rc, 1, out + err)   # one failure
        lines = out.splitlines()
        self.assertRegex(lines[0], r'^case +cell +bullseye \(2\.31\) +b \(2\.41\)$')
        self.assertRegex(lines[1], r'^seed +native +PASS 97% \[1\] +FAIL 50% \(>= 90%\)$')
        self.assertRegex(lines[2], r'^seed +memcheck +PASS 10,000 blk +PASS 10,000 blk$')
        self.assertRegex(lines[3], r'^seed +jemalloc +skip +-$')
        self.assertIn('bullseye: glibc 2.31, debian 2.31, thp madvise; 2 passed, 0 failed, 1 skipped; '
                      'bounds: platform sections in 1 of 2 results', out)
        self.assertIn('b: glibc 2.41, debian 2.41, thp madvise; 1 passed, 1 failed, 0 skipped; '
                      'bounds: defaults only', out)
        self.assertIn('[1] bounds from [native glibc<2.33]', out)
        self.assertIn('skipped (1): jemalloc not installed', out)
        self.assertEqual(lines[-1], '3 passed, 1 failed, 1 skipped')
        with open(out_json) as f:
            m = json.load(f)
        self.assertEqual(list(m['platforms']), ['bullseye', 'b'])
        self.assertEqual(m['results'][0], {'platform': 'bullseye', 'case': 'seed', 'cell': 'native',
                                           'status': 'pass', 'metric': 'retained', 'value': 0.97,
                                           'bounds_override': ['[native glibc<2.33]'], 'reason': ''})

    def test_bad_input(self):
        rc, out, err = call(['matrix', os.path.join(self.dir, 'missing.json')])
        self.assertEqual(rc, 2)
        self.assertIn('cannot read', err)
        bad = self.write('bad.json', {'x': 1})
        rc, out, err = call(['matrix', bad])
        self.assertEqual(rc, 2)
        self.assertIn('no results list', err)
        a = self.write('a.json', doc('2.36', []))
        rc, out, err = call(['matrix', 'x=' + a, 'x=' + a])
        self.assertEqual(rc, 2)
        self.assertIn("label 'x' given twice", err)

    def test_key_check_prefers_the_cell_figure(self):
        r = result('c', 'jemalloc')
        r['checks'].append({'metric': 'settled_retained', 'op': '<=', 'value': 0.2, 'bound': 0.35, 'ok': True})
        self.assertEqual(matrix.key_check(r)['metric'], 'settled_retained')
        self.assertIsNone(matrix.key_check({'checks': []}))


if __name__ == '__main__':
    unittest.main()
