#ifndef SIXTEEN_CLIBEV_SHIM_H
#define SIXTEEN_CLIBEV_SHIM_H

/*
 * libev for Swift.
 *
 * libev's watcher set-up calls (ev_io_init, ev_timer_set, ...) are macros and
 * its flag constants live in anonymous enums, so Swift imports neither. This
 * header wraps each macro we use in a static inline function and re-exports
 * each constant with a proper C type. It also declares accept4, which glibc
 * only exposes under _GNU_SOURCE and Swift's Glibc module therefore hides.
 */

#include <ev.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <pthread.h>
#include <fcntl.h>
#include <time.h>
#include <stdint.h>
#include <signal.h>
#include <sys/un.h>

/* SIGRTMIN and SIGRTMAX are calls into glibc behind macros. */
static inline int sixteen_sigrtmin(void) { return SIGRTMIN; }
static inline int sixteen_sigrtmax(void) { return SIGRTMAX; }

typedef void (*sixteen_io_cb)(struct ev_loop *loop, ev_io *w, int revents);
typedef void (*sixteen_timer_cb)(struct ev_loop *loop, ev_timer *w, int revents);
typedef void (*sixteen_signal_cb)(struct ev_loop *loop, ev_signal *w, int revents);
typedef void (*sixteen_async_cb)(struct ev_loop *loop, ev_async *w, int revents);

/* ---- watcher set-up (macros in ev.h) ---- */

static inline void sixteen_ev_io_init(ev_io *w, sixteen_io_cb cb, int fd, int events) {
    ev_io_init(w, cb, fd, events);
}
static inline void sixteen_ev_io_set(ev_io *w, int fd, int events) {
    ev_io_set(w, fd, events);
}
static inline void sixteen_ev_timer_init(ev_timer *w, sixteen_timer_cb cb, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_init(w, cb, after, repeat);
}
static inline void sixteen_ev_timer_set(ev_timer *w, ev_tstamp after, ev_tstamp repeat) {
    ev_timer_set(w, after, repeat);
}
static inline void sixteen_ev_signal_init(ev_signal *w, sixteen_signal_cb cb, int signum) {
    ev_signal_init(w, cb, signum);
}
static inline void sixteen_ev_async_init(ev_async *w, sixteen_async_cb cb) {
    ev_async_init(w, cb);
}
static inline void sixteen_ev_io_cb_init(ev_io *w, sixteen_io_cb cb) {
    ev_init(w, cb);
}
static inline int sixteen_ev_io_is_active(const ev_io *w) { return ev_is_active(w); }
static inline int sixteen_ev_timer_is_active(const ev_timer *w) { return ev_is_active(w); }
static inline int sixteen_ev_io_fd(const ev_io *w) { return w->fd; }
static inline int sixteen_ev_io_events(const ev_io *w) { return w->events & ~EV__IOFDSET; }

/* ---- the clock ---- */

/* CLOCK_MONOTONIC in nanoseconds, through the vDSO (no system call). In C
 * because the same code in Swift costs twice the instructions around the
 * call: a stack-protector check and overflow-checked arithmetic, twice per
 * loop iteration. The product cannot overflow for 292 years of uptime. */
static inline int64_t sixteen_monotonic_nanoseconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- constants (anonymous enums in ev.h) ---- */

static const int SIXTEEN_EV_READ = EV_READ;
static const int SIXTEEN_EV_WRITE = EV_WRITE;
static const int SIXTEEN_EV_TIMER = EV_TIMER;
static const int SIXTEEN_EV_SIGNAL = EV_SIGNAL;
static const int SIXTEEN_EV_ASYNC = EV_ASYNC;
static const int SIXTEEN_EV_ERROR = EV_ERROR;
static const unsigned int SIXTEEN_EVFLAG_AUTO = EVFLAG_AUTO;
static const unsigned int SIXTEEN_EVFLAG_NOENV = EVFLAG_NOENV;
static const unsigned int SIXTEEN_EVFLAG_NOSIGMASK = EVFLAG_NOSIGMASK;
static const unsigned int SIXTEEN_EVBACKEND_EPOLL = EVBACKEND_EPOLL;
static const int SIXTEEN_EVBREAK_ONE = EVBREAK_ONE;
static const int SIXTEEN_EVBREAK_ALL = EVBREAK_ALL;
static const int SIXTEEN_EVRUN_NOWAIT = EVRUN_NOWAIT;
static const int SIXTEEN_EVRUN_ONCE = EVRUN_ONCE;

/* ---- sockets: flags that glibc declares as enum members ---- */

static const int SIXTEEN_SOCK_STREAM = SOCK_STREAM;
static const int SIXTEEN_SOCK_DGRAM = SOCK_DGRAM;
static const int SIXTEEN_SOCK_NONBLOCK = SOCK_NONBLOCK;
static const int SIXTEEN_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const int SIXTEEN_MSG_NOSIGNAL = MSG_NOSIGNAL;
static const int SIXTEEN_SHUT_WR = SHUT_WR;
static const int SIXTEEN_SHUT_RDWR = SHUT_RDWR;
static const int SIXTEEN_IPPROTO_TCP = IPPROTO_TCP;
static const int SIXTEEN_IPPROTO_IPV6 = IPPROTO_IPV6;

/* Bind a source address without reserving a port: the port is chosen at
   connect time, per destination, so many connections can share a source
   address (linux/in.h; not in glibc's netinet/in.h on older systems). */
#ifdef IP_BIND_ADDRESS_NO_PORT
static const int SIXTEEN_IP_BIND_ADDRESS_NO_PORT = IP_BIND_ADDRESS_NO_PORT;
#else
static const int SIXTEEN_IP_BIND_ADDRESS_NO_PORT = 24;
#endif
static const int SIXTEEN_IPPROTO_IP = IPPROTO_IP;

/* Unnamed temporary files (spill files that vanish with their descriptor).
   glibc defines O_TMPFILE only under _GNU_SOURCE; the value is Linux's. */
#ifdef O_TMPFILE
static const int SIXTEEN_O_TMPFILE = O_TMPFILE;
#else
static const int SIXTEEN_O_TMPFILE = 020000000 | O_DIRECTORY;
#endif

/* glibc declares fallocate only under _GNU_SOURCE; KEEP_SIZE reserves blocks
   without moving the end of the file. */
extern int fallocate(int fd, int mode, off_t offset, off_t len);
static const int SIXTEEN_FALLOC_FL_KEEP_SIZE = 0x01;

/* malloc.h: returns free heap memory to the kernel. */
extern int malloc_trim(size_t pad);

/* glibc declares accept4 only under _GNU_SOURCE. */
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

/* Likewise pthread_timedjoin_np, which bounds how long a stop waits for a thread. */
extern int pthread_timedjoin_np(pthread_t thread, void **retval, const struct timespec *abstime);

/* Likewise pthread_setname_np, which names reactor threads for top -H and gdb. */
extern int pthread_setname_np(pthread_t thread, const char *name);

#endif
