/* fuzz_event.c: the relay's SSE framing, sse_ev_format (sse/sse_event.c),
 * stream id parsing (Last-Event-ID comes from the client), and the cutting
 * of a framed event into FastCGI STDOUT records (sse_fcgi_iov,
 * sse/sse_fcgi.c).
 *
 * Input: one byte of knobs, the event type up to '\n', then the entry's
 * data. Invariants: an event exists exactly when the type is [a-z_]{1,32};
 * it is three lines "id: <id>", "event: <type>", "data: <json>" and one
 * blank line, with no other line break (LF or CR) or control byte, so that
 * nothing in the data can end the event or start another; the data line is
 * one JSON object, valid UTF-8, whose "type" and label appear once each
 * with the envelope's values; "final" is set for the final type only. A
 * stream id that parses formats back to the same numbers. The records that
 * sse_fcgi_iov describes, written in arbitrary partial writes, are exactly
 * the event cut into records of at most 65535 bytes. At start, data past
 * the largest event gives an "event too large" error framed the same way. */
#include "fuzz_util.h"
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
        sse_ev *ev = sse_ev_format(id, types[k], big, k == 0 ? n : n + 2,
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

    ev = sse_ev_format(id, type, body, dlen, FZ_LABEL_NAME, FZ_LABEL, FZ_FINAL);
    FZ_CHECK((ev != NULL) == fz_type_ok(type), "type \"%s\": event %p", type,
             (void *)ev);
    if (ev != NULL) {
        fz_check_event(ev, id, type);
        fz_check_iov(ev, 1 + knobs, 2 + knobs % 7, 1 + knobs * 13);
        sse_ev_unref(ev);
    }

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
