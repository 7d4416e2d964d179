/* sp_http_body.c: a streamed answer's body written as FastCGI records of
 * our own. libfcgi cuts what it is given into records of its 8 KiB
 * buffer, one write() each; a large body (an object) goes faster as
 * records of 64 KiB less a header, many to one writev(). The head and
 * anything else libfcgi holds is flushed first, so the bytes stay in
 * order; libfcgi still ends the stream and the request (FCGX_Finish). */
#include "sp_http.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define HTTP_REC_MAX 65528 /* content of one record (<= 65535, 8-aligned) */
#define HTTP_REC_IOV 32    /* records per writev */
#define FCGI_VERSION 1
#define FCGI_STDOUT  6

/* The 8-byte header of a STDOUT record of len bytes for request id. */
static void http_rec_head(unsigned char *h, int id, size_t len)
{
    h[0] = FCGI_VERSION;
    h[1] = FCGI_STDOUT;
    h[2] = (unsigned char)((id >> 8) & 0xff);
    h[3] = (unsigned char)(id & 0xff);
    h[4] = (unsigned char)((len >> 8) & 0xff);
    h[5] = (unsigned char)(len & 0xff);
    h[6] = 0; /* no padding */
    h[7] = 0;
}

/* writev all of iov (n entries), resuming after short writes. */
static int http_writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int http_write_body(http_req *r, const char *buf, size_t len)
{
    unsigned char heads[HTTP_REC_IOV][8];
    struct iovec iov[2 * HTTP_REC_IOV];

    if (FCGX_FFlush(r->fcgi.out) != 0 || r->fcgi.ipcFd < 0)
        return -1;
    while (len > 0) {
        int n = 0;
        for (int k = 0; k < HTTP_REC_IOV && len > 0; k++) {
            size_t c = len < HTTP_REC_MAX ? len : HTTP_REC_MAX;
            http_rec_head(heads[k], r->fcgi.requestId, c);
            iov[n].iov_base = heads[k];
            iov[n++].iov_len = 8;
            iov[n].iov_base = (void *)buf;
            iov[n++].iov_len = c;
            buf += c;
            len -= c;
        }
        if (http_writev_all(r->fcgi.ipcFd, iov, n) != 0)
            return -1;
    }
    return 0;
}
