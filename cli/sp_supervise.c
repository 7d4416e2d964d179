/* cli/sp_supervise.c: sp-supervise, the supervisor that `./sandpipe up`
 * starts (as root) to run every long-lived program of one sandpipe and to
 * start each again when it dies (docs/DESIGN.md §2).
 *
 *   sp-supervise CTLDIR RUNDIR
 *
 * Theory of operation.
 *
 * Files.
 *   CTLDIR/programs    one program per line, fields separated by tabs:
 *                      name, user ("-": the supervisor's own), log file,
 *                      then the argv. Read at start and whenever it
 *                      changes (checked every 100 ms): the launcher adds
 *                      programs one by one, each after the last is ready.
 *                      A name seen once keeps its first line.
 *   CTLDIR/hold/NAME   while it exists, NAME is not started again when it
 *                      ends (fault tests keep a program down with it).
 *   RUNDIR/NAME.pid    the pid of each running program: what `down` and
 *                      the tests signal.
 *   RUNDIR/supervise.status  written on every change: a first line
 *                      "supervisor PID", then per program "NAME STATE PID
 *                      RESTARTS STARTED LAST_EXIT" (STATE running,
 *                      restarting, held or stopped; STARTED Unix seconds;
 *                      LAST_EXIT "-", "exit:N" or "signal:N"). sp-health
 *                      (/health) and `./sandpipe status` read it.
 *
 * Processes. The supervisor is single-threaded; every program is its
 * child, in a session (and process group) of its own, with stdin from
 * /dev/null and stdout and stderr appended to its log, running as its
 * user with no supplementary groups and no capabilities to pass on. When
 * a program ends the supervisor reaps it, kills what is left of its
 * process group (an nginx master's workers would keep the port), logs how
 * it ended and starts it again after a delay: 0.2 s, doubled after each
 * death up to 1.6 s (so within 2 s), and back to 0.2 s for a program that
 * had run for 10 s.
 *
 * Signals. SIGCHLD, SIGTERM, SIGINT and SIGHUP are blocked and taken with
 * sigtimedwait(). SIGTERM or SIGINT stops every program, the last added
 * first (nginx, then the handlers, the helper, Redis): SIGTERM, then
 * SIGKILL to its process group after SUP_STOP_WAIT_MS; then the pid and
 * status files are removed and the supervisor exits. Nothing is started
 * again once stopping has begun. */
#include "sp_log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUP_MAX_PROGRAMS  32
#define SUP_MAX_ARGS      64
#define SUP_LINE_MAX      8192
#define SUP_NAME_MAX      32
#define SUP_PATH_MAX      4096
#define SUP_TICK_MS       100
#define SUP_DELAY_MIN_MS  200
#define SUP_DELAY_MAX_MS  1600
#define SUP_RESET_AFTER_S 10
#define SUP_STOP_WAIT_MS  15000

typedef enum sup_state {
    SUP_RUNNING,
    SUP_RESTARTING,
    SUP_HELD,
    SUP_STOPPED
} sup_state;

typedef struct sup_prog {
    char name[SUP_NAME_MAX + 1];
    char log[SUP_PATH_MAX];
    char *line;                   /* owns the strings argv points into */
    char *argv[SUP_MAX_ARGS + 1]; /* NULL-terminated */
    int as_user;                  /* 0: run as the supervisor's user */
    uid_t uid;
    gid_t gid;
    pid_t pid; /* 0 when not running */
    sup_state state;
    unsigned restarts;
    long long due_ms;     /* monotonic time of the next start */
    long long started_ms; /* monotonic time of the last start */
    time_t started_at;    /* wall clock of the last start */
    long delay_ms;        /* the next restart's delay */
    char last_exit[24];
    int hold_logged;
} sup_prog;

static sup_prog sup_progs[SUP_MAX_PROGRAMS];
static int sup_nprogs;
static const char *sup_ctl, *sup_run;
static struct stat sup_programs_seen; /* the file as last read */
static int sup_dirty = 1;

static long long sup_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sup_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > SUP_NAME_MAX)
        return 0;
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return 0;
    }
    return 1;
}

