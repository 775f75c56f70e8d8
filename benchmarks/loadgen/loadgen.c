/*
 * loadgen: full-duplex G.711 RTP streams for relay benchmarks, on one core.
 *
 * Every stream ("leg") sends 50 RTP packets per second (PCMU, 160-byte payload,
 * its own SSRC, sequence numbers and timestamps) from a UDP socket to a target
 * on loopback, with a jittered send time, and counts what comes back on that
 * socket: packets, RFC 3550 loss (sequence gaps), RFC 3550 interarrival jitter
 * and, when the payload comes back unchanged, one-way latency through the
 * relay. The sockets are created, bound and negotiated by the caller (the
 * Python wrapper beside this file) and inherited as file descriptors; this
 * program never opens a socket of its own and refuses any target that is not
 * loopback (127.0.0.0/8 or ::1).
 *
 * Input: --streams FILE, one line per stream:
 *     FD SIDE HOST PORT PEER
 * FD is an inherited UDP socket, SIDE is "a" or "b" (which direction the
 * stream sends: a_to_b or b_to_a), HOST PORT the target, PEER the index (line
 * number from 0) of the stream expected to receive what this one sends, or -1.
 * Several streams may share one FD: what arrives on it is then told apart by
 * its source address, which must be the stream's target (symmetric RTP).
 *
 * Output: one JSON object on stdout. Everything is bounded: at most
 * MAX_STREAMS streams, MAX_DURATION_S seconds of sending, MAX_DRAIN_MS of
 * draining afterwards, and a hard wall-clock stop.
 *
 * Build: cc -O2 -o loadgen loadgen.c -lm   (Linux: sendmmsg, recvmmsg, epoll)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 10000
#define MAX_DURATION_S 120.0
#define MAX_DRAIN_MS 5000
#define MAX_PPS 1000
#define MAX_PAYLOAD 1400
#define RTP_HEADER 12
#define TX_BATCH 1024 /* packets popped from the schedule per round */
#define RX_BATCH 64   /* datagrams per recvmmsg */
#define RX_ROUNDS 16  /* recvmmsg calls per ready socket per wakeup, at most */
#define RX_WIDTH 2048
#define MAX_EVENTS 1024
#define HIST_US 100000 /* histograms: 1 us buckets up to 100 ms, then overflow */
#define STAMP_MAGIC 0x484c4731u /* "HLG1": payload starts with a send stamp */
#define STAMP_BYTES 16
#define PCMU_PT 0
#define PCMU_RATE_HZ 8000

typedef struct {
    int fd;
    int side; /* 0: sends a_to_b; 1: sends b_to_a */
    int peer;
    struct sockaddr_in6 target; /* IPv4 targets are stored IPv4-mapped */
    int target_v4;              /* send with a sockaddr_in */
    /* sending */
    uint32_t ssrc;
    uint16_t seq0;
    uint32_t ts0;
    uint64_t k; /* packets scheduled so far */
    int64_t start_ns;
    int64_t next_ns;
    uint64_t sent, send_errors, send_dropped;
    /* receiving (what the relay sends to this stream) */
    uint64_t received, truncated, not_rtp, misrouted, foreign;
    int rx_active;
    uint32_t rx_ssrc;
    int64_t base_ext, max_ext;
    uint64_t received_epoch, reordered;
    int64_t lost_prior, expected_prior; /* from earlier SSRCs on this stream */
    uint64_t ssrc_changes;
    double jitter_units; /* RFC 3550 §6.4.1, in timestamp units */
    double prev_transit;
    int have_transit;
} stream_t;

typedef struct {
    uint64_t counts[HIST_US + 1];
    uint64_t n;
    int64_t max;
} hist_t;

static stream_t *streams;
static int nstreams;
static int *heap; /* min-heap of stream indices by next_ns */
static int heap_len;
/* fd -> stream when the fd is one stream's alone, or -2 when shared */
static int *fd_owner;
static int fd_limit;
/* source address -> stream, for shared fds */
typedef struct {
    int used;
    int fd;
    uint16_t port;
    uint8_t addr[16];
    int stream;
} route_t;
static route_t *routes;
static uint32_t routes_mask;
static hist_t latency_hist, late_hist;
/* per second of the run: packets sent, received, and sent more than 10 ms late */
#define TIMELINE_S ((int)MAX_DURATION_S + MAX_DRAIN_MS / 1000 + 2)
static uint64_t tl_sent[TIMELINE_S], tl_received[TIMELINE_S], tl_late[TIMELINE_S];
static int64_t run_t0;
static int timeline_len;

