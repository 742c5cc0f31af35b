import os
import struct
import sys
import unittest

from retentionlib import elf

from .helpers import TempDirTest, dynamic_elf_bytes, static_elf_bytes


class Interp(TempDirTest):
    def elf_file(self, data):
        return self.file('f', data)

    def test_static(self):
        self.assertIs(elf.has_interp(self.elf_file(static_elf_bytes())), False)

    def test_dynamic(self):
        self.assertIs(elf.has_interp(self.elf_file(dynamic_elf_bytes())), True)

    def test_big_endian_32_bit_static(self):
        ehdr = b'\x7fELF' + bytes([1, 2, 1, 0]) + b'\0' * 8
        ehdr += struct.pack('>HHIIIIIHHHHHH', 2, 8, 1, 0x400000, 52, 0, 0, 52, 32, 1, 40, 0, 0)
        phdr = struct.pack('>IIIIIIII', 1, 0, 0x400000, 0x400000, 0x100, 0x100, 5, 0x1000)
        self.assertIs(elf.has_interp(self.elf_file(ehdr + phdr)), False)
        phdr = struct.pack('>IIIIIIII', 3, 0, 0, 0, 0x10, 0x10, 4, 1)
        self.assertIs(elf.has_interp(self.elf_file(ehdr + phdr)), True)

    def test_not_elf(self):
        self.assertIsNone(elf.has_interp(self.elf_file(b'#!/bin/sh\necho hi\n')))
        self.assertIsNone(elf.has_interp(self.elf_file(b'')))
        self.assertIsNone(elf.has_interp(os.path.join(self.dir, 'missing')))

    def test_truncated(self):
        self.assertIsNone(elf.has_interp(self.elf_file(dynamic_elf_bytes()[:70])))
        self.assertIsNone(elf.has_interp(self.elf_file(static_elf_bytes()[:30])))

    def test_real_interpreter_binary(self):
        # The python running these tests is a dynamically linked ELF on any usual distro.
        exe = os.path.realpath(sys.executable)
        if elf.has_interp(exe) is None:
            self.skipTest('%s is not an ELF file' % exe)
        self.assertIs(elf.has_interp('/bin/sh' if os.path.exists('/bin/sh') else exe), True)


if __name__ == '__main__':
    unittest.main()
