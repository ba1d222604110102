"""The server's decoders, called in process through ctypes, for
bench/stages.py: ISA-L (the server's inflater) and libz (the reference one)
inflating gzip members, libzstd decompressing frames,
libarchive walking a raw tar as storage/archive_check.cpp does. Each one
reads 256 KiB inputs (the server's chunk size) into one reused output
buffer, like the server, and returns the CPU of this thread alone.

Python 3 standard library only.
"""

import contextlib
import ctypes
import ctypes.util
import json
import mmap
import os
import shutil
import subprocess
import tempfile
import time

CHUNK = 256 << 10  # the server's chunk size


class Skip(Exception):
    """A stage that cannot run here; the message says why."""


def thread_cpu():
    # CLOCK_THREAD_CPUTIME_ID: user + system of this thread. Not
    # getrusage(RUSAGE_THREAD), whose user/system split is kept monotonic by
    # the kernel and so can hide short intervals entirely.
    return time.thread_time()


# -- zlib through ctypes --------------------------------------------------------

class _ZStream(ctypes.Structure):
    _fields_ = [("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_uint),
                ("total_in", ctypes.c_ulong), ("next_out", ctypes.c_void_p),
                ("avail_out", ctypes.c_uint), ("total_out", ctypes.c_ulong),
                ("msg", ctypes.c_char_p), ("state", ctypes.c_void_p),
                ("zalloc", ctypes.c_void_p), ("zfree", ctypes.c_void_p),
                ("opaque", ctypes.c_void_p), ("data_type", ctypes.c_int),
                ("adler", ctypes.c_ulong), ("reserved", ctypes.c_ulong)]


_Z_OK, _Z_STREAM_END, _Z_BUF_ERROR = 0, 1, -5


@contextlib.contextmanager
def _in_and_out(data):
    """The address of `data`'s bytes, exported (not resizable) until the
    block ends, and of one reused CHUNK-byte output buffer: what each
    decoder below feeds and fills, as the server does."""
    out = ctypes.create_string_buffer(CHUNK)
    src = ctypes.c_char.from_buffer(data)
    try:
        yield ctypes.addressof(src), ctypes.addressof(out)
    finally:
        del src  # releases the export of `data`


def zlib_inflate(data, size):
    """CPU of zlib inflating every gzip member of data[:size] in 256 KiB
    inputs into one reused 256 KiB output buffer, as the server does.

    Not Python's zlib module: it allocates fresh output objects on every call
    (page faults and a join copy), measured at ~15 % over libz itself here."""
    z = ctypes.CDLL(ctypes.util.find_library("z") or "libz.so.1")
    z.zlibVersion.restype = ctypes.c_char_p
    z.inflateInit2_.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    z.inflate.argtypes = [ctypes.POINTER(_ZStream), ctypes.c_int]
    z.inflateReset.argtypes = [ctypes.POINTER(_ZStream)]
    z.inflateEnd.argtypes = [ctypes.POINTER(_ZStream)]
    strm = _ZStream()
    if z.inflateInit2_(ctypes.byref(strm), 31, z.zlibVersion(), ctypes.sizeof(_ZStream)) != _Z_OK:
        raise RuntimeError("inflateInit2 failed")
    try:
        with _in_and_out(data) as (base, out_addr):
            inflated, member_open = 0, False
            t0 = thread_cpu()
            for off in range(0, size, CHUNK):
                strm.next_in, strm.avail_in = base + off, min(CHUNK, size - off)
                while True:
                    strm.next_out, strm.avail_out = out_addr, CHUNK
                    r = z.inflate(ctypes.byref(strm), 0)
                    inflated += CHUNK - strm.avail_out
                    if r == _Z_STREAM_END:
                        z.inflateReset(ctypes.byref(strm))  # the next member, if any
                        member_open = False
                    elif r == _Z_OK:
                        member_open = True
                    elif r == _Z_BUF_ERROR:
                        break  # no progress without more input
                    else:
                        raise RuntimeError(f"zlib inflate: {r} {strm.msg}")
                    if strm.avail_in == 0 and strm.avail_out != 0:
                        break
            cpu = thread_cpu() - t0
    finally:
        z.inflateEnd(ctypes.byref(strm))
    if member_open:
        raise RuntimeError("truncated gzip member")
    return cpu, inflated


# -- ISA-L through ctypes -------------------------------------------------------

# struct inflate_state is 85 KiB with the fields this needs deep inside; their
# offsets come from the installed header through the C compiler rather than
# being copied here, so another libisal version cannot be misread silently.
_ISAL_LAYOUT_C = r"""
#include <isa-l/igzip_lib.h>
#include <stddef.h>
#include <stdio.h>
#define F(m) offsetof(struct inflate_state, m)
int main(void) {
  printf("{\"size\": %zu, \"next_out\": %zu, \"avail_out\": %zu, \"next_in\": %zu,"
         " \"avail_in\": %zu, \"block_state\": %zu, \"crc_flag\": %zu,"
         " \"finish\": %d, \"gzip\": %d}\n",
         sizeof(struct inflate_state), F(next_out), F(avail_out), F(next_in), F(avail_in),
         F(block_state), F(crc_flag), (int)ISAL_BLOCK_FINISH, ISAL_GZIP);
  return 0;
}
"""


def _isal_layout():
    cc = shutil.which("cc")
    if not cc or not os.path.exists("/usr/include/isa-l/igzip_lib.h"):
        raise Skip("ISA-L's header or a C compiler missing (Debian packages libisal-dev, gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = os.path.join(tmp, "layout.c"), os.path.join(tmp, "layout")
        with open(src, "w") as f:
            f.write(_ISAL_LAYOUT_C)
        subprocess.run([cc, "-o", exe, src], check=True, timeout=60)
        return json.loads(subprocess.run([exe], check=True, capture_output=True, text=True,
                                         timeout=10).stdout)


def isal_inflate(data, size):
    """CPU of ISA-L's isal_inflate (the server's inflater) inflating every
    gzip member of data[:size] in 256 KiB inputs into one reused 256 KiB
    output buffer. ISA-L reads the headers here (ISAL_GZIP); the server has
    zlib read them, a few dozen bytes per member."""
    name = ctypes.util.find_library("isal")
    if not name:
        raise Skip("libisal not installed (Debian package libisal2)")
    lib = ctypes.CDLL(name)
    lib.isal_inflate_init.argtypes = [ctypes.c_void_p]
    lib.isal_inflate.argtypes = [ctypes.c_void_p]
    layout = _isal_layout()
    state = ctypes.create_string_buffer(layout["size"])
    at = ctypes.addressof(state)

    def field(ctype, key):
        return ctype.from_address(at + layout[key])

    next_in, avail_in = field(ctypes.c_void_p, "next_in"), field(ctypes.c_uint32, "avail_in")
    next_out, avail_out = field(ctypes.c_void_p, "next_out"), field(ctypes.c_uint32, "avail_out")
    block_state, crc_flag = field(ctypes.c_int, "block_state"), field(ctypes.c_uint32, "crc_flag")
    with _in_and_out(data) as (base, out_addr):
        inflated, member_open = 0, False
        t0 = thread_cpu()
        for off in range(0, size, CHUNK):
            next_in.value, avail_in.value = base + off, min(CHUNK, size - off)
            while True:
                if not member_open:
                    pos, left = next_in.value, avail_in.value
                    lib.isal_inflate_init(at)  # which also clears next_in and avail_in
                    crc_flag.value = layout["gzip"]
                    next_in.value, avail_in.value = pos, left
                    member_open = True
                next_out.value, avail_out.value = out_addr, CHUNK
                had = avail_in.value
                r = lib.isal_inflate(at)
                if r < 0:
                    raise RuntimeError(f"isal_inflate: error {r} in the 256 KiB input at {off}")
                produced = CHUNK - avail_out.value
                inflated += produced
                if block_state.value == layout["finish"]:
                    member_open = False  # the next member, if any
                    if avail_in.value == 0:
                        break
                elif avail_out.value != 0 and (avail_in.value == 0
                                               or (avail_in.value == had and produced == 0)):
                    break
        cpu = thread_cpu() - t0
    if member_open:
        raise RuntimeError("truncated gzip member")
    return cpu, inflated


class _ZstdBuffer(ctypes.Structure):
    # ZSTD_inBuffer {const void* src; size_t size; size_t pos;} and
    # ZSTD_outBuffer {void* dst; size_t size; size_t pos;} share this layout.
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t), ("pos", ctypes.c_size_t)]


