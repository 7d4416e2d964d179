/* pv_access.c: who may reach a sandbox's port through its preview URL,
 * and the socket into the sandbox, both from the sandbox helper over
 * common/sp_fwd.h (one SOCK_SEQPACKET connection, opened again when it
 * breaks; each answer within PV_HELPER_WAIT_MS).
 *
 * Access, checked on every request, first that applies:
 *   1. the sandbox's traffic token (auth_sandbox_token, AUTH_SBX_TRAFFIC)
 *      in X-Sandpipe-Traffic-Token, E2B-Traffic-Access-Token, the token
 *      cookie or ?token=: no Redis, no helper;
 *   2. the helper does not have the sandbox: 404;
 *   3. the sandbox was made public: anyone;
 *   4. the owner's API key or access token (auth_credentials): another
 *      subject's is 404, as everywhere; none or a bad one 401.
 * A token presented that is not this sandbox's is 401 unless 4 admits. */
#include "pv.h"
#include "sp_fwd.h"
#include "sp_jwt.h"
#include "sp_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PV_HELPER_WAIT_MS 2000

static int pv_helper_fd = -1;
static char pv_helper_path[108];

void pv_access_init(const char *run_dir)
{
    snprintf(pv_helper_path, sizeof pv_helper_path, "%s/%s", run_dir,
             FWD_SOCKET_NAME);
}

static int pv_helper_open(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {PV_HELPER_WAIT_MS / 1000,
                         (PV_HELPER_WAIT_MS % 1000) * 1000};
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", pv_helper_path);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        log_warn("connect(\"%s\") failed: %s", pv_helper_path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Ask the helper req; its answer text into ans (NUL-terminated) and the fd
 * it passed (or -1) into *fd. 0, or -1 if the helper cannot be asked (the
 * connection is opened again once: the helper may have restarted). */
static int pv_helper_ask(const char *req, char *ans, size_t anslen, int *fd)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {ans, anslen - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t r = -1;

    *fd = -1;
    for (int attempt = 0; attempt < 2 && r <= 0; attempt++) {
        if (pv_helper_fd < 0 && (pv_helper_fd = pv_helper_open()) < 0)
            return -1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        if (send(pv_helper_fd, req, strlen(req), MSG_NOSIGNAL) > 0)
            r = recvmsg(pv_helper_fd, &m, MSG_CMSG_CLOEXEC);
        if (r <= 0) {
            close(pv_helper_fd);
            pv_helper_fd = -1;
        }
    }
    if (r <= 0)
        return -1;
    ans[r] = '\0';
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof *fd);
    return 0;
}

/* The status number an answer starts with, and its text after it. */
static sp_status pv_answer_status(const char *ans, const char **text)
{
    char *end;
    long st = strtol(ans, &end, 10);

    *text = *end == ' ' ? end + 1 : end;
    return end == ans || st < 0 || st >= SP_STATUS_COUNT ? SP_E_INTERNAL
                                                         : (sp_status)st;
}

/* 1 if authz is "Bearer <an access token of ours>" as auth_credentials
 * reads it (signature and expiry only: enough to keep it out of the
 * sandbox). */
static int pv_is_our_token(const char *authz)
{
    size_t len;
    const char *secret = auth_secret(&len), *token = auth_bearer(authz);
    tok_claims c;

    return token != NULL && tok_verify(token, TOK_ACCESS, secret, len,
                                       (long long)time(NULL), &c) == 0;
}

/* 4. of the list at the top: the owner's credentials. */
static sp_status pv_owner(const pv_head *h, const char *owner, int *strip_authz,
                          char *msg, size_t msglen)
{
    auth_info who;
    sp_status st;

    if (h->api_key[0] == '\0' && h->authz[0] == '\0') {
        snprintf(msg, msglen,
                 "a traffic token or the owner's credentials "
                 "are needed");
        return SP_E_UNAUTHENTICATED;
    }
    st = auth_credentials(h->api_key[0] ? h->api_key : NULL,
                          h->authz[0] ? h->authz : NULL, NULL, &who);
    if (st == SP_OK && strcmp(who.sub, owner) != 0)
        st = SP_E_NOT_FOUND;
    *strip_authz = st == SP_OK && h->api_key[0] == '\0';
    snprintf(msg, msglen, "%s",
             st == SP_E_NOT_FOUND     ? "no such sandbox"
             : st == SP_E_UNAVAILABLE ? "credentials cannot be checked now"
                                      : "bad credentials");
    return st;
}

sp_status pv_access(const pv_head *h, int *strip_authz, int *by_token,
                    char *msg, size_t msglen)
{
    char req[FWD_MSG_MAX], ans[FWD_MSG_MAX], owner[SP_ID_SIZE];
    const char *text;
    int fd, public_ports = 0;
    sp_status st;

    *strip_authz = h->authz[0] != '\0' && pv_is_our_token(h->authz);
    *by_token = h->token[0] != '\0' &&
                auth_sandbox_token_ok(AUTH_SBX_TRAFFIC, h->sandbox, h->token);
    if (*by_token)
        return SP_OK;
    snprintf(req, sizeof req, "info %s", h->sandbox);
    if (pv_helper_ask(req, ans, sizeof ans, &fd) != 0) {
        snprintf(msg, msglen, "the sandbox helper cannot be asked");
        return SP_E_UNAVAILABLE;
    }
    if (fd >= 0)
        close(fd);
    if ((st = pv_answer_status(ans, &text)) != SP_OK) {
        snprintf(msg, msglen, "%s", text);
        return st;
    }
    if (sscanf(text, "%64s %d", owner, &public_ports) != 2) {
        snprintf(msg, msglen, "bad answer from the sandbox helper");
        return SP_E_INTERNAL;
    }
    if (public_ports)
        return SP_OK;
    st = pv_owner(h, owner, strip_authz, msg, msglen);
    if (st == SP_E_UNAUTHENTICATED && h->token[0] != '\0')
        snprintf(msg, msglen, "not this sandbox's traffic token");
    return st;
}

int pv_connect(const pv_head *h, sp_status *st, char *msg, size_t msglen)
{
    char req[FWD_MSG_MAX], ans[FWD_MSG_MAX];
    const char *text;
    int fd;

    snprintf(req, sizeof req, "connect %s %u", h->sandbox, h->port);
    if (pv_helper_ask(req, ans, sizeof ans, &fd) != 0) {
        *st = SP_E_UNAVAILABLE;
        snprintf(msg, msglen, "the sandbox helper cannot be asked");
        return -1;
    }
    if ((*st = pv_answer_status(ans, &text)) != SP_OK || fd < 0) {
        if (*st == SP_OK)
            *st = SP_E_INTERNAL;
        snprintf(msg, msglen, "%s", text);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}