static int second_of(int64_t mono_ns) {
    int64_t s = (mono_ns - run_t0) / 1000000000;
    if (s < 0) s = 0;
    if (s >= TIMELINE_S) s = TIMELINE_S - 1;
    if (s + 1 > timeline_len) timeline_len = (int)s + 1;
    return (int)s;
}
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint8_t tone[MAX_PAYLOAD];

/* ------------------------------------------------------------------ helpers */

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t rng_next(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

static double rng_uniform(void) { return (double)(rng_next() >> 11) / 9007199254740992.0; }

static double rng_normal(void) { /* Box-Muller; one of the pair is enough here */
    double u1 = rng_uniform(), u2 = rng_uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void hist_add(hist_t *h, int64_t us) {
    if (us < 0) us = 0;
    h->counts[us > HIST_US ? HIST_US : us]++;
    h->n++;
    if (us > h->max) h->max = us;
}

static int64_t hist_quantile(const hist_t *h, double q) {
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (rank == 0) rank = 1;
    for (int64_t i = 0; i <= HIST_US; i++) {
        seen += h->counts[i];
        if (seen >= rank) return i == HIST_US ? h->max : i;
    }
    return h->max;
}

/* ITU-T G.711 µ-law: bias, segment (exponent), 4 mantissa bits, all bits inverted. */
static uint8_t ulaw_encode(int sample) {
    int sign = sample < 0 ? 0x80 : 0;
    int magnitude = sample < 0 ? -sample : sample;
    if (magnitude > 32635) magnitude = 32635;
    magnitude += 0x84;
    int exponent = 7;
    for (int mask = 0x4000; exponent > 0 && !(magnitude & mask); mask >>= 1) exponent--;
    int mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    return (uint8_t)~(sign | (exponent << 4) | mantissa);
}

static void fill_tone(void) { /* 1 kHz at about -12 dBFS: a period is 8 samples at 8 kHz */
    for (int i = 0; i < MAX_PAYLOAD; i++)
        tone[i] = ulaw_encode((int)lrint(8000.0 * sin(6.283185307179586 * i / 8.0)));
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ------------------------------------------------------------------ schedule heap */

static void heap_swap(int a, int b) {
    int t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void heap_push(int s) {
    int i = heap_len++;
    heap[i] = s;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (streams[heap[parent]].next_ns <= streams[heap[i]].next_ns) break;
        heap_swap(parent, i);
        i = parent;
    }
}

static int heap_pop(void) {
    int top = heap[0];
    heap[0] = heap[--heap_len];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && streams[heap[l]].next_ns < streams[heap[m]].next_ns) m = l;
        if (r < heap_len && streams[heap[r]].next_ns < streams[heap[m]].next_ns) m = r;
        if (m == i) break;
        heap_swap(i, m);
        i = m;
    }
    return top;
}

/* ------------------------------------------------------------------ source routes */

static uint32_t route_hash(int fd, uint16_t port, const uint8_t *addr) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)fd;
    h = (h ^ port) * 1099511628211ull;
    for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 1099511628211ull;
    return (uint32_t)(h ^ (h >> 32));
}

static void route_add(int fd, uint16_t port, const uint8_t *addr, int stream) {
    uint32_t i = route_hash(fd, port, addr) & routes_mask;
    while (routes[i].used) {
        if (routes[i].fd == fd && routes[i].port == port && !memcmp(routes[i].addr, addr, 16))
            die("two streams on one socket have the same target (%s)", "cannot tell them apart");
        i = (i + 1) & routes_mask;
    }
    routes[i].used = 1, routes[i].fd = fd, routes[i].port = port, routes[i].stream = stream;
    memcpy(routes[i].addr, addr, 16);
}

static int route_find(int fd, uint16_t port, const uint8_t *addr) {
    uint32_t i = route_hash(fd, port, addr) & routes_mask;
    while (routes[i].used) {
        if (routes[i].fd == fd && routes[i].port == port && !memcmp(routes[i].addr, addr, 16))
            return routes[i].stream;
        i = (i + 1) & routes_mask;
    }
    return -1;
}

/* ------------------------------------------------------------------ input */

