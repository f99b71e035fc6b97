/*
 * sixteen-c: a benchmark peer for Sixteen, written as the ceiling of what
 * plain C on libev allows. It serves both of Sixteen's protocols:
 *
 *   sixteen  read 16 octets (any split; later octets are read and discarded),
 *            write "Farewell, client", shutdown(SHUT_WR), read and discard
 *            until EOF or a 2 s linger deadline, close. EOF before 16 octets:
 *            close without a reply. 10 s to deliver the whole request.
 *   upper    echo every octet ASCII-uppercased (only a-z change), in order;
 *            always keep reading, however much output is pending; close once
 *            the client's EOF has arrived and everything has been written.
 *            A session with nothing moving either way for 60 s is closed.
 *
 * Deliberate difference from Sixteen: `upper` output the client has not yet
 * taken is buffered in memory WITHOUT LIMIT (a chain of 64 KiB chunks).
 * Sixteen bounds memory per connection and in all, spills the rest to disk and
 * closes clients past --max-pending; this peer does none of that, so a client
 * that sends 1 GiB before reading makes it hold 1 GiB.
 *
 * Design: one thread per --threads N (default: online CPUs), each with its
 * own ev_loop (epoll) and its own SO_REUSEPORT listener on the same port;
 * accept4 in batches of up to 64 per wake-up; one read of up to 64 KiB per
 * readiness event into a per-thread buffer; MSG_NOSIGNAL on every send and
 * SIGPIPE ignored. The main thread waits for SIGINT/SIGTERM and exits 0.
 * Nothing is logged per session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <ev.h>

#define READ_BUFFER_SIZE (64 * 1024)
#define CHUNK_SIZE (64 * 1024)
#define ACCEPT_BATCH 64
#define BACKLOG 4096
#define MAX_IOV 16

static const double request_timeout = 10.0; /* accept to 16th octet */
static const double linger_timeout = 2.0;   /* writing the reply; then waiting for EOF */
static const double idle_timeout = 60.0;    /* upper: nothing moving either way */

static const char reply[16] = { 'F', 'a', 'r', 'e', 'w', 'e', 'l', 'l',
                                ',', ' ', 'c', 'l', 'i', 'e', 'n', 't' };

enum protocol { PROTO_SIXTEEN, PROTO_UPPER };
static enum protocol protocol = PROTO_SIXTEEN;

/* One thread's state. */
struct worker {
    struct ev_loop *loop;
    ev_io accept_watcher;
    int listen_fd;
    int spare_fd; /* released to shed connections when out of descriptors */
    pthread_t thread;
    char buffer[READ_BUFFER_SIZE];
};

/* Pending `upper` output: a circular singly linked list of chunks; the
 * connection points at the tail, whose `next` is the head. */
struct chunk {
    struct chunk *next;
    uint32_t start, end; /* unsent octets are data[start..<end] */
    char data[CHUNK_SIZE];
};

enum sixteen_state { S_REQUEST, S_REPLY, S_LINGER };

/* One connection: two watchers and a few counters (about 120 bytes). The
 * worker is reached through ev_userdata(loop). */
struct conn {
    ev_io io;
    ev_timer timer;
    union {
        struct { /* sixteen */
            uint8_t state;
            uint8_t received; /* request octets so far, up to 16 */
            uint8_t sent;     /* reply octets written */
            uint8_t peer_eof; /* client's EOF arrived while writing the reply */
        } s;
        struct { /* upper */
            struct chunk *tail; /* NULL: nothing pending */
            ev_tstamp last_activity;
            uint8_t peer_eof;
        } u;
    };
};

/* ---------------------------------------------------------------- helpers */

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    ev_timer_stop(loop, &c->timer);
    if (protocol == PROTO_UPPER && c->u.tail) {
        struct chunk *head = c->u.tail->next;
        c->u.tail->next = NULL;
        while (head) {
            struct chunk *next = head->next;
            free(head);
            head = next;
        }
    }
    close(c->io.fd);
    free(c);
}

static void set_events(struct ev_loop *loop, struct conn *c, int events)
{
    if ((c->io.events & (EV_READ | EV_WRITE)) == events)
        return;
    ev_io_stop(loop, &c->io);
    ev_io_modify(&c->io, events);
    ev_io_start(loop, &c->io);
}

