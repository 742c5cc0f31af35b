"""bench/shim-bench and bench/shimbench: bad arguments get one line naming the culprit, and a
quick paired run (--quick: small heap, short busy loop) goes end to end. A smoke test of the
tooling, not a measurement: the figures come from bench/shim-bench run by hand (README)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("RETENTION_BUILD", "")
BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # bench/, above tests/
SCRIPT = os.path.join(BENCH, "shim-bench")


def run(cmd, timeout=120):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


class ShimbenchArguments(unittest.TestCase):
    def shimbench(self, *args):
        return run([os.path.join(BUILD, "bench", "shimbench")] + list(args), timeout=30)

    def assert_one_line(self, p, *words):
        self.assertEqual(p.returncode, 2, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_unknown_scenario(self):
        self.assert_one_line(self.shimbench("fragg"), "'fragg'")

    def test_option_of_another_scenario(self):
        self.assert_one_line(self.shimbench("seed", "--chunks", "10"), "seed", "'--chunks'")

    def test_not_a_number(self):
        self.assert_one_line(self.shimbench("frag", "--chunks", "1e5"), "--chunks", "'1e5'")

    def test_negative(self):
        self.assert_one_line(self.shimbench("frag", "--busy", "-1"), "--busy", "'-1'")

    def test_huge(self):
        self.assert_one_line(self.shimbench("frag", "--busy", "99999999999999999999"), "--busy")
        self.assert_one_line(self.shimbench("frag", "--busy", "4294967296"), "--busy")

    def test_missing_value(self):
        self.assert_one_line(self.shimbench("churn", "--ops"), "--ops")


class ShimBenchScript(unittest.TestCase):
    def script(self, *args, timeout=120):
        return run([sys.executable, SCRIPT, "--build", BUILD] + list(args), timeout=timeout)

    def assert_refused(self, p, *words):
        self.assertNotEqual(p.returncode, 0)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_unknown_scenario(self):
        self.assert_refused(self.script("--only", "a,bpiar"), "--only", "bpiar")

    def test_unknown_mode(self):
        self.assert_refused(self.script("--modes", "none,shm"), "--modes", "shm")

    def test_negative_reps(self):
        self.assert_refused(self.script("--reps", "-2"), "--reps", "-2")

    def test_missing_build(self):
        with tempfile.TemporaryDirectory() as d:
            p = run([sys.executable, SCRIPT, "--build", d, "--only", "bpair"])
        self.assert_refused(p, "missing", d)

    def test_quick_paired_run(self):
        # one pair of each mode: the table has the paired ratio of both (none/none, the A/A
        # control, and shim/none), and every raw result carries its partner's throughput
        with tempfile.TemporaryDirectory() as d:
            raw = os.path.join(d, "raw.jsonl")
            p = self.script("--quick", "--only", "bpair", "--modes", "none,shim", "--reps", "1",
                            "--json", raw, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            rows = [l for l in p.stdout.splitlines() if "paired throughput ratio" in l]
            self.assertEqual(len(rows), 1, p.stdout)
            ratios = [float(w) for w in rows[0].split() if w[:1].isdigit()]
            self.assertEqual(len(ratios), 2, rows[0])
            self.assertTrue(all(r > 0 for r in ratios), rows[0])
            with open(raw) as f:
                results = [json.loads(l) for l in f if l.strip()]
        self.assertEqual(sorted(r["mode"] for r in results), ["none", "shim"])
        for r in results:
            self.assertGreater(r["pair_none_ops_per_s"], 0)
            self.assertGreater(r["ops_per_s"], 0)


if __name__ == "__main__":
    if not BUILD:
        sys.exit("test_shim_bench.py: set RETENTION_BUILD to the build directory")
    unittest.main()