static int parse_loopback(const char *host, struct sockaddr_in6 *out, int *is_v4) {
    struct in_addr v4;
    memset(out, 0, sizeof *out);
    out->sin6_family = AF_INET6;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        if ((ntohl(v4.s_addr) >> 24) != 127) return -1; /* 127.0.0.0/8 only */
        out->sin6_addr.s6_addr[10] = 0xFF, out->sin6_addr.s6_addr[11] = 0xFF;
        memcpy(&out->sin6_addr.s6_addr[12], &v4, 4);
        *is_v4 = 1;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &out->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&out->sin6_addr)) return -1; /* ::1 only */
        *is_v4 = 0;
        return 0;
    }
    return -1;
}

static int socket_family(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return -1;
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM) return -1;
    struct sockaddr_storage local;
    len = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return -1;
    return local.ss_family;
}

static void read_streams(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open %s", path);
    streams = calloc(MAX_STREAMS, sizeof *streams);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (nstreams >= MAX_STREAMS) die("more than %s streams", "10000");
        int fd, peer;
        unsigned port;
        char side[8], host[INET6_ADDRSTRLEN + 1];
        if (sscanf(line, "%d %7s %46s %u %d", &fd, side, host, &port, &peer) != 5)
            die("bad stream line: %s", line);
        stream_t *s = &streams[nstreams];
        s->fd = fd;
        s->peer = peer;
        if (!strcmp(side, "a")) s->side = 0;
        else if (!strcmp(side, "b")) s->side = 1;
        else die("side must be a or b, not %s", side);
        if (port == 0 || port > 65535) die("bad port in: %s", line);
        int is_v4 = 0;
        if (parse_loopback(host, &s->target, &is_v4) != 0)
            die("refusing target %s: only 127.0.0.0/8 and ::1 are allowed", host);
        s->target.sin6_port = htons((uint16_t)port);
        int family = socket_family(fd);
        if (family == AF_INET && !is_v4) die("fd of an IPv4 socket cannot reach %s", host);
        if (family != AF_INET && family != AF_INET6) die("fd of line %s is not a UDP socket", line);
        s->target_v4 = family == AF_INET;
        nstreams++;
    }
    fclose(f);
    if (nstreams == 0) die("no streams in %s", path);
    for (int i = 0; i < nstreams; i++)
        if (streams[i].peer < -1 || streams[i].peer >= nstreams) die("bad peer index in %s", path);
}

/* ------------------------------------------------------------------ sending */

typedef struct {
    struct mmsghdr msgs[TX_BATCH];
    struct iovec iov[TX_BATCH];
    struct sockaddr_in v4[TX_BATCH];
    uint8_t packets[TX_BATCH][RTP_HEADER + MAX_PAYLOAD];
    int order[TX_BATCH];
    int who[TX_BATCH];
} tx_t;

static tx_t tx;
static int payload_bytes = 160;
static int interval_ns;
static uint32_t ts_step; /* RTP timestamp units per packet: 160 at 8 kHz and 20 ms */
static double jitter_sd_ns, spike_prob, spike_ns;
static uint64_t send_syscalls, wakeups;
static int64_t tick_ns = 1000000;

static int cmp_fd(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int fx = streams[tx.who[x]].fd, fy = streams[tx.who[y]].fd;
    if (fx != fy) return fx < fy ? -1 : 1;
    return x < y ? -1 : x > y; /* keep schedule order within a socket */
}

static void build_packet(stream_t *s, int slot, int index) {
    uint8_t *p = tx.packets[slot];
    uint16_t seq = (uint16_t)(s->seq0 + s->k);
    uint32_t ts = s->ts0 + (uint32_t)(s->k * ts_step);
    p[0] = 0x80; /* RFC 3550 §5.1: V=2, no padding, extension or CSRC */
    p[1] = (uint8_t)((s->k == 0 ? 0x80 : 0) | PCMU_PT); /* marker on the first packet of a talkspurt */
    p[2] = (uint8_t)(seq >> 8), p[3] = (uint8_t)seq;
    put_be32(p + 4, ts);
    put_be32(p + 8, s->ssrc);
    memcpy(p + RTP_HEADER, tone, (size_t)payload_bytes);
    if (payload_bytes >= STAMP_BYTES) {
        int64_t now = clock_ns(CLOCK_REALTIME);
        put_be32(p + RTP_HEADER, STAMP_MAGIC);
        put_be32(p + RTP_HEADER + 4, (uint32_t)index);
        put_be32(p + RTP_HEADER + 8, (uint32_t)((uint64_t)now >> 32));
        put_be32(p + RTP_HEADER + 12, (uint32_t)now);
    }
    tx.iov[slot].iov_base = p;
    tx.iov[slot].iov_len = RTP_HEADER + (size_t)payload_bytes;
    struct msghdr *h = &tx.msgs[slot].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_iov = &tx.iov[slot];
    h->msg_iovlen = 1;
    if (s->target_v4) {
        tx.v4[slot].sin_family = AF_INET;
        tx.v4[slot].sin_port = s->target.sin6_port;
        memcpy(&tx.v4[slot].sin_addr, &s->target.sin6_addr.s6_addr[12], 4);
        h->msg_name = &tx.v4[slot];
        h->msg_namelen = sizeof tx.v4[slot];
    } else {
        h->msg_name = &s->target;
        h->msg_namelen = sizeof s->target;
    }
}