static sup_prog *sup_find(const char *name)
{
    for (int i = 0; i < sup_nprogs; i++) {
        if (strcmp(sup_progs[i].name, name) == 0)
            return &sup_progs[i];
    }
    return NULL;
}

/* Write text to path through a temporary file and rename(), so readers
 * never see half of it. Returns 0 or -1 (logged). */
static int sup_write_file(const char *path, const char *text)
{
    char tmp[SUP_PATH_MAX + 8];
    FILE *f;
    int fd, rc = -1;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        log_error("open(\"%s\") failed: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (fputs(text, f) >= 0 && fclose(f) == 0)
        rc = rename(tmp, path);
    else
        fclose(f);
    if (rc != 0) {
        log_error("rename(\"%s\") failed: %s", tmp, strerror(errno));
        unlink(tmp);
    }
    return rc;
}

static void sup_pid_path(const sup_prog *p, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.pid", sup_run, p->name);
}

static const char *const sup_state_names[] = {"running", "restarting", "held",
                                              "stopped"};

/* RUNDIR/supervise.status from the table (see the top of the file). */
static void sup_write_status(void)
{
    char text[SUP_MAX_PROGRAMS * 160 + 64], path[SUP_PATH_MAX];
    size_t off;

    if (!sup_dirty)
        return;
    off = (size_t)snprintf(text, sizeof text, "supervisor %d\n", (int)getpid());
    for (int i = 0; i < sup_nprogs && off < sizeof text; i++) {
        const sup_prog *p = &sup_progs[i];
        off += (size_t)snprintf(
            text + off, sizeof text - off, "%s %s %d %u %lld %s\n", p->name,
            sup_state_names[p->state], (int)p->pid, p->restarts,
            (long long)p->started_at, p->last_exit);
    }
    snprintf(path, sizeof path, "%s/supervise.status", sup_run);
    if (sup_write_file(path, text) == 0)
        sup_dirty = 0;
}

/* Split a tab-separated line of the programs file into p. Returns 0, or
 * -1 with the reason logged. p->line owns the strings. */
static int sup_parse(char *line, sup_prog *p)
{
    char *field[SUP_MAX_ARGS + 3], *save = NULL, *tok;
    int n = 0;

    for (tok = strtok_r(line, "\t", &save); tok != NULL && n < SUP_MAX_ARGS + 3;
         tok = strtok_r(NULL, "\t", &save))
        field[n++] = tok;
    if (n < 4 || tok != NULL || !sup_name_ok(field[0]) ||
        strlen(field[2]) >= sizeof p->log || field[2][0] != '/') {
        log_error("programs: malformed line for \"%.32s\"", field[0]);
        return -1;
    }
    snprintf(p->name, sizeof p->name, "%s", field[0]);
    snprintf(p->log, sizeof p->log, "%s", field[2]);
    p->as_user = strcmp(field[1], "-") != 0;
    if (p->as_user) {
        struct passwd *pw = getpwnam(field[1]);
        if (pw == NULL) {
            log_error("programs: %s: no user \"%.64s\"", p->name, field[1]);
            return -1;
        }
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
    }
    for (int i = 3; i < n; i++)
        p->argv[i - 3] = field[i];
    p->argv[n - 3] = NULL;
    return 0;
}

/* Add the programs of CTLDIR/programs not known yet, when the file
 * changed since it was last read. */
static void sup_load(void)
{
    char path[SUP_PATH_MAX], buf[SUP_LINE_MAX];
    struct stat st;
    FILE *f;

    snprintf(path, sizeof path, "%s/programs", sup_ctl);
    /* The size too: appends within one tick of the file system's clock
     * leave the modification time as it was. */
    if (stat(path, &st) != 0 ||
        (st.st_mtim.tv_sec == sup_programs_seen.st_mtim.tv_sec &&
         st.st_mtim.tv_nsec == sup_programs_seen.st_mtim.tv_nsec &&
         st.st_size == sup_programs_seen.st_size &&
         st.st_ino == sup_programs_seen.st_ino))
        return;
    sup_programs_seen = st;
    if ((f = fopen(path, "re")) == NULL) {
        log_error("fopen(\"%s\") failed: %s", path, strerror(errno));
        return;
    }
    while (fgets(buf, sizeof buf, f) != NULL) {
        char name[SUP_NAME_MAX + 1];
        sup_prog *p;
        /* A line still being written is read again once it is whole
         * (the file's size changes). */
        if (strchr(buf, '\n') == NULL) {
            memset(&sup_programs_seen, 0, sizeof sup_programs_seen);
            break;
        }
        buf[strcspn(buf, "\n")] = '\0';
        snprintf(name, sizeof name, "%.*s", (int)strcspn(buf, "\t"), buf);
        if (buf[0] == '\0' || buf[0] == '#' || sup_find(name) != NULL)
            continue;
        if (sup_nprogs == SUP_MAX_PROGRAMS) {
            log_error("programs: more than %d programs", SUP_MAX_PROGRAMS);
            break;
        }
        p = &sup_progs[sup_nprogs];
        memset(p, 0, sizeof *p);
        if ((p->line = strdup(buf)) == NULL || sup_parse(p->line, p) != 0) {
            free(p->line);
            continue;
        }
        p->state = SUP_RESTARTING;
        p->delay_ms = SUP_DELAY_MIN_MS;
        p->due_ms = sup_now_ms();
        snprintf(p->last_exit, sizeof p->last_exit, "-");
        sup_nprogs++;
        sup_dirty = 1;
    }
    fclose(f);
}

/* Drop what a program must not inherit from a root supervisor: groups,
 * then gid and uid, then the inheritable and ambient capabilities. Runs
 * in the child; returns 0 or -1. */
static int sup_drop(const sup_prog *p)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];

    if (p->as_user &&
        (setgroups(0, NULL) != 0 || setgid(p->gid) != 0 || setuid(p->uid) != 0))
        return -1;
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (syscall(SYS_capget, &h, d) == 0) {
        d[0].inheritable = d[1].inheritable = 0;
        if (syscall(SYS_capset, &h, d) != 0)
            return -1;
    }
    return 0;
}

