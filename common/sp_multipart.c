/* sp_multipart.c: multipart/form-data parsing (sp_multipart.h). */
#include "sp_multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int mp_boundary(const char *ct, char *out, size_t outlen)
{
    const char *b;
    size_t n = 0;

    if (ct == NULL || strncasecmp(ct, "multipart/form-data", 19) != 0 ||
        (ct[19] != ';' && ct[19] != ' ' && ct[19] != '\0'))
        return -1;
    /* The parameter itself, not some "xboundary=". */
    for (b = ct + 19; (b = strcasestr(b, "boundary=")) != NULL; b++) {
        if (b[-1] == ';' || b[-1] == ' ' || b[-1] == '\t')
            break;
    }
    if (b == NULL)
        return -1;
    b += 9;
    if (*b == '"') {
        const char *end = strchr(++b, '"');
        if (end == NULL)
            return -1;
        n = (size_t)(end - b);
    } else {
        n = strcspn(b, "; \t");
    }
    /* RFC 2046: 1 to 70 characters. */
    if (n == 0 || n > 70 || n + 1 > outlen)
        return -1;
    memcpy(out, b, n);
    out[n] = '\0';
    return 0;
}

static const char *mp_find(const char *hay, size_t hlen, const char *needle,
                           size_t nlen)
{
    return memmem(hay, hlen, needle, nlen);
}

/* Copy the value of param ("name" or "filename") of a Content-Disposition
 * header line [h, h+hlen) into out. 0 found, -1 absent or too long. */
static int mp_param(const char *h, size_t hlen, const char *param, char *out,
                    size_t outlen)
{
    size_t plen = strlen(param);
    for (size_t i = 0; i + plen + 2 <= hlen; i++) {
        const char *v;
        size_t n = 0;
        if ((i > 0 && h[i - 1] != ' ' && h[i - 1] != ';') ||
            strncasecmp(h + i, param, plen) != 0 || h[i + plen] != '=')
            continue;
        v = h + i + plen + 1;
        if (*v == '"') {
            v++;
            while (v + n < h + hlen && v[n] != '"')
                n++;
            if (v + n >= h + hlen)
                return -1;
        } else {
            while (v + n < h + hlen && v[n] != ';' && v[n] != ' ')
                n++;
        }
        if (n + 1 > outlen)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

int mp_parse(const char *body, size_t len, const char *boundary, mp_part *parts,
             int max)
{
    char delim[80];
    size_t dlen;
    const char *p, *end = body + len;
    int n = 0;

    dlen = (size_t)snprintf(delim, sizeof delim, "--%s", boundary);
    if (dlen >= sizeof delim || len < dlen || memcmp(body, delim, dlen) != 0)
        return -1;
    p = body + dlen;
    for (;;) {
        const char *hend, *next, *h;
        mp_part *part;
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return n; /* closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n' || n >= max)
            return -1;
        p += 2;
        hend = mp_find(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            return -1;
        part = &parts[n];
        memset(part, 0, sizeof *part);
        for (h = p; h < hend;) {
            const char *eol = mp_find(h, (size_t)(hend - h), "\r\n", 2);
            size_t hl = eol ? (size_t)(eol - h) : (size_t)(hend - h);
            if (hl > 20 && strncasecmp(h, "Content-Disposition:", 20) == 0) {
                if (mp_param(h, hl, "name", part->name, sizeof part->name))
                    return -1;
                if (mp_param(h, hl, "filename", part->filename,
                             sizeof part->filename) != 0)
                    part->filename[0] = '\0';
            }
            h += hl + (eol ? 2 : 0);
        }
        if (part->name[0] == '\0')
            return -1;
        part->data = hend + 4;
        /* The part ends at CRLF + delimiter. */
        {
            char crlfdelim[84];
            size_t cl =
                (size_t)snprintf(crlfdelim, sizeof crlfdelim, "\r\n%s", delim);
            const char *from = part->data;
            /* A delimiter is followed by "--" or CRLF; "--B" followed by
             * anything else is data that starts like one. */
            for (;;) {
                next = mp_find(from, (size_t)(end - from), crlfdelim, cl);
                if (next == NULL)
                    return -1;
                if (end - (next + cl) >= 2 &&
                    ((next[cl] == '-' && next[cl + 1] == '-') ||
                     (next[cl] == '\r' && next[cl + 1] == '\n')))
                    break;
                from = next + 1;
            }
            part->len = (size_t)(next - part->data);
            p = next + cl;
        }
        n++;
    }
}
