/* sp_gzip.c: bounded gzip inflate and deflate over zlib (sp_gzip.h). */
#include "sp_gzip.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define GZ_WBITS 31     /* 15-bit window, gzip wrapper (16) */
#define GZ_CHUNK 65536u /* output produced per inflate/deflate call */

/* Grow out by up to GZ_CHUNK bytes of room; GZ_TOO_LARGE at its max. */
static int gz_room(sp_buf *out, z_stream *z)
{
    size_t room = out->max - out->len;

    if (room == 0)
        return GZ_TOO_LARGE;
    if (room > GZ_CHUNK)
        room = GZ_CHUNK;
    if (buf_ensure(out, room) != 0)
        return GZ_NOMEM;
    z->next_out = (Bytef *)out->data + out->len;
    z->avail_out = (uInt)room;
    return GZ_OK;
}

/* Inflate one member's worth from z into out. Z_STREAM_END, or a GZ_*
 * (as a negative number) on failure. */
static int gz_member(z_stream *z, sp_buf *out)
{
    int zr = Z_OK, rc;

    while (zr != Z_STREAM_END) {
        if ((rc = gz_room(out, z)) != GZ_OK) {
            /* A full buffer is only too large if more would come out. */
            if (rc == GZ_TOO_LARGE) {
                unsigned char probe;
                z->next_out = &probe;
                z->avail_out = 1;
                zr = inflate(z, Z_NO_FLUSH);
                if (zr == Z_STREAM_END && z->avail_out == 1)
                    return Z_STREAM_END;
                return z->avail_out == 0 ? -GZ_TOO_LARGE : -GZ_BAD;
            }
            return -rc;
        }
        size_t before = z->avail_out;
        zr = inflate(z, Z_NO_FLUSH);
        out->len += before - z->avail_out;
        out->data[out->len] = '\0';
        if (zr == Z_BUF_ERROR && z->avail_in == 0)
            return -GZ_BAD; /* truncated */
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            return zr == Z_MEM_ERROR ? -GZ_NOMEM : -GZ_BAD;
    }
    return Z_STREAM_END;
}

int gz_inflate(const void *in, size_t n, sp_buf *out)
{
    z_stream z;
    int rc = GZ_OK;

    if (n > UINT_MAX)
        return GZ_TOO_LARGE;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, GZ_WBITS) != Z_OK)
        return GZ_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    if (n == 0)
        rc = GZ_BAD;
    while (rc == GZ_OK && z.avail_in > 0) {
        int m = gz_member(&z, out);
        if (m != Z_STREAM_END)
            rc = -m;
        else if (z.avail_in > 0 && inflateReset(&z) != Z_OK)
            rc = GZ_BAD; /* another member follows */
    }
    inflateEnd(&z);
    return rc;
}

int gz_deflate(const void *in, size_t n, sp_buf *out)
{
    z_stream z;
    int zr = Z_OK, rc = GZ_OK;

    if (n > UINT_MAX)
        return GZ_TOO_LARGE;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZ_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return GZ_NOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    while (rc == GZ_OK && zr != Z_STREAM_END) {
        size_t before;
        if ((rc = gz_room(out, &z)) != GZ_OK)
            break;
        before = z.avail_out;
        zr = deflate(&z, Z_FINISH);
        out->len += before - z.avail_out;
        out->data[out->len] = '\0';
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
            rc = GZ_NOMEM;
    }
    deflateEnd(&z);
    return rc;
}

int gz_accepted(const char *h)
{
    while (h != NULL && *h != '\0') {
        size_t n;
        h += strspn(h, " \t,");
        n = strcspn(h, ",;");
        while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
            n--;
        if (n == 4 && strncasecmp(h, "gzip", 4) == 0) {
            const char *q = h + 4 + strspn(h + 4, " \t");
            if (*q != ';')
                return 1;
            q += 1 + strspn(q + 1, " \t");
            /* A weight of 0 refuses it; any other accepts. */
            return strncasecmp(q, "q=", 2) != 0 || strtod(q + 2, NULL) > 0;
        }
        h = strchr(h, ',');
    }
    return 0;
}