def zstd_decompress(data, size):
    """CPU of libzstd (the library the server links) decompressing every
    frame of data[:size] in 256 KiB inputs into one reused 256 KiB buffer."""
    name = ctypes.util.find_library("zstd")
    if not name:
        raise Skip("libzstd not installed (Debian package libzstd1)")
    zs = ctypes.CDLL(name)
    zs.ZSTD_createDStream.restype = ctypes.c_void_p
    zs.ZSTD_freeDStream.argtypes = [ctypes.c_void_p]
    zs.ZSTD_decompressStream.restype = ctypes.c_size_t
    zs.ZSTD_decompressStream.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ZstdBuffer),
                                         ctypes.POINTER(_ZstdBuffer)]
    zs.ZSTD_isError.argtypes = [ctypes.c_size_t]
    zs.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    zs.ZSTD_getErrorName.restype = ctypes.c_char_p
    ds = zs.ZSTD_createDStream()
    try:
        with _in_and_out(data) as (base, out_addr):
            inb, outb = _ZstdBuffer(), _ZstdBuffer(out_addr, CHUNK, 0)
            produced, hint = 0, 0
            t0 = thread_cpu()
            for off in range(0, size, CHUNK):
                inb.ptr, inb.size, inb.pos = base + off, min(CHUNK, size - off), 0
                while inb.pos < inb.size or outb.pos == CHUNK:
                    outb.pos = 0
                    hint = zs.ZSTD_decompressStream(ds, ctypes.byref(outb), ctypes.byref(inb))
                    if zs.ZSTD_isError(hint):
                        raise RuntimeError(f"zstd: {zs.ZSTD_getErrorName(hint).decode()}")
                    produced += outb.pos
            cpu = thread_cpu() - t0
    finally:
        zs.ZSTD_freeDStream(ds)
    if hint != 0:
        raise RuntimeError("truncated zstd frame")
    return cpu, produced


