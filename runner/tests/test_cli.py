"""End to end through the CLI (in process), with fake case programs in a temp repo layout."""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import xml.etree.ElementTree as ET

from retentionlib import paths, platforminfo

from .helpers import GOOD_EXP, LEAKY_XML, RUNNER, SEED_XML, FixtureTest, call, case_text, table_row

SUMMARY_RE = r'^\d+ passed, \d+ failed(, \d+ skipped)?$'


class CliTest(FixtureTest):
    def add(self, name, cells='native', env=None, exp=GOOD_EXP, **kw):
        self.fx.case(name, case_text(cells=cells, env=env, **kw))
        if exp is not None:
            self.fx.exp(name, exp)

    def run_json(self, *args, **kw):
        path = os.path.join(self.fx.root, 'out.json')
        rc, out, err = self.fx.run('--json', path, *args, **kw)
        with open(path) as f:
            doc = json.load(f)
        return rc, out, err, doc

    def row(self, out, case, cell):
        return table_row(self, out, case, cell)

    def last_line(self, out):
        lines = out.rstrip('\n').splitlines()
        self.assertRegex(lines[-1], SUMMARY_RE)
        return lines[-1]


class Passing(CliTest):
    def test_all_four_cells_pass(self):
        self.fx.shim()
        self.add('good', cells='native trim shim memcheck', env={'FAKE_VALGRIND_XML': SEED_XML})
        rc, out, err, doc = self.run_json(valgrind=self.fx.fake_valgrind())
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.last_line(out), '4 passed, 0 failed')
        self.assertRegex(self.row(out, 'good', 'native'), r'2\.8 MB +658 MB +657 MB +- .*retained 100% \(expected >= 90%\) +PASS$')
        self.assertRegex(self.row(out, 'good', 'trim'), r'44 MB .*floor 1\.01x \(expected <= 1\.2x\) +PASS$')
        self.assertRegex(self.row(out, 'good', 'shim'), r'45 MB .*shim/trim 1\.02x \(expected <= 1\.05x\) +PASS$')
        self.assertRegex(self.row(out, 'good', 'memcheck'),
                         r'memcheck +0 B definitely/indirectly/possibly lost; 2,400 B still reachable in 100 blocks +PASS$')
        self.assertIn('=> valgrind reports no leak, yet native RSS after free stays at 100% of peak.', out)
        self.assertIn('1 MB = 10^6 bytes', out)
        self.assertEqual([(r['cell'], r['status']) for r in doc['results']],
                         [('native', 'pass'), ('trim', 'pass'), ('shim', 'pass'), ('memcheck', 'pass')])

    def test_non_json_lines_are_ignored(self):
        self.add('noisy', env={'FAKE_MODE': 'noise'})
        rc, out, err = self.fx.run()
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.last_line(out), '1 passed, 0 failed')

    def test_entry_script(self):
        self.add('good')
        p = subprocess.Popen([sys.executable, RUNNER, 'run'] + self.fx.dirs(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out.decode().splitlines()[-1], '1 passed, 0 failed')
        p = subprocess.Popen([RUNNER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 2)


class Failing(CliTest):
    def assertFails(self, name, fragment, cell='native', **kw):
        rc, out, err, doc = self.run_json('--case', name, **kw)
        self.assertEqual(rc, 1, out + err)
        self.assertNotIn('Traceback', out + err)
        row = self.row(out, name, cell)
        self.assertTrue(row.endswith('FAIL'), row)
        self.assertIn(fragment, row)
        res = [r for r in doc['results'] if r['cell'] == cell][0]
        self.assertEqual(res['status'], 'fail')
        self.assertIn(fragment, res['reason'])
        self.assertRegex(self.last_line(out), r'^\d+ passed, [1-9]\d* failed')
        return out, res

    def test_native_that_drops_rss_fails_retained(self):
        self.add('dropper', env={'FAKE_AFTER_FREE': '3000'})
        out, res = self.assertFails('dropper', 'retained 0% (expected >= 90%)')
        self.assertIn('expected/dropper.exp:4', res['reason'])
        self.assertFalse(res['checks'][0]['ok'])

    def test_trim_that_gives_nothing_back_fails(self):
        self.add('untrimmed', cells='trim', env={'FAKE_AFTER_TRIM': '642000'})
        self.assertFails('untrimmed', 'floor 15.04x (expected <= 1.2x)', cell='trim')

    def test_lazy_shim_fails_against_trim_of_the_same_run(self):
        self.fx.shim()
        self.add('lazy', cells='trim shim', env={'FAKE_AFTER_IDLE': '60000'})
        self.assertFails('lazy', 'shim/trim 1.40x (expected <= 1.05x)', cell='shim')

    def test_memcheck_leak_fails(self):
        self.add('leaky', cells='memcheck', env={'FAKE_VALGRIND_XML': LEAKY_XML, 'FAKE_LIVE_OBJECTS': '10',
                                                 'FAKE_LIVE_BYTES': '240'})
        out, res = self.assertFails('leaky', 'definitely lost bytes 116 B (expected == 0 B)', cell='memcheck',
                                    valgrind=self.fx.fake_valgrind())
        self.assertIn('errors 3 (expected == 0)', res['reason'])
        self.assertNotIn('still reachable blocks', res['reason'])  # 10 == live_objects passed
        self.assertEqual(res['memcheck']['definitely_lost_bytes'], 116)

    def test_crash(self):
        self.add('crasher', env={'FAKE_MODE': 'crash'})
        out, res = self.assertFails('crasher', 'killed by signal SIGSEGV')
        self.assertEqual(res['signal'], 'SIGSEGV')
        self.assertIn('baseline', res['phases'])

    def test_hang_is_killed_at_the_timeout(self):
        pidfile = os.path.join(self.fx.root, 'child.pid')
        self.add('hanger', env={'FAKE_MODE': 'hang', 'FAKE_PIDFILE': pidfile}, timeout='0.5')
        t0 = time.monotonic()
        out, res = self.assertFails('hanger', 'timed out after 0.5 s, killed')
        self.assertLess(time.monotonic() - t0, 10)
        self.assertTrue(res['timed_out'])
        with open(pidfile) as f:
            child = int(f.read())
        for _ in range(50):
            try:
                os.kill(child, 0)
            except OSError:
                break
            with open('/proc/%d/stat' % child) as f:
                if f.read().split(')')[-1].split()[0] == 'Z':
                    break
            time.sleep(0.02)
        else:
            self.fail('the case\'s child survived the timeout')

    def test_nonzero_exit(self):
        self.add('exiter', env={'FAKE_MODE': 'exit3'})
        self.assertFails('exiter', 'exited with status 3: fake: cannot map the page-floor table')

    def test_prints_nothing(self):
        self.add('silent', env={'FAKE_MODE': 'silent'})
        self.assertFails('silent', "no 'baseline' phase reported")

    def test_missing_phase(self):
        self.add('notrim', cells='trim', env={'FAKE_MODE': 'notrim'})
        self.assertFails('notrim', "no 'after_trim' phase reported", cell='trim')

    def test_phase_twice(self):
        self.add('twice', env={'FAKE_MODE': 'twice'})
        self.assertFails('twice', "phase 'peak' reported twice")

    def test_flat_case_cannot_compute_retained(self):
        self.add('flat', env={'FAKE_MODE': 'flat'})
        self.assertFails('flat', 'not above baseline')

    def test_missing_binary(self):
        self.fx.case('unbuilt', case_text(program='nothing_here'))
        self.fx.exp('unbuilt')
        out, res = self.assertFails('unbuilt', 'not built: %s; run cmake --build' %
                                    os.path.join(self.fx.build, 'cases', 'nothing_here'))

    def test_no_expected_file(self):
        self.add('noexp', exp=None)
        out, res = self.assertFails('noexp', "no bounds for cell 'native': no expected file")
        self.assertIn('rss_kb', res['phases']['peak'])   # it ran: the figures help write the bounds

    def test_no_section_for_a_cell(self):
        self.add('nosection', cells='native trim', exp='# c\n[native]\n# w\nretained >= 0.9\n'
                 '[trim glibc<1.0]\n# never\nfloor_ratio <= 1\n')
        out, res = self.assertFails('nosection', "no bounds for cell 'trim' in ", cell='trim')
        self.assertIn('[trim glibc<1.0] on line 5 does not match this platform', res['reason'])
        self.assertIn('1 passed, 1 failed', out)

    def test_malformed_expected_file_fails_without_running(self):
        self.add('badexp', exp='[native]\n# w\nretained >= 0.9\nbogus line\n')
        out, res = self.assertFails('badexp', "badexp.exp:4: expected 'METRIC OP VALUE'")
        self.assertIsNone(res['command'])

    def test_two_matching_overrides(self):
        arch = platforminfo.detect()['arch']
        self.add('dup', exp='[native]\n# w\nretained >= 0.9\n[native arch=%s]\n# a\nretained >= 0.8\n'
                 '[native thp=%s]\n# b\nretained >= 0.7\n' % (arch, platforminfo.read_thp()))
        self.assertFails('dup', "metric 'retained' is set by two matching overrides")

    def test_matching_override_is_used(self):
        arch = platforminfo.detect()['arch']
        self.add('over', env={'FAKE_AFTER_FREE': '3000'},
                 exp='[native]\n# w\nretained >= 0.9\n[native arch=%s]\n# here it falls back\nretained <= 0.05\n' % arch)
        rc, out, err, doc = self.run_json()
        self.assertEqual(rc, 0, out)
        self.assertEqual(doc['results'][0]['checks'][0]['bound_expr'], '0.05')
        self.assertEqual(doc['results'][0]['checks'][0]['why'], 'here it falls back')

    def test_bound_on_a_metric_the_cell_does_not_compute(self):
        self.add('wrongcell', exp='[native]\n# w\nretained >= 0.9\n# nonsense here\nerrors == 0\n')
        self.assertFails('wrongcell', "metric 'errors' is not computed in cell 'native'")

    def test_malformed_case_file_fails_and_others_still_run(self):
        self.add('good')
        self.fx.case('broken', '# why\nprogram = fake\ncells = native\nfoo = 1\n')
        rc, out, err, doc = self.run_json()
        self.assertEqual(rc, 1)
        row = self.row(out, 'broken', '-')
        self.assertIn('broken.case:4: unknown key \'foo\'', row)
        self.assertTrue(row.endswith('FAIL'))
        self.assertTrue(self.row(out, 'good', 'native').endswith('PASS'))
        self.assertEqual(self.last_line(out), '1 passed, 1 failed')


class Skipping(CliTest):
    def test_missing_valgrind_is_a_skip(self):
        self.add('mc', cells='native memcheck')
        rc, out, err, doc = self.run_json(valgrind=os.path.join(self.fx.root, 'no-valgrind'))
        self.assertEqual(rc, 0, out)
        self.assertIn('skipped: valgrind not found', self.row(out, 'mc', 'memcheck'))
        self.assertTrue(self.row(out, 'mc', 'memcheck').endswith('SKIP'))
        self.assertEqual(self.last_line(out), '1 passed, 0 failed, 1 skipped')
        self.assertEqual(doc['summary'], {'passed': 1, 'failed': 0, 'skipped': 1})

    def test_valgrind_looked_up_in_path(self):
        self.assertEqual(paths.find_valgrind(None, ''), (None, 'valgrind not found'))
        self.fx.fake_valgrind()
        self.assertEqual(paths.find_valgrind(None, self.fx.root), (os.path.join(self.fx.root, 'valgrind'), None))

    def test_skip_exit_code(self):
        self.add('mc', cells='native memcheck')
        rc, out, err = self.fx.run('--cell', 'memcheck', '--skip-exit-code', '77',
                                   valgrind=os.path.join(self.fx.root, 'no-valgrind'))
        self.assertEqual(rc, 77)
        self.assertEqual(self.last_line(out), '0 passed, 0 failed, 1 skipped')
        rc, out, err = self.fx.run('--skip-exit-code', '77', valgrind=os.path.join(self.fx.root, 'no-valgrind'))
        self.assertEqual(rc, 0)

    def test_shim_not_built(self):
        self.add('s', cells='trim shim')
        rc, out, err, doc = self.run_json('--cell', 'shim', '--skip-exit-code', '77')
        self.assertEqual(rc, 77)
        self.assertIn('skipped: shim not built: %s' % os.path.join(self.fx.build, 'shim', 'libtrimshim.so'),
                      self.row(out, 's', 'shim'))
        # a skipped shim cell needs no trim reference: it is not run
        self.assertEqual([r['cell'] for r in doc['results']], ['shim'])
        rc, out, err, doc = self.run_json()
        self.assertEqual([(r['cell'], r['status']) for r in doc['results']], [('trim', 'pass'), ('shim', 'skip')])

    def test_static_binary_cannot_be_preloaded(self):
        self.fx.shim()
        self.fx.static_program('static_case')
        self.fx.case('st', case_text(program='static_case', cells='trim shim'))
        self.fx.exp('st')
        rc, out, err = self.fx.run('--cell', 'shim')
        self.assertIn('static_case is a static binary: nothing can be preloaded into it', self.row(out, 'st', 'shim'))
        self.assertTrue(self.row(out, 'st', 'shim').endswith('SKIP'))


class Cells(CliTest):
    def test_shim_runs_its_trim_reference_once(self):
        self.fx.shim()
        self.add('s', cells='native trim shim')
        rc, out, err, doc = self.run_json('--cell', 'shim')
        self.assertEqual([(r['cell'], r['reference']) for r in doc['results']], [('trim', True), ('shim', False)])
        self.assertIn('trim (ref)', out)
        rc, out, err, doc = self.run_json('--cell', 'shim', '--cell', 'trim')
        self.assertEqual([(r['cell'], r['reference']) for r in doc['results']], [('trim', False), ('shim', False)])
        self.assertEqual(rc, 0, out)

    def test_shim_reference_failure_is_named(self):
        self.fx.shim()
        self.add('s', cells='trim shim', env={'FAKE_MODE': 'notrim'})
        rc, out, err, doc = self.run_json('--cell', 'shim')
        shim = doc['results'][1]
        self.assertEqual(shim['status'], 'fail')
        self.assertIn("reference cell 'trim' failed: no 'after_trim' phase reported", shim['reason'])

    def test_environment_is_scrubbed_and_case_env_applied(self):
        self.fx.shim()
        keys = 'MALLOC_ARENA_MAX GLIBC_TUNABLES LD_PRELOAD TRIMSHIM_POLICY CASE_VAR CELL_VAR CK_FORK'
        self.fx.case('e', case_text(cells='native trim shim', env={'FAKE_MODE': 'env', 'FAKE_ENV_KEYS': keys,
                                                                    'CASE_VAR': 'case'},
                                    extra='env.trim = CELL_VAR=trim-only GLIBC_TUNABLES=glibc.malloc.arena_max=1'))
        self.fx.exp('e')
        saved = dict(os.environ)
        os.environ.update({'MALLOC_ARENA_MAX': '1', 'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=0',
                           'LD_PRELOAD': 'libnothing.so', 'TRIMSHIM_POLICY': 'garbage'})
        try:
            rc, out, err, doc = self.run_json()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        got = dict((r['cell'], r['phases']['baseline']) for r in doc['results'])
        self.assertEqual(got['native']['env'], {'MALLOC_ARENA_MAX': None, 'GLIBC_TUNABLES': None, 'LD_PRELOAD': None,
                                                'TRIMSHIM_POLICY': None, 'CASE_VAR': 'case', 'CELL_VAR': None,
                                                'CK_FORK': None})
        self.assertEqual(got['trim']['env']['CELL_VAR'], 'trim-only')
        self.assertEqual(got['trim']['env']['GLIBC_TUNABLES'], 'glibc.malloc.arena_max=1')
        self.assertEqual(got['shim']['env']['LD_PRELOAD'], os.path.join(self.fx.build, 'shim', 'libtrimshim.so'))
        self.assertEqual(got['native']['argv'], ['--count', '100'])
        self.assertEqual(got['trim']['argv'], ['--count', '100', '--trim'])
        self.assertEqual(got['shim']['argv'], ['--count', '100', '--idle', '2'])

    def test_env_option_sets_a_variable_explicitly(self):
        self.add('e', env={'FAKE_MODE': 'env', 'FAKE_ENV_KEYS': 'MALLOC_MMAP_THRESHOLD_ FAKE_MODE'})
        rc, out, err, doc = self.run_json('--env', 'MALLOC_MMAP_THRESHOLD_=4096')
        self.assertEqual(doc['results'][0]['phases']['baseline']['env'],
                         {'MALLOC_MMAP_THRESHOLD_': '4096', 'FAKE_MODE': 'env'})
        self.assertEqual(doc['results'][0]['env']['MALLOC_MMAP_THRESHOLD_'], '4096')
        # it can break the behaviour a bound pins: here, the fake's after_free figure
        rc, out, err = self.fx.run('--env', 'FAKE_AFTER_FREE=3000')
        self.assertEqual(rc, 1)
        rc, out, err = self.fx.run('--env', 'NO_EQUALS')
        self.assertEqual(rc, 2)
        self.assertIn("bad --env 'NO_EQUALS'", err)

    def test_memcheck_command(self):
        self.add('m', cells='memcheck', env={'FAKE_VALGRIND_XML': SEED_XML},
                 extra='memcheck_args = --count 7')
        vg = self.fx.fake_valgrind()
        rc, out, err, doc = self.run_json(valgrind=vg)
        self.assertEqual(rc, 0, out)
        cmd = doc['results'][0]['command']
        self.assertEqual(cmd[:2], [vg, '--tool=memcheck'])
        self.assertIn('--xml=yes', cmd)
        self.assertTrue(any(a.startswith('--xml-file=') for a in cmd))
        self.assertEqual(cmd[-2:], ['--count', '7'])
        self.assertEqual(doc['results'][0]['env'], {'CK_FORK': 'no', 'FAKE_VALGRIND_XML': SEED_XML})

    def test_memcheck_without_xml_fails(self):
        self.add('m', cells='memcheck')
        rc, out, err = self.fx.run(valgrind=self.fx.fake_valgrind())
        self.assertEqual(rc, 1)
        self.assertIn('valgrind wrote no XML file', self.row(out, 'm', 'memcheck'))

    @unittest.skipUnless(shutil.which('valgrind'), 'valgrind not installed')
    def test_real_valgrind_on_a_shell_case(self):
        path = os.path.join(self.fx.build, 'cases', 'shcase')
        self.fx.write(path, '#!/bin/sh\n'
                      'echo \'{"phase":"baseline","rss_kb":1}\'\necho \'{"phase":"peak","rss_kb":3}\'\n'
                      'echo \'{"phase":"after_free","rss_kb":3,"live_objects":0,"live_bytes":0,"floor_kb":4}\'\n', 0o755)
        self.fx.case('sh', case_text(program='shcase', cells='memcheck'))
        self.fx.exp('sh', '[memcheck]\n# dash frees or keeps, never loses\ndefinitely_lost_bytes == 0\n'
                    '# dash keeps its tables until exit\nstill_reachable_blocks > live_objects\n')
        rc, out, err, doc = self.run_json()
        res = doc['results'][0]
        self.assertEqual(res['status'], 'pass', res['reason'])
        self.assertGreater(res['memcheck']['still_reachable_bytes'], 0)


class Usage(CliTest):
    def test_unknown_case(self):
        self.add('alpha')
        self.add('beta')
        rc, out, err = self.fx.run('--case', 'gamma')
        self.assertEqual(rc, 2)
        self.assertEqual(err, "retention: unknown case 'gamma' (known: alpha, beta)\n")
        self.assertEqual(out, '')

    def test_unknown_cell(self):
        self.add('alpha')
        rc, out, err = self.fx.run('--cell', 'hoard')
        self.assertEqual(rc, 2)
        self.assertEqual(err, "retention: unknown cell 'hoard' (known: native, trim, shim, memcheck, jemalloc, jemalloc_bg, tcmalloc, mimalloc)\n")

    def test_argparse_errors(self):
        self.assertEqual(call(['run', '--no-such-option'])[0], 2)
        self.assertEqual(call([])[0], 2)
        self.assertEqual(call(['frobnicate'])[0], 2)

    def test_no_case_runs_the_cell(self):
        self.add('alpha')
        rc, out, err = self.fx.run('--cell', 'memcheck')
        self.assertEqual(rc, 2)
        self.assertIn("no selected case runs cell 'memcheck'", err)

    def test_no_cases(self):
        rc, out, err = self.fx.run()
        self.assertEqual(rc, 2)
        self.assertIn('no case files', err)


class Outputs(CliTest):
    def test_json_keys(self):
        self.add('good', cells='native trim memcheck', env={'FAKE_VALGRIND_XML': SEED_XML})
        self.add('dropper', env={'FAKE_AFTER_FREE': '3000'})
        rc, out, err, doc = self.run_json(valgrind=self.fx.fake_valgrind())
        self.assertEqual(rc, 1)
        self.assertEqual(set(doc), {'platform', 'results', 'summary'})
        for k in ('glibc', 'distro_id', 'distro_version', 'thp', 'page_size', 'arch', 'key'):
            self.assertIn(k, doc['platform'])
        self.assertEqual(doc['summary'], {'passed': 3, 'failed': 1, 'skipped': 0})
        for r in doc['results']:
            for k in ('case', 'cell', 'status', 'reason', 'duration_s', 'phases', 'samples', 'metrics', 'checks', 'memcheck'):
                self.assertIn(k, r)
            self.assertIn(r['status'], ('pass', 'fail', 'skip'))
        by = dict(((r['case'], r['cell']), r) for r in doc['results'])
        trim = by[('good', 'trim')]
        self.assertEqual(trim['phases']['after_trim']['rss_kb'], 43000)
        self.assertEqual(trim['phases']['after_trim']['floor_kb'], 40000)
        for k in ('rss_kb', 'floor_kb', 'anon_huge_kb', 'live_objects', 'live_bytes', 't_ms'):
            self.assertIn(k, trim['phases']['peak'])
        self.assertAlmostEqual(trim['metrics']['floor_ratio'], 43000 / 42700.0)
        c = trim['checks'][0]
        self.assertEqual((c['metric'], c['op'], c['bound'], c['bound_expr'], c['ok'], c['why']),
                         ('floor_ratio', '<=', 1.2, '1.20', True, 'the fake trims to the floor'))
        self.assertTrue(c['where'].endswith('good.exp:8'), c['where'])
        mc = by[('good', 'memcheck')]['memcheck']
        self.assertEqual((mc['definitely_lost_bytes'], mc['indirectly_lost_bytes'], mc['possibly_lost_bytes'],
                          mc['still_reachable_bytes'], mc['still_reachable_blocks'], mc['errors']),
                         (0, 0, 0, 2400, 100, 0))
        self.assertEqual(by[('dropper', 'native')]['status'], 'fail')

    def test_idle_samples_in_json(self):
        self.fx.shim()
        self.add('s', cells='trim shim')
        rc, out, err, doc = self.run_json()
        shim = doc['results'][1]
        self.assertEqual([x['rss_kb'] for x in shim['samples']], [46000, 45000, 44000])
        self.assertEqual(shim['phases']['after_idle']['rss_kb'], 44000)
        self.assertIn('after idle', out.splitlines()[0])

    def test_junit(self):
        self.add('good', cells='native memcheck')
        self.add('dropper', env={'FAKE_AFTER_FREE': '3000'})
        path = os.path.join(self.fx.root, 'junit.xml')
        rc, out, err = self.fx.run('--junit', path, valgrind=os.path.join(self.fx.root, 'none'))
        self.assertEqual(rc, 1)
        root = ET.parse(path).getroot()
        suite = root.find('testsuite')
        self.assertEqual(suite.get('name'), 'retention')
        self.assertEqual((suite.get('tests'), suite.get('failures'), suite.get('skipped')), ('3', '1', '1'))
        cases = dict(((t.get('classname'), t.get('name')), t) for t in suite.findall('testcase'))
        self.assertEqual(set(cases), {('good', 'native'), ('good', 'memcheck'), ('dropper', 'native')})
        fail = cases[('dropper', 'native')].find('failure')
        self.assertIn('retained 0% (expected >= 90%)', fail.get('message'))
        self.assertIn('valgrind not found', cases[('good', 'memcheck')].find('skipped').get('message'))
        self.assertIsNone(cases[('good', 'native')].find('failure'))
        float(cases[('good', 'native')].get('time'))


class ListAndPlatform(CliTest):
    def test_list(self):
        self.add('alpha', cells='native trim')
        self.add('beta', cells='memcheck')
        rc, out, err = call(['list', '--cases-dir', self.fx.cases])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r'alpha +native trim +a fake case for the runner tests')
        rc, out, err = call(['list', '--ctest', '--cases-dir', self.fx.cases])
        self.assertEqual((rc, out), (0, 'alpha native\nalpha trim\nbeta memcheck\n'))

    def test_list_malformed(self):
        self.add('alpha')
        self.fx.case('broken', '# why\nprogram = p\ncells = native nope\n')
        for args in (['list'], ['list', '--ctest']):
            rc, out, err = call(args + ['--cases-dir', self.fx.cases])
            self.assertEqual(rc, 2)
            self.assertIn("broken.case:3: unknown cell 'nope'", err)

    def test_platform(self):
        self.add('alpha', cells='native trim')
        self.fx.exp('alpha', '[native]\n# w\nretained >= 0.9\n[native glibc<1]\n# x\nretained >= 0.1\n'
                    '[trim arch=%s]\n# y\nfloor_ratio <= 2\n' % platforminfo.detect()['arch'])
        rc, out, err = call(['platform', '--json', '--cases-dir', self.fx.cases, '--expected-dir', self.fx.expected])
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        for k in ('glibc', 'distro_id', 'distro_version', 'thp', 'page_size', 'arch', 'key'):
            self.assertIn(k, doc['platform'])
        self.assertEqual(doc['sections']['alpha']['native']['note'], 'defaults only')
        self.assertTrue(doc['sections']['alpha']['native']['not_matching'][0].endswith('[native glibc<1]'))
        self.assertTrue(doc['sections']['alpha']['trim']['note'].startswith('overrides: [trim arch='))
        rc, out, err = call(['platform', '--cases-dir', self.fx.cases, '--expected-dir', self.fx.expected])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r'(?m)^key +glibc=')
        self.assertRegex(out, r'alpha +native +\[native\] \(defaults only\)')


if __name__ == '__main__':
    unittest.main()
