"""Is a program a static binary? LD_PRELOAD needs the dynamic loader, named by PT_INTERP."""

import struct

PT_INTERP = 3
# Per ELF class (1: 32-bit, 2: 64-bit): the size of the header after e_ident, the struct format of
# its fields e_type .. e_phnum, and the smallest program header entry.
#   e_type e_machine e_version e_entry e_phoff e_shoff e_flags e_ehsize e_phentsize e_phnum
_HEADER = {
    1: (36, 'HHIIIIIHHH', 32),
    2: (48, 'HHIQQQIHHH', 56),
}


def has_interp(path):
    """True: an ELF file with a PT_INTERP program header (dynamically linked);
    False: an ELF file without one (static, including static-pie: no loader runs, so nothing
    can be preloaded); None: not an ELF file (a script, unreadable, truncated)."""
    try:
        with open(path, 'rb') as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b'\x7fELF':
                return None
            cls, data = ident[4], ident[5]
            if cls not in (1, 2) or data not in (1, 2):
                return None
            end = '<' if data == 1 else '>'
            size, fmt, min_ent = _HEADER[cls]
            hdr = f.read(size)
            if len(hdr) < size:
                return None
            fields = struct.unpack_from(end + fmt, hdr)
            phoff, phentsize, phnum = fields[4], fields[8], fields[9]
            if phnum == 0 or phoff == 0:
                return False
            if phentsize < min_ent:
                return None
            # A table past the end of the file is a truncated (or corrupt) one; checked before the
            # seek and read, which an offset beyond 2^63 or a 4 GiB table would make fail or hog.
            size = f.seek(0, 2)
            if phoff > size or phentsize * phnum > size - phoff:
                return None
            f.seek(phoff)
            table = f.read(phentsize * phnum)
            if len(table) < phentsize * phnum:
                return None
            for i in range(phnum):
                (p_type,) = struct.unpack_from(end + 'I', table, i * phentsize)
                if p_type == PT_INTERP:
                    return True
            return False
    except (IOError, OSError, struct.error):
        return None
