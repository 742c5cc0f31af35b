"""bench/pg-bench's pure parts: pgbench's summary, the shim's statistics files, /proc parsing,
the pairing plan, the cells; and its one-line refusals. No PostgreSQL needed, nothing started:
the benchmark itself runs by hand (README, "Under a real server's load")."""
import os
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import benchscript

BENCH = benchscript.BENCH
SCRIPT = os.path.join(BENCH, "pg-bench")


pb = benchscript.load("pg-bench")

PGBENCH_15 = """pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 22840
number of failed transactions: 0 (0.000%)
latency average = 1.751 ms
initial connection time = 9.837 ms
tps = 2284.471806 (without initial connection time)
"""

PGBENCH_13 = """transaction type: <builtin: TPC-B (sort of)>
number of transactions actually processed: 1000
latency average = 4.000 ms
tps = 990.100000 (including connections establishing)
tps = 1000.500000 (excluding connections establishing)
"""

PGBENCH_FAILED = """pgbench: error: client 1 script 0 aborted in command 4 query 0: ERROR:  deadlock detected
client 1 aborted in command 4 (SQL) of script 0; ERROR:  deadlock detected
number of transactions actually processed: 500
number of failed transactions: 3 (0.600%)
tps = 50.0 (without initial connection time)
pgbench: error: Run was aborted; the above results are incomplete.
"""

PROM = """# HELP trimshim_info The trim shim (libtrimshim) is loaded in this process
# TYPE trimshim_info gauge
trimshim_info{pid="21157",program=" [local] idle",mode="idle-points",policy="adaptive",format="1"} 1
trimshim_state{pid="21157",state="running"} 1
trimshim_state{pid="21157",state="stopped"} 0
trimshim_trims_total{pid="21157",kind="quiet"} 2
trimshim_trims_total{pid="21157",kind="busy"} 1
trimshim_trims_total{pid="21157",kind="interval"} 0
trimshim_returned_bytes_total{pid="21157"} 34000896
trimshim_trim_seconds_total{pid="21157"} 0.008634539
trimshim_probes_total{pid="21157"} 4
trimshim_cpu_seconds_total{pid="21157"} 0.006383239
trimshim_futile_trims_total{pid="21157"} 0
trimshim_wakeups_total{pid="21157"} 23
"""