static void schedule_next(stream_t *s) {
    /* Nominal time plus a jittered offset (gaussian, clipped at 3 sd, plus an
       occasional spike), never before the previous packet: a late packet
       delays the ones behind it, which then leave in a burst, as behind a
       congested link. */
    s->k++;
    double offset = jitter_sd_ns > 0 ? rng_normal() * jitter_sd_ns : 0.0;
    if (offset > 3 * jitter_sd_ns) offset = 3 * jitter_sd_ns;
    if (offset < -3 * jitter_sd_ns) offset = -3 * jitter_sd_ns;
    if (spike_prob > 0 && rng_uniform() < spike_prob) offset += spike_ns;
    int64_t when = s->start_ns + (int64_t)s->k * interval_ns + (int64_t)offset;
    s->next_ns = when > s->next_ns ? when : s->next_ns;
}

static void send_due(int64_t now) {
    int n = 0;
    while (n < TX_BATCH && heap_len > 0 && streams[heap[0]].next_ns <= now) {
        int s = heap_pop();
        hist_add(&late_hist, (now - streams[s].next_ns) / 1000);
        int sec = second_of(now);
        tl_sent[sec]++;
        if (now - streams[s].next_ns > 10000000) tl_late[sec]++;
        tx.who[n] = s;
        tx.order[n] = n;
        n++;
    }
    if (n == 0) return;
    for (int i = 0; i < n; i++) build_packet(&streams[tx.who[i]], i, tx.who[i]);
    qsort(tx.order, (size_t)n, sizeof tx.order[0], cmp_fd);
    /* msgs must be contiguous per sendmmsg call: gather each fd's run */
    static struct mmsghdr run[TX_BATCH];
    static int run_who[TX_BATCH];
    for (int i = 0; i < n;) {
        int fd = streams[tx.who[tx.order[i]]].fd, len = 0;
        while (i < n && streams[tx.who[tx.order[i]]].fd == fd) {
            run[len] = tx.msgs[tx.order[i]];
            run_who[len] = tx.who[tx.order[i]];
            len++, i++;
        }
        for (int done = 0; done < len;) {
            int got = sendmmsg(fd, run + done, (unsigned)(len - done), MSG_DONTWAIT);
            send_syscalls++;
            if (got > 0) {
                for (int j = 0; j < got; j++) streams[run_who[done + j]].sent++;
                done += got;
            } else if (got < 0 && errno == EINTR) {
                continue;
            } else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                for (; done < len; done++) streams[run_who[done]].send_dropped++; /* real time: drop */
            } else {
                streams[run_who[done]].send_errors++; /* skip the one that failed */
                done++;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        schedule_next(&streams[tx.who[i]]);
        heap_push(tx.who[i]);
    }
}

/* ------------------------------------------------------------------ receiving */

typedef struct {
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH];
    struct sockaddr_in6 from[RX_BATCH];
    uint8_t control[RX_BATCH][64];
    uint8_t bufs[RX_BATCH][RX_WIDTH];
} rx_t;

static rx_t rx;
static uint64_t recv_syscalls, unmatched;

static int64_t arrival_ns(struct msghdr *h, int64_t fallback) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    return fallback;
}

static int source_of(const struct sockaddr_in6 *from, socklen_t len, uint8_t addr[16], uint16_t *port) {
    memset(addr, 0, 16);
    if (from->sin6_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)from;
        addr[10] = addr[11] = 0xFF;
        memcpy(addr + 12, &v4->sin_addr, 4);
        *port = v4->sin_port;
        return 0;
    }
    if (from->sin6_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        memcpy(addr, &from->sin6_addr, 16);
        *port = from->sin6_port;
        return 0;
    }
    return -1;
}