/* The child's side of a start: never returns. */
static void sup_exec(const sup_prog *p)
{
    sigset_t none;
    int fd;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0 && fd != 0) {
        dup2(fd, 0);
        close(fd);
    }
    fd = open(p->log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0640);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    if (sup_drop(p) != 0) {
        fprintf(stderr, "sp-supervise: %s: dropping privileges failed: %s\n",
                p->name, strerror(errno));
        _exit(127);
    }
    execvp(p->argv[0], p->argv);
    fprintf(stderr, "sp-supervise: execvp(\"%s\") failed: %s\n", p->argv[0],
            strerror(errno));
    _exit(127);
}

static void sup_start(sup_prog *p)
{
    char path[SUP_PATH_MAX], text[32];
    pid_t pid = fork();

    if (pid < 0) {
        log_error("fork() for %s failed: %s", p->name, strerror(errno));
        p->due_ms = sup_now_ms() + SUP_DELAY_MAX_MS;
        return;
    }
    if (pid == 0)
        sup_exec(p);
    p->pid = pid;
    p->state = SUP_RUNNING;
    p->started_ms = sup_now_ms();
    p->started_at = time(NULL);
    p->hold_logged = 0;
    sup_pid_path(p, path, sizeof path);
    snprintf(text, sizeof text, "%d\n", (int)pid);
    sup_write_file(path, text);
    if (p->restarts > 0)
        log_info("%s started again (pid %d, restart %u)", p->name, (int)pid,
                 p->restarts);
    else
        log_info("%s started (pid %d)", p->name, (int)pid);
    sup_dirty = 1;
}

static int sup_held(const sup_prog *p)
{
    char path[SUP_PATH_MAX];

    snprintf(path, sizeof path, "%s/hold/%s", sup_ctl, p->name);
    return access(path, F_OK) == 0;
}

/* Start every program whose time has come and that is not held. */
static void sup_start_due(void)
{
    long long now = sup_now_ms();

    for (int i = 0; i < sup_nprogs; i++) {
        sup_prog *p = &sup_progs[i];
        if (p->pid != 0 || p->state == SUP_STOPPED || now < p->due_ms)
            continue;
        if (sup_held(p)) {
            if (!p->hold_logged)
                log_info("%s is held: not started until %s/hold/%s is "
                         "removed",
                         p->name, sup_ctl, p->name);
            p->hold_logged = 1;
            if (p->state != SUP_HELD)
                sup_dirty = 1;
            p->state = SUP_HELD;
            continue;
        }
        sup_start(p);
    }
}