static void arm_timer(struct ev_loop *loop, struct conn *c, double after)
{
    ev_timer_stop(loop, &c->timer);
    ev_timer_set(&c->timer, after, 0.);
    ev_timer_start(loop, &c->timer);
}

static int would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/* ASCII-uppercase in place: only a-z change, octets >= 0x80 never do.
 * Eight octets at a time (SWAR), the rest one by one. */
static void uppercase(char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t low7 = x & (0x7f * ones);
        uint64_t ge_a = low7 + (0x80 - 'a') * ones;     /* high bit: low7 >= 'a' */
        uint64_t gt_z = low7 + (0x80 - 'z' - 1) * ones; /* high bit: low7 > 'z' */
        uint64_t lower = ge_a & ~gt_z & ~x & (0x80 * ones);
        x ^= lower >> 2; /* clear 0x20 */
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((unsigned)(ch - 'a') < 26u)
            p[i] = (char)(ch - 32);
    }
}

/* ---------------------------------------------------------------- sixteen */

/* Writes what is left of the reply. Returns 0 to keep going, -1 if closed. */
static int sixteen_write_reply(struct ev_loop *loop, struct conn *c)
{
    while (c->s.sent < sizeof reply) {
        ssize_t n = send(c->io.fd, reply + c->s.sent, sizeof reply - c->s.sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->s.sent += (uint8_t)n;
        } else if (n < 0 && would_block()) {
            set_events(loop, c, c->s.peer_eof ? EV_WRITE : (EV_READ | EV_WRITE));
            return 0;
        } else {
            conn_close(loop, c);
            return -1;
        }
    }
    if (c->s.peer_eof) {
        conn_close(loop, c); /* all input read: close sends FIN */
        return -1;
    }
    /* Linger: the client sees EOF after the reply; read and discard until
     * its EOF, so closing never sends RST over unread input. */
    shutdown(c->io.fd, SHUT_WR);
    c->s.state = S_LINGER;
    set_events(loop, c, EV_READ);
    arm_timer(loop, c, linger_timeout);
    return 0;
}

static void sixteen_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;

    if (revents & EV_READ) {
        struct worker *wk = ev_userdata(loop);
        ssize_t n = read(c->io.fd, wk->buffer, READ_BUFFER_SIZE);
        if (n > 0) {
            if (c->s.state == S_REQUEST) {
                size_t want = 16 - c->s.received;
                c->s.received += (uint8_t)((size_t)n < want ? (size_t)n : want);
                if (c->s.received == 16) {
                    c->s.state = S_REPLY;
                    arm_timer(loop, c, linger_timeout);
                    sixteen_write_reply(loop, c);
                    return;
                }
            }
            /* octets after the 16th: discarded */
        } else if (n == 0) {
            if (c->s.state == S_REPLY) {
                c->s.peer_eof = 1;
                set_events(loop, c, EV_WRITE);
            } else {
                conn_close(loop, c); /* short request, or linger done */
                return;
            }
        } else if (!would_block()) {
            conn_close(loop, c);
            return;
        }
    }
    if ((revents & EV_WRITE) && c->s.state == S_REPLY)
        sixteen_write_reply(loop, c);
}

static void sixteen_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    /* request timed out, reply timed out, or linger over: the session ends */
    conn_close(loop, (struct conn *)((char *)w - offsetof(struct conn, timer)));
}

/* ---------------------------------------------------------------- upper */

/* Sends pending output until drained or the socket is full.
 * Returns 0 to keep going, -1 if closed. */