# -- libarchive through ctypes ------------------------------------------------

_READ_CB = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.POINTER(ctypes.c_void_p))
_ARCHIVE_OK, _ARCHIVE_EOF = 0, 1
_PROT_READ, _MAP_SHARED = 0x1, 0x01
_lib = None


def _libs():
    """(libarchive, libc) through ctypes, or Skip."""
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("archive") or "libarchive.so.13"
        try:
            la = ctypes.CDLL(name)
        except OSError:
            raise Skip("libarchive not installed (Debian package libarchive13)")
        la.archive_read_new.restype = ctypes.c_void_p
        la.archive_read_support_format_tar.argtypes = [ctypes.c_void_p]
        la.archive_read_open.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                         _READ_CB, ctypes.c_void_p]
        la.archive_read_next_header.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        la.archive_read_data_skip.argtypes = [ctypes.c_void_p]
        la.archive_error_string.argtypes = [ctypes.c_void_p]
        la.archive_error_string.restype = ctypes.c_char_p
        la.archive_read_free.argtypes = [ctypes.c_void_p]
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        _lib = (la, libc)
    return _lib


def libarchive_walk(tar_path, tar_size):
    """CPU of walking the tar as storage/archive_check.cpp does.

    The tar is mapped read-only with MAP_POPULATE (its pages are in the page
    cache: it was just written), so the callback hands out pointers, like the
    server handing its inflate output to libarchive."""
    la, libc = _libs()
    fd = os.open(tar_path, os.O_RDONLY)
    try:
        base = libc.mmap(None, tar_size, _PROT_READ, _MAP_SHARED | mmap.MAP_POPULATE, fd, 0)
        if base in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap of the tar failed")
    finally:
        os.close(fd)
    offset = 0

    @_READ_CB
    def read_block(_a, _client, out):
        nonlocal offset
        n = min(CHUNK, tar_size - offset)
        out[0] = base + offset
        offset += n
        return n

    a = la.archive_read_new()
    try:
        la.archive_read_support_format_tar(a)
        t0 = thread_cpu()
        if la.archive_read_open(a, None, None, read_block, None) != _ARCHIVE_OK:
            raise RuntimeError(f"libarchive: {la.archive_error_string(a)}")
        entry = ctypes.c_void_p()
        entries = 0
        while True:
            r = la.archive_read_next_header(a, ctypes.byref(entry))
            if r == _ARCHIVE_EOF:
                break
            if r != _ARCHIVE_OK or la.archive_read_data_skip(a) != _ARCHIVE_OK:
                raise RuntimeError(f"libarchive after {entries} entries: "
                                   f"{la.archive_error_string(a)}")
            entries += 1
        cpu = thread_cpu() - t0
    finally:
        la.archive_read_free(a)
        libc.munmap(base, tar_size)
    if entries == 0:
        raise RuntimeError("libarchive found no entries")
    return cpu
