"""`retention matrix`: one table, platform x case x cell, from the --json files of several runs."""

import json
import os
import unittest

from retentionlib import matrix

from .helpers import TempDirTest, call


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


class Matrix(TempDirTest):
    def write(self, name, d):
        return self.file(name, json.dumps(d))

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

    def test_a_platform_run_with_tcache_off_is_its_own_column(self):
        on = self.write('on.json', doc('2.36', [result('seed', 'native')]))
        off_doc = doc('2.36', [result('seed', 'native', value=0.95)])
        off_doc['platform']['tcache'] = 'off'
        off = self.write('off.json', off_doc)
        rc, out, err = call(['matrix', 'host=' + on, 'host=' + off])
        self.assertEqual(rc, 0, out + err)
        lines = out.splitlines()
        self.assertRegex(lines[0], r'^case +cell +host \(2\.36\) +host \(2\.36, no tcache\)$')
        self.assertRegex(lines[1], r'^seed +native +PASS 100% +PASS 95%$')
        self.assertIn('host, no tcache: glibc 2.36', out)
        rc, out, err = call(['matrix', 'host=' + off, 'host=' + off])
        self.assertEqual(rc, 2)
        self.assertIn("label 'host, no tcache' given twice", err)

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
