/* sse_load.c: a load client for sandpipe's SSE relay (bench/sse.sh runs it).
 *
 * One thread, one epoll loop, non-blocking sockets to nginx on loopback.
 * Each of N streams is an HTTP/1.1 GET /executions/<id>/events with
 * X-API-Key, read through a small incremental parser (status line and
 * headers, chunked transfer coding, SSE lines: id, event, data, comments).
 * Every read is stamped with CLOCK_REALTIME; an event's receive time is the
 * stamp of the read that completed it.
 *
 * Where the events come from (one of):
 *   --inject SOCK  the client writes them itself into Redis (unix socket
 *                  SOCK): HSET <prefix>exec:<exe> owner <owner>, then, once
 *                  every stream is open, E stdout entries "<seq> <ns>\n"
 *                  --interval-ms apart (ns = CLOCK_REALTIME when sent) and
 *                  a result entry, as the sandbox helper would. The ids
 *                  XADD returns are the expected sequence of every stream.
 *   --post SBX --cmd CMD
 *                  POST /sandboxes/SBX/commands {"cmd":CMD,"background":true}
 *                  (the time before it is t0), then N streams on the
 *                  execution it names.
 *   --exe EXE      an execution that exists already.
 *   --stdin        no HTTP at all: read standard input as if it were one
 *                  stream's payload (the baselines: a program's output
 *                  through a bare pipe).
 *
 * --ws: the streams are WebSocket connections (GET /ws?clientId=<random>,
 * RFC 6455 upgrade) instead of SSE; with --inject the execution is
 * announced on that client stream (XADD <prefix>client:<owner>:<cid>
 * type execution) just before its first event, and each message's JSON
 * ({"type":"stdout","executionId","data"}) is read as an SSE event's data
 * line would be. WebSocket messages carry no ids: a stream is complete
 * when it got the same number of events as the others, every "<seq>" in
 * order, and the result.
 *
 * What it checks and prints (one line of key=value, prefixed "sse_load:"):
 * streams opened and failed (HTTP status, connect errors), complete streams
 * (every expected event id in order and the final result; with --lat also
 * the "<seq>" counters in the output consecutive from 0; with
 * --expect-bytes that many payload bytes; with --expect-hash that FNV-1a
 * of the payload), latency percentiles over every "<seq> <ns>" line
 * (receive time minus ns), wire and payload bytes and rates, the relay's
 * VmRSS (--rss-pid) before, while held and at most, and this process's CPU.
 *
 * Bounded: streams <= 20000, one SSE line <= 2 MiB, one header block
 * <= 16 KiB, latency samples <= 16M, everything ends by --timeout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS  20000
#define HDR_MAX      16384
#define LINE_MAX_B   (2u << 20)
#define SAMPLES_MAX  (16u << 20)
#define EXPECT_MAX   100000
#define READ_BUF     (256 * 1024)
#define READS_PER_EV 8

enum { S_NEW, S_CONNECTING, S_HEADERS, S_BODY, S_DONE, S_FAILED };
enum { CH_SIZE, CH_DATA, CH_CRLF, CH_END };

/* One stream; everything it owns is freed when it ends. */
typedef struct stream {
    int fd, st;
    int http_status;
    uint8_t chunked, ch_state, ordered, got_final, seq_bad, id_bad, is_text;
    uint64_t ch_left;
    char *buf; /* header block, then the current SSE line */
    uint32_t blen, bcap;
    char id[48], ev[40];
    uint64_t last_ms, last_sq, first_ms;
    int has_last;
    uint32_t nev, exp_idx, nhb;
    int64_t next_seq;
    uint64_t id_hash, wire, payload, payload_hash;
    int64_t t_open, t_first, t_last_out, t_final;
    const char *why; /* why it failed */
    char carry[64];  /* --lat: a line split across events */
    uint8_t carry_len;
} stream;

/* Options. */
static const char *o_host = "127.0.0.1";
static int o_port = 18098;
static const char *o_key, *o_exe, *o_inject, *o_post, *o_cmd;
static const char *o_prefix = "sp:", *o_owner = "admin";
static int o_n = 1, o_events = 20, o_interval_ms = 100, o_conc = 256;
static int o_timeout_s = 120, o_settle_ms = 1000, o_rss_pid, o_lat, o_stdin;
static int o_hash, o_ws;
static char o_cid[96];
static long long o_expect_bytes = -1;
static const char *o_expect_hash;

static stream *streams;
static int epfd = -1;
static char request[1024];
static size_t request_len;
static int n_open, n_failed, n_done, n_inflight, next_connect;
static int64_t *samples;
static size_t nsamples, samples_cap;
static char (*exp_ids)[48];
static uint32_t n_exp;
static char *scratch;
static size_t scratch_cap;
static long rss_idle = -1, rss_held = -1, rss_max = -1;
static char fail_reason[160];

/* --watch NAME=PID: fds when every stream is open, CPU from then to the
 * end (who did the work of the fan-out). */
#define WATCH_MAX 8
static struct watch {
    char name[24];
    int pid, fds_held;
    double cpu_held, cpu_end;
} watches[WATCH_MAX];
static int nwatches;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sse_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int64_t now_rt(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ULL;
    return h;
}
#define FNV0 14695981039346656037ULL

