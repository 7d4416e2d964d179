/* fuzz_event.c: the framings of streamed answers (common/sp_frame.c) and
 * the relay's events built on them: sse_ev_format (sse/sse_event.c)
 * through the SSE framing, stream id parsing (Last-Event-ID comes from the
 * client), and the cutting of a framed event into FastCGI STDOUT records
 * (sse_fcgi_iov, sse/sse_fcgi.c).
 *
 * Input: one byte of knobs, the event type up to '\n', then the entry's
 * data. Invariants of the relay's events: an event exists exactly when the
 * type is [a-z_]{1,32}; it is three lines "id: <id>", "event: <type>",
 * "data: <json>" and one blank line, with no other line break (LF or CR)
 * or control byte, so that nothing in the data can end the event or start
 * another; the data line is one JSON object, valid UTF-8, whose "type" and
 * label appear once each with the envelope's values; "final" is set for
 * the final type only. A stream id that parses formats back to the same
 * numbers. The records that sse_fcgi_iov describes, written in arbitrary
 * partial writes, are exactly the event cut into records of at most 65535
 * bytes. At start, data past the largest event gives an "event too large"
 * error framed the same way.
 *
 * Invariants of every framing, given the type and data as they are (and
 * an id that may be malformed) in a buffer of a size the knobs choose: a
 * writer accepts exactly the arguments sp_frame.h allows (checked here
 * with a validator of its own); what it accepts decodes back to them (SSE
 * lines, the NDJSON object, the Connect envelope's length and message, the
 * WebSocket frame's header forms and payload, the data itself); what it refuses or cannot
 * fit leaves the buffer as it was. An error end with the data as message
 * is JSON that gives back the code (Connect's own, for Connect) and, when
 * the data is clean text, the message. */
#include "fuzz_util.h"
#include "sp_frame.h"
#include "sse.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#define FZ_LABEL_NAME "executionId"
#define FZ_LABEL      "exe_AbCdEfGhIjKlMnOpQrStUv"
#define FZ_FINAL      "result"
#define FZ_REC        65535

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_type_ok(const char *t)
{
    size_t n = strlen(t);
    if (n < 1 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '_'))
            return 0;
    return 1;
}

/* Number of members called name in object o, and the first one. */
static int fz_members(const cJSON *o, const char *name, const cJSON **first)
{
    int k = 0;
    *first = NULL;
    for (const cJSON *it = o->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, name) == 0) {
            if (k++ == 0)
                *first = it;
        }
    }
    return k;
}

