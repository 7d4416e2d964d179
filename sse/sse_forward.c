/* sse_forward.c: calls from the relay to the handlers, for what WebSocket
 * clients ask (sse_ws_msg.c): an execution started or cancelled, a
 * terminal's sandbox made, its input, its end. The relay is a FastCGI
 * client of the handler's own socket (state/run/sp-<program>.sock, beside
 * the relay's), so a WebSocket message goes through exactly the code of
 * the HTTP route it stands for: validation, authentication with the
 * client's own credential, ownership, limits (docs/DESIGN.md §4.2). Not
 * through the helper's typed client: that would make the relay a second
 * implementation of /execute-stream's rules.
 *
 * Threads: calls block (connect, write, read until END_REQUEST, each step
 * bounded by SSE_FWD_TIMEOUT_S), so they run on SSE_FWD_THREADS threads of
 * their own, never on the loop or the reader. A client's calls always go
 * to the same thread (by its handle), so they are made in the order it
 * sent its messages. Answers go back to the loop through a queue and an
 * eventfd, like the reader's results. The credential is wiped when a call
 * is freed and never logged. */
#include "sse_loop.h"
#include "sp_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define SSE_FWD_THREADS    4
#define SSE_FWD_TIMEOUT_S  30
#define SSE_FWD_ANSWER_MAX (1024 * 1024)
#define FCGI_REC_MAX       65535

typedef struct sse_fwd_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sse_call *head, *tail;
} sse_fwd_queue;

static sse_fwd_queue sse_fwd_q[SSE_FWD_THREADS];
static pthread_mutex_t sse_fwd_done_lock = PTHREAD_MUTEX_INITIALIZER;
static sse_call *sse_fwd_done_head, *sse_fwd_done_tail;
static int sse_fwd_efd = -1;
static char sse_fwd_dir[256];

void sse_call_free(sse_call *c)
{
    if (c == NULL)
        return;
    if (c->cred != NULL) {
        explicit_bzero(c->cred, strlen(c->cred));
        free(c->cred);
    }
    free(c->body);
    free(c->answer);
    free(c);
}

/* One FastCGI record of type with n bytes of content into b (rid 1). */
static int sse_fwd_record(sp_buf *b, int type, const void *p, size_t n)
{
    unsigned char h[8] = {1,
                          (unsigned char)type,
                          0,
                          1,
                          (unsigned char)(n >> 8),
                          (unsigned char)n,
                          0,
                          0};

    return buf_append(b, h, 8) == 0 && (n == 0 || buf_append(b, p, n) == 0)
               ? 0
               : -1;
}

/* A name-value pair of the PARAMS stream into b. */
static int sse_fwd_pair(sp_buf *b, const char *name, const char *value)
{
    size_t ln[2] = {strlen(name), strlen(value)};
    unsigned char l[8];
    size_t o = 0;

    for (int i = 0; i < 2; i++) {
        if (ln[i] < 128) {
            l[o++] = (unsigned char)ln[i];
        } else {
            l[o++] = (unsigned char)(0x80 | (ln[i] >> 24));
            l[o++] = (unsigned char)(ln[i] >> 16);
            l[o++] = (unsigned char)(ln[i] >> 8);
            l[o++] = (unsigned char)ln[i];
        }
    }
    return buf_append(b, l, o) == 0 && buf_puts(b, name) == 0 &&
                   buf_puts(b, value) == 0
               ? 0
               : -1;
}

/* Content bytes p of one stream cut into records of type (then the empty
 * record that ends it). */
static int sse_fwd_stream(sp_buf *b, int type, const char *p, size_t n)
{
    while (n > 0) {
        size_t take = n > FCGI_REC_MAX ? FCGI_REC_MAX : n;
        if (sse_fwd_record(b, type, p, take) != 0)
            return -1;
        p += take;
        n -= take;
    }
    return sse_fwd_record(b, type, NULL, 0);
}