static long vm_kb(int pid, const char *field)
{
    char path[64], line[256];
    size_t fl = strlen(field);
    long v = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static int fd_count(int pid)
{
    char path[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* utime + stime of pid, seconds. */
static double cpu_s(int pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void watch_all(int held)
{
    for (int i = 0; i < nwatches; i++) {
        if (held) {
            watches[i].fds_held = fd_count(watches[i].pid);
            watches[i].cpu_held = cpu_s(watches[i].pid);
        } else {
            watches[i].cpu_end = cpu_s(watches[i].pid);
        }
    }
}

static void rss_sample(void)
{
    long v;
    if (o_rss_pid <= 0)
        return;
    v = vm_kb(o_rss_pid, "VmRSS");
    if (v > rss_max)
        rss_max = v;
}

static void sample_add(int64_t v)
{
    if (nsamples == samples_cap) {
        size_t nc = samples_cap ? samples_cap * 2 : 65536;
        int64_t *n;
        if (nc > SAMPLES_MAX)
            return; /* bounded: later samples are not kept */
        if ((n = realloc(samples, nc * sizeof *n)) == NULL)
            return;
        samples = n;
        samples_cap = nc;
    }
    samples[nsamples++] = v;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(double p)
{
    size_t i;
    if (nsamples == 0)
        return -1;
    i = (size_t)(p / 100.0 * (double)(nsamples - 1) + 0.5);
    return (double)samples[i] / 1e6;
}

/* ---------------------------------------------------------------- Redis */

static int rds_fd = -1;

static void rds_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {5, 0};
    if (strlen(path) >= sizeof sa.sun_path)
        die("redis socket path too long");
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rds_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (rds_fd < 0 || connect(rds_fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("redis connect %s: %s", path, strerror(errno));
    setsockopt(rds_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* One command (argc strings); the reply's first line (type char and text,
 * for a bulk string its content) into out. */
static void rds(char *out, size_t olen, int argc, ...)
{
    char cmd[2048], rep[512];
    size_t n = 0, got = 0;
    va_list ap;
    char *nl;

    n += (size_t)snprintf(cmd + n, sizeof cmd - n, "*%d\r\n", argc);
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        const char *a = va_arg(ap, const char *);
        if (n + strlen(a) + 32 >= sizeof cmd)
            die("redis command too long");
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "$%zu\r\n%s\r\n",
                              strlen(a), a);
    }
    va_end(ap);
    write_all(rds_fd, cmd, n);
    /* Replies here are short: read until the reply is complete. */
    for (;;) {
        ssize_t r = read(rds_fd, rep + got, sizeof rep - 1 - got);
        if (r <= 0)
            die("redis read: %s", r == 0 ? "closed" : strerror(errno));
        got += (size_t)r;
        rep[got] = '\0';
        if ((nl = strstr(rep, "\r\n")) == NULL)
            continue;
        if (rep[0] == '$' && rep[1] != '-') {
            char *body = nl + 2, *end = strstr(body, "\r\n");
            if (end == NULL)
                continue;
            *end = '\0';
            snprintf(out, olen, "%s", body);
            return;
        }
        if (rep[0] == '-')
            die("redis error: %.*s", (int)(nl - rep), rep);
        *nl = '\0';
        snprintf(out, olen, "%.*s", (int)olen - 1, rep);
        return;
    }
}

/* ------------------------------------------------------ blocking HTTP */

static struct sockaddr_in srv;

/* POST body to path; the response body (NUL-terminated) into out.
 * Returns the HTTP status. */
static int http_post(const char *path, const char *body, char *out,
                     size_t olen)
{
    char req[8192 + 1024], resp[16384];
    struct timeval tv = {30, 0};
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = 0;
    char *b;
    int n;

    if (fd < 0 || connect(fd, (struct sockaddr *)&srv, sizeof srv) != 0)
        die("connect: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    n = snprintf(req, sizeof req,
                 "POST %s HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 path, o_host, o_port, o_key, strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof req)
        die("request too long");
    write_all(fd, req, (size_t)n);
    for (;;) {
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof resp - 1)
            break;
    }
    close(fd);
    resp[got] = '\0';
    sscanf(resp, "HTTP/1.%*c %d", &status);
    b = strstr(resp, "\r\n\r\n");
    snprintf(out, olen, "%s", b ? b + 4 : "");
    return status;
}

/* JSON string of s (quoted, escaped) into out. */
static void json_quote(const char *s, char *out, size_t olen)
{
    size_t n = 0;
    if (olen < 8)
        die("no room");
    out[n++] = '"';
    for (; *s && n + 8 < olen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, olen - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    if (*s)
        die("command too long");
    out[n++] = '"';
    out[n] = '\0';
}

/* ------------------------------------------------------ payload parsing */

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static unsigned u4(const char *p)
{
    int a = hexv(p[0]), b = hexv(p[1]), c = hexv(p[2]), d = hexv(p[3]);
    if (a < 0 || b < 0 || c < 0 || d < 0)
        return 0xfffd;
    return (unsigned)(a << 12 | b << 8 | c << 4 | d);
}

/* Decode the JSON string whose contents start at p (after the quote) into
 * scratch. Returns its length, or -1 if malformed. */
static long json_decode(const char *p, const char *end)
{
    size_t n = 0;
    if (scratch_cap < (size_t)(end - p) + 8) {
        scratch_cap = (size_t)(end - p) + 8;
        if ((scratch = realloc(scratch, scratch_cap)) == NULL)
            die("out of memory");
    }
    while (p < end) {
        const char *q = p;
        /* Copy the run up to the next quote or backslash. */
        while (q < end && *q != '"' && *q != '\\')
            q++;
        memcpy(scratch + n, p, (size_t)(q - p));
        n += (size_t)(q - p);
        if (q >= end)
            return -1;
        if (*q == '"')
            return (long)n;
        if (q + 1 >= end)
            return -1;
        switch (q[1]) {
        case 'n': scratch[n++] = '\n'; p = q + 2; break;
        case 'r': scratch[n++] = '\r'; p = q + 2; break;
        case 't': scratch[n++] = '\t'; p = q + 2; break;
        case 'b': scratch[n++] = '\b'; p = q + 2; break;
        case 'f': scratch[n++] = '\f'; p = q + 2; break;
        case '"': case '\\': case '/': scratch[n++] = q[1]; p = q + 2; break;
        case 'u': {
            unsigned cp;
            if (q + 6 > end)
                return -1;
            cp = u4(q + 2);
            p = q + 6;
            if (cp >= 0xd800 && cp < 0xdc00 && p + 6 <= end && p[0] == '\\' &&
                p[1] == 'u') {
                unsigned lo = u4(p + 2);
                if (lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0xfffd;
            n += utf8_put(scratch + n, cp);
            break;
        }
        default: return -1;
        }
    }
    return -1;
}

/* One line "<seq> <ns>" (without its newline): a latency sample. */
static void lat_line(stream *s, const char *p, const char *nl, int64_t t)
{
    char *e1, *e2;
    long long seq = strtoll(p, &e1, 10), ns;
    if (e1 > p && *e1 == ' ') {
        ns = strtoll(e1 + 1, &e2, 10);
        if (e2 == nl && ns > 0) {
            sample_add(t - ns);
            if (seq != s->next_seq)
                s->seq_bad = 1;
            s->next_seq = seq + 1;
        }
    }
}

/* Lines "<seq> <ns>" in a payload: latency samples, counter check. A line
 * split across events is joined (its time is that of its newline). */
static void lat_lines(stream *s, const char *p, size_t n, int64_t t)
{
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (s->carry_len > 0 || nl == NULL) {
            if (s->carry_len + take >= sizeof s->carry) {
                s->carry_len = 0; /* not one of ours: skipped */
            } else {
                memcpy(s->carry + s->carry_len, p, take);
                s->carry_len += (uint8_t)take;
                if (nl != NULL) {
                    s->carry[s->carry_len] = '\0';
                    lat_line(s, s->carry, s->carry + s->carry_len, t);
                    s->carry_len = 0;
                }
            }
            if (nl == NULL)
                break;
            p = nl + 1;
            continue;
        }
        lat_line(s, p, nl, t);
        p = nl + 1;
    }
}

static void stream_end(stream *s, int st, const char *why)
{
    if (s->st == S_DONE || s->st == S_FAILED)
        return;
    if (s->st == S_CONNECTING || s->st == S_HEADERS)
        n_inflight--;
    if (s->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
        s->fd = -1;
    }
    free(s->buf);
    s->buf = NULL;
    s->bcap = s->blen = 0;
    s->st = st;
    s->why = why;
    if (st == S_FAILED) {
        n_failed++;
        if (fail_reason[0] == '\0')
            snprintf(fail_reason, sizeof fail_reason, "stream %ld: %s (HTTP %d)",
                     (long)(s - streams), why, s->http_status);
    } else {
        n_done++;
    }
}

/* A data line of the current event. */
static void on_data(stream *s, const char *p, size_t n, int64_t t)
{
    const char *end = p + n, *q;
    long len;
    /* The relay puts {"type":...,"executionId":...} first; text output is
     * the string member "data". */
    if (!s->is_text)
        return;
    q = memmem(p, n, ",\"data\":\"", 9);
    if (q == NULL)
        return;
    len = json_decode(q + 9, end);
    if (len < 0) {
        s->seq_bad = 1;
        return;
    }
    s->payload += (uint64_t)len;
    if (o_hash)
        s->payload_hash = fnv(s->payload_hash, scratch, (size_t)len);
    if (s->t_first == 0)
        s->t_first = t;
    s->t_last_out = t;
    if (o_lat)
        lat_lines(s, scratch, (size_t)len, t);
}

/* The blank line: the event is complete. */
static void on_event(stream *s, int64_t t)
{
    uint64_t ms = 0, sq = 0;
    s->nev++;
    if (s->id[0] != '\0') {
        if (sscanf(s->id, "%" SCNu64 "-%" SCNu64, &ms, &sq) != 2)
            s->ordered = 0;
        else if (s->has_last &&
                 (ms < s->last_ms || (ms == s->last_ms && sq <= s->last_sq)))
            s->ordered = 0;
        if (!s->has_last)
            s->first_ms = ms;
        s->last_ms = ms;
        s->last_sq = sq;
        s->has_last = 1;
        s->id_hash = fnv(s->id_hash, s->id, strlen(s->id) + 1);
        if (n_exp > 0) {
            if (s->exp_idx < n_exp && strcmp(s->id, exp_ids[s->exp_idx]) == 0)
                s->exp_idx++;
            else
                s->id_bad = 1;
        }
    }
    if (strcmp(s->ev, "result") == 0) {
        s->got_final = 1;
        s->t_final = t;
    }
    s->id[0] = s->ev[0] = '\0';
    s->is_text = 0;
}

static void on_line(stream *s, char *p, size_t n, int64_t t)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n == 0) {
        on_event(s, t);
        return;
    }
    if (p[0] == ':') {
        s->nhb++;
        return;
    }
    if (n > 4 && memcmp(p, "id: ", 4) == 0) {
        snprintf(s->id, sizeof s->id, "%.*s", (int)(n - 4), p + 4);
    } else if (n > 7 && memcmp(p, "event: ", 7) == 0) {
        snprintf(s->ev, sizeof s->ev, "%.*s", (int)(n - 7), p + 7);
        s->is_text = strcmp(s->ev, "stdout") == 0 ||
                     strcmp(s->ev, "stderr") == 0 ||
                     strcmp(s->ev, "output") == 0;
    } else if (n > 6 && memcmp(p, "data: ", 6) == 0) {
        on_data(s, p + 6, n - 6, t);
    }
}

static int buf_append(stream *s, const char *p, size_t n, uint32_t max)
{
    if (s->blen + n > max)
        return -1;
    if (s->blen + n > s->bcap) {
        uint32_t nc = s->bcap ? s->bcap : 256;
        char *nb;
        while (nc < s->blen + n)
            nc *= 2;
        if ((nb = realloc(s->buf, nc)) == NULL)
            return -1;
        s->buf = nb;
        s->bcap = nc;
    }
    memcpy(s->buf + s->blen, p, n);
    s->blen += (uint32_t)n;
    return 0;
}

/* SSE bytes of the body. */
static int sse_feed(stream *s, const char *p, size_t n, int64_t t)
{
    while (n > 0 && s->st == S_BODY) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (nl != NULL && s->blen == 0) {
            on_line(s, (char *)p, take, t); /* whole line in the read */
        } else {
            if (buf_append(s, p, take, LINE_MAX_B) != 0) {
                stream_end(s, S_FAILED, "SSE line too long");
                return -1;
            }
            if (nl != NULL) {
                on_line(s, s->buf, s->blen, t);
                s->blen = 0;
            }
        }
        if (nl == NULL)
            break;
        p = nl + 1;
        n -= take + 1;
    }
    return 0;
}

/* One WebSocket text message: an event of the relay's JSON shape. */
static void ws_message(stream *s, const char *p, size_t n, int64_t t)
{
    if (memmem(p, n, "\"type\":\"stdout\"", 15) != NULL) {
        snprintf(s->ev, sizeof s->ev, "stdout");
        s->is_text = 1;
        on_data(s, p, n, t);
    } else if (memmem(p, n, "\"type\":\"result\"", 15) != NULL) {
        snprintf(s->ev, sizeof s->ev, "result");
    } else {
        return; /* "connected" and the like */
    }
    on_event(s, t);
}

/* WebSocket frames from the server (never masked), kept in s->buf until
 * whole. */
static void ws_feed(stream *s, const char *p, size_t n, int64_t t)
{
    size_t off = 0;

    if (buf_append(s, p, n, LINE_MAX_B) != 0) {
        stream_end(s, S_FAILED, "WebSocket frame too long");
        return;
    }
    while (s->st == S_BODY && s->blen - off >= 2) {
        const unsigned char *f = (const unsigned char *)s->buf + off;
        uint64_t len = f[1] & 0x7f;
        size_t hl = 2;
        if (len == 126 && s->blen - off >= 4) {
            len = (uint64_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (len == 127 && s->blen - off >= 10) {
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | f[2 + i];
            hl = 10;
        } else if (len >= 126) {
            break;
        }
        if (s->blen - off < hl + len)
            break;
        if ((f[0] & 0x0f) == 1)
            ws_message(s, (const char *)f + hl, (size_t)len, t);
        else if ((f[0] & 0x0f) == 8)
            stream_end(s, s->got_final ? S_DONE : S_FAILED, "closed");
        off += hl + (size_t)len;
    }
    if (s->buf != NULL && off > 0) {
        memmove(s->buf, s->buf + off, s->blen - off);
        s->blen -= (uint32_t)off;
    }
}

/* Body bytes, through the chunked coding if any. */
static void body_feed(stream *s, const char *p, size_t n, int64_t t)
{
    if (o_ws) {
        ws_feed(s, p, n, t);
        return;
    }
    if (!s->chunked) {
        sse_feed(s, p, n, t);
        return;
    }
    while (n > 0 && s->st == S_BODY) {
        switch (s->ch_state) {
        case CH_SIZE: {
            /* hex digits, optional extensions, CRLF */
            char c = *p++;
            n--;
            if (c == '\n') {
                s->ch_state = s->ch_left ? CH_DATA : CH_END;
                if (s->ch_state == CH_END) {
                    if (!s->got_final)
                        stream_end(s, S_FAILED, "response ended before result");
                    else
                        stream_end(s, S_DONE, NULL);
                    return;
                }
            } else if (hexv(c) >= 0 && s->ch_left < (1ULL << 40)) {
                s->ch_left = s->ch_left * 16 + (uint64_t)hexv(c);
            } else if (c != '\r' && c != ';' && c != ' ') {
                stream_end(s, S_FAILED, "bad chunk size");
                return;
            }
            break;
        }
        case CH_DATA: {
            size_t take = n < s->ch_left ? n : (size_t)s->ch_left;
            if (sse_feed(s, p, take, t) != 0)
                return;
            p += take;
            n -= take;
            s->ch_left -= take;
            if (s->ch_left == 0)
                s->ch_state = CH_CRLF;
            break;
        }
        case CH_CRLF:
            if (*p == '\n')
                s->ch_state = CH_SIZE;
            p++;
            n--;
            break;
        default: return;
        }
    }
}

static void headers_feed(stream *s, const char *p, size_t n, int64_t t)
{
    char *end, *te;
    size_t hl, rest;
    if (buf_append(s, p, n, HDR_MAX) != 0) {
        stream_end(s, S_FAILED, "headers too long");
        return;
    }
    end = memmem(s->buf, s->blen, "\r\n\r\n", 4);
    if (end == NULL)
        return;
    hl = (size_t)(end - s->buf) + 4;
    *end = '\0';
    if (sscanf(s->buf, "HTTP/1.%*c %d", &s->http_status) != 1 ||
        s->http_status != (o_ws ? 101 : 200)) {
        stream_end(s, S_FAILED, o_ws ? "HTTP status not 101"
                                     : "HTTP status not 200");
        return;
    }
    te = strcasestr(s->buf, "\r\ntransfer-encoding:");
    s->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
    rest = s->blen - hl;
    s->st = S_BODY;
    s->t_open = t;
    n_inflight--;
    n_open++;
    /* What came after the headers is body: move it out of the buffer. */
    if (rest > 0) {
        char *tmp = malloc(rest);
        if (tmp == NULL)
            die("out of memory");
        memcpy(tmp, s->buf + hl, rest);
        s->blen = 0;
        body_feed(s, tmp, rest, t);
        free(tmp);
    } else {
        s->blen = 0;
    }
}

static void stream_connect(stream *s)
{
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN};
    int one = 1;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s->ordered = 1;
    s->id_hash = s->payload_hash = FNV0;
    s->st = S_CONNECTING;
    n_inflight++;
    if (s->fd < 0) {
        stream_end(s, S_FAILED, strerror(errno));
        return;
    }
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&srv, sizeof srv) != 0 &&
        errno != EINPROGRESS) {
        stream_end(s, S_FAILED, "connect failed");
        return;
    }
    ev.data.u32 = (uint32_t)(s - streams);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        stream_end(s, S_FAILED, "epoll_ctl failed");
}

static void stream_io(stream *s, uint32_t events)
{
    static char rbuf[READ_BUF];
    if (s->st == S_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t el = sizeof err;
        struct epoll_event ev = {.events = EPOLLIN};
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            stream_end(s, S_FAILED, "connect refused or reset");
            return;
        }
        /* The request is small: one write on a fresh socket. */
        if (write(s->fd, request, request_len) != (ssize_t)request_len) {
            stream_end(s, S_FAILED, "request write failed");
            return;
        }
        ev.data.u32 = (uint32_t)(s - streams);
        epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
        s->st = S_HEADERS;
        return;
    }
    for (int i = 0; i < READS_PER_EV && s->fd >= 0; i++) {
        ssize_t r = read(s->fd, rbuf, sizeof rbuf);
        int64_t t = now_rt();
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            if (s->got_final)
                stream_end(s, S_DONE, NULL);
            else
                stream_end(s, S_FAILED, r == 0 ? "closed before result"
                                               : "read error");
            return;
        }
        s->wire += (uint64_t)r;
        if (s->st == S_HEADERS)
            headers_feed(s, rbuf, (size_t)r, t);
        else if (s->st == S_BODY)
            body_feed(s, rbuf, (size_t)r, t);
        if (s->st == S_BODY && s->got_final)
            stream_end(s, S_DONE, NULL); /* the result is the end */
        if ((size_t)r < sizeof rbuf)
            return;
    }
}

/* ------------------------------------------------------------ stdin mode */

static int run_stdin(void)
{
    static char rbuf[READ_BUF];
    stream s0 = {0};
    int64_t t0 = now_rt(), tf = 0, tl = 0;
    char *line = NULL;
    size_t llen = 0, lcap = 0;
    s0.payload_hash = FNV0;
    for (;;) {
        ssize_t r = read(0, rbuf, sizeof rbuf);
        int64_t t = now_rt();
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (tf == 0)
            tf = t;
        tl = t;
        s0.payload += (uint64_t)r;
        if (o_hash)
            s0.payload_hash = fnv(s0.payload_hash, rbuf, (size_t)r);
        if (o_lat) {
            /* Whole lines only; a split line is joined first. */
            const char *p = rbuf, *end = rbuf + r;
            while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
                if (llen + take > lcap) {
                    lcap = (llen + take) * 2;
                    if (lcap > LINE_MAX_B || (line = realloc(line, lcap)) == NULL)
                        die("line too long");
                }
                memcpy(line + llen, p, take);
                llen += take;
                if (nl != NULL) {
                    lat_lines(&s0, line, llen, t);
                    llen = 0;
                }
                p += take;
            }
        }
    }
    free(line);
    qsort(samples, nsamples, sizeof *samples, cmp64);
    printf("sse_load: mode=stdin payload_bytes=%" PRIu64
           " payload_hash=%016" PRIx64 " seconds_first_last=%.4f"
           " seconds_total=%.4f payload_MBps=%.1f seq_ok=%d samples=%zu"
           " lat_p50_ms=%.3f lat_p90_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f\n",
           s0.payload, s0.payload_hash, (double)(tl - tf) / 1e9,
           (double)(tl - t0) / 1e9,
           tl > t0 ? (double)s0.payload / ((double)(tl - t0) / 1e9) / 1e6 : 0,
           !s0.seq_bad, nsamples, pct_ms(50), pct_ms(90), pct_ms(99),
           pct_ms(100));
    return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fputs("usage: sse_load -k KEY [-H HOST:PORT] [-n N] "
          "(--exe EXE | --inject REDIS_SOCK [-e E] [-i MS] | --post SBX --cmd CMD)\n"
          "       [--lat] [--hash] [--expect-bytes B] [--expect-hash H] "
          "[--rss-pid PID] [--watch NAME=PID]...\n"
          "       [--conc C] [--timeout S] [--settle-ms MS] [--prefix P] "
          "[--owner SUB] [--ws]\n"
          "       sse_load --stdin [--lat] [--hash]\n",
          stderr);
    exit(2);
}