static void fz_check_event(const sse_ev *ev, sse_sid id, const char *type)
{
    const char *d = ev->data, *l2, *l3, *end;
    char sid[SSE_SID_STR], want[128];
    size_t n = ev->len;
    const cJSON *t, *lab;
    cJSON *js;
    int is_error;

    FZ_CHECK(ev->kind == SSE_EV_STDOUT && ev->refs == 1, "kind/refs");
    FZ_CHECK(ev->final == (strcmp(type, FZ_FINAL) == 0), "final flag");
    FZ_CHECK(ev->id.ms == id.ms && ev->id.seq == id.seq, "event id");
    FZ_CHECK(n >= 2 && d[n - 1] == '\n' && d[n - 2] == '\n',
             "event does not end with a blank line");
    for (size_t i = 0; i < n; i++)
        FZ_CHECK(d[i] != '\r' && (d[i] == '\n' || (unsigned char)d[i] >= 0x20),
                 "raw control byte %02x at %zu", (unsigned char)d[i], i);
    FZ_CHECK(memmem(d, n, "\n\n", 2) == d + n - 2,
             "blank line inside the event");
    FZ_CHECK(fz_utf8_valid((const unsigned char *)d, n),
             "event is not valid UTF-8");
    /* Exactly three lines before the blank one. */
    l2 = memchr(d, '\n', n) + 1;
    l3 = memchr(l2, '\n', (size_t)(d + n - l2));
    FZ_CHECK(l3 != NULL && l3 < d + n - 2, "fewer than three lines");
    l3++;
    end = memchr(l3, '\n', (size_t)(d + n - l3));
    FZ_CHECK(end == d + n - 2, "more than three lines");

    sse_sid_format(id, sid);
    snprintf(want, sizeof want, "id: %s\n", sid);
    FZ_CHECK((size_t)(l2 - d) == strlen(want) && memcmp(d, want, l2 - d) == 0,
             "id line");
    is_error = strcmp(type, "error") != 0 &&
               (size_t)(l3 - l2) == strlen("event: error\n") &&
               memcmp(l2, "event: error\n", 13) == 0;
    snprintf(want, sizeof want, "event: %s\n", is_error ? "error" : type);
    FZ_CHECK((size_t)(l3 - l2) == strlen(want) &&
                 memcmp(l2, want, (size_t)(l3 - l2)) == 0,
             "event line");
    FZ_CHECK(end - l3 > 6 && memcmp(l3, "data: ", 6) == 0, "data line");
    js = cJSON_ParseWithLength(l3 + 6, (size_t)(end - l3 - 6));
    FZ_CHECK(cJSON_IsObject(js), "data is not a JSON object: %.*s",
             (int)(end - l3 - 6), l3 + 6);
    FZ_CHECK(fz_members(js, "type", &t) == 1 && cJSON_IsString(t) &&
                 strcmp(t->valuestring, is_error ? "error" : type) == 0,
             "\"type\" is not once the event type: %.*s", (int)(end - l3 - 6),
             l3 + 6);
    FZ_CHECK(fz_members(js, FZ_LABEL_NAME, &lab) == 1 && cJSON_IsString(lab) &&
                 strcmp(lab->valuestring, FZ_LABEL) == 0,
             "label is not once the stream's id: %.*s", (int)(end - l3 - 6),
             l3 + 6);
    cJSON_Delete(js);
}

/* Send ev as the flush loop does, with at most maxiov iovecs per writev
 * and writes of at most step bytes; compare with the expected records. */
static void fz_check_iov(const sse_ev *ev, unsigned rid, int maxiov,
                         size_t step)
{
    size_t wire = sse_fcgi_wire_len(ev), o = 0, off = 0;
    unsigned char *want = malloc(wire + 1), *got = malloc(wire + 1);
    struct iovec iov[16];
    unsigned char hdrs[16][8];

    for (size_t seg = 0; seg < ev->len; seg += FZ_REC) {
        size_t sl = ev->len - seg < FZ_REC ? ev->len - seg : FZ_REC;
        unsigned char h[8] = {1,
                              6,
                              (unsigned char)(rid >> 8),
                              (unsigned char)rid,
                              (unsigned char)(sl >> 8),
                              (unsigned char)sl,
                              0,
                              0};
        FZ_CHECK(o + 8 + sl <= wire, "wire length too short");
        memcpy(want + o, h, 8);
        memcpy(want + o + 8, ev->data + seg, sl);
        o += 8 + sl;
    }
    FZ_CHECK(o == wire, "wire length %zu, records %zu", wire, o);
    /* Partial writes, but not so many that a large event takes long. */
    if (step < wire / 64)
        step = wire / 64;
    while (off < wire) {
        int n = sse_fcgi_iov(ev, rid, off, iov, maxiov, hdrs);
        size_t w = 0;
        FZ_CHECK(n > 0 && n <= maxiov, "%d iovecs at %zu of %zu", n, off, wire);
        for (int i = 0; i < n && w < step; i++) {
            size_t take = iov[i].iov_len < step - w ? iov[i].iov_len : step - w;
            FZ_CHECK(iov[i].iov_len > 0, "empty iovec");
            FZ_CHECK(off + w + take <= wire, "iovecs past the event");
            memcpy(got + off + w, iov[i].iov_base, take);
            w += take;
        }
        off += w;
    }
    FZ_CHECK(wire == 0 || memcmp(want, got, wire) == 0,
             "records differ from the event");
    FZ_CHECK(sse_fcgi_iov(ev, rid, wire, iov, maxiov, hdrs) == 0,
             "iovecs after the end");
    free(want);
    free(got);
}

/* [A-Za-z0-9_.-]{1,64} (and ':' in ids); 0 if s is not such a token. */
static size_t fz_token(const char *s, int colon)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
              (colon && c == ':')))
            return 0;
    }
    return n;
}

