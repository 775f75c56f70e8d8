# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Batched UDP I/O: the Cython kernel (twin: the ``*_py`` functions of ``media_core.udp_batch``).

Same functions, signatures, results and error messages as the pure-Python twin
in ``media_core.udp_batch``, which documents the arrays. One ``recvmmsg(2)``
receives up to 1024 datagrams and one ``sendmmsg(2)`` sends up to 1024, both
with ``MSG_DONTWAIT`` and without the GIL; ``recv_many``/``send_many`` go over
many sockets in one call, still without the GIL. Payload bytes go straight
into (and out of) the caller's preallocated rows; the only allocation is one
block of message headers per call, never one per datagram.

The arrays are checked with the GIL held (type, dtype, dimensions, as the twin
does), then taken with ``PyObject_GetBuffer``, which checks C-contiguity and
writability in the same step and hands over the data pointer: much cheaper
than typed memoryviews for a call that may move a single datagram.
"""

from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_GetBuffer,
)
from cpython.exc cimport PyErr_CheckSignals
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import os

import numpy as np

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK  # == EAGAIN on Linux; POSIX allows them to differ

cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void *iov_base
        size_t iov_len

cdef extern from "<netinet/in.h>" nogil:
    # Only the fields read or written here; Cython takes the real layout from the header.
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct in6_addr:
        uint8_t s6_addr[16]
    struct sockaddr_in6:
        unsigned short sin6_family
        uint16_t sin6_port
        in6_addr sin6_addr
    uint32_t htonl(uint32_t)
    uint32_t ntohl(uint32_t)
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)

cdef extern from "<sys/socket.h>" nogil:
    # Python.h defines _GNU_SOURCE before any system header, which recvmmsg and
    # sendmmsg need.
    ctypedef unsigned int socklen_t
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct timespec:
        pass
    int recvmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags, timespec *timeout)
    int sendmmsg(int fd, mmsghdr *msgvec, unsigned int vlen, int flags)
    enum:
        AF_INET
        AF_INET6
        MSG_DONTWAIT
        MSG_TRUNC

#: Set in ``flags[i]`` when datagram ``i`` was longer than a row and was cut.
FLAG_TRUNCATED = 1
#: Set in ``flags[i]`` when datagram ``i`` came from an IPv6 address that is not
#: IPv4-mapped: ``hosts[i]`` is then 0 and only ``ports[i]`` is meaningful.
FLAG_NOT_IPV4 = 2
#: The kernel's ``UIO_MAXIOV``: recvmmsg/sendmmsg take at most this many
#: messages per call (larger vectors are silently cut to it).
MAX_BATCH = 1024

cdef enum:
    C_FLAG_TRUNCATED = 1
    C_FLAG_NOT_IPV4 = 2
    C_MAX_BATCH = 1024

cdef object U8 = np.dtype(np.uint8)
cdef object U16 = np.dtype(np.uint16)
cdef object U32 = np.dtype(np.uint32)
cdef object I32 = np.dtype(np.int32)


# ------------------------------------------------------------ checks


cdef str describe(object value):
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-D {value.dtype} array"
    return type(value).__name__


cdef check_int(str name, object value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


cdef check_fd(object fd):
    check_int("fd", fd)
    if fd < 0:
        raise ValueError(f"fd must be >= 0, not {fd}")


cdef int acquire(
    Py_buffer *view, str name, object value, object dtype, int ndim, bint writeable
) except -1:
    """Check ``value`` as the twin does and take its buffer; the caller releases it."""
    if (
        not isinstance(value, np.ndarray)
        or (value.dtype is not dtype and value.dtype != dtype)
        or value.ndim != ndim
    ):
        raise TypeError(f"{name} must be a {ndim}-D {dtype} array, not {describe(value)}")
    try:
        PyObject_GetBuffer(value, view, PyBUF_C_CONTIGUOUS | (PyBUF_WRITABLE if writeable else 0))
    except (BufferError, ValueError):  # NumPy raises ValueError, the protocol says BufferError
        if not value.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous") from None
        raise ValueError(f"{name} must be writeable") from None
    return 0


cdef struct Held:
    # The buffers a call has taken so far (in order), so that ``finally`` releases
    # exactly those.
    Py_buffer views[8]
    int count


cdef Py_buffer *take(
    Held *held, str name, object value, object dtype, int ndim, bint writeable
) except NULL:
    acquire(&held.views[held.count], name, value, dtype, ndim, writeable)
    held.count += 1
    return &held.views[held.count - 1]


cdef void release_all(Held *held) noexcept:
    cdef int i
    for i in range(held.count):
        PyBuffer_Release(&held.views[i])
    held.count = 0


cdef check_room(str name, Py_buffer *view, Py_ssize_t needed, str needed_what):
    if view.shape[0] < needed:
        raise ValueError(f"{name} has {view.shape[0]} elements, fewer than {needed_what}")


cdef raise_errno(int err):
    raise OSError(err, os.strerror(err))


# ------------------------------------------------------------ message headers


# The per-message structures of one call: three arrays carved out of one malloc'd
# block (recvmmsg/sendmmsg want the mmsghdr array contiguous).
cdef struct Batch:
    mmsghdr *headers
    iovec *iovs
    sockaddr_in6 *addrs  # large enough for a sockaddr_in too


cdef int batch_alloc(Batch *batch, Py_ssize_t n) except -1:
    if n < 1:
        n = 1
    cdef size_t headers = n * sizeof(mmsghdr)
    cdef size_t iovs = n * sizeof(iovec)
    cdef size_t total = headers + iovs + n * sizeof(sockaddr_in6)
    cdef char *block = <char *>malloc(total)
    if block == NULL:
        raise MemoryError()
    memset(block, 0, total)
    batch.headers = <mmsghdr *>block
    batch.iovs = <iovec *>(block + headers)
    batch.addrs = <sockaddr_in6 *>(block + headers + iovs)
    return 0


cdef inline void batch_free(Batch *batch) noexcept:
    free(batch.headers)


cdef void prepare_recv(Batch *batch, uint8_t *bufs, Py_ssize_t width, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        batch.iovs[i].iov_base = bufs + i * width
        batch.iovs[i].iov_len = <size_t>width
        batch.headers[i].msg_hdr.msg_iov = &batch.iovs[i]
        batch.headers[i].msg_hdr.msg_iovlen = 1
        batch.headers[i].msg_hdr.msg_name = &batch.addrs[i]
        batch.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6)


cdef void store_received(
    Batch *batch,
    Py_ssize_t count,
    int32_t *lengths,
    uint32_t *hosts,
    uint16_t *ports,
    uint8_t *flags,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef msghdr *header
    cdef sockaddr_in6 *v6
    cdef sockaddr_in *v4
    cdef const uint8_t *b
    cdef int k
    cdef bint mapped
    for i in range(count):
        header = &batch.headers[i].msg_hdr
        lengths[i] = <int32_t>batch.headers[i].msg_len
        flags[i] = C_FLAG_TRUNCATED if header.msg_flags & MSG_TRUNC else 0
        v6 = &batch.addrs[i]
        if header.msg_namelen >= sizeof(sockaddr_in) and v6.sin6_family == AF_INET:
            v4 = <sockaddr_in *>v6
            hosts[i] = ntohl(v4.sin_addr.s_addr)
            ports[i] = ntohs(v4.sin_port)
        elif header.msg_namelen >= sizeof(sockaddr_in6) and v6.sin6_family == AF_INET6:
            b = v6.sin6_addr.s6_addr
            # RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is IPv4 on a dual-stack socket.
            mapped = b[10] == 0xFF and b[11] == 0xFF
            for k in range(10):
                if b[k] != 0:
                    mapped = False
            ports[i] = ntohs(v6.sin6_port)
            if mapped:
                hosts[i] = (
                    (<uint32_t>b[12] << 24) | (<uint32_t>b[13] << 16) | (<uint32_t>b[14] << 8) | b[15]
                )
            else:
                hosts[i] = 0
                flags[i] |= C_FLAG_NOT_IPV4
        else:
            hosts[i] = 0
            ports[i] = 0
            flags[i] |= C_FLAG_NOT_IPV4


cdef void prepare_send(
    Batch *batch,
    Py_ssize_t n,
    const uint8_t *data,
    Py_ssize_t width,
    const int32_t *lengths,
    const uint32_t *hosts,
    const uint16_t *ports,
    bint ipv6,
) noexcept nogil:
    cdef Py_ssize_t i
    cdef sockaddr_in *v4
    cdef sockaddr_in6 *v6
    cdef uint32_t host
    for i in range(n):
        batch.iovs[i].iov_base = <void *>(data + i * width)
        batch.iovs[i].iov_len = <size_t>lengths[i]
        batch.headers[i].msg_hdr.msg_iov = &batch.iovs[i]
        batch.headers[i].msg_hdr.msg_iovlen = 1
        batch.headers[i].msg_hdr.msg_name = &batch.addrs[i]
        host = hosts[i]
        v6 = &batch.addrs[i]
        if ipv6:
            # RFC 4291 §2.5.5.2: reach an IPv4 peer from a dual-stack socket.
            v6.sin6_family = AF_INET6
            v6.sin6_port = htons(ports[i])
            v6.sin6_addr.s6_addr[10] = 0xFF
            v6.sin6_addr.s6_addr[11] = 0xFF
            v6.sin6_addr.s6_addr[12] = <uint8_t>(host >> 24)
            v6.sin6_addr.s6_addr[13] = <uint8_t>(host >> 16)
            v6.sin6_addr.s6_addr[14] = <uint8_t>(host >> 8)
            v6.sin6_addr.s6_addr[15] = <uint8_t>host
            batch.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_in6)
        else:
            v4 = <sockaddr_in *>v6
            v4.sin_family = AF_INET
            v4.sin_port = htons(ports[i])
            v4.sin_addr.s_addr = htonl(host)
            batch.headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)


cdef Py_ssize_t first_bad_length(const int32_t *lengths, Py_ssize_t count, Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        if lengths[i] < 0 or lengths[i] > width:
            return i
    return -1


cdef check_count(object count, Py_ssize_t limit, str what):
    check_int("count", count)
    if count < 0 or count > limit:
        raise ValueError(f"count {count} is outside 0..{limit} ({what})")


cdef check_lengths(const int32_t *lengths, Py_ssize_t count, Py_ssize_t width):
    cdef Py_ssize_t bad = first_bad_length(lengths, count, width)
    if bad >= 0:
        raise ValueError(f"lengths[{bad}] = {lengths[bad]} is outside 0..{width}")


# ------------------------------------------------------------ one socket


def recv_batch(fd, bufs, lengths, hosts, ports, flags):
    """Receive up to ``len(bufs)`` (at most 1024) datagrams in one ``recvmmsg``.

    See ``media_core.udp_batch.recv_batch``.
    """
    check_fd(fd)
    cdef Held held
    held.count = 0
    cdef Py_buffer *vb
    cdef Py_buffer *vl
    cdef Py_buffer *vh
    cdef Py_buffer *vp
    cdef Py_buffer *vf
    cdef Batch batch
    cdef Py_ssize_t rows, width
    cdef unsigned int n
    cdef int got = -1, err = 0, cfd = fd
    try:
        vb = take(&held, "bufs", bufs, U8, 2, True)
        vl = take(&held, "lengths", lengths, I32, 1, True)
        vh = take(&held, "hosts", hosts, U32, 1, True)
        vp = take(&held, "ports", ports, U16, 1, True)
        vf = take(&held, "flags", flags, U8, 1, True)
        rows, width = vb.shape[0], vb.shape[1]
        if width == 0:
            raise ValueError("bufs rows must hold at least 1 byte")
        what = f"the {rows} rows of bufs"
        check_room("lengths", vl, rows, what)
        check_room("hosts", vh, rows, what)
        check_room("ports", vp, rows, what)
        check_room("flags", vf, rows, what)
        if rows == 0:
            return 0
        n = <unsigned int>min(rows, C_MAX_BATCH)
        batch_alloc(&batch, n)
        try:
            prepare_recv(&batch, <uint8_t *>vb.buf, width, n)
            while True:
                with nogil:
                    got = recvmmsg(cfd, batch.headers, n, MSG_DONTWAIT, NULL)
                    err = errno
                if got >= 0:
                    break
                if err == EAGAIN or err == EWOULDBLOCK:
                    return 0
                if err != EINTR:
                    raise_errno(err)
                PyErr_CheckSignals()  # PEP 475: retry unless a signal handler raised
            store_received(
                &batch, got, <int32_t *>vl.buf, <uint32_t *>vh.buf, <uint16_t *>vp.buf, <uint8_t *>vf.buf
            )
            return got
        finally:
            batch_free(&batch)
    finally:
        release_all(&held)


def send_batch(fd, data, lengths, hosts, ports, count, ipv6=False):
    """Send rows ``0..count-1`` of ``data`` with ``sendmmsg``, 1024 per call.

    See ``media_core.udp_batch.send_batch``.
    """
    check_fd(fd)
    cdef Held held
    held.count = 0
    cdef Py_buffer *vd
    cdef Py_buffer *vl
    cdef Py_buffer *vh
    cdef Py_buffer *vp
    cdef Batch batch
    cdef Py_ssize_t width, limit, n, done = 0, chunk
    cdef int got, err, cfd = fd
    cdef bint c_ipv6 = bool(ipv6)
    try:
        vd = take(&held, "data", data, U8, 2, False)
        vl = take(&held, "lengths", lengths, I32, 1, False)
        vh = take(&held, "hosts", hosts, U32, 1, False)
        vp = take(&held, "ports", ports, U16, 1, False)
        width = vd.shape[1]
        limit = min(vd.shape[0], vl.shape[0], vh.shape[0], vp.shape[0])
        check_count(count, limit, "the rows of data and elements of lengths, hosts and ports")
        n = count
        check_lengths(<const int32_t *>vl.buf, n, width)
        if n == 0:
            return 0
        batch_alloc(&batch, n)
        try:
            prepare_send(
                &batch, n, <const uint8_t *>vd.buf, width, <const int32_t *>vl.buf,
                <const uint32_t *>vh.buf, <const uint16_t *>vp.buf, c_ipv6,
            )
            while done < n:
                chunk = min(n - done, C_MAX_BATCH)
                with nogil:
                    got = sendmmsg(cfd, batch.headers + done, <unsigned int>chunk, MSG_DONTWAIT)
                    err = errno
                if got < 0:
                    if err == EINTR:
                        PyErr_CheckSignals()  # PEP 475, as above
                        continue
                    if done > 0 or err == EAGAIN or err == EWOULDBLOCK:
                        # As sendmmsg itself: what was sent counts, the error waits for the next call.
                        return done
                    raise_errno(err)
                done += got
                if got < chunk:
                    return done
            return done
        finally:
            batch_free(&batch)
    finally:
        release_all(&held)


# ------------------------------------------------------------ many sockets


cdef Py_ssize_t recv_many_core(
    Batch *batch,
    const int32_t *fds,
    Py_ssize_t m,
    Py_ssize_t rows,
    int32_t *sources,
    int32_t *errnos,
) noexcept nogil:
    cdef Py_ssize_t i, k, done = 0
    cdef unsigned int vlen
    cdef int got
    for i in range(m):
        errnos[i] = 0
    for i in range(m):
        while done < rows:
            vlen = <unsigned int>min(rows - done, C_MAX_BATCH)
            got = recvmmsg(fds[i], batch.headers + done, vlen, MSG_DONTWAIT, NULL)
            if got < 0:
                if errno == EINTR:
                    continue
                if errno != EAGAIN and errno != EWOULDBLOCK:
                    errnos[i] = errno
                break
            for k in range(got):
                sources[done + k] = <int32_t>i
            done += got
            if <unsigned int>got < vlen or vlen < C_MAX_BATCH:
                break  # drained, or the rows are full; only a full 1024 may leave more
    return done


def recv_many(fds, bufs, lengths, hosts, ports, flags, sources, errnos):
    """Receive what waits on every socket of ``fds`` into one set of rows.

    See ``media_core.udp_batch.recv_many``.
    """
    cdef Held held
    held.count = 0
    cdef Py_buffer *vfd
    cdef Py_buffer *vb
    cdef Py_buffer *vl
    cdef Py_buffer *vh
    cdef Py_buffer *vp
    cdef Py_buffer *vf
    cdef Py_buffer *vs
    cdef Py_buffer *ve
    cdef Batch batch
    cdef Py_ssize_t m, rows, width, got
    try:
        vfd = take(&held, "fds", fds, I32, 1, False)
        vb = take(&held, "bufs", bufs, U8, 2, True)
        vl = take(&held, "lengths", lengths, I32, 1, True)
        vh = take(&held, "hosts", hosts, U32, 1, True)
        vp = take(&held, "ports", ports, U16, 1, True)
        vf = take(&held, "flags", flags, U8, 1, True)
        vs = take(&held, "sources", sources, I32, 1, True)
        ve = take(&held, "errnos", errnos, I32, 1, True)
        m, rows, width = vfd.shape[0], vb.shape[0], vb.shape[1]
        if width == 0:
            raise ValueError("bufs rows must hold at least 1 byte")
        what = f"the {rows} rows of bufs"
        check_room("lengths", vl, rows, what)
        check_room("hosts", vh, rows, what)
        check_room("ports", vp, rows, what)
        check_room("flags", vf, rows, what)
        check_room("sources", vs, rows, what)
        check_room("errnos", ve, m, f"the {m} elements of fds")
        if m == 0:
            return 0
        batch_alloc(&batch, rows)
        try:
            with nogil:
                prepare_recv(&batch, <uint8_t *>vb.buf, width, rows)
                got = recv_many_core(
                    &batch, <const int32_t *>vfd.buf, m, rows, <int32_t *>vs.buf, <int32_t *>ve.buf
                )
                store_received(
                    &batch, got, <int32_t *>vl.buf, <uint32_t *>vh.buf, <uint16_t *>vp.buf, <uint8_t *>vf.buf
                )
            return got
        finally:
            batch_free(&batch)
    finally:
        release_all(&held)


cdef Py_ssize_t first_bad_source(const int32_t *sources, Py_ssize_t count, Py_ssize_t m) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        if sources[i] < 0 or sources[i] >= m:
            return i
    return -1


cdef Py_ssize_t send_many_core(
    Batch *batch, const int32_t *fds, const int32_t *sources, Py_ssize_t count, int32_t *errnos
) noexcept nogil:
    cdef Py_ssize_t start = 0, end, at, sent = 0
    cdef unsigned int vlen
    cdef int got, err, fd, k
    while start < count:
        end = start + 1  # consecutive rows from one socket go out in one sendmmsg
        while end < count and sources[end] == sources[start] and end - start < C_MAX_BATCH:
            end += 1
        fd = fds[sources[start]]
        at = start
        while at < end:
            vlen = <unsigned int>(end - at)
            got = sendmmsg(fd, batch.headers + at, vlen, MSG_DONTWAIT)
            if got > 0:
                for k in range(got):
                    errnos[at + k] = 0
                at += got
                sent += got
                continue
            err = errno if got < 0 else EAGAIN
            if err == EINTR:
                continue
            errnos[at] = err  # skip the row that failed; try the rest
            at += 1
        start = end
    return sent


def send_many(fds, data, lengths, hosts, ports, sources, count, errnos, ipv6=False):
    """Send rows ``0..count-1``, each from the socket ``fds[sources[row]]``.

    See ``media_core.udp_batch.send_many``.
    """
    cdef Held held
    held.count = 0
    cdef Py_buffer *vfd
    cdef Py_buffer *vd
    cdef Py_buffer *vl
    cdef Py_buffer *vh
    cdef Py_buffer *vp
    cdef Py_buffer *vs
    cdef Py_buffer *ve
    cdef Batch batch
    cdef Py_ssize_t m, width, limit, n, bad, sent
    cdef bint c_ipv6 = bool(ipv6)
    try:
        vfd = take(&held, "fds", fds, I32, 1, False)
        vd = take(&held, "data", data, U8, 2, False)
        vl = take(&held, "lengths", lengths, I32, 1, False)
        vh = take(&held, "hosts", hosts, U32, 1, False)
        vp = take(&held, "ports", ports, U16, 1, False)
        vs = take(&held, "sources", sources, I32, 1, False)
        ve = take(&held, "errnos", errnos, I32, 1, True)
        m, width = vfd.shape[0], vd.shape[1]
        limit = min(vd.shape[0], vl.shape[0], vh.shape[0], vp.shape[0], vs.shape[0], ve.shape[0])
        check_count(
            count, limit, "the rows of data and elements of lengths, hosts, ports, sources and errnos"
        )
        n = count
        check_lengths(<const int32_t *>vl.buf, n, width)
        bad = first_bad_source(<const int32_t *>vs.buf, n, m)
        if bad >= 0:
            raise ValueError(
                f"sources[{bad}] = {(<const int32_t *>vs.buf)[bad]} is not an index of fds (it has {m})"
            )
        if n == 0:
            return 0
        batch_alloc(&batch, n)
        try:
            with nogil:
                prepare_send(
                    &batch, n, <const uint8_t *>vd.buf, width, <const int32_t *>vl.buf,
                    <const uint32_t *>vh.buf, <const uint16_t *>vp.buf, c_ipv6,
                )
                sent = send_many_core(
                    &batch, <const int32_t *>vfd.buf, <const int32_t *>vs.buf, n, <int32_t *>ve.buf
                )
            return sent
        finally:
            batch_free(&batch)
    finally:
        release_all(&held)