static long num(const char *s, long lo, long hi)
{
    char *e;
    long v;
    errno = 0;
    v = strtol(s, &e, 10);
    if (errno || *e || v < lo || v > hi)
        die("bad number %s (want %ld..%ld)", s, lo, hi);
    return v;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NEXT() (i + 1 < argc ? argv[++i] : (usage(), ""))
        if (!strcmp(a, "-k"))
            o_key = NEXT();
        else if (!strcmp(a, "-H")) {
            static char host[64];
            const char *v = NEXT(), *c = strrchr(v, ':');
            if (c == NULL || (size_t)(c - v) >= sizeof host)
                usage();
            snprintf(host, sizeof host, "%.*s", (int)(c - v), v);
            o_host = host;
            o_port = (int)num(c + 1, 1, 65535);
        } else if (!strcmp(a, "-n"))
            o_n = (int)num(NEXT(), 1, MAX_STREAMS);
        else if (!strcmp(a, "-e"))
            o_events = (int)num(NEXT(), 1, EXPECT_MAX - 1);
        else if (!strcmp(a, "-i"))
            o_interval_ms = (int)num(NEXT(), 0, 60000);
        else if (!strcmp(a, "--exe"))
            o_exe = NEXT();
        else if (!strcmp(a, "--inject"))
            o_inject = NEXT();
        else if (!strcmp(a, "--post"))
            o_post = NEXT();
        else if (!strcmp(a, "--cmd"))
            o_cmd = NEXT();
        else if (!strcmp(a, "--lat"))
            o_lat = 1;
        else if (!strcmp(a, "--hash"))
            o_hash = 1;
        else if (!strcmp(a, "--ws"))
            o_ws = 1;
        else if (!strcmp(a, "--stdin"))
            o_stdin = 1;
        else if (!strcmp(a, "--expect-bytes"))
            o_expect_bytes = num(NEXT(), 0, 1L << 40);
        else if (!strcmp(a, "--expect-hash"))
            o_expect_hash = NEXT();
        else if (!strcmp(a, "--rss-pid"))
            o_rss_pid = (int)num(NEXT(), 1, 1 << 30);
        else if (!strcmp(a, "--conc"))
            o_conc = (int)num(NEXT(), 1, MAX_STREAMS);
        else if (!strcmp(a, "--timeout"))
            o_timeout_s = (int)num(NEXT(), 1, 3600);
        else if (!strcmp(a, "--settle-ms"))
            o_settle_ms = (int)num(NEXT(), 0, 60000);
        else if (!strcmp(a, "--prefix"))
            o_prefix = NEXT();
        else if (!strcmp(a, "--watch")) {
            const char *v = NEXT(), *eq = strchr(v, '=');
            if (eq == NULL || nwatches == WATCH_MAX ||
                (size_t)(eq - v) >= sizeof watches[0].name)
                usage();
            snprintf(watches[nwatches].name, sizeof watches[0].name, "%.*s",
                     (int)(eq - v), v);
            watches[nwatches++].pid = (int)num(eq + 1, 1, 1 << 30);
        } else if (!strcmp(a, "--owner"))
            o_owner = NEXT();
        else
            usage();
#undef NEXT
    }
}

