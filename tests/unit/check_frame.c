/* tests/unit/check_frame.c: unit tests of the streamed-answer framings
 * (common/sp_frame.c): the exact bytes of every part of SSE, NDJSON,
 * lines, Connect envelopes and WebSocket frames; the boundaries of WebSocket's
 * length forms and of Connect's message size; the data every framing
 * refuses (NUL, control bytes, invalid UTF-8, line breaks where they would
 * end an event); and the bounded buffer: a writer that cannot fit leaves
 * the buffer exactly as it was. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_buf.h"
#include "sp_frame.h"

#define T_BIG (64u * 1024 * 1024)

static const sp_frame *const t_frames[] = {
    &frame_sse, &frame_ndjson, &frame_lines, &frame_connect, &frame_websocket};
#define T_NFRAMES (sizeof t_frames / sizeof t_frames[0])

/* ---------------------------------------------------------------- helpers */

/* b holds exactly the n bytes want. */
static void t_bytes(const sp_buf *b, const void *want, size_t n)
{
    ck_assert_uint_eq(b->len, n);
    if (n > 0)
        ck_assert_mem_eq(b->data, want, n);
    ck_assert_int_eq(b->data == NULL ? 0 : b->data[b->len], '\0');
}

static int t_event(const sp_frame *f, sp_buf *b, const char *id,
                   const char *type, const char *data)
{
    return f->event(b, id, type, data, strlen(data));
}

/* A JSON string of n bytes in all: '"', n - 2 'a', '"'. Caller frees. */
static char *t_json_string(size_t n)
{
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, 'a', n);
    s[0] = '"';
    s[n - 1] = '"';
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------- SSE */

START_TEST(sse_event_bytes)
{
    static const char want[] =
        "id: 1700000000000-7\nevent: stdout\ndata: {\"type\":\"stdout\","
        "\"executionId\":\"exe_1\",\"data\":\"hi\\n\"}\n\n";
    sp_buf b;
    buf_init(&b, 4096);
    ck_assert_int_eq(t_event(&frame_sse, &b, "1700000000000-7", "stdout",
                             "{\"type\":\"stdout\",\"executionId\":\"exe_1\","
                             "\"data\":\"hi\\n\"}"),
                     0);
    t_bytes(&b, want, sizeof want - 1);
    /* Without an id (NULL or empty) there is no id line. */
    buf_reset(&b);
    ck_assert_int_eq(t_event(&frame_sse, &b, NULL, "error", "{}"), 0);
    ck_assert_int_eq(t_event(&frame_sse, &b, "", "error", "{}"), 0);
    t_bytes(&b, "event: error\ndata: {}\n\nevent: error\ndata: {}\n\n", 46);
    buf_free(&b);
}
END_TEST

/* The relay's bytes before the framing had an interface: one printf. */
START_TEST(sse_event_as_before)
{
    static const char *const ids[] = {"0-0", "1-2",
                                      "18446744073709551615-"
                                      "18446744073709551615"};
    static const char *const types[] = {"stdout", "result", "a_b"};
    static const char *const datas[] = {"{}", "{\"a\":\"\\u0000\xc3\xa9\"}",
                                        "\"\t\""};
    char want[256];
    sp_buf b;
    buf_init(&b, 4096);
    for (size_t i = 0; i < 3; i++) {
        for (size_t k = 0; k < 3; k++) {
            int n =
                snprintf(want, sizeof want, "id: %s\nevent: %s\ndata: %s\n\n",
                         ids[i], types[k], datas[(i + k) % 3]);
            buf_reset(&b);
            ck_assert_int_eq(
                t_event(&frame_sse, &b, ids[i], types[k], datas[(i + k) % 3]),
                0);
            t_bytes(&b, want, (size_t)n);
        }
    }
    buf_free(&b);
}
END_TEST