static int upper_flush(struct ev_loop *loop, struct conn *c)
{
    while (c->u.tail) {
        struct iovec iov[MAX_IOV];
        int count = 0;
        size_t total = 0;
        struct chunk *ch = c->u.tail->next; /* head */
        for (;;) {
            iov[count].iov_base = ch->data + ch->start;
            iov[count].iov_len = ch->end - ch->start;
            total += iov[count].iov_len;
            count++;
            if (ch == c->u.tail || count == MAX_IOV)
                break;
            ch = ch->next;
        }
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)count };
        ssize_t n = sendmsg(c->io.fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (would_block())
                break;
            conn_close(loop, c);
            return -1;
        }
        c->u.last_activity = ev_now(loop);
        size_t left = (size_t)n;
        while (left > 0) {
            struct chunk *head = c->u.tail->next;
            size_t avail = head->end - head->start;
            if (left < avail) {
                head->start += (uint32_t)left;
                break;
            }
            left -= avail;
            if (head == c->u.tail) {
                free(head);
                c->u.tail = NULL;
            } else {
                c->u.tail->next = head->next;
                free(head);
            }
        }
        if ((size_t)n < total)
            break; /* socket full */
    }
    if (c->u.tail) {
        set_events(loop, c, c->u.peer_eof ? EV_WRITE : (EV_READ | EV_WRITE));
        return 0;
    }
    if (c->u.peer_eof) {
        conn_close(loop, c); /* EOF in, everything out: done */
        return -1;
    }
    set_events(loop, c, EV_READ);
    return 0;
}

/* Appends p[0..<n] to the pending output. Returns -1 on allocation failure. */
static int upper_queue(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        struct chunk *t = c->u.tail;
        if (!t || t->end == CHUNK_SIZE) {
            struct chunk *fresh = malloc(sizeof *fresh);
            if (!fresh)
                return -1;
            fresh->start = fresh->end = 0;
            if (t) {
                fresh->next = t->next;
                t->next = fresh;
            } else {
                fresh->next = fresh;
            }
            c->u.tail = t = fresh;
        }
        size_t room = CHUNK_SIZE - t->end;
        size_t take = n < room ? n : room;
        memcpy(t->data + t->end, p, take);
        t->end += (uint32_t)take;
        p += take;
        n -= take;
    }
    return 0;
}

static void upper_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;

    if (revents & EV_WRITE) {
        if (upper_flush(loop, c) < 0)
            return;
    }
    if (!(revents & EV_READ) || c->u.peer_eof)
        return;

    struct worker *wk = ev_userdata(loop);
    ssize_t n = read(c->io.fd, wk->buffer, READ_BUFFER_SIZE);
    if (n > 0) {
        c->u.last_activity = ev_now(loop);
        uppercase(wk->buffer, (size_t)n);
        size_t done = 0;
        if (!c->u.tail) {
            /* nothing pending: straight from the read buffer */
            ssize_t s = send(c->io.fd, wk->buffer, (size_t)n, MSG_NOSIGNAL);
            if (s > 0) {
                done = (size_t)s;
            } else if (s < 0 && !would_block()) {
                conn_close(loop, c);
                return;
            }
        }
        if (done < (size_t)n) {
            /* Unbounded by design (see the top of this file). */
            if (upper_queue(c, wk->buffer + done, (size_t)n - done) < 0) {
                conn_close(loop, c);
                return;
            }
            set_events(loop, c, EV_READ | EV_WRITE); /* keep reading, always */
        }
    } else if (n == 0) {
        c->u.peer_eof = 1;
        c->u.last_activity = ev_now(loop);
        if (!c->u.tail) {
            conn_close(loop, c);
            return;
        }
        set_events(loop, c, EV_WRITE);
    } else if (!would_block()) {
        conn_close(loop, c);
    }
}

/* libev's "be smart about timeouts", technique 2: activity only stamps the
 * time; the timer re-arms itself when it fires early. */
static void upper_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, timer));
    ev_tstamp after = c->u.last_activity + idle_timeout - ev_now(loop);
    if (after > 0.) {
        ev_timer_set(w, after, 0.);
        ev_timer_start(loop, w);
    } else {
        conn_close(loop, c);
    }
}

