/* sp_utf8.c: UTF-8 cutting and sanitizing (sp_utf8.h). */
#include "sp_utf8.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid sequence starting at s[0..n), 0 if invalid, or -1 if
 * valid so far but cut off by the end of the buffer. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len;
    unsigned min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t utf8_cut(const unsigned char *s, size_t n)
{
    /* Only the last 3 bytes can start an incomplete sequence. */
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = start; i < n; i++) {
        if ((s[i] & 0xc0) == 0x80)
            continue;
        if (utf8_seq(s + i, n - i) == -1)
            return i;
    }
    return n;
}

size_t utf8_carry_join(utf8_carry *c, const unsigned char *p, size_t n,
                       int at_eof, unsigned char *out)
{
    size_t len = c->len, cut;

    memcpy(out, c->b, len);
    if (n > 0)
        memcpy(out + len, p, n);
    len += n;
    cut = at_eof ? len : utf8_cut(out, len);
    c->len = len - cut;
    memcpy(c->b, out + cut, c->len);
    return cut;
}

int utf8_sanitize(const unsigned char *s, size_t n, sp_buf *out)
{
    static const char repl[] = "\xef\xbf\xbd";
    size_t i = 0, run = 0;

    while (i < n) {
        int len = utf8_seq(s + i, n - i);
        if (len > 0) {
            i += (size_t)len;
            run += (size_t)len;
            continue;
        }
        if (run > 0 && buf_append(out, s + i - run, run) != 0)
            return -1;
        run = 0;
        if (buf_append(out, repl, 3) != 0)
            return -1;
        i++;
    }
    if (run > 0 && buf_append(out, s + n - run, run) != 0)
        return -1;
    return 0;
}

static int utf8_json_string_slow(const unsigned char *s, size_t n, sp_buf *out)
{
    size_t i = 0;

    if (buf_append(out, "\"", 1) != 0)
        return -1;
    while (i < n) {
        size_t run = i;
        int len, rc;
        /* Plain printable ASCII goes in one append per run. */
        while (run < n && s[run] >= 0x20 && s[run] < 0x7f && s[run] != '"' &&
               s[run] != '\\')
            run++;
        if (run > i) {
            if (buf_append(out, s + i, run - i) != 0)
                return -1;
            i = run;
            continue;
        }
        len = utf8_seq(s + i, n - i);
        if (len <= 0) {
            rc = buf_append(out, "\\ufffd", 6);
            len = 1;
        } else if (s[i] == '"' || s[i] == '\\') {
            char esc[2] = {'\\', (char)s[i]};
            rc = buf_append(out, esc, 2);
        } else if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
            char esc[2] = {'\\', s[i] == '\n' ? 'n' : s[i] == '\r' ? 'r' : 't'};
            rc = buf_append(out, esc, 2);
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            rc = buf_printf(out, "\\u%04x", s[i]);
        } else {
            rc = buf_append(out, s + i, (size_t)len);
        }
        if (rc != 0)
            return -1;
        i += (size_t)len;
    }
    return buf_append(out, "\"", 1);
}

/* Escape one character at s (len bytes, valid or not) into d; returns the
 * bytes written (at most 6). */
static size_t utf8_escape_one(const unsigned char *s, int len, char *d)
{
    static const char hex[] = "0123456789abcdef";
    if (len <= 0) {
        memcpy(d, "\\ufffd", 6);
        return 6;
    }
    if (s[0] == '"' || s[0] == '\\') {
        d[0] = '\\';
        d[1] = (char)s[0];
        return 2;
    }
    if (s[0] == '\n' || s[0] == '\r' || s[0] == '\t') {
        d[0] = '\\';
        d[1] = s[0] == '\n' ? 'n' : s[0] == '\r' ? 'r' : 't';
        return 2;
    }
    if (s[0] < 0x20 || s[0] == 0x7f) {
        memcpy(d, "\\u00", 4);
        d[4] = hex[s[0] >> 4];
        d[5] = hex[s[0] & 15];
        return 6;
    }
    memcpy(d, s, (size_t)len);
    return (size_t)len;
}

int utf8_json_string(const unsigned char *s, size_t n, sp_buf *out)
{
    size_t i = 0;
    char *d;

    /* Room for the worst case (every byte 6 bytes out) at once, then a
     * tight loop writing straight into the buffer: this is the relay's hot
     * path. A buffer that cannot take the worst case goes the careful way,
     * one append at a time, up to its maximum. */
    if (n > (SIZE_MAX - 2) / 6 || buf_ensure(out, n * 6 + 2) != 0)
        return utf8_json_string_slow(s, n, out);
    d = out->data + out->len;
    *d++ = '"';
    while (i < n) {
        int len;
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') {
            *d++ = (char)s[i++];
            continue;
        }
        len = utf8_seq(s + i, n - i);
        d += utf8_escape_one(s + i, len, d);
        i += len > 0 ? (size_t)len : 1;
    }
    *d++ = '"';
    out->len = (size_t)(d - out->data);
    out->data[out->len] = '\0';
    return 0;
}

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    int len = utf8_seq(s, n);
    return len > 0 ? (size_t)len : 0;
}

int utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        int len = utf8_seq(s + i, n - i);
        if (len <= 0)
            return 0;
        i += (size_t)len;
    }
    return 1;
}