/* p's process ended with wait status ws: note it and plan its restart. */
static void sup_ended(sup_prog *p, int ws, int stopping)
{
    char path[SUP_PATH_MAX];
    long long now = sup_now_ms();
    long ran_ms = (long)(now - p->started_ms);
    pid_t pid = p->pid;

    if (WIFSIGNALED(ws))
        snprintf(p->last_exit, sizeof p->last_exit, "signal:%d", WTERMSIG(ws));
    else
        snprintf(p->last_exit, sizeof p->last_exit, "exit:%d", WEXITSTATUS(ws));
    /* Whatever the program left in its group (nginx workers) goes too. */
    kill(-pid, SIGKILL);
    sup_pid_path(p, path, sizeof path);
    unlink(path);
    p->pid = 0;
    sup_dirty = 1;
    if (stopping) {
        p->state = SUP_STOPPED;
        return;
    }
    if (ran_ms >= SUP_RESET_AFTER_S * 1000)
        p->delay_ms = SUP_DELAY_MIN_MS;
    p->restarts++;
    p->state = SUP_RESTARTING;
    p->due_ms = now + p->delay_ms;
    log_warn("%s (pid %d) ended (%s) after %ld ms: starting it again in "
             "%ld ms",
             p->name, (int)pid, p->last_exit, ran_ms, p->delay_ms);
    p->delay_ms =
        p->delay_ms * 2 > SUP_DELAY_MAX_MS ? SUP_DELAY_MAX_MS : p->delay_ms * 2;
}

/* Reap every child that ended. */
static void sup_reap(int stopping)
{
    int ws;
    pid_t pid;

    while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
        for (int i = 0; i < sup_nprogs; i++) {
            if (sup_progs[i].pid == pid) {
                sup_ended(&sup_progs[i], ws, stopping);
                break;
            }
        }
    }
}

/* Stop one program: SIGTERM, then SIGKILL to its group after the wait. */
static void sup_stop_one(sup_prog *p)
{
    long long deadline = sup_now_ms() + SUP_STOP_WAIT_MS;
    pid_t pid = p->pid;

    if (pid == 0) {
        p->state = SUP_STOPPED;
        return;
    }
    kill(pid, SIGTERM);
    while (p->pid != 0 && sup_now_ms() < deadline) {
        usleep(20 * 1000);
        sup_reap(1);
    }
    if (p->pid != 0) {
        log_warn("%s (pid %d) did not stop on SIGTERM within %d ms: killing "
                 "it",
                 p->name, (int)pid, SUP_STOP_WAIT_MS);
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        while (p->pid != 0) {
            usleep(20 * 1000);
            sup_reap(1);
        }
    }
}

static void sup_stop_all(void)
{
    char path[SUP_PATH_MAX];

    log_info("stopping every program");
    for (int i = 0; i < sup_nprogs; i++) {
        if (sup_progs[i].pid == 0)
            sup_progs[i].state = SUP_STOPPED;
    }
    for (int i = sup_nprogs - 1; i >= 0; i--)
        sup_stop_one(&sup_progs[i]);
    snprintf(path, sizeof path, "%s/supervise.status", sup_run);
    unlink(path);
    log_info("stopped");
}

int main(int argc, char **argv)
{
    sigset_t set;
    struct timespec tick = {0, SUP_TICK_MS * 1000000L};
    int sig;

    log_set_program("supervise");
    if (argc != 3) {
        fprintf(stderr, "usage: sp-supervise CTLDIR RUNDIR\n");
        return 2;
    }
    sup_ctl = argv[1];
    sup_run = argv[2];
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    setsid();
    log_info("supervising the programs of %s/programs", sup_ctl);
    for (;;) {
        sup_reap(0);
        sup_load();
        sup_start_due();
        sup_write_status();
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }
    sup_stop_all();
    return 0;
}