/* ---------------------------------------------------------------- accept */

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    struct worker *wk = ev_userdata(loop);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                /* Out of descriptors: shed one waiting connection with the
                 * spare descriptor rather than spin on a readable listener. */
                if (wk->spare_fd >= 0) {
                    close(wk->spare_fd);
                    wk->spare_fd = -1;
                    int shed = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC);
                    if (shed >= 0)
                        close(shed);
                    wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    continue;
                }
                return;
            }
            if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO)
                continue;
            return; /* EAGAIN: the backlog is empty */
        }
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        if (protocol == PROTO_SIXTEEN) {
            c->s.state = S_REQUEST;
            ev_io_init(&c->io, sixteen_io_cb, fd, EV_READ);
            ev_timer_init(&c->timer, sixteen_timer_cb, request_timeout, 0.);
        } else {
            c->u.last_activity = ev_now(loop);
            ev_io_init(&c->io, upper_io_cb, fd, EV_READ);
            ev_timer_init(&c->timer, upper_timer_cb, idle_timeout, 0.);
        }
        ev_io_start(loop, &c->io);
        ev_timer_start(loop, &c->timer);
    }
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    ev_run(wk->loop, 0);
    return NULL;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sixteen-c [--protocol sixteen|upper] [-p PORT] [--threads N]\n"
            "  --protocol P  sixteen (default) or upper\n"
            "  -p PORT       TCP port on 127.0.0.1 (default 1060; 0 takes a free one)\n"
            "  --threads N   event-loop threads, each with its own SO_REUSEPORT listener\n"
            "                (default: online CPUs)\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int make_listener(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0
        || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0
        || listen(fd, BACKLOG) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    long port = 1060;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strncmp(a, "--protocol=", 11)) {
            v = a + 11;
            a = "--protocol";
        } else if (!strncmp(a, "--threads=", 10)) {
            v = a + 10;
            a = "--threads";
        } else if (!strcmp(a, "--protocol") || !strcmp(a, "-p") || !strcmp(a, "--threads")) {
            if (++i >= argc) {
                fprintf(stderr, "sixteen-c: %s needs a value\n", a);
                return 2;
            }
            v = argv[i];
        } else {
            fprintf(stderr, "sixteen-c: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--protocol")) {
            if (!strcmp(v, "sixteen"))
                protocol = PROTO_SIXTEEN;
            else if (!strcmp(v, "upper"))
                protocol = PROTO_UPPER;
            else {
                fprintf(stderr, "sixteen-c: unknown protocol '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "-p")) {
            if (parse_int(v, 0, 65535, &port) != 0) {
                fprintf(stderr, "sixteen-c: bad port '%s'\n", v);
                return 2;
            }
        } else if (parse_int(v, 1, 1024, &threads) != 0) {
            fprintf(stderr, "sixteen-c: bad thread count '%s'\n", v);
            return 2;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    /* Block SIGINT/SIGTERM before any thread starts, so only sigwait below
     * receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct worker **workers = calloc((size_t)threads, sizeof *workers);
    if (!workers)
        return 1;
    for (long i = 0; i < threads; i++) {
        struct worker *wk = calloc(1, sizeof *wk);
        if (!wk)
            return 1;
        wk->listen_fd = make_listener((int)port);
        if (wk->listen_fd < 0) {
            fprintf(stderr, "sixteen-c: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
            return 1;
        }
        if (port == 0) {
            struct sockaddr_in sa;
            socklen_t len = sizeof sa;
            if (getsockname(wk->listen_fd, (struct sockaddr *)&sa, &len) != 0) {
                fprintf(stderr, "sixteen-c: getsockname: %s\n", strerror(errno));
                return 1;
            }
            port = ntohs(sa.sin_port);
        }
        wk->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        wk->loop = ev_loop_new(EVBACKEND_EPOLL);
        if (!wk->loop) {
            fprintf(stderr, "sixteen-c: ev_loop_new(EVBACKEND_EPOLL) failed\n");
            return 1;
        }
        ev_set_userdata(wk->loop, wk);
        ev_io_init(&wk->accept_watcher, accept_cb, wk->listen_fd, EV_READ);
        ev_io_start(wk->loop, &wk->accept_watcher);
        workers[i] = wk;
    }

    printf("Listening at ('127.0.0.1', %ld)\n", port);
    fflush(stdout);

    for (long i = 0; i < threads; i++) {
        int rc = pthread_create(&workers[i]->thread, NULL, worker_main, workers[i]);
        if (rc != 0) {
            fprintf(stderr, "sixteen-c: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }

    for (;;) {
        int sig;
        if (sigwait(&stop, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
            _exit(0); /* in-flight sessions are dropped */
    }
}
