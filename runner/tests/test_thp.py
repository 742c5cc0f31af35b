"""`thp = disable` in a case file: parsed, applied to the case's process and everything it runs
(prctl PR_SET_THP_DISABLE in the child), and reported by `retention run`."""

import json
import os
import unittest

from retentionlib import execute
from retentionlib.casefile import parse_case_text
from retentionlib.errors import ConfigError

from .helpers import Fixture, TempDirTest, case_text


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
class ProcessThp(TempDirTest):
    """The child and everything it execs run with THP disabled; the runner itself does not."""

    def setUp(self):
        if not kernel_reports_thp_enabled():
            self.skipTest('this kernel has no THP_enabled line in /proc/PID/status (Linux < 5.0)')
        TempDirTest.setUp(self)

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


if __name__ == '__main__':
    unittest.main()
