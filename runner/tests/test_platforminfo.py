"""The platform key that selects bounds (platforminfo): glibc version, distro from os-release,
THP mode, page size, arch."""

import os
import re
import unittest

from retentionlib import platforminfo

from .helpers import TempDirTest


class Platform(TempDirTest):
    def test_os_release(self):
        rel = platforminfo.parse_os_release('# comment\nID=debian\nVERSION_ID="12"\nPRETTY_NAME=\'Debian 12\'\n'
                                            'NAME="A \\"quoted\\" name"\nbroken line\n')
        self.assertEqual(rel['ID'], 'debian')
        self.assertEqual(rel['VERSION_ID'], '12')
        self.assertEqual(rel['PRETTY_NAME'], 'Debian 12')
        self.assertEqual(rel['NAME'], 'A "quoted" name')
        self.assertNotIn('broken line', rel)

    def test_thp(self):
        self.assertEqual(platforminfo.parse_thp('always [madvise] never\n'), 'madvise')
        self.assertEqual(platforminfo.parse_thp('[always] madvise never'), 'always')
        self.assertEqual(platforminfo.parse_thp('garbage'), 'unknown')
        self.assertEqual(platforminfo.read_thp(os.path.join(self.dir, 'missing')), 'unknown')

    def test_detect_from_files(self):
        rel = self.file('os-release', 'ID=rocky\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3"\n')
        thp = self.file('enabled', 'always madvise [never]\n')
        p = platforminfo.detect(os_release_paths=(os.path.join(self.dir, 'nope'), rel), thp_path=thp)
        self.assertEqual((p['distro_id'], p['distro_version'], p['thp']), ('rocky', '9.3', 'never'))
        self.assertEqual(p['page_size'], os.sysconf('SC_PAGE_SIZE'))
        self.assertIn('distro=rocky-9.3 thp=never', p['key'])
        self.assertIn('page_size=%d' % p['page_size'], p['key'])

    def test_no_os_release(self):
        p = platforminfo.detect(os_release_paths=(os.path.join(self.dir, 'nope'),), thp_path=os.path.join(self.dir, 'x'))
        self.assertIsNone(p['distro_id'])
        self.assertIn('distro=unknown thp=unknown', p['key'])

    def test_glibc_version_here(self):
        v = platforminfo.glibc_version()
        if v is None:
            self.skipTest('not a glibc system')
        self.assertRegex(v, r'^\d+\.\d+')

    def test_key_format(self):
        k = platforminfo.key({'glibc': '2.36', 'distro_id': 'debian', 'distro_version': '12', 'thp': 'madvise',
                              'page_size': 4096, 'arch': 'x86_64'})
        self.assertEqual(k, 'glibc=2.36 distro=debian-12 thp=madvise page_size=4096 arch=x86_64')
        self.assertTrue(re.match(r'^glibc=none ', platforminfo.key({})))


if __name__ == '__main__':
    unittest.main()
