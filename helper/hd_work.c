/* hd_work.c: the helper's worker threads, which make and end sandboxes
 * off the main loop (docs/DESIGN.md §5.4, "Threads").
 *
 * Making a sandbox waits (bwrap's exec, sp-init's hello, the network) and
 * so does ending one (the cgroup kill until the cgroup is empty, the
 * reaping of bwrap, the unmount); on the main loop every other sandbox
 * would wait with it; so does the spawn of a one-off run's program (sp-init
 * forks it, the host moves it into its cgroup, it execs). A piece of work
 * is a struct whose first member is an hd_work: its run function is
 * called on one of HD_WORKERS threads, then its done function on the main
 * thread, which publishes, answers and frees (workers never touch Redis,
 * hd_pub or the helper's lists). Work a client waits for now (a spawn)
 * goes before the rest (hd_work_submit_first).
 *
 * The workers are started once and never exit while the helper runs:
 * bwrap is made with PR_SET_PDEATHSIG, which fires when the *thread* that
 * forked it exits, so a sandbox lives exactly as long as the helper
 * process (a SIGKILLed helper takes every sandbox with it).
 *
 * Finished work goes to a completion queue and one byte into a pipe that
 * the main loop polls (hd_work_fd), as the intake thread does for jobs. */
#include "hd.h"
#include "sp_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define HD_WORKERS 8

static pthread_mutex_t hd_work_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hd_work_cond = PTHREAD_COND_INITIALIZER;
static hd_work *hd_todo_head, *hd_todo_tail; /* submitted, not yet run */
static hd_work *hd_done_head, *hd_done_tail; /* run, done not yet called */
static size_t hd_work_n;                     /* submitted, done not called */
static int hd_work_pipe[2] = {-1, -1};

static void hd_work_push(hd_work **head, hd_work **tail, hd_work *w)
{
    w->next = NULL;
    if (*tail != NULL)
        (*tail)->next = w;
    else
        *head = w;
    *tail = w;
}

static void *hd_worker(void *arg)
{
    char one = 1;

    (void)arg;
    for (;;) {
        hd_work *w;
        pthread_mutex_lock(&hd_work_lock);
        while (hd_todo_head == NULL)
            pthread_cond_wait(&hd_work_cond, &hd_work_lock);
        w = hd_todo_head;
        hd_todo_head = w->next;
        if (hd_todo_head == NULL)
            hd_todo_tail = NULL;
        pthread_mutex_unlock(&hd_work_lock);
        w->run(w);
        pthread_mutex_lock(&hd_work_lock);
        hd_work_push(&hd_done_head, &hd_done_tail, w);
        pthread_mutex_unlock(&hd_work_lock);
        if (write(hd_work_pipe[1], &one, 1) < 0 && errno != EAGAIN)
            log_warn("write(work pipe) failed: %s", strerror(errno));
    }
    return NULL;
}

int hd_work_init(void)
{
    pthread_attr_t attr;
    pthread_t tid;
    int result = -1;

    if (pipe2(hd_work_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        log_error("pipe2() failed: %s", strerror(errno));
        return -1;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < HD_WORKERS; i++) {
        if (pthread_create(&tid, &attr, hd_worker, NULL) != 0) {
            log_error("pthread_create(worker) failed");
            goto out;
        }
    }
    result = 0;
out:
    pthread_attr_destroy(&attr);
    return result;
}

void hd_work_submit(hd_work *w)
{
    hd_work_n++;
    pthread_mutex_lock(&hd_work_lock);
    hd_work_push(&hd_todo_head, &hd_todo_tail, w);
    pthread_cond_signal(&hd_work_cond);
    pthread_mutex_unlock(&hd_work_lock);
}

void hd_work_submit_first(hd_work *w)
{
    hd_work_n++;
    pthread_mutex_lock(&hd_work_lock);
    w->next = hd_todo_head;
    hd_todo_head = w;
    if (hd_todo_tail == NULL)
        hd_todo_tail = w;
    pthread_cond_signal(&hd_work_cond);
    pthread_mutex_unlock(&hd_work_lock);
}

int hd_work_fd(void)
{
    return hd_work_pipe[0];
}

void hd_work_complete(void)
{
    char sink[256];
    hd_work *list;

    while (read(hd_work_pipe[0], sink, sizeof sink) > 0)
        ;
    pthread_mutex_lock(&hd_work_lock);
    list = hd_done_head;
    hd_done_head = hd_done_tail = NULL;
    pthread_mutex_unlock(&hd_work_lock);
    while (list != NULL) {
        hd_work *next = list->next;
        hd_work_n--;
        list->done(list);
        list = next;
    }
}

size_t hd_work_pending(void)
{
    return hd_work_n;
}

void hd_work_wait(void)
{
    while (hd_work_n > 0) {
        struct pollfd p = {.fd = hd_work_pipe[0], .events = POLLIN};
        if (poll(&p, 1, 100) < 0 && errno != EINTR)
            log_warn("poll(work pipe) failed: %s", strerror(errno));
        hd_work_complete();
    }
}