START_TEST(sse_other_parts)
{
    sp_buf b;
    buf_init(&b, 4096);
    ck_assert_str_eq(frame_sse.name, "sse");
    ck_assert_str_eq(frame_sse.content_type, "text/event-stream");
    ck_assert_int_eq(frame_sse.preamble(&b), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(frame_sse.heartbeat(&b), 0);
    t_bytes(&b, ": hb\n\n", 6);
    buf_reset(&b);
    /* No trailer, normal or not; the code is still checked. */
    ck_assert_int_eq(frame_sse.end(&b), 0);
    ck_assert_int_eq(frame_sse.error_end(&b, "unavailable", "x"), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(frame_sse.error_end(&b, "Bad Code", "x"), -1);
    ck_assert_int_eq(frame_sse.error_end(&b, "unavailable", NULL), -1);
    buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- NDJSON */

START_TEST(ndjson_bytes)
{
    static const char ev[] =
        "{\"id\":\"1-2\",\"type\":\"stdout\",\"data\":{\"text\":\"a\"}}\n"
        "{\"type\":\"result\",\"data\":\"s\"}\n";
    static const char err[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"redis "
        "\\\"down\\\"\\n\\ufffd\"}}\n";
    sp_buf b;
    buf_init(&b, 4096);
    ck_assert_str_eq(frame_ndjson.content_type, "application/x-ndjson");
    ck_assert_int_eq(
        t_event(&frame_ndjson, &b, "1-2", "stdout", "{\"text\":\"a\"}"), 0);
    ck_assert_int_eq(t_event(&frame_ndjson, &b, NULL, "result", "\"s\""), 0);
    t_bytes(&b, ev, sizeof ev - 1);
    buf_reset(&b);
    ck_assert_int_eq(frame_ndjson.heartbeat(&b), 0);
    t_bytes(&b, "{\"type\":\"keepalive\"}\n", 21);
    buf_reset(&b);
    ck_assert_int_eq(frame_ndjson.preamble(&b), 0);
    ck_assert_int_eq(frame_ndjson.end(&b), 0);
    ck_assert_uint_eq(b.len, 0);
    /* The message is escaped (quotes, line break, invalid byte). */
    ck_assert_int_eq(
        frame_ndjson.error_end(&b, "unavailable", "redis \"down\"\n\xff"), 0);
    t_bytes(&b, err, sizeof err - 1);
    buf_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ lines */

START_TEST(lines_bytes)
{
    static const char ev[] = "{\"type\":\"stdout\",\"text\":\"a\"}\n\"s\"\n";
    static const char err[] =
        "{\"type\":\"error\",\"name\":\"events_lost\",\"value\":\"gone "
        "\\\"x\\\"\\n\\ufffd\",\"traceback\":\"\"}\n";
    sp_buf b;
    buf_init(&b, 4096);
    ck_assert_str_eq(frame_lines.content_type, "application/x-ndjson");
    ck_assert_int_eq(t_event(&frame_lines, &b, "1-2", "e2b",
                             "{\"type\":\"stdout\",\"text\":\"a\"}"),
                     0);
    ck_assert_int_eq(t_event(&frame_lines, &b, NULL, "x", "\"s\""), 0);
    t_bytes(&b, ev, sizeof ev - 1);
    buf_reset(&b);
    ck_assert_int_eq(t_event(&frame_lines, &b, NULL, "x", "{\n}"), -1);
    ck_assert_int_eq(t_event(&frame_lines, &b, "bad id!", "x", "1"), -1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(frame_lines.heartbeat(&b), 0);
    t_bytes(&b, "{\"type\":\"keepalive\"}\n", 21);
    buf_reset(&b);
    ck_assert_int_eq(frame_lines.preamble(&b), 0);
    ck_assert_int_eq(frame_lines.end(&b), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(
        frame_lines.error_end(&b, "events_lost", "gone \"x\"\n\xff"), 0);
    t_bytes(&b, err, sizeof err - 1);
    buf_reset(&b);
    ck_assert_int_eq(frame_lines.error_end(&b, "Bad", "m"), -1);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

/* ---------------------------------------------------------------- Connect */

START_TEST(connect_bytes)
{
    static const unsigned char ev[] = {0,   0,   0,   0,   7,   '{',
                                       '"', 'a', '"', ':', '1', '}'};
    static const unsigned char hb[] = {0, 0, 0, 0, 2, '{', '}'};
    static const unsigned char end[] = {2, 0, 0, 0, 2, '{', '}'};
    static const char err_json[] =
        "{\"error\":{\"code\":\"unavailable\",\"message\":\"gone\"}}";
    unsigned char want[128];
    char *big;
    sp_buf b;

    buf_init(&b, 4096);
    ck_assert_str_eq(frame_connect.content_type, "application/connect+json");
    /* The message is the data: id and type are not on the wire. */
    ck_assert_int_eq(t_event(&frame_connect, &b, "1-2", "stdout", "{\"a\":1}"),
                     0);
    t_bytes(&b, ev, sizeof ev);
    buf_reset(&b);
    ck_assert_int_eq(frame_connect.heartbeat(&b), 0);
    t_bytes(&b, hb, sizeof hb);
    buf_reset(&b);
    ck_assert_int_eq(frame_connect.preamble(&b), 0);
    ck_assert_int_eq(frame_connect.end(&b), 0);
    t_bytes(&b, end, sizeof end);
    buf_reset(&b);
    ck_assert_int_eq(frame_connect.error_end(&b, "unavailable", "gone"), 0);
    want[0] = 2;
    want[1] = want[2] = want[3] = 0;
    want[4] = sizeof err_json - 1;
    memcpy(want + 5, err_json, sizeof err_json - 1);
    t_bytes(&b, want, 5 + sizeof err_json - 1);
    /* JSON whitespace (line breaks) is fine inside a length-prefixed
     * message; the length is big-endian over all four bytes. */
    buf_reset(&b);
    big = t_json_string(300);
    big[1] = '\x01';
    ck_assert_int_eq(t_event(&frame_connect, &b, NULL, "x", "{\n}"), 0);
    ck_assert_int_eq(t_event(&frame_connect, &b, NULL, "x", big), -1);
    big[1] = ' ';
    ck_assert_int_eq(t_event(&frame_connect, &b, NULL, "x", big), 0);
    ck_assert_uint_eq(b.len, 8 + 305);
    ck_assert_mem_eq(b.data + 8, "\x00\x00\x00\x01\x2c\" ", 7);
    free(big);
    buf_free(&b);
}
END_TEST

START_TEST(connect_error_codes)
{
    static const char *const map[][2] = {
        {"not_found", "not_found"},
        {"unavailable", "unavailable"},
        {"internal", "internal"},
        {"unauthenticated", "unauthenticated"},
        {"invalid_argument", "invalid_argument"},
        {"invalid_json", "invalid_argument"},
        {"rate_limited", "resource_exhausted"},
        {"payload_too_large", "resource_exhausted"},
        {"method_not_allowed", "unimplemented"},
        {"conflict", "aborted"},
        {"events_lost", "data_loss"},
        {"deadline_exceeded", "deadline_exceeded"},
        {"no_such_code", "unknown"},
    };
    sp_buf b;
    char want[256];

    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        ck_assert_str_eq(frame_connect_code(map[i][0]), map[i][1]);
    ck_assert_str_eq(frame_connect_code(NULL), "unknown");
    buf_init(&b, 4096);
    ck_assert_int_eq(frame_connect.error_end(&b, "rate_limited", "slow down"),
                     0);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"resource_exhausted\",\"message\":\"slow "
             "down\"}}");
    ck_assert_uint_eq(b.len, 5 + strlen(want));
    ck_assert_int_eq((unsigned char)b.data[0], 2);
    ck_assert_int_eq((unsigned char)b.data[4], strlen(want));
    ck_assert_mem_eq(b.data + 5, want, strlen(want));
    /* A code that is not [a-z_]{1,32} is refused, not rendered. */
    buf_reset(&b);
    ck_assert_int_eq(frame_connect.error_end(&b, "not-found", "x"), -1);
    ck_assert_int_eq(frame_connect.error_end(&b, "", "x"), -1);
    ck_assert_int_eq(frame_connect.error_end(&b, NULL, "x"), -1);
    ck_assert_int_eq(
        frame_connect.error_end(&b, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "x"),
        -1);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

/* A message of exactly FRAME_DATA_MAX (16 MiB) is sized 0x01000000; one
 * byte more is refused. */
START_TEST(connect_16mib)
{
    char *big = t_json_string(FRAME_DATA_MAX + 1);
    sp_buf b;

    buf_init(&b, T_BIG);
    ck_assert_int_eq(buf_append(&b, "x", 1), 0);
    ck_assert_int_eq(
        frame_connect.event(&b, NULL, "x", big, FRAME_DATA_MAX + 1), -1);
    ck_assert_uint_eq(b.len, 1);
    big[FRAME_DATA_MAX - 1] = '"';
    ck_assert_int_eq(frame_connect.event(&b, NULL, "x", big, FRAME_DATA_MAX),
                     0);
    ck_assert_uint_eq(b.len, 1 + 5 + FRAME_DATA_MAX);
    ck_assert_mem_eq(b.data, "x\x00\x01\x00\x00\x00\"", 7);
    ck_assert_int_eq(b.data[b.len - 1], '"');
    buf_free(&b);
    free(big);
}
END_TEST

/* ------------------------------------------------------------- WebSocket */

START_TEST(ws_header_lengths)
{
    static const struct {
        uint64_t len;
        size_t hl;
        unsigned char h[10];
    } cases[] = {
        {0, 2, {0x81, 0}},
        {1, 2, {0x81, 1}},
        {125, 2, {0x81, 125}},
        {126, 4, {0x81, 126, 0, 126}},
        {127, 4, {0x81, 126, 0, 127}},
        {65535, 4, {0x81, 126, 0xff, 0xff}},
        {65536, 10, {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
        {0x100000000ULL, 10, {0x81, 127, 0, 0, 0, 1, 0, 0, 0, 0}},
        {0x7fffffffffffffffULL,
         10,
         {0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
    };
    unsigned char h[FRAME_WS_HDR_MAX];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(h, 0xaa, sizeof h);
        ck_assert_uint_eq(frame_ws_header(h, FRAME_WS_TEXT, cases[i].len),
                          cases[i].hl);
        ck_assert_mem_eq(h, cases[i].h, cases[i].hl);
        /* Never masked: the second byte's top bit is clear. */
        ck_assert_int_eq(h[1] & 0x80, 0);
    }
    ck_assert_uint_eq(frame_ws_header(h, FRAME_WS_PING, 0), 2);
    ck_assert_mem_eq(h, "\x89\x00", 2);
    ck_assert_uint_eq(frame_ws_header(h, FRAME_WS_CLOSE, 2), 2);
    ck_assert_mem_eq(h, "\x88\x02", 2);
}
END_TEST

/* Events whose payload is 125, 126, 65535 and 65536 bytes: the payload
 * is {"type":"t","data":<data>} (20 bytes around the data). */
START_TEST(ws_event_boundaries)
{
    static const size_t payloads[] = {2, 125, 126, 65535, 65536, 70000};
    sp_buf b;

    buf_init(&b, 1024 * 1024);
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        size_t pl = payloads[i], dl = pl, hl;
        char *data = t_json_string(dl), *want = malloc(pl + 16);
        unsigned char h[FRAME_WS_HDR_MAX];
        ck_assert_ptr_nonnull(want);
        hl = frame_ws_header(h, FRAME_WS_TEXT, pl);
        ck_assert_uint_eq(hl, pl <= 125 ? 2 : pl <= 65535 ? 4 : 10);
        memcpy(want, h, hl);
        memcpy(want + hl, data, dl);
        buf_reset(&b);
        ck_assert_int_eq(frame_websocket.event(&b, NULL, "t", data, dl), 0);
        t_bytes(&b, want, hl + pl);
        free(data);
        free(want);
    }
    /* The id and type are checked, not sent: the data is the message. */
    buf_reset(&b);
    ck_assert_int_eq(t_event(&frame_websocket, &b, "5-0", "t", "{\"a\":1}"),
                     0);
    t_bytes(&b, "\x81\x07{\"a\":1}", 2 + 7);
    ck_assert_int_eq(t_event(&frame_websocket, &b, "bad id", "t", "1"), -1);
    buf_free(&b);
}
END_TEST

START_TEST(ws_other_parts)
{
    static const char err_json[] =
        "{\"error\":{\"code\":\"internal\",\"message\":\"boom\"}}";
    unsigned char want[128];
    sp_buf b;

    buf_init(&b, 4096);
    ck_assert_str_eq(frame_websocket.name, "websocket");
    ck_assert_ptr_null(frame_websocket.content_type);
    ck_assert_int_eq(frame_websocket.preamble(&b), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(frame_websocket.heartbeat(&b), 0);
    t_bytes(&b, "\x89\x00", 2);
    buf_reset(&b);
    ck_assert_int_eq(frame_websocket.end(&b), 0);
    t_bytes(&b, "\x88\x02\x03\xe8", 4); /* close, 1000 */
    buf_reset(&b);
    ck_assert_int_eq(frame_websocket.error_end(&b, "internal", "boom"), 0);
    want[0] = 0x81;
    want[1] = sizeof err_json - 1;
    memcpy(want + 2, err_json, sizeof err_json - 1);
    memcpy(want + 2 + sizeof err_json - 1, "\x88\x02\x03\xf3", 4); /* 1011 */
    t_bytes(&b, want, 2 + sizeof err_json - 1 + 4);
    buf_free(&b);
}
END_TEST

/* -------------------------------------------------------- every framing */

START_TEST(lookup)
{
    for (size_t i = 0; i < T_NFRAMES; i++)
        ck_assert_ptr_eq(frame_find(t_frames[i]->name), t_frames[i]);
    ck_assert_ptr_null(frame_find("SSE"));
    ck_assert_ptr_null(frame_find(""));
    ck_assert_ptr_null(frame_find(NULL));
}
END_TEST

/* Valid UTF-8 of every length goes through every framing unchanged. */
START_TEST(utf8_accepted)
{
    static const char *const ok[] = {
        "\"\xc3\xa9\"",                     /* é */
        "\"\xe2\x82\xac\"",                 /* € */
        "\"\xf0\x9f\x98\x80\"",             /* U+1F600 */
        "\"\xef\xbf\xbd\xf4\x8f\xbf\xbf\"", /* U+FFFD, U+10FFFF */
        "\"\t\\u0000 a long plain run..\"", /* tab and an escaped NUL */
        "\"\xed\x9f\xbf\xee\x80\x80\"",     /* around the surrogates */
    };
    sp_buf b;

    buf_init(&b, 4096);
    for (size_t f = 0; f < T_NFRAMES; f++) {
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
            buf_reset(&b);
            ck_assert_msg(t_event(t_frames[f], &b, "1-1", "t", ok[i]) == 0,
                          "%s refused case %zu", t_frames[f]->name, i);
            ck_assert_ptr_nonnull(memmem(b.data, b.len, ok[i], strlen(ok[i])));
        }
    }
    buf_free(&b);
}
END_TEST

/* What no framing carries: NUL, control bytes, invalid UTF-8; SSE and
 * NDJSON also no CR or LF (they would end the event). The buffer is left
 * as it was. */
START_TEST(data_refused)
{
    static const struct {
        const char *d;
        size_t n;
        int lines; /* 1: only a line break, refused by sse/ndjson only */
    } bad[] = {
        {"\"a\0b\"", 5, 0},
        {"\"\x01\"", 3, 0},
        {"\"\x1f\"", 3, 0},
        {"\"\x1b[31m\"", 7, 0},
        {"\"\xff\"", 3, 0},
        {"\"\xc0\x80\"", 4, 0},          /* overlong NUL */
        {"\"\xe0\x80\xaf\"", 5, 0},      /* overlong '/' */
        {"\"\xed\xa0\x80\"", 5, 0},      /* a surrogate */
        {"\"\xf4\x90\x80\x80\"", 6, 0},  /* past U+10FFFF */
        {"\"\xe2\x82\"", 4, 0},          /* cut short */
        {"\"\x80\"", 3, 0},              /* lone continuation */
        {"\"abcdefgh\xe2\x82", 11, 0},   /* cut at the very end */
        {"\"abcdefghijklmn\0\"", 17, 0}, /* NUL past the fast path */
        {"", 0, 0},                      /* no data at all */
        {"{\n}", 3, 1},
        {"{\r}", 3, 1},
        {"\"abcdefghij\n\"", 13, 1},
    };
    sp_buf b;

    buf_init(&b, 4096);
    for (size_t f = 0; f < T_NFRAMES; f++) {
        int lines_ok =
            t_frames[f] == &frame_connect || t_frames[f] == &frame_websocket;
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int want = bad[i].lines && lines_ok ? 0 : -1;
            buf_reset(&b);
            ck_assert_int_eq(buf_puts(&b, "kept"), 0);
            ck_assert_msg(
                t_frames[f]->event(&b, "1-1", "t", bad[i].d, bad[i].n) == want,
                "%s: case %zu", t_frames[f]->name, i);
            if (want != 0)
                t_bytes(&b, "kept", 4);
        }
        ck_assert_int_eq(t_frames[f]->event(&b, "1-1", "t", NULL, 0), -1);
    }
    buf_free(&b);
}
END_TEST

/* Ids and types are tokens: nothing that could break a line, a JSON
 * string or a header. */
START_TEST(id_type_refused)
{
    static const char *const bad_ids[] = {
        "1-2\n",
        "1 2",
        "a\"b",
        "a\\b",
        "\xc3\xa9",
        "12345678901234567890123456789012345678901234567890123456789012345"};
    static const char *const bad_types[] = {
        "",
        "std out",
        "a\nb",
        "a:b",
        "a\"b",
        "\xc3\xa9",
        "12345678901234567890123456789012345678901234567890123456789012345"};
    sp_buf b;

    buf_init(&b, 4096);
    for (size_t f = 0; f < T_NFRAMES; f++) {
        const sp_frame *fr = t_frames[f];
        buf_reset(&b);
        for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
            ck_assert_int_eq(t_event(fr, &b, bad_ids[i], "t", "{}"), -1);
        for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++)
            ck_assert_int_eq(t_event(fr, &b, "1-2", bad_types[i], "{}"), -1);
        ck_assert_int_eq(t_event(fr, &b, "1-2", NULL, "{}"), -1);
        ck_assert_uint_eq(b.len, 0);
        /* The longest of each (64) and the other characters are fine. */
        ck_assert_int_eq(
            t_event(fr, &b,
                    "1234567890123456789012345678901234567890123456789012345:"
                    "_.-aZ09:",
                    "1234567890123456789012345678901234567890123456789012345_."
                    "-aZ09_.",
                    "{}"),
            0);
    }
    buf_free(&b);
}
END_TEST

/* Every part of every framing, in a buffer one byte too small, is refused
 * and leaves the buffer as it was; in one just big enough it is written
 * whole, the same bytes as in a roomy buffer. */
START_TEST(bounded_buffer)
{
    char *data = t_json_string(70000);
    for (size_t f = 0; f < T_NFRAMES; f++) {
        const sp_frame *fr = t_frames[f];
        for (int part = 0; part < 6; part++) {
            sp_buf roomy, b;
            size_t n;
            int rc;
            buf_init(&roomy, 1024 * 1024);
            ck_assert_int_eq(buf_puts(&roomy, "pre"), 0);
            switch (part) {
            case 0:
                rc = fr->event(&roomy, "1-2", "stdout", "{\"a\":1}", 7);
                break;
            case 1:
                rc = fr->event(&roomy, NULL, "t", data, 70000);
                break;
            case 2:
                rc = fr->heartbeat(&roomy);
                break;
            case 3:
                rc = fr->end(&roomy);
                break;
            case 4:
                rc = fr->error_end(&roomy, "unavailable", "redis is down");
                break;
            default:
                rc = fr->event(&roomy, NULL, "t", data, 120);
                break;
            }
            ck_assert_int_eq(rc, 0);
            n = roomy.len;
            /* (A part that writes nothing has no "too small".) */
            for (size_t max = n > 3 ? n - 1 : n; max <= n; max++) {
                int want = max == n ? 0 : -1;
                buf_init(&b, max);
                ck_assert_int_eq(buf_puts(&b, "pre"), 0);
                switch (part) {
                case 0:
                    rc = fr->event(&b, "1-2", "stdout", "{\"a\":1}", 7);
                    break;
                case 1:
                    rc = fr->event(&b, NULL, "t", data, 70000);
                    break;
                case 2:
                    rc = fr->heartbeat(&b);
                    break;
                case 3:
                    rc = fr->end(&b);
                    break;
                case 4:
                    rc = fr->error_end(&b, "unavailable", "redis is down");
                    break;
                default:
                    rc = fr->event(&b, NULL, "t", data, 120);
                    break;
                }
                ck_assert_msg(rc == want, "%s part %d max %zu: %d", fr->name,
                              part, max, rc);
                if (rc == 0)
                    t_bytes(&b, roomy.data, n);
                else
                    t_bytes(&b, "pre", 3);
                buf_free(&b);
            }
            buf_free(&roomy);
        }
    }
    free(data);
}
END_TEST

/* ----------------------------------------------------------------- suites */

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc = tcase_create("frame");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sse_event_bytes);
    tcase_add_test(tc, sse_event_as_before);
    tcase_add_test(tc, sse_other_parts);
    tcase_add_test(tc, ndjson_bytes);
    tcase_add_test(tc, lines_bytes);
    tcase_add_test(tc, connect_bytes);
    tcase_add_test(tc, connect_error_codes);
    tcase_add_test(tc, connect_16mib);
    tcase_add_test(tc, ws_header_lengths);
    tcase_add_test(tc, ws_event_boundaries);
    tcase_add_test(tc, ws_other_parts);
    tcase_add_test(tc, lookup);
    tcase_add_test(tc, utf8_accepted);
    tcase_add_test(tc, data_refused);
    tcase_add_test(tc, id_type_refused);
    tcase_add_test(tc, bounded_buffer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