class Parsers(unittest.TestCase):
    def test_pgbench_15(self):
        r = pb.parse_pgbench(PGBENCH_15)
        self.assertAlmostEqual(r["tps"], 2284.471806)
        self.assertEqual(r["processed"], 22840)
        self.assertEqual(r["failed"], 0)
        self.assertAlmostEqual(r["latency_ms"], 1.751)
        self.assertEqual(r["aborted_clients"], 0)

    def test_pgbench_13_takes_the_figure_without_connections(self):
        r = pb.parse_pgbench(PGBENCH_13)
        self.assertAlmostEqual(r["tps"], 1000.5)
        self.assertEqual(r["failed"], 0)

    def test_pgbench_failures_and_aborts_counted(self):
        r = pb.parse_pgbench(PGBENCH_FAILED)
        self.assertEqual(r["failed"], 3)
        self.assertEqual(r["aborted_clients"], 1)

    def test_pgbench_without_tps_is_one_line(self):
        with self.assertRaises(pb.BenchError) as c:
            pb.parse_pgbench("pgbench: error: connection to server failed\n")
        self.assertIn("connection to server failed", str(c.exception))
        self.assertNotIn("\n", str(c.exception))

    def test_prom(self):
        st = pb.parse_prom(PROM)
        self.assertEqual(st["pid"], 21157)
        self.assertEqual(st["program"], " [local] idle")
        self.assertEqual(st["mode"], "idle-points")
        self.assertEqual(st["state"], "running")
        self.assertEqual(st["trims"], {"quiet": 2, "busy": 1, "interval": 0})
        self.assertEqual(st["returned_bytes"], 34000896)
        self.assertEqual(st["probes"], 4)
        self.assertAlmostEqual(st["cpu_s"], 0.006383239)
        self.assertAlmostEqual(st["trim_s"], 0.008634539)
        self.assertEqual(st["looks"], 23)

    def test_prom_torn_or_foreign(self):
        self.assertIsNone(pb.parse_prom(""))
        self.assertIsNone(pb.parse_prom("node_load1 0.5\n"))
        # a file cut short still gives what it has
        st = pb.parse_prom(PROM.split("trimshim_returned")[0])
        self.assertEqual(st["returned_bytes"], 0)
        self.assertEqual(st["trims"]["quiet"], 2)

    def test_prom_escaped_label(self):
        st = pb.parse_prom('trimshim_info{pid="7",program="a \\"b\\"",mode="thread"} 1\n')
        self.assertEqual(st["program"], 'a "b"')

    def test_major(self):
        self.assertEqual(pb.parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"), 15)
        self.assertEqual(pb.parse_major("postgres (PostgreSQL) 9.2.24"), 9)
        self.assertIsNone(pb.parse_major("bash: postgres: not found"))

    def test_proc(self):
        self.assertEqual(pb.parse_status_anon_kb("Name:\tpostgres\nRssAnon:\t    9984 kB\n"), 9984)
        self.assertIsNone(pb.parse_status_anon_kb("Name:\tkthreadd\n"))
        line = ("4242 (postgres: x (y) [local]) S 4200 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 "
                "1 0 987654 1000 100")
        self.assertEqual(pb.parse_stat(line), (4200, 987654))
        # utime 11, stime 12, cutime 13, cstime 14 (fields 14-17)
        line = ("4200 (postgres) S 1 4200 4200 0 -1 4194560 1 0 0 0 11 12 13 14 20 0 1 0 5 1000 "
                "100")
        self.assertEqual(pb.parse_stat_cpu(line), (23, 27))


class Plan(unittest.TestCase):
    def test_every_mode_meets_both_dirs_and_cpus(self):
        plan = pb.pair_plan(["empty", "shim"], 4)
        self.assertEqual(len(plan), 8)
        self.assertEqual([m for _, m, _, _ in plan],
                         ["empty", "shim", "shim", "empty", "empty", "shim", "shim", "empty"])
        for mode in ("empty", "shim"):
            combos = set((d, c) for _, m, d, c in plan if m == mode)
            self.assertEqual(combos, {(0, 0), (1, 0), (0, 1), (1, 1)}, mode)

    def test_cells(self):
        self.assertEqual(pb.ratio_cell([1.0, 0.98, 1.02]), "1.000 [0.980-1.020]")
        self.assertEqual(pb.ratio_cell([0.99]), "0.990")
        self.assertEqual(pb.ratio_cell([]), "-")
        m, lo, hi, q1, q3 = pb.median_range([4, 1, 3, 2])
        self.assertEqual((m, lo, hi, q1, q3), (2.5, 1, 4, 1.5, 3.5))

    def test_reach(self):
        series = [(0.0, 3000), (1.0, 90000), (2.0, 9000), (2.5, 3400), (3.0, 3300)]
        self.assertEqual(pb.reach_s(series, 1.5, 3200), 1.0)  # 3400 <= 1.1 x 3200 at t=2.5
        self.assertIsNone(pb.reach_s(series, 1.5, 2000))
        self.assertIsNone(pb.reach_s(series, 1.5, None))


class ReapWait(unittest.TestCase):
    """clients_gone: the backend CPU of a pair is read from the postmaster's reaped-children
    accounting, so the wait must last until every backend is reaped. This test process plays
    the postmaster, its own children the backends."""

    def test_waits_for_a_known_backend_until_it_is_reaped(self):
        child = subprocess.Popen(["sleep", "0.6"])
        reaped = []
        t = threading.Thread(target=lambda: (child.wait(), reaped.append(time.time())))
        t.start()
        gone = pb.clients_gone(os.getpid(), pids=[child.pid], timeout=5)
        returned = time.time()
        t.join()
        self.assertTrue(gone)
        self.assertTrue(reaped and returned >= reaped[0], "returned before the child was reaped")

    def test_a_zombie_is_not_gone(self):
        child = subprocess.Popen(["true"])
        time.sleep(0.3)  # exited, not reaped
        self.assertFalse(pb.clients_gone(os.getpid(), timeout=0.5))
        child.wait()
        self.assertTrue(pb.clients_gone(os.getpid(), timeout=2))


class FindPostgres(unittest.TestCase):
    def tool_dir(self, root, rel, tools):
        d = os.path.join(root, rel)
        os.makedirs(d)
        for t in tools:
            p = os.path.join(d, t)
            with open(p, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(p, stat.S_IRWXU)
        return d

    def test_newest_debian_version_first(self):
        with tempfile.TemporaryDirectory() as root:
            self.tool_dir(root, "lib/13/bin", pb.PG_TOOLS)
            want = self.tool_dir(root, "lib/15/bin", pb.PG_TOOLS)
            self.tool_dir(root, "lib/9.6/bin", pb.PG_TOOLS)
            got = pb.find_pg_bin(roots=[(os.path.join(root, "lib"), r"^(\d+)(?:\.(\d+))?$")],
                                 path="")
            self.assertEqual(got, want)

    def test_path_fallback(self):
        with tempfile.TemporaryDirectory() as root:
            want = self.tool_dir(root, "usr/bin", pb.PG_TOOLS)
            self.assertEqual(pb.find_pg_bin(roots=[], path=want), want)

    def test_missing_pgbench_named(self):
        with tempfile.TemporaryDirectory() as root:
            d = self.tool_dir(root, "bin", [t for t in pb.PG_TOOLS if t != "pgbench"])
            with self.assertRaises(pb.BenchError) as c:
                pb.find_pg_bin(roots=[], path=d)
            self.assertIn("pgbench", str(c.exception))
            self.assertIn("ci/install-deps --postgres", str(c.exception))

    def test_none_at_all(self):
        with self.assertRaises(pb.BenchError) as c:
            pb.find_pg_bin(roots=[], path="")
        self.assertIn("ci/install-deps --postgres", str(c.exception))


class Refusals(unittest.TestCase):
    """Bad arguments and a missing PostgreSQL: exit 1, one line, before anything starts."""

    def script(self, *args):
        return subprocess.run([sys.executable, SCRIPT] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)

    def assert_refused(self, p, *words):
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        for w in words:
            self.assertIn(w, lines[0])
        self.assertEqual(p.stdout, "")

    def test_no_postgres(self):
        with tempfile.TemporaryDirectory() as d:
            self.assert_refused(self.script("--pg-bin", d), d, "ci/install-deps --postgres")

    def test_unknown_mode(self):
        self.assert_refused(self.script("--modes", "empty,shm"), "--modes", "shm")

    def test_bad_numbers(self):
        self.assert_refused(self.script("--rounds", "0"), "--rounds")
        self.assert_refused(self.script("--clients", "2", "--threads", "4"), "--threads")
        self.assert_refused(self.script("--work-mem", "lots"), "--work-mem")
        self.assert_refused(self.script("--shim-env", "FOO=1"), "--shim-env")


if __name__ == "__main__":
    unittest.main()