static void account(stream_t *s, const uint8_t *p, unsigned len, int truncated, int64_t arrived_ns) {
    s->received++;
    if (truncated) s->truncated++;
    if (len < RTP_HEADER || (p[0] >> 6) != 2) {
        s->not_rtp++;
        return;
    }
    uint16_t seq = (uint16_t)(p[2] << 8 | p[3]);
    uint32_t ts = get_be32(p + 4), ssrc = get_be32(p + 8);
    if (!s->rx_active || ssrc != s->rx_ssrc) {
        /* RFC 3550 §8.2: a new SSRC is a new source; keep the old one's tally. */
        if (s->rx_active) {
            s->ssrc_changes++;
            int64_t expected = s->max_ext - s->base_ext + 1;
            s->expected_prior += expected;
            s->lost_prior += expected - (int64_t)s->received_epoch;
        }
        s->rx_active = 1;
        s->rx_ssrc = ssrc;
        s->base_ext = s->max_ext = seq;
        s->received_epoch = 0;
        s->have_transit = 0;
    } else {
        /* RFC 3550 Appendix A.1: extend the 16-bit sequence number by the nearest cycle. */
        int64_t ext = s->max_ext + (int16_t)(uint16_t)(seq - (uint16_t)s->max_ext);
        if (ext > s->max_ext) s->max_ext = ext;
        else s->reordered++;
    }
    s->received_epoch++;
    /* RFC 3550 §6.4.1: J += (|D(i-1,i)| - J) / 16, transit in timestamp units. */
    double transit = (double)arrived_ns * (PCMU_RATE_HZ / 1e9) - (double)ts;
    if (s->have_transit) {
        double d = fabs(transit - s->prev_transit);
        s->jitter_units += (d - s->jitter_units) / 16.0;
    }
    s->prev_transit = transit;
    s->have_transit = 1;
    if (len >= RTP_HEADER + STAMP_BYTES && get_be32(p + RTP_HEADER) == STAMP_MAGIC) {
        uint32_t origin = get_be32(p + RTP_HEADER + 4);
        int64_t sent_ns = (int64_t)((uint64_t)get_be32(p + RTP_HEADER + 8) << 32 | get_be32(p + RTP_HEADER + 12));
        if (origin < (uint32_t)nstreams) { /* else: not our stamp after all */
            if (streams[origin].peer >= 0 && &streams[streams[origin].peer] != s) s->misrouted++;
            else hist_add(&latency_hist, (arrived_ns - sent_ns) / 1000);
        }
    }
}