/* Data a framing may carry (sp_frame.h), decided apart from sp_frame.c. */
static int fz_data_ok(const char *d, size_t n, int lines_ok)
{
    if (n == 0 || n > FRAME_DATA_MAX ||
        !fz_utf8_valid((const unsigned char *)d, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c < 0x20 && c != '\t' && !(lines_ok && (c == '\n' || c == '\r')))
            return 0;
    }
    return 1;
}

/* The NDJSON object of an event, without the line break. Caller frees. */
static char *fz_obj(const char *id, const char *type, const char *d, size_t n,
                    size_t *len)
{
    char *o = malloc(n + 200), *p = o;
    p += sprintf(p, "{");
    if (id != NULL && *id != '\0')
        p += sprintf(p, "\"id\":\"%s\",", id);
    p += sprintf(p, "\"type\":\"%s\",\"data\":", type);
    memcpy(p, d, n);
    p += n;
    *p++ = '}';
    *len = (size_t)(p - o);
    return o;
}

/* What fr->event must have written for (id, type, d): the expected bytes
 * (caller frees) and their length. */
static unsigned char *fz_expected(const sp_frame *fr, const char *id,
                                  const char *type, const char *d, size_t n,
                                  size_t *len)
{
    unsigned char *w = malloc(n + 256), *p = w;
    size_t ol;
    char *o;

    if (fr == &frame_sse) {
        if (id != NULL && *id != '\0')
            p += sprintf((char *)p, "id: %s\n", id);
        p += sprintf((char *)p, "event: %s\ndata: ", type);
        memcpy(p, d, n);
        p += n;
        memcpy(p, "\n\n", 2);
        p += 2;
    } else if (fr == &frame_ndjson) {
        o = fz_obj(id, type, d, n, &ol);
        memcpy(p, o, ol);
        p += ol;
        *p++ = '\n';
        free(o);
    } else if (fr == &frame_connect) {
        *p++ = 0;
        for (int i = 3; i >= 0; i--)
            *p++ = (unsigned char)(n >> (8 * i));
        memcpy(p, d, n);
        p += n;
    } else { /* websocket: the data itself is the text frame's payload */
        o = malloc(n + 1);
        memcpy(o, d, n);
        ol = n;
        *p++ = 0x81;
        if (ol <= 125) {
            *p++ = (unsigned char)ol;
        } else if (ol <= 0xffff) {
            *p++ = 126;
            *p++ = (unsigned char)(ol >> 8);
            *p++ = (unsigned char)ol;
        } else {
            *p++ = 127;
            for (int i = 7; i >= 0; i--)
                *p++ = (unsigned char)((uint64_t)ol >> (8 * i));
        }
        memcpy(p, o, ol);
        p += ol;
        free(o);
    }
    *len = (size_t)(p - w);
    return w;
}

/* One event through fr into a buffer of at most max bytes that already
 * holds "pre". */
static void fz_frame_event(const sp_frame *fr, const char *id, const char *type,
                           const char *d, size_t n, size_t max)
{
    int lines_ok = fr == &frame_connect || fr == &frame_websocket;
    int valid = (id == NULL || *id == '\0' || fz_token(id, 1) > 0) &&
                fz_token(type, 0) > 0 && fz_data_ok(d, n, lines_ok);
    size_t wl = 0;
    unsigned char *want = valid ? fz_expected(fr, id, type, d, n, &wl) : NULL;
    sp_buf b;
    int rc;

    buf_init(&b, max < 3 ? 3 : max);
    FZ_CHECK(buf_puts(&b, "pre") == 0, "pre");
    rc = fr->event(&b, id, type, d, n);
    if (valid && 3 + wl <= b.max) {
        FZ_CHECK(rc == 0, "%s refused a valid event (type \"%s\", %zu bytes)",
                 fr->name, type, n);
        FZ_CHECK(b.len == 3 + wl && memcmp(b.data + 3, want, wl) == 0 &&
                     b.data[b.len] == '\0',
                 "%s: bytes differ from the expected framing", fr->name);
    } else {
        FZ_CHECK(rc == -1, "%s accepted %s (type \"%s\", %zu bytes)", fr->name,
                 valid ? "an event past the buffer's maximum"
                       : "invalid arguments",
                 type, n);
        FZ_CHECK(b.len == 3 && memcmp(b.data, "pre", 4) == 0,
                 "%s: a refusal changed the buffer", fr->name);
    }
    buf_free(&b);
    free(want);
}