int main(int argc, char **argv)
{
    struct epoll_event evs[512];
    struct rlimit rl;
    char exe[80], ek[160], vk[160], reply[256];
    int64_t t_start, t_post = 0, deadline, t_all_open = 0, next_inject = 0;
    int injected = 0, complete = 0, seq_bad = 0, id_bad = 0, unordered = 0;
    uint64_t wire = 0, payload = 0;
    int64_t first = 0, last = 0, final_max = 0;
    struct rusage ru;
    uint32_t ref_nev = 0;
    uint64_t ref_hash = 0;
    int have_ref = 0;

    parse_args(argc, argv);
    if (o_stdin)
        return run_stdin();
    if (o_key == NULL && (o_key = getenv("SP_API_KEY")) == NULL)
        usage();
    if ((o_exe != NULL) + (o_inject != NULL) + (o_post != NULL) != 1 ||
        (o_post != NULL) != (o_cmd != NULL))
        usage();
    /* Loopback only. */
    srv.sin_family = AF_INET;
    srv.sin_port = htons((uint16_t)o_port);
    if (inet_pton(AF_INET, o_host, &srv.sin_addr) != 1 ||
        (ntohl(srv.sin_addr.s_addr) >> 24) != 127)
        die("host must be a 127.x.x.x address");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o_n + 64)
        die("open-file limit %lu is below %d streams + 64",
            (unsigned long)rl.rlim_cur, o_n);

    t_start = now_rt();
    if (o_rss_pid > 0)
        rss_idle = vm_kb(o_rss_pid, "VmRSS");
    if (o_inject != NULL) {
        unsigned char rnd[12];
        FILE *f = fopen("/dev/urandom", "r");
        static const char al[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        if (f == NULL || fread(rnd, 1, sizeof rnd, f) != sizeof rnd)
            die("urandom");
        fclose(f);
        strcpy(exe, "exe_bench");
        for (size_t i = 0; i < sizeof rnd; i++)
            exe[9 + i] = al[rnd[i] % 62];
        exe[9 + sizeof rnd] = '\0';
        snprintf(ek, sizeof ek, "%sexec:%s", o_prefix, exe);
        snprintf(vk, sizeof vk, "%sevents:%s", o_prefix, exe);
        rds_connect(o_inject);
        rds(reply, sizeof reply, 4, "HSET", ek, "owner", o_owner);
        rds(reply, sizeof reply, 3, "EXPIRE", ek, "3600");
        if ((exp_ids = calloc((size_t)o_events + 1, sizeof *exp_ids)) == NULL)
            die("out of memory");
    } else if (o_post != NULL) {
        char path[256], body[8192], resp[4096], *p;
        json_quote(o_cmd, resp, sizeof resp);
        snprintf(body, sizeof body, "{\"cmd\":%s,\"background\":true}", resp);
        snprintf(path, sizeof path, "/sandboxes/%s/commands", o_post);
        t_post = now_rt();
        int st = http_post(path, body, resp, sizeof resp);
        p = strstr(resp, "\"execution_id\":\"");
        if (st != 200 && st != 201 && st != 202)
            die("POST %s: HTTP %d %s", path, st, resp);
        if (p == NULL || sscanf(p + 16, "%63[A-Za-z0-9_-]", exe) != 1)
            die("no execution_id in %s", resp);
    } else {
        snprintf(exe, sizeof exe, "%s", o_exe);
    }
    snprintf(o_cid, sizeof o_cid, "cli_%s", exe + 4);
    if (o_ws)
        request_len = (size_t)snprintf(
            request, sizeof request,
            "GET /ws?clientId=%s HTTP/1.1\r\nHost: %s:%d\r\n"
            "X-API-Key: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n",
            o_cid, o_host, o_port, o_key);
    else
        request_len = (size_t)snprintf(
            request, sizeof request,
            "GET /executions/%s/events HTTP/1.1\r\nHost: %s:%d\r\n"
            "X-API-Key: %s\r\nAccept: text/event-stream\r\n\r\n",
            exe, o_host, o_port, o_key);
    if (request_len >= sizeof request)
        die("request too long");

    streams = calloc((size_t)o_n, sizeof *streams);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (streams == NULL || epfd < 0)
        die("setup: %s", strerror(errno));
    for (int i = 0; i < o_n; i++)
        streams[i].fd = -1;
    deadline = t_start + (int64_t)o_timeout_s * 1000000000;

    for (;;) {
        int64_t now = now_rt(), wait_ns;
        int timeout_ms, n;
        if (n_done + n_failed == o_n || now >= deadline)
            break;
        /* Open more streams, at most o_conc waiting for headers. */
        while (next_connect < o_n && n_inflight < o_conc)
            stream_connect(&streams[next_connect++]);
        if (t_all_open == 0 && next_connect == o_n && n_inflight == 0) {
            t_all_open = now;
            if (o_rss_pid > 0)
                rss_held = vm_kb(o_rss_pid, "VmRSS");
            watch_all(1);
            next_inject = now + (int64_t)o_settle_ms * 1000000;
            if (o_inject != NULL)
                fprintf(stderr, "sse_load: %d open, %d failed in %.2f s; "
                        "injecting %d events\n", n_open, n_failed,
                        (double)(now - t_start) / 1e9, o_events);
        }
        /* Inject the next event when due (the send time is in it). */
        if (o_inject != NULL && t_all_open != 0 && injected <= o_events &&
            now >= next_inject) {
            char data[64];
            if (o_ws && injected == 0) {
                char ck[200];
                snprintf(ck, sizeof ck, "%sclient:%s:%s", o_prefix, o_owner,
                         o_cid);
                rds(reply, sizeof reply, 7, "XADD", ck, "*", "type",
                    "execution", "data", exe);
                rds(reply, sizeof reply, 3, "EXPIRE", ck, "3600");
            }
            if (injected < o_events) {
                snprintf(data, sizeof data, "%d %" PRId64 "\n", injected,
                         now_rt());
                rds(reply, sizeof reply, 7, "XADD", vk, "*", "type", "stdout",
                    "data", data);
            } else {
                rds(reply, sizeof reply, 7, "XADD", vk, "*", "type", "result",
                    "data",
                    "{\"data\":{\"exitCode\":0,\"status\":\"ok\","
                    "\"truncated\":false},\"duration\":1}");
            }
            snprintf(exp_ids[injected], sizeof exp_ids[0], "%.47s", reply);
            n_exp = (uint32_t)injected + 1;
            injected++;
            next_inject += (int64_t)o_interval_ms * 1000000;
            continue;
        }
        wait_ns = 100000000; /* RSS sampling every 100 ms */
        if (o_inject != NULL && t_all_open != 0 && injected <= o_events &&
            next_inject - now < wait_ns)
            wait_ns = next_inject - now;
        timeout_ms = (int)((wait_ns + 999999) / 1000000);
        n = epoll_wait(epfd, evs, 512, timeout_ms);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            stream_io(&streams[evs[i].data.u32], evs[i].events);
        {
            static int64_t last_rss;
            int64_t t = now_rt();
            if (t - last_rss >= 100000000) {
                rss_sample();
                last_rss = t;
            }
        }
    }
    rss_sample();
    watch_all(0);
    /* Streams still open at the deadline failed. */
    for (int i = 0; i < o_n; i++) {
        stream *s = &streams[i];
        if (s->st != S_DONE && s->st != S_FAILED)
            stream_end(s, S_FAILED, s->st == S_BODY ? "timed out in body"
                                                    : "timed out opening");
    }
    for (int i = 0; i < o_n; i++) {
        stream *s = &streams[i];
        int ok = s->st == S_DONE && s->got_final && s->ordered && !s->seq_bad;
        wire += s->wire;
        payload += s->payload;
        if (s->t_first && (first == 0 || s->t_first < first))
            first = s->t_first;
        if (s->t_last_out > last)
            last = s->t_last_out;
        if (s->t_final > final_max)
            final_max = s->t_final;
        seq_bad += s->seq_bad;
        unordered += !s->ordered;
        if (n_exp > 0 && !o_ws) {
            ok = ok && !s->id_bad && s->exp_idx == n_exp;
            id_bad += s->id_bad || s->exp_idx != n_exp;
        } else if (s->st == S_DONE) {
            /* No list known in advance: every stream must have seen the
             * same ids as the first complete one. */
            if (!have_ref) {
                ref_nev = s->nev;
                ref_hash = s->id_hash;
                have_ref = 1;
            }
            if (s->nev != ref_nev || s->id_hash != ref_hash) {
                ok = 0;
                id_bad++;
            }
        }
        if (o_lat && s->next_seq != (o_inject ? o_events : s->next_seq))
            ok = 0;
        if (o_expect_bytes >= 0 && (long long)s->payload != o_expect_bytes)
            ok = 0;
        if (o_expect_hash != NULL) {
            char h[24];
            snprintf(h, sizeof h, "%016" PRIx64, s->payload_hash);
            if (strcmp(h, o_expect_hash) != 0)
                ok = 0;
        }
        complete += ok;
    }
    getrusage(RUSAGE_SELF, &ru);
    qsort(samples, nsamples, sizeof *samples, cmp64);
    {
        double span = last > first ? (double)(last - first) / 1e9 : 0;
        double e2e = t_post && last > t_post ? (double)(last - t_post) / 1e9 : 0;
        printf("sse_load: exe=%s streams=%d opened=%d failed=%d complete=%d"
               " id_bad=%d unordered=%d seq_bad=%d events_expected=%u"
               " open_s=%.2f samples=%zu lat_p50_ms=%.3f lat_p90_ms=%.3f"
               " lat_p99_ms=%.3f lat_p999_ms=%.3f lat_max_ms=%.3f"
               " lat_min_ms=%.3f wire_bytes=%" PRIu64 " payload_bytes=%" PRIu64
               " payload_hash=%016" PRIx64 " seconds_first_last=%.4f"
               " payload_MBps=%.1f wire_MBps=%.1f seconds_post_last=%.4f"
               " payload_MBps_post=%.1f seconds_post_result=%.4f"
               " rss_idle_kb=%ld rss_held_kb=%ld rss_max_kb=%ld"
               " client_cpu_s=%.2f wall_s=%.2f ids_span_s=%.3f\n",
               exe, o_n, n_open, n_failed, complete, id_bad, unordered, seq_bad,
               n_exp, t_all_open ? (double)(t_all_open - t_start) / 1e9 : -1,
               nsamples, pct_ms(50), pct_ms(90), pct_ms(99), pct_ms(99.9),
               pct_ms(100), pct_ms(0), wire, payload,
               o_n > 0 ? streams[0].payload_hash : 0, span,
               span > 0 ? (double)payload / span / 1e6 : 0,
               span > 0 ? (double)wire / span / 1e6 : 0, e2e,
               e2e > 0 ? (double)payload / e2e / 1e6 : 0,
               t_post && final_max > t_post ? (double)(final_max - t_post) / 1e9
                                            : 0,
               rss_idle, rss_held, rss_max,
               (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
               (double)(now_rt() - t_start) / 1e9,
               (double)(streams[0].last_ms - streams[0].first_ms) / 1e3);
        for (int i = 0; i < nwatches; i++)
            printf("sse_load: watch %s pid=%d fds_held=%d cpu_s=%.2f\n",
                   watches[i].name, watches[i].pid, watches[i].fds_held,
                   watches[i].cpu_end - watches[i].cpu_held);
        if (fail_reason[0] != '\0')
            printf("sse_load: first failure: %s\n", fail_reason);
    }
    if (o_inject != NULL)
        rds(reply, sizeof reply, 3, "DEL", ek, vk);
    return complete == o_n ? 0 : 1;
}