/* The request of c as FastCGI records into b. */
static int sse_fwd_request(const sse_call *c, sp_buf *b)
{
    static const unsigned char begin[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    char len[24];
    sp_buf p;
    int rc = -1;

    buf_init(&p, 64 * 1024);
    snprintf(len, sizeof len, "%zu", c->body_len);
    if (sse_fwd_pair(&p, "REQUEST_METHOD", c->method) == 0 &&
        sse_fwd_pair(&p, "SP_PATH", c->path) == 0 &&
        sse_fwd_pair(&p, "REQUEST_URI", c->path) == 0 &&
        sse_fwd_pair(&p, "QUERY_STRING", "") == 0 &&
        sse_fwd_pair(&p, "CONTENT_TYPE", "application/json") == 0 &&
        sse_fwd_pair(&p, "CONTENT_LENGTH", len) == 0 &&
        sse_fwd_pair(&p, "SERVER_PROTOCOL", "HTTP/1.1") == 0 &&
        sse_fwd_pair(&p, "REMOTE_ADDR", c->remote) == 0 &&
        (c->cred == NULL ||
         sse_fwd_pair(&p,
                      c->cred_bearer ? "HTTP_AUTHORIZATION" : "HTTP_X_API_KEY",
                      c->cred) == 0) &&
        sse_fwd_record(b, 1, begin, sizeof begin) == 0 &&
        sse_fwd_stream(b, 4, p.data, p.len) == 0 &&
        sse_fwd_stream(b, 5, c->body, c->body_len) == 0)
        rc = 0;
    explicit_bzero(p.data, p.len);
    buf_free(&p);
    return rc;
}

static int sse_fwd_io(int fd, void *p, size_t n, int out)
{
    while (n > 0) {
        ssize_t r = out ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p = (char *)p + r;
        n -= (size_t)r;
    }
    return 0;
}

/* Read records until END_REQUEST; the STDOUT stream into out. */
static int sse_fwd_read(int fd, sp_buf *out)
{
    unsigned char h[8], skip[256];

    for (;;) {
        size_t n, pad;
        if (sse_fwd_io(fd, h, 8, 0) != 0)
            return -1;
        n = (size_t)h[4] << 8 | h[5];
        pad = h[6];
        if (h[1] == 3)
            return 0; /* END_REQUEST: its content is not read */
        while (n > 0) {
            unsigned char chunk[4096];
            size_t take = n > sizeof chunk ? sizeof chunk : n;
            if (sse_fwd_io(fd, chunk, take, 0) != 0 ||
                (h[1] == 6 && buf_append(out, chunk, take) != 0))
                return -1;
            n -= take;
        }
        if (pad > 0 && sse_fwd_io(fd, skip, pad, 0) != 0)
            return -1;
    }
}

/* "Status: NNN ...\r\n...\r\n\r\n<body>" into c->status, c->answer. */
static int sse_fwd_answer(sse_call *c, const sp_buf *out)
{
    const char *end = out->data ? strstr(out->data, "\r\n\r\n") : NULL;
    const char *st = out->data ? strstr(out->data, "Status: ") : NULL;

    if (end == NULL)
        return -1;
    c->status = st != NULL && st < end ? atoi(st + 8) : 200;
    c->answer_len = out->len - (size_t)(end + 4 - out->data);
    c->answer = malloc(c->answer_len + 1);
    if (c->answer == NULL)
        return -1;
    memcpy(c->answer, end + 4, c->answer_len);
    c->answer[c->answer_len] = '\0';
    return 0;
}

/* Make call c; its status is 0 when the handler could not be asked. */
static void sse_fwd_call(sse_call *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {SSE_FWD_TIMEOUT_S, 0};
    sp_buf req, out;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    buf_init(&req, 4 * 1024 * 1024);
    buf_init(&out, SSE_FWD_ANSWER_MAX);
    c->status = 0;
    if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%.*s/sp-%.15s.sock",
                         (int)(sizeof sa.sun_path - 32), sse_fwd_dir,
                         c->program) >= sizeof sa.sun_path)
        fd = fd >= 0 ? (close(fd), -1) : -1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        sse_fwd_request(c, &req) != 0 ||
        sse_fwd_io(fd, req.data, req.len, 1) != 0 ||
        sse_fwd_read(fd, &out) != 0 || sse_fwd_answer(c, &out) != 0) {
        log_warn("call to sp-%s (%s %s) failed: %s", c->program, c->method,
                 c->path, strerror(errno));
        c->status = 0;
    }
    if (fd >= 0)
        close(fd);
    explicit_bzero(req.data, req.len);
    buf_free(&req);
    buf_free(&out);
}

static void *sse_fwd_thread(void *arg)
{
    sse_fwd_queue *q = arg;
    uint64_t one = 1;

    for (;;) {
        sse_call *c;
        pthread_mutex_lock(&q->lock);
        while (q->head == NULL)
            pthread_cond_wait(&q->cond, &q->lock);
        c = q->head;
        q->head = c->next;
        if (q->head == NULL)
            q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        sse_fwd_call(c);
        c->next = NULL;
        pthread_mutex_lock(&sse_fwd_done_lock);
        if (sse_fwd_done_tail != NULL)
            sse_fwd_done_tail->next = c;
        else
            sse_fwd_done_head = c;
        sse_fwd_done_tail = c;
        pthread_mutex_unlock(&sse_fwd_done_lock);
        if (write(sse_fwd_efd, &one, sizeof one) < 0)
            log_debug("eventfd write failed"); /* a full counter wakes too */
    }
    return NULL;
}

int sse_forward_start(int efd, const char *run_dir)
{
    pthread_t t;

    sse_fwd_efd = efd;
    if (strlen(run_dir) >= sizeof(((struct sockaddr_un *)0)->sun_path) - 32)
        return -1;
    snprintf(sse_fwd_dir, sizeof sse_fwd_dir, "%s", run_dir);
    for (int i = 0; i < SSE_FWD_THREADS; i++) {
        pthread_mutex_init(&sse_fwd_q[i].lock, NULL);
        pthread_cond_init(&sse_fwd_q[i].cond, NULL);
        if (pthread_create(&t, NULL, sse_fwd_thread, &sse_fwd_q[i]) != 0)
            return -1;
        pthread_detach(t);
    }
    return 0;
}

void sse_forward_submit(sse_call *c)
{
    sse_fwd_queue *q = &sse_fwd_q[(c->handle >> 32) % SSE_FWD_THREADS];

    c->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail != NULL)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

sse_call *sse_forward_take(void)
{
    sse_call *all;

    pthread_mutex_lock(&sse_fwd_done_lock);
    all = sse_fwd_done_head;
    sse_fwd_done_head = sse_fwd_done_tail = NULL;
    pthread_mutex_unlock(&sse_fwd_done_lock);
    return all;
}
