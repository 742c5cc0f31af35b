# A target whose malloc lock is held by another thread, for the timeout path of retention explain
# (tests/gdb_explain.py). A thread calls glibc's malloc_stats() with stderr on a pipe that is full:
# malloc_stats prints while it holds each arena's lock, so it blocks in write() holding the main
# arena's lock. A call gdb makes on the main thread (malloc_info locks every arena) then waits on
# that lock for good: explain must undo it at its timeout and leave the process working.
# Prints {"hold":"locked","pid":N} once the lock is held; on SIGUSR1 it drains the pipe (the
# thread finishes and lets the lock go), checks that malloc still works, and exits 0.
# While the lock is held the main thread must not call malloc itself (it would wait too): every
# object it needs then is made beforehand, and what it does use is small (pymalloc, not malloc).
import ctypes
import json
import os
import signal
import threading
import time

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
usr1 = {signal.SIGUSR1}
signal.pthread_sigmask(signal.SIG_BLOCK, usr1)
line = (json.dumps({'hold': 'locked', 'pid': os.getpid()}) + '\n').encode()
buf = memoryview(bytearray(1 << 20))
out = os.dup(1)
r, w = os.pipe()
os.set_blocking(w, False)
try:
    while True:
        os.write(w, b'x' * 65536)
except BlockingIOError:
    pass
os.set_blocking(w, True)
os.dup2(w, 2)

t = threading.Thread(target=libc.malloc_stats, daemon=True)
t.start()
wchan = '/proc/self/task/%d/wchan' % t.native_id
for _ in range(3000):
    fd = os.open(wchan, os.O_RDONLY)
    where = os.read(fd, 64)
    os.close(fd)
    if b'pipe_write' in where:
        break
    time.sleep(0.01)
else:
    os.write(out, b'lock_target: malloc_stats did not block\n')
    os._exit(2)
os.write(out, line)
signal.sigwait(usr1)
os.set_blocking(r, False)
deadline = time.monotonic() + 30
while t.is_alive() and time.monotonic() < deadline:
    try:
        os.readv(r, [buf])
    except BlockingIOError:
        time.sleep(0.01)
if t.is_alive():
    os.write(out, b'lock_target: malloc_stats never finished\n')
    os._exit(3)
# Takes the main arena's lock (1 MiB is above the mmap threshold, but malloc locks an arena
# first): hangs if explain left the lock held.
libc.free(libc.malloc(1 << 20))
os.write(out, b'{"released": true}\n')
os._exit(0)
