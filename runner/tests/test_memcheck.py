import os
import unittest

from retentionlib import memcheck

from .helpers import LEAKY_XML, SEED_XML, TempDirTest


class StoredSamples(unittest.TestCase):
    def test_leaky_program_matches_valgrinds_leak_summary(self):
        # tests/data/leaky.c under valgrind 3.19: its text LEAK SUMMARY said definitely lost 116 B in
        # 2 blocks, indirectly lost 16 B in 1, possibly lost 64 B in 1, still reachable 240 B in 10,
        # and 3 InvalidRead errors. The 16 B direct + 16 B indirect record must not count twice.
        mc = memcheck.parse_xml_file(LEAKY_XML)
        self.assertEqual((mc['definitely_lost_bytes'], mc['definitely_lost_blocks']), (116, 2))
        self.assertEqual((mc['indirectly_lost_bytes'], mc['indirectly_lost_blocks']), (16, 1))
        self.assertEqual((mc['possibly_lost_bytes'], mc['possibly_lost_blocks']), (64, 1))
        self.assertEqual((mc['still_reachable_bytes'], mc['still_reachable_blocks']), (240, 10))
        self.assertEqual(mc['errors'], 3)
        self.assertEqual(dict(mc['error_kinds']), {'InvalidRead': 3})
        self.assertEqual(mc['leak_records'], 5)

    def test_seed_case(self):
        mc = memcheck.parse_xml_file(SEED_XML)
        self.assertEqual((mc['definitely_lost_bytes'], mc['indirectly_lost_bytes'], mc['possibly_lost_bytes']),
                         (0, 0, 0))
        self.assertEqual((mc['still_reachable_bytes'], mc['still_reachable_blocks']), (2400, 100))
        self.assertEqual(mc['errors'], 0)


class Broken(TempDirTest):
    def assertBroken(self, data, fragment):
        with self.assertRaises(memcheck.MemcheckError) as cm:
            memcheck.parse_xml_text(data)
        self.assertIn(fragment, str(cm.exception))

    def test_missing_file(self):
        with self.assertRaises(memcheck.MemcheckError) as cm:
            memcheck.parse_xml_file(os.path.join(self.dir, 'none.xml'))
        self.assertIn('valgrind wrote no XML file', str(cm.exception))

    def test_empty(self):
        self.assertBroken(b'', 'empty XML')

    def test_truncated_as_after_sigkill(self):
        with open(SEED_XML, 'rb') as f:
            data = f.read()
        self.assertBroken(data[:len(data) // 2], 'malformed or incomplete')

    def test_not_finished(self):
        self.assertBroken(b'<valgrindoutput><protocoltool>memcheck</protocoltool><status><state>RUNNING</state>'
                          b'</status></valgrindoutput>', 'no FINISHED status')

    def test_other_tool(self):
        self.assertBroken(b'<valgrindoutput><protocoltool>helgrind</protocoltool></valgrindoutput>', "tool 'helgrind'")

    def test_not_valgrind(self):
        self.assertBroken(b'<html></html>', 'not valgrind XML')

    def test_record_without_figures(self):
        self.assertBroken(b'<valgrindoutput><status><state>FINISHED</state></status><error><unique>0x1</unique>'
                          b'<kind>Leak_StillReachable</kind><xwhat><text>x</text></xwhat></error></valgrindoutput>',
                          '<leakedbytes> missing')

    def test_clean_run_without_records(self):
        mc = memcheck.parse_xml_text(b'<valgrindoutput><status><state>FINISHED</state></status></valgrindoutput>')
        self.assertEqual(mc['still_reachable_blocks'], 0)
        self.assertEqual(mc['errors'], 0)


if __name__ == '__main__':
    unittest.main()
