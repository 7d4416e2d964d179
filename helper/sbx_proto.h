/*
 * sbx_proto.h — the wire protocol between the host library (sbx_exec.c)
 * and sp-init, PID 1 of every sandbox.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET socket pair; one message per
 * packet, so framing is the kernel's. Every message starts with
 * sbx_msg_hdr and has a fixed size for its type, except SPAWN, which is
 * followed by a NUL-separated string block. Both ends are built by the same
 * compiler on the same host, so native byte order and struct layout are
 * used. The receiver checks the exact size of every message; the host
 * treats sp-init as hostile (code in the sandbox may have taken it over)
 * and gives up on the sandbox at the first malformed message.
 *
 *   init -> host  HELLO    {version, pid}            once, at start
 *   host -> init  SPAWN    {flags, cols, rows, uid, gid, argc, envc,
 *                           strings_len}
 *                          strings: cwd\0 argv[0..argc)\0 envp[0..envc)\0
 *                          + SCM_RIGHTS: stdin, stdout, stderr
 *   init -> host  SPAWNED  {pid in the sandbox's PID namespace, errno}
 *   host -> init  GO       the child is in its cgroup: let it exec
 *   host -> init  ABORT    the host gave up: the child exits unexec'd
 *   init -> host  STARTED  {stage, errno}   stage 0: exec succeeded
 *   init -> host  EXIT     {wait status}    a spawned child ended
 *
 * req_id (set by the host, never 0) ties every reply to its SPAWN.
 */
#ifndef SBX_PROTO_H
#define SBX_PROTO_H

#include <stdint.h>

#define SBX_PROTO_VERSION      2
#define SBX_PROTO_MAX_MSG      (128 * 1024)
#define SBX_PROTO_MAX_ARGS     4096 /* argc and envc each */
#define SBX_PROTO_MAX_CHILDREN 1024

enum sbx_msg_type {
    SBX_MSG_HELLO = 1,
    SBX_MSG_SPAWN = 2,
    SBX_MSG_SPAWNED = 3,
    SBX_MSG_GO = 4,
    SBX_MSG_ABORT = 5,
    SBX_MSG_STARTED = 6,
    SBX_MSG_EXIT = 7,
};

#define SBX_SPAWN_PTY 0x1u

/* What a spawned child was doing when it failed (STARTED.stage). */
enum sbx_stage {
    SBX_STAGE_OK = 0,
    SBX_STAGE_SETSID = 1,
    SBX_STAGE_CTTY = 2,
    SBX_STAGE_DUP = 3,
    SBX_STAGE_CHDIR = 4,
    SBX_STAGE_EXEC = 5,
    SBX_STAGE_USER = 6, /* taking the uid and gid the host asked for */
    SBX_STAGE_MAX = 6,
};

typedef struct sbx_msg_hdr {
    uint32_t type;
    uint32_t req_id;
} sbx_msg_hdr;

typedef struct sbx_msg_hello {
    sbx_msg_hdr h;
    uint32_t version;
    int32_t pid;
} sbx_msg_hello;

typedef struct sbx_msg_spawn {
    sbx_msg_hdr h;
    uint32_t flags;
    uint16_t cols, rows;
    uint32_t uid, gid; /* inside; sp-init switches when it runs as another */
    uint32_t argc, envc;
    uint32_t strings_len;
} sbx_msg_spawn;

typedef struct sbx_msg_spawned {
    sbx_msg_hdr h;
    int32_t pid;
    int32_t err;
} sbx_msg_spawned;

typedef struct sbx_msg_started {
    sbx_msg_hdr h;
    uint32_t stage;
    int32_t err;
} sbx_msg_started;

typedef struct sbx_msg_exit {
    sbx_msg_hdr h;
    int32_t status;
} sbx_msg_exit;

#endif
