"""What explain needs from a mapped ELF object's file, without gdb or debug info: its dynamic
symbols (name, address, size), the start of every function (from .eh_frame_hdr, which even a
stripped library keeps for unwinding), the load bias in the target, and the glibc version string.
64- and 32-bit little-endian objects; anything else gives empty answers, never an exception."""

import bisect
import re
import struct

SHT_SYMTAB = 2
SHT_DYNSYM = 11
STT_FUNC = 2
STT_GNU_IFUNC = 10
PT_LOAD = 1
# .eh_frame_hdr's table encoding that GNU ld writes: DW_EH_PE_datarel | DW_EH_PE_sdata4
EH_TABLE_DATAREL_SDATA4 = 0x3b


class ElfFile(object):
    """A parsed ELF file: .symbols [(name, value, size)] of the functions in .dynsym (and
    .symtab where present), .func_starts (sorted link-time addresses), .first_load_vaddr."""

    def __init__(self, data):
        self.data = data
        self.ok = False
        self.symbols = []
        self.func_starts = []
        self.first_load_vaddr = 0
        self.sections = {}
        self.word = 8
        try:
            self._parse()
            self.ok = True
        except (struct.error, IndexError, ValueError, OverflowError):
            # OverflowError: an offset past 2^63 (struct's ssize_t) in a made-up header
            self.ok = False
            self.symbols, self.func_starts, self.sections = [], [], {}

    def _parse(self):
        d = self.data
        if d[:4] != b'\x7fELF' or d[5] != 1:
            raise ValueError('not a little-endian ELF file')
        cls = d[4]
        if cls == 2:
            self.word = 8
            phoff, shoff = struct.unpack_from('<QQ', d, 0x20)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from('<HHHHH', d, 0x36)
        elif cls == 1:
            self.word = 4
            phoff, shoff = struct.unpack_from('<II', d, 0x1c)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from('<HHHHH', d, 0x2a)
        else:
            raise ValueError('unknown ELF class')
        loads = []
        for i in range(phnum):
            off = phoff + i * phentsize
            if self.word == 8:
                p_type, _, p_offset, p_vaddr = struct.unpack_from('<IIQQ', d, off)
            else:
                p_type, p_offset, p_vaddr = struct.unpack_from('<III', d, off)
            if p_type == PT_LOAD:
                loads.append((p_offset, p_vaddr))
        if loads:
            self.first_load_vaddr = min(v - o for o, v in loads if o == 0) if any(o == 0 for o, _ in loads) \
                else min(v for _, v in loads)
        shdrs = []
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.word == 8:
                name, typ, _, addr, offset, size, link, _, _, entsize = struct.unpack_from('<IIQQQQIIQQ', d, off)
            else:
                name, typ, _, addr, offset, size, link, _, _, entsize = struct.unpack_from('<IIIIIIIIII', d, off)
            shdrs.append((name, typ, addr, offset, size, link, entsize))
        if not shdrs:
            return
        strtab = shdrs[shstrndx]

        def sname(n):
            start = strtab[3] + n
            return d[start:d.index(b'\0', start)].decode('ascii', 'replace')
        for s in shdrs:
            self.sections[sname(s[0])] = s
        seen = set()
        for s in shdrs:
            if s[1] not in (SHT_DYNSYM, SHT_SYMTAB):
                continue
            names = shdrs[s[5]]
            ent = s[6] or (24 if self.word == 8 else 16)
            for i in range(s[4] // ent):
                off = s[3] + i * ent
                if self.word == 8:
                    st_name, st_info, _, st_shndx, st_value, st_size = struct.unpack_from('<IBBHQQ', d, off)
                else:
                    st_name, st_value, st_size, st_info, _, st_shndx = struct.unpack_from('<IIIBBH', d, off)
                if st_shndx == 0 or (st_info & 0xf) not in (STT_FUNC, STT_GNU_IFUNC) or not st_value:
                    continue
                start = names[3] + st_name
                name = d[start:d.index(b'\0', start)].decode('ascii', 'replace')
                key = (name, st_value)
                if key not in seen:
                    seen.add(key)
                    self.symbols.append((name, st_value, st_size))
        hdr = self.sections.get('.eh_frame_hdr')
        if hdr is not None:
            self.func_starts = _eh_frame_starts(d, hdr[2], hdr[3], hdr[4])

    def read_vaddr(self, vaddr, size):
        """Bytes of a section's contents at a link-time address (code), or None."""
        for _, typ, addr, offset, ssize, _, _ in self.sections.values():
            if typ != 8 and addr and addr <= vaddr and vaddr + size <= addr + ssize:  # 8: SHT_NOBITS
                return self.data[offset + vaddr - addr:offset + vaddr - addr + size]
        return None


def _eh_frame_starts(d, addr, offset, size):
    """The initial locations of .eh_frame_hdr's binary search table (link-time addresses)."""
    if size < 12 or d[offset] != 1:
        return []
    ptr_enc, count_enc, table_enc = d[offset + 1], d[offset + 2], d[offset + 3]
    if table_enc != EH_TABLE_DATAREL_SDATA4 or count_enc != 0x03 or ptr_enc not in (0x1b, 0x03):
        return []
    count, = struct.unpack_from('<I', d, offset + 8)
    if count * 8 + 12 > size:
        return []
    vals = struct.unpack_from('<%di' % (2 * count), d, offset + 12)
    return sorted(addr + vals[2 * i] for i in range(count))


def load(path, pid=None):
    """The ElfFile of a mapped object: read through /proc/PID/root (the target's own file system:
    a container's) first, then the path itself. None if unreadable."""
    clean = path[:-len(' (deleted)')] if path.endswith(' (deleted)') else path
    tries = []
    if pid is not None:
        tries.append('/proc/%d/root%s' % (pid, clean))
    tries.append(clean)
    for p in tries:
        try:
            with open(p, 'rb') as f:
                data = f.read()
        except (IOError, OSError):
            continue
        e = ElfFile(data)
        if e.ok:
            return e
    return None


def load_bias(mappings, path, elf):
    """Where the object is loaded: the start of its mapping at file offset 0, less the link-time
    address of its first segment."""
    for m in mappings:
        if m.path == path and m.offset == 0:
            return m.start - (elf.first_load_vaddr & ~0xfff)
    return None


_VERSION = re.compile(br'release version (\d+)\.(\d+)')


def glibc_version(elf):
    """(major, minor) from the banner glibc carries ('... stable release version 2.36.'), or None."""
    if elf is None:
        return None
    m = _VERSION.search(elf.data)
    return (int(m.group(1)), int(m.group(2))) if m else None


def tail_targets(elf, start, size):
    """Functions that the x86-64 code in [start, start + size) jumps to (jmp rel32, jcc rel32) at
    a function start outside itself: the static functions an exported function tail-calls, whose
    frames then stand on the stack without the export's. Link-time addresses."""
    code = elf.read_vaddr(start, size)
    if not code or not elf.func_starts:
        return []
    starts = set(elf.func_starts)
    out = set()
    for i in range(len(code) - 4):
        b = code[i]
        if b == 0xe9:
            n = 5
            rel = struct.unpack_from('<i', code, i + 1)[0]
        elif b == 0x0f and i + 5 < len(code) and 0x80 <= code[i + 1] <= 0x8f:
            n = 6
            rel = struct.unpack_from('<i', code, i + 2)[0]
        else:
            continue
        target = start + i + n + rel
        if target in starts and not (start <= target < start + size):
            out.add(target)
    return sorted(out)


def function_end(elf, start):
    """The next function start after `start` (the end of the function that starts there)."""
    i = bisect.bisect_right(elf.func_starts, start)
    return elf.func_starts[i] if i < len(elf.func_starts) else start + 1
