# A stand-in for valgrind: checks the memcheck cell's options, runs the program, and writes the
# XML named by FAKE_VALGRIND_XML (a stored real sample) to --xml-file.
import os
import shutil
import subprocess
import sys

args = sys.argv[1:]
opts = []
while args and args[0].startswith('--'):
    opts.append(args.pop(0))
need = ['--tool=memcheck', '--xml=yes', '--leak-check=full', '--show-leak-kinds=all']
for o in need:
    if o not in opts:
        sys.stderr.write('fake valgrind: missing option %s\n' % o)
        sys.exit(99)
xml = [o.split('=', 1)[1] for o in opts if o.startswith('--xml-file=')]
if not xml or os.environ.get('CK_FORK') != 'no':
    sys.stderr.write('fake valgrind: no --xml-file or CK_FORK is not no\n')
    sys.exit(98)
rc = subprocess.call(args)
sample = os.environ.get('FAKE_VALGRIND_XML')
if sample:
    shutil.copyfile(sample, xml[0])
sys.exit(rc if rc >= 0 else 128 - rc)
