import os
import signal
import subprocess
import sys
import time
import unittest

from retentionlib import execute

from .helpers import TempDirTest


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie is dead for our purpose
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except (IOError, OSError):
        return False


def gone_soon(pid, tries=50):
    """Whether pid is gone within tries x 20 ms (a killed process takes a moment to be reaped)."""
    for _ in range(tries):
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


class Process(TempDirTest):
    def test_output_and_status(self):
        r = execute.run_process([sys.executable, '-c', 'import sys; print("out"); sys.stderr.write("err\\n"); sys.exit(3)'],
                                dict(os.environ), 10, self.dir)
        self.assertEqual((r.returncode, r.stdout, r.stderr, r.timed_out), (3, 'out\n', 'err\n', False))

    def test_timeout_kills_the_whole_group(self):
        pidfile = os.path.join(self.dir, 'pid')
        code = ('import subprocess, sys, time\n'
                'c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\n'
                'open(%r, "w").write(str(c.pid))\n'
                'print("started", flush=True)\n'
                'time.sleep(60)\n' % pidfile)
        t0 = time.monotonic()
        r = execute.run_process([sys.executable, '-c', code], dict(os.environ), 1.0, self.dir)
        self.assertTrue(r.timed_out)
        self.assertEqual(r.returncode, -signal.SIGKILL)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(r.stdout, 'started\n')
        with open(pidfile) as f:
            child = int(f.read())
        self.assertTrue(gone_soon(child), 'the grandchild survived the timeout')

    def test_straggler_holding_stdout_does_not_block(self):
        # The case exits but leaves a child with its stdout open: we neither hang nor leave it.
        code = ('import subprocess, sys\n'
                'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\n'
                'print("done")\n')
        t0 = time.monotonic()
        r = execute.run_process([sys.executable, '-c', code], dict(os.environ), 30, self.dir)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual((r.returncode, r.timed_out, r.stdout), (0, False, 'done\n'))

    def test_signal(self):
        r = execute.run_process([sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGABRT)'],
                                dict(os.environ), 10, self.dir)
        self.assertEqual(r.returncode, -signal.SIGABRT)
        self.assertEqual(execute.signal_name(signal.SIGABRT), 'SIGABRT')
        self.assertEqual(execute.signal_name(11), 'SIGSEGV')

    def test_cannot_start(self):
        r = execute.run_process([os.path.join(self.dir, 'none')], dict(os.environ), 10, self.dir)
        self.assertIsNotNone(r.start_error)

    def test_environment_is_exactly_what_we_pass(self):
        r = execute.run_process([sys.executable, '-c', 'import os; print(sorted(k for k in os.environ if k.startswith("RT_")))'],
                                {'PATH': os.environ.get('PATH', ''), 'RT_A': '1'}, 10, self.dir)
        self.assertEqual(r.stdout.strip(), "['RT_A']")


class Phases(unittest.TestCase):
    def test_parse(self):
        out = ('not json\n{"hold":"peak","pid":3}\n{"phase":"baseline","rss_kb":1}\n{bad json\n'
               '{"phase":"idle","rss_kb":5}\n{"phase":"idle","rss_kb":4}\n[1,2]\n{"phase":"peak","rss_kb":9}\n')
        phases, samples, problems = execute.parse_phases(out)
        self.assertEqual(list(phases), ['baseline', 'peak'])
        self.assertEqual(phases['peak']['rss_kb'], 9)
        self.assertEqual([s['rss_kb'] for s in samples], [5, 4])
        self.assertEqual(problems, [])

    def test_twice(self):
        _, _, problems = execute.parse_phases('{"phase":"peak"}\n{"phase":"peak"}\n')
        self.assertEqual(problems, ["phase 'peak' reported twice"])

    def test_last_stderr_line(self):
        self.assertEqual(execute.last_stderr_line('a\nb: the reason\n\n==123== HEAP SUMMARY\n==123==\n'), 'b: the reason')
        self.assertEqual(execute.last_stderr_line(''), '')



class SignalProcess(unittest.TestCase):
    """The one helper that signals a case, gdb or the target of explain."""

    def test_a_process_already_gone_is_no_error(self):
        p = subprocess.Popen([sys.executable, '-c', 'pass'])
        p.wait()
        # signal 0 only checks: nothing is sent should the pid be reused meanwhile
        execute.signal_process(p.pid, 0)
        execute.signal_process(p.pid, 0, group=True)

    def test_group_reaches_every_member(self):
        code = ('import subprocess, sys, time\n'
                'c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])\n'
                'print(c.pid, flush=True)\n'
                'time.sleep(60)\n')
        p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, start_new_session=True)
        try:
            child = int(p.stdout.readline())
            execute.signal_process(p.pid, signal.SIGKILL, group=True)
            self.assertEqual(p.wait(timeout=10), -signal.SIGKILL)
            self.assertTrue(gone_soon(child), 'the child in the group survived')
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
            p.wait()


if __name__ == '__main__':
    unittest.main()
