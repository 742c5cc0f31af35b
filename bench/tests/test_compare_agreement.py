"""bench/compare-agreement: the four verdicts, the report over two compare JSON documents, and
its one-line refusals. Synthetic documents; no compare is run."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import benchscript

BENCH = benchscript.BENCH
SCRIPT = os.path.join(BENCH, "compare-agreement")


ca = benchscript.load("compare-agreement")


def doc(alloc, free):
    """One case, one column: alloc and free as (median, min, max)."""
    def r(t):
        return {"median": t[0], "min": t[1], "max": t[2], "rounds": 5}
    return {"platform": {}, "cases": [
        {"case": "seed", "cells": {"glibc": {"alloc_ratio": r((1, 1, 1)), "free_ratio": r((1, 1, 1))},
                                   "jemalloc": {"alloc_ratio": r(alloc), "free_ratio": r(free)}}},
        {"case": "broken", "error": "no such program"}]}


class Verdicts(unittest.TestCase):
    def test_each_verdict(self):
        self.assertEqual(ca.verdict((1.0, 0.9, 1.1), (1.05, 0.95, 1.2)), "mutual")
        self.assertEqual(ca.verdict((1.0, 0.99, 1.01), (1.05, 0.95, 1.2)), "one-sided")
        self.assertEqual(ca.verdict((1.0, 0.9, 1.02), (1.1, 1.01, 1.2)), "overlap")
        self.assertEqual(ca.verdict((1.0, 0.9, 1.02), (1.5, 1.4, 1.6)), "apart")

    def test_report_counts_and_lists_the_others(self):
        a = ca.ratios(doc((1.0, 0.9, 1.1), (2.0, 1.9, 2.1)), "a")
        b = ca.ratios(doc((1.05, 0.95, 1.2), (3.0, 2.9, 3.1)), "b")
        lines, counts = ca.report(a, b, "a", "b")
        self.assertEqual(counts, {"mutual": 1, "one-sided": 0, "overlap": 0, "apart": 1})
        self.assertIn("mutual 1", lines[0])
        self.assertTrue(any("seed" in l and "free" in l and "apart" in l for l in lines), lines)
        self.assertFalse(any(" alloc " in l for l in lines[1:]), lines)


class SameDistributionBaseline(unittest.TestCase):
    def test_shares_are_probabilities_that_grow_mutual_with_rounds(self):
        by_rounds = [ca.same_distribution_shares(n, n) for n in (3, 5, 7)]
        for sh in by_rounds:
            self.assertAlmostEqual(sum(sh.values()), 1.0)
        mutual = [sh["mutual"] for sh in by_rounds]
        apart = [sh["apart"] for sh in by_rounds]
        # more rounds widen each [min-max] and steady each median: fewer misses by chance
        self.assertLess(mutual[0], mutual[1])
        self.assertLess(mutual[1], mutual[2])
        self.assertGreater(apart[0], apart[2])
        # a median of one sample is always in a range... of one sample only if they coincide
        self.assertEqual(ca.same_distribution_shares(1, 1)["apart"], 1.0)

    def test_verdict_line_tells_sampling_from_a_real_difference(self):
        def many(shift):
            cells = dict(("c%d" % i, {"alloc_ratio": {"median": 1.0 + shift, "min": 0.95 + shift,
                                                      "max": 1.05 + shift, "rounds": 5}})
                         for i in range(40))
            return ca.ratios({"cases": [{"case": "x", "cells": cells}]}, "d")
        same, _ = ca.report(many(0.0), many(0.01), "a", "b")
        self.assertIn("no more disagreement than sampling explains", same[1])
        moved, counts = ca.report(many(0.0), many(0.5), "a", "b")
        self.assertEqual(counts["apart"], 40)
        self.assertIn("the invocations differ", moved[1])
        no_rounds = ca.ratios({"cases": [{"case": "x", "cells": {"c": {"alloc_ratio": {
            "median": 1, "min": 1, "max": 1}}}}]}, "d")
        lines, _ = ca.report(no_rounds, no_rounds, "a", "b")
        self.assertFalse(any("one distribution" in l for l in lines), lines)


class Refusals(unittest.TestCase):
    def run_script(self, *args):
        p = subprocess.run([sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        return p.returncode, p.stdout, p.stderr

    def test_bad_inputs_are_one_line_exit_2(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                f.write("{not json")
            wrong = os.path.join(d, "wrong.json")
            with open(wrong, "w") as f:
                json.dump({"cases": [{"cells": {}}]}, f)
            good = os.path.join(d, "good.json")
            with open(good, "w") as f:
                json.dump(doc((1, 1, 1), (1, 1, 1)), f)
            for args, culprit in (([bad, good], bad), ([wrong, good], wrong),
                                  ([good, os.path.join(d, "none.json")], "none.json"),
                                  ([good], "two compare JSON files"),
                                  (["--run", d, "--repeat", "2"], "--repeat 2"),
                                  (["--run", d, good], "--run and JSON")):
                rc, out, err = self.run_script(*args)
                self.assertEqual(rc, 2, (args, err))
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(culprit, err)
                self.assertEqual(out, "")
            rc, out, err = self.run_script(good, good)
            self.assertEqual((rc, err), (0, ""))
            self.assertIn("2 time ratios in both", out)
            self.assertIn("mutual 2", out)


if __name__ == "__main__":
    unittest.main()
