"""Which section of expected/ judged a result: `retention run` names a platform section that
applied, in the row, in the bounds line under the table and in the JSON."""

import json
import os
import unittest

from retentionlib import platforminfo

from .helpers import FixtureTest, case_text


class WhichSection(FixtureTest):
    """The table and the JSON say when a platform section, not the defaults, judged a result."""

    def setUp(self):
        FixtureTest.setUp(self)
        self.json = os.path.join(self.fx.root, 'out.json')

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


if __name__ == '__main__':
    unittest.main()