/* An error end with message d: JSON giving back the code and message. */
static void fz_frame_error(const sp_frame *fr, const char *code, const char *d,
                           size_t n)
{
    char *msg = strndup(d, n);
    int code_ok = strlen(code) >= 1 && strlen(code) <= 32 &&
                  strspn(code, "abcdefghijklmnopqrstuvwxyz_") == strlen(code);
    const char *json = NULL, *want_code = code;
    size_t jl = 0;
    sp_buf b;
    cJSON *js, *err, *c, *m;
    int rc;

    buf_init(&b, 1 << 20);
    rc = fr->error_end(&b, code, msg);
    FZ_CHECK(rc == (code_ok ? 0 : -1), "%s error end with code \"%s\": %d",
             fr->name, code, rc);
    if (rc != 0 || fr == &frame_sse) {
        FZ_CHECK(b.len == 0, "%s: bytes where none belong", fr->name);
        goto out;
    }
    if (fr == &frame_ndjson) {
        FZ_CHECK(b.len >= 2 && b.data[b.len - 1] == '\n' &&
                     memchr(b.data, '\n', b.len) == b.data + b.len - 1,
                 "ndjson error end is not one line");
        json = b.data;
        jl = b.len - 1;
    } else if (fr == &frame_connect) {
        const unsigned char *u = (const unsigned char *)b.data;
        FZ_CHECK(b.len >= 5 && u[0] == 2, "connect error end flag");
        jl = (size_t)u[1] << 24 | (size_t)u[2] << 16 | (size_t)u[3] << 8 | u[4];
        FZ_CHECK(jl == b.len - 5, "connect error end length");
        json = b.data + 5;
        want_code = frame_connect_code(code);
    } else {
        const unsigned char *u = (const unsigned char *)b.data;
        size_t hl = u[1] == 126 ? 4 : u[1] == 127 ? 10 : 2;
        jl = u[1] == 126   ? (size_t)u[2] << 8 | u[3]
             : u[1] == 127 ? (size_t)u[8] << 8 | u[9] | (size_t)u[7] << 16
                           : u[1];
        FZ_CHECK(u[0] == 0x81 && b.len == hl + jl + 4 &&
                     memcmp(b.data + hl + jl, "\x88\x02\x03\xf3", 4) == 0,
                 "websocket error end frames");
        json = b.data + hl;
    }
    FZ_CHECK(fz_utf8_valid((const unsigned char *)json, jl),
             "%s error end is not UTF-8", fr->name);
    js = cJSON_ParseWithLength(json, jl);
    err = cJSON_GetObjectItemCaseSensitive(js, "error");
    c = cJSON_GetObjectItemCaseSensitive(err, "code");
    m = cJSON_GetObjectItemCaseSensitive(err, "message");
    FZ_CHECK(cJSON_IsString(c) && strcmp(c->valuestring, want_code) == 0 &&
                 cJSON_IsString(m),
             "%s error end: %.*s", fr->name, (int)jl, json);
    if (strlen(msg) == n && fz_utf8_valid((const unsigned char *)d, n))
        FZ_CHECK(strcmp(m->valuestring, msg) == 0,
                 "%s error end lost the message", fr->name);
    cJSON_Delete(js);
out:
    buf_free(&b);
    free(msg);
}

/* Every framing on one input; the knobs choose the id and the buffer. */
static void fz_frames(unsigned knobs, sse_sid sid, const char *type,
                      const char *d, size_t n)
{
    static const sp_frame *const all[] = {&frame_sse, &frame_ndjson,
                                          &frame_connect, &frame_websocket};
    char ids[SSE_SID_STR], *piece = strndup(d, n < knobs % 72 ? n : knobs % 72);
    const char *id = (knobs & 3) == 0   ? NULL
                     : (knobs & 3) == 1 ? ""
                     : (knobs & 3) == 2 ? ids
                                        : piece;
    size_t max = (knobs & 0x80) ? n / 2 + knobs : SIZE_MAX / 2;

    sse_sid_format(sid, ids);
    for (size_t f = 0; f < sizeof all / sizeof all[0]; f++) {
        fz_frame_event(all[f], id, type, d, n, max);
        fz_frame_error(all[f], type, d, n);
    }
    free(piece);
}