static void drain_fd(int fd) {
    for (int round = 0; round < RX_ROUNDS; round++) {
        for (int i = 0; i < RX_BATCH; i++) {
            struct msghdr *h = &rx.msgs[i].msg_hdr;
            rx.iov[i].iov_base = rx.bufs[i];
            rx.iov[i].iov_len = RX_WIDTH;
            h->msg_iov = &rx.iov[i];
            h->msg_iovlen = 1;
            h->msg_name = &rx.from[i];
            h->msg_namelen = sizeof rx.from[i];
            h->msg_control = rx.control[i];
            h->msg_controllen = sizeof rx.control[i];
            h->msg_flags = 0;
        }
        int got = recvmmsg(fd, rx.msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        recv_syscalls++;
        if (got <= 0) return;
        int64_t fallback = clock_ns(CLOCK_REALTIME);
        tl_received[second_of(clock_ns(CLOCK_MONOTONIC))] += (uint64_t)got;
        int owner = fd < fd_limit ? fd_owner[fd] : -1;
        for (int i = 0; i < got; i++) {
            struct msghdr *h = &rx.msgs[i].msg_hdr;
            uint8_t addr[16];
            uint16_t port = 0;
            int stream = -1;
            int known = source_of(&rx.from[i], h->msg_namelen, addr, &port) == 0;
            if (owner >= 0) {
                /* Symmetric RTP (RFC 4961): the relay sends from where we send to. Anything
                   else is a stray (another test's late packets to a reused port): counted,
                   kept out of the stream's figures. */
                if (!known || streams[owner].target.sin6_port != port ||
                    memcmp(&streams[owner].target.sin6_addr, addr, 16)) {
                    streams[owner].foreign++;
                    continue;
                }
                stream = owner;
            } else if (known) {
                stream = route_find(fd, port, addr);
            }
            if (stream < 0) {
                unmatched++;
                continue;
            }
            account(&streams[stream], rx.bufs[i], rx.msgs[i].msg_len, (h->msg_flags & MSG_TRUNC) != 0,
                    arrival_ns(h, fallback));
        }
        if (got < RX_BATCH) return;
    }
}

/* ------------------------------------------------------------------ report */

typedef struct {
    uint64_t sent, send_errors, send_dropped, received, truncated, not_rtp, misrouted, foreign, reordered;
    uint64_t ssrc_changes, silent;
    int64_t expected, lost;
    double jitter_sum_ms, jitter_max_ms;
    int rx_streams;
} dir_t;

static void print_dir(const char *name, const dir_t *d, int last) {
    double loss = d->expected > 0 ? 100.0 * (double)d->lost / (double)d->expected : 0.0;
    double loss_sent = d->sent > 0 ? 100.0 * ((double)d->sent - (double)d->received) / (double)d->sent : 0.0;
    printf("\"%s\": {\"sent\": %llu, \"received\": %llu, \"expected\": %lld, \"lost\": %lld, "
           "\"loss_percent\": %.6f, \"loss_percent_vs_sent\": %.6f, \"reordered\": %llu, "
           "\"send_errors\": %llu, \"send_dropped\": %llu, \"truncated\": %llu, \"not_rtp\": %llu, "
           "\"misrouted\": %llu, \"from_unexpected_source\": %llu, \"ssrc_changes\": %llu, "
           "\"silent_streams\": %llu, \"jitter_ms_mean\": %.4f, \"jitter_ms_max\": %.4f}%s",
           name, (unsigned long long)d->sent, (unsigned long long)d->received, (long long)d->expected,
           (long long)d->lost, loss, loss_sent, (unsigned long long)d->reordered,
           (unsigned long long)d->send_errors, (unsigned long long)d->send_dropped,
           (unsigned long long)d->truncated, (unsigned long long)d->not_rtp, (unsigned long long)d->misrouted,
           (unsigned long long)d->foreign, (unsigned long long)d->ssrc_changes, (unsigned long long)d->silent,
           d->rx_streams ? d->jitter_sum_ms / d->rx_streams : 0.0, d->jitter_max_ms, last ? "" : ", ");
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static void report(double duration_s, double send_window_s, double wall_s, struct rusage *r0, struct rusage *r1) {
    dir_t dirs[2];
    memset(dirs, 0, sizeof dirs);
    for (int i = 0; i < nstreams; i++) {
        stream_t *s = &streams[i];
        dir_t *out = &dirs[s->side];     /* what this stream sent */
        dir_t *in = &dirs[1 - s->side]; /* what this stream received travelled the other way */
        out->sent += s->sent, out->send_errors += s->send_errors, out->send_dropped += s->send_dropped;
        in->received += s->received, in->truncated += s->truncated, in->not_rtp += s->not_rtp;
        in->misrouted += s->misrouted, in->foreign += s->foreign, in->reordered += s->reordered;
        in->ssrc_changes += s->ssrc_changes;
        in->rx_streams++;
        if (!s->rx_active) {
            in->silent++;
            continue;
        }
        int64_t expected = s->expected_prior + (s->max_ext - s->base_ext + 1);
        in->expected += expected;
        in->lost += s->lost_prior + (s->max_ext - s->base_ext + 1) - (int64_t)s->received_epoch;
        double jitter_ms = s->jitter_units * 1000.0 / PCMU_RATE_HZ;
        in->jitter_sum_ms += jitter_ms;
        if (jitter_ms > in->jitter_max_ms) in->jitter_max_ms = jitter_ms;
    }
    uint64_t sent = dirs[0].sent + dirs[1].sent, received = dirs[0].received + dirs[1].received;
    int64_t expected = dirs[0].expected + dirs[1].expected, lost = dirs[0].lost + dirs[1].lost;
    double user = tv_s(r1->ru_utime) - tv_s(r0->ru_utime), sys = tv_s(r1->ru_stime) - tv_s(r0->ru_stime);
    printf("{\"streams\": %d, \"duration_s\": %.3f, \"send_window_s\": %.3f, \"wall_s\": %.3f, "
           "\"pps_per_stream\": %.3f, \"payload_bytes\": %d, \"sent\": %llu, \"received\": %llu, "
           "\"sent_pps\": %.1f, \"received_pps\": %.1f, \"loss_percent\": %.6f, \"loss_percent_vs_sent\": %.6f, "
           "\"unmatched\": %llu, ",
           nstreams, duration_s, send_window_s, wall_s, 1e9 / interval_ns, payload_bytes,
           (unsigned long long)sent, (unsigned long long)received, sent / send_window_s,
           received / send_window_s, expected > 0 ? 100.0 * (double)lost / (double)expected : 0.0,
           sent > 0 ? 100.0 * ((double)sent - (double)received) / (double)sent : 0.0,
           (unsigned long long)unmatched);
    printf("\"directions\": {");
    print_dir("a_to_b", &dirs[0], 0);
    print_dir("b_to_a", &dirs[1], 1);
    printf("}, \"latency_us\": {\"count\": %llu, \"p50\": %lld, \"p99\": %lld, \"max\": %lld}, ",
           (unsigned long long)latency_hist.n, (long long)hist_quantile(&latency_hist, 0.5),
           (long long)hist_quantile(&latency_hist, 0.99), (long long)latency_hist.max);
    printf("\"send_late_us\": {\"p50\": %lld, \"p99\": %lld, \"max\": %lld}, ",
           (long long)hist_quantile(&late_hist, 0.5), (long long)hist_quantile(&late_hist, 0.99),
           (long long)late_hist.max);
    printf("\"timeline\": {\"sent\": [");
    for (int i = 0; i < timeline_len; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)tl_sent[i]);
    printf("], \"received\": [");
    for (int i = 0; i < timeline_len; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)tl_received[i]);
    printf("], \"sent_late_10ms\": [");
    for (int i = 0; i < timeline_len; i++) printf("%s%llu", i ? ", " : "", (unsigned long long)tl_late[i]);
    printf("]}, ");
    printf("\"wakeups\": %llu, \"send_syscalls\": %llu, \"recv_syscalls\": %llu, \"cpu_user_s\": %.4f, \"cpu_system_s\": %.4f, "
           "\"cpu_s\": %.4f, \"cpu_percent\": %.2f}\n",
           (unsigned long long)wakeups, (unsigned long long)send_syscalls, (unsigned long long)recv_syscalls, user, sys, user + sys,
           100.0 * (user + sys) / wall_s);
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --streams FILE --duration-s S [--pps N] [--payload-bytes N]\n"
            "               [--jitter-sd-ms MS] [--spike-prob P] [--spike-ms MS] [--drain-ms MS]\n"
            "               [--seed N] [--tick-us US]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *streams_path = NULL;
    double duration_s = -1, pps = 50, jitter_sd_ms = 5, spike_ms = 40, drain_ms = 500;
    spike_prob = 0.002;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--streams")) streams_path = v;
        else if (!strcmp(a, "--duration-s")) duration_s = atof(v);
        else if (!strcmp(a, "--pps")) pps = atof(v);
        else if (!strcmp(a, "--payload-bytes")) payload_bytes = atoi(v);
        else if (!strcmp(a, "--jitter-sd-ms")) jitter_sd_ms = atof(v);
        else if (!strcmp(a, "--spike-prob")) spike_prob = atof(v);
        else if (!strcmp(a, "--spike-ms")) spike_ms = atof(v);
        else if (!strcmp(a, "--drain-ms")) drain_ms = atof(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--tick-us")) tick_ns = (int64_t)(atof(v) * 1000);
        else usage();
    }
    if (!streams_path || duration_s <= 0) usage();
    if (duration_s > MAX_DURATION_S) die("--duration-s is capped at %s", "120");
    if (tick_ns < 1000 || tick_ns > 20000000) die("--tick-us must be 1..%s", "20000");
    if (pps <= 0 || pps > MAX_PPS) die("--pps must be in (0, %s]", "1000");
    if (payload_bytes < 0 || payload_bytes > MAX_PAYLOAD) die("--payload-bytes must be 0..%s", "1400");
    if (drain_ms < 0 || drain_ms > MAX_DRAIN_MS) die("--drain-ms must be 0..%s", "5000");
    if (jitter_sd_ms < 0 || jitter_sd_ms > 1000 || spike_ms < 0 || spike_ms > 1000 || spike_prob < 0 || spike_prob > 1)
        die("jitter options out of range (%s)", "sd and spike 0..1000 ms, prob 0..1");
    rng_state ^= seed * 0xBF58476D1CE4E5B9ull;
    if (rng_state == 0) rng_state = 1;
    interval_ns = (int)(1e9 / pps);
    ts_step = (uint32_t)llround(PCMU_RATE_HZ * (double)interval_ns / 1e9);
    jitter_sd_ns = jitter_sd_ms * 1e6;
    spike_ns = spike_ms * 1e6;
    fill_tone();
    read_streams(streams_path);

    /* fd tables */
    fd_limit = 0;
    for (int i = 0; i < nstreams; i++)
        if (streams[i].fd + 1 > fd_limit) fd_limit = streams[i].fd + 1;
    fd_owner = malloc(sizeof(int) * (size_t)fd_limit);
    for (int i = 0; i < fd_limit; i++) fd_owner[i] = -1;
    for (int i = 0; i < nstreams; i++) fd_owner[streams[i].fd] = fd_owner[streams[i].fd] == -1 ? i : -2;
    uint32_t cap = 1;
    while (cap < 4u * (uint32_t)nstreams) cap <<= 1;
    routes = calloc(cap, sizeof *routes);
    routes_mask = cap - 1;
    for (int i = 0; i < nstreams; i++)
        if (fd_owner[streams[i].fd] == -2)
            route_add(streams[i].fd, streams[i].target.sin6_port, streams[i].target.sin6_addr.s6_addr, i);

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1: %s", strerror(errno));
    int one = 1;
    for (int fd = 0; fd < fd_limit; fd++) {
        if (fd_owner[fd] == -1) continue;
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one); /* kernel arrival time */
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
    }

    /* Streams start spread over one packet interval, so the load is even. */
    heap = malloc(sizeof(int) * (size_t)nstreams);
    int64_t t0 = clock_ns(CLOCK_MONOTONIC) + 20000000;
    for (int i = 0; i < nstreams; i++) {
        stream_t *s = &streams[i];
        s->ssrc = (uint32_t)rng_next();
        s->seq0 = (uint16_t)rng_next();
        s->ts0 = (uint32_t)rng_next();
        s->start_ns = t0 + (int64_t)(rng_uniform() * interval_ns);
        s->next_ns = s->start_ns;
        heap_push(i);
    }
    run_t0 = t0;
    int64_t send_end = t0 + (int64_t)(duration_s * 1e9);
    int64_t stop = send_end + (int64_t)(drain_ms * 1e6);
    int64_t hard_stop = t0 + (int64_t)((MAX_DURATION_S + MAX_DRAIN_MS / 1000.0 + 5) * 1e9);
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    int64_t wall0 = clock_ns(CLOCK_MONOTONIC);
    static struct epoll_event events[MAX_EVENTS];
    int use_pwait2 = 1;

    for (;;) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (now >= stop || now >= hard_stop) break;
        int sending = now < send_end;
        if (sending) send_due(now);
        now = clock_ns(CLOCK_MONOTONIC);
        int64_t wake = stop;
        if (sending && heap_len > 0 && streams[heap[0]].next_ns < wake) {
            /* Sleep to the tick boundary after the next packet is due, not to the packet
               itself: each wakeup then sends (and receives) a tick's worth in one go. */
            int64_t due = streams[heap[0]].next_ns;
            wake = t0 + ((due - t0 + tick_ns - 1) / tick_ns) * tick_ns;
        }
        if (sending && send_end < wake) wake = send_end;
        int64_t wait_ns = wake > now ? wake - now : 0;
        int ready;
        if (use_pwait2) {
            struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
            ready = epoll_pwait2(ep, events, MAX_EVENTS, &ts, NULL);
            if (ready < 0 && errno == ENOSYS) {
                use_pwait2 = 0;
                continue;
            }
        } else {
            ready = epoll_wait(ep, events, MAX_EVENTS, (int)((wait_ns + 999999) / 1000000));
        }
        if (ready < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        wakeups++;
        for (int i = 0; i < ready; i++) drain_fd(events[i].data.fd);
    }
    int64_t wall1 = clock_ns(CLOCK_MONOTONIC);
    getrusage(RUSAGE_SELF, &r1);
    double send_window_s = (double)(send_end - t0) / 1e9;
    report(duration_s, send_window_s, (double)(wall1 - wall0) / 1e9, &r0, &r1);
    return 0;
}
