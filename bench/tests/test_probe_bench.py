"""bench/probe-bench: bad arguments get one line naming the culprit, and a quick run (--quick: one
pair per mode, 1 s busy loops) goes end to end and prints a well-formed table. A smoke test of the
tooling, not a measurement: no figure is compared with a timing, only checked to be a number (the
figures come from bench/probe-bench run by hand, README "The probe")."""
import os
import re
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("RETENTION_BUILD", "")
BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/, above tests/
SCRIPT = os.path.join(BENCH, "probe-bench")
MODES = ("none", "thread", "probe")
NUM = r"(\d+(?:\.\d+)?)"
# "  probe   0.871 [0.850-0.901]" (the none row ends with "(A/A control)")
ROW_RE = re.compile(r"^  (\w+)\s+%s \[%s-%s\]" % (NUM, NUM, NUM))
PROBE_RE = re.compile(r"^probe thread CPU / wall: median %s%% \[%s-%s%%\] of one core; longest heap read %s ms; "
                      r"%s samples per run \(interval (\d+) ms\)$" % (NUM, NUM, NUM, NUM, NUM))


def run(cmd, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


def script(*args, **kw):
    return run([sys.executable, SCRIPT, "--build", BUILD] + list(args), **kw)


class ProbeBenchArguments(unittest.TestCase):
    def assert_refused(self, p, *words):
        self.assertNotEqual(p.returncode, 0)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_no_pairs(self):
        # zero pairs would end in a median of nothing (a traceback), after the builds
        self.assert_refused(script("--pairs", "0"), "--pairs", "0")

    def test_negative_interval(self):
        self.assert_refused(script("--quick", "--interval-ms", "-5"), "--interval-ms", "-5")

    def test_missing_build(self):
        with tempfile.TemporaryDirectory() as d:
            p = run([sys.executable, SCRIPT, "--build", d, "--quick"])
        self.assert_refused(p, "missing", d)


class ProbeBenchQuickRun(unittest.TestCase):
    def test_quick_run_prints_every_figure(self):
        p = script("--quick", timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        head = [l for l in lines if l.startswith("busy loop: ")]
        self.assertEqual(len(head), 1, p.stdout)
        self.assertIn("1 pairs per mode", head[0])
        rows = dict((m.group(1), m) for m in (ROW_RE.match(l) for l in lines) if m)
        self.assertEqual(sorted(rows), sorted(MODES), p.stdout)
        for mode, m in rows.items():
            med, lo, hi = (float(m.group(i)) for i in (2, 3, 4))
            self.assertGreater(lo, 0, mode)
            self.assertTrue(lo <= med <= hi, m.group(0))
            if mode == "none":
                self.assertIn("(A/A control)", m.string)
        # one pair: the range is that pair's ratio
        self.assertTrue(all(m.group(2) == m.group(3) == m.group(4) for m in rows.values()), p.stdout)
        probe = [PROBE_RE.match(l) for l in lines if l.startswith("probe thread CPU")]
        self.assertEqual(len(probe), 1, p.stdout)
        self.assertIsNotNone(probe[0], p.stdout)
        share, lo, hi, heap_ms, samples, interval = (float(probe[0].group(i)) for i in range(1, 7))
        self.assertTrue(lo <= share <= hi, probe[0].group(0))
        self.assertLess(share, 100.0)
        # a 1 s busy loop sampled every 100 ms: its samples, and at least one heap read, are in
        self.assertGreaterEqual(samples, 5)
        self.assertGreater(heap_ms, 0)
        self.assertEqual(interval, 100)
        # the pair progress goes to stderr, one line per pair
        self.assertEqual(len([l for l in p.stderr.splitlines() if l.startswith("  pair 1 ")]), len(MODES), p.stderr)


if __name__ == "__main__":
    if not BUILD:
        sys.exit("test_probe_bench.py: set RETENTION_BUILD to the build directory")
    unittest.main()