/* Once, not per input (it is slow): data larger than an event may be is
 * replaced by an "event too large" error under the same id, framed the
 * same way, for text and for JSON alike. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const types[] = {"stdout", "status"};
    size_t n = SSE_EV_MAX + 4096;
    char *big = malloc(n + 16);
    sse_sid id = {1, 2};

    (void)argc, (void)argv;
    memset(big, '\x01', n);
    memcpy(big, "{\"a\":\"", 6);
    memcpy(big + n, "\"}", 3);
    for (size_t k = 0; k < 2; k++) {
        sse_ev *ev =
            sse_ev_format(&frame_sse, id, types[k], big, k == 0 ? n : n + 2,
                          FZ_LABEL_NAME, FZ_LABEL, FZ_FINAL);
        FZ_CHECK(ev != NULL, "no event for a large %s", types[k]);
        FZ_CHECK(ev->len < 512 &&
                     memmem(ev->data, ev->len, "event_too_large", 15) != NULL,
                 "large %s not replaced by an error", types[k]);
        fz_check_event(ev, id, types[k]);
        sse_ev_unref(ev);
    }
    free(big);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl;
    char *type, *body;
    size_t tlen, dlen;
    sse_sid id, back;
    sse_ev *ev, *big;
    unsigned knobs;

    if (size < 1)
        return 0;
    knobs = data[0];
    data++;
    size--;
    nl = memchr(data, '\n', size);
    tlen = nl ? (size_t)(nl - data) : size;
    type = strndup((const char *)data, tlen);
    dlen = nl ? size - tlen - 1 : 0;
    body = malloc(dlen + 1);
    memcpy(body, nl ? (const char *)nl + 1 : "", dlen);
    id.ms = 1700000000000ULL + knobs;
    id.seq = (uint64_t)knobs * 0x0101010101010101ULL;

    ev = sse_ev_format(&frame_sse, id, type, body, dlen, FZ_LABEL_NAME,
                       FZ_LABEL, FZ_FINAL);
    FZ_CHECK((ev != NULL) == fz_type_ok(type), "type \"%s\": event %p", type,
             (void *)ev);
    if (ev != NULL) {
        fz_check_event(ev, id, type);
        fz_check_iov(ev, 1 + knobs, 2 + knobs % 7, 1 + knobs * 13);
        sse_ev_unref(ev);
    }

    fz_frames(knobs, id, type, body, dlen);

    /* The whole input as a Last-Event-ID. */
    if (sse_sid_parse((const char *)data, size, &back) == 0) {
        char s[SSE_SID_STR];
        sse_sid again;
        FZ_CHECK(memchr(data, '-', size) != NULL, "id without a dash");
        for (size_t i = 0; i < size; i++)
            FZ_CHECK(data[i] == '-' || (data[i] >= '0' && data[i] <= '9'),
                     "id with byte %02x accepted", data[i]);
        sse_sid_format(back, s);
        FZ_CHECK(sse_sid_parse(s, strlen(s), &again) == 0 &&
                     sse_sid_cmp(again, back) == 0,
                 "id %s does not parse back", s);
    }

    /* A large body cut into several records (one input in eight: it is
     * slow); marks every 509 bytes show a record out of place. */
    big = (knobs & 7) == 0
              ? sse_ev_new(SSE_EV_STDOUT, (size_t)knobs * 1031 + (dlen % 997))
              : NULL;
    if (big != NULL) {
        memset(big->data, 'x', big->len);
        for (size_t i = 0; i < big->len; i += 509)
            big->data[i] = (char)(i / 509);
        fz_check_iov(big, 0xffff - knobs, 2 + (knobs >> 4) % 9,
                     1 + (dlen * 4099 + knobs * 257) % 150000);
        sse_ev_unref(big);
    }
    free(type);
    free(body);
    return 0;
}
