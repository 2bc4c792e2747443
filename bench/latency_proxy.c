/* bench/latency_proxy: a TCP proxy on 127.0.0.1 that delays every chunk it reads by DELAY_MS
 * before writing it on, in both directions, so a round trip through it costs 2 * DELAY_MS more.
 * This kernel has no netem; bench/cursor uses this to run its clients at 50 ms of round trip.
 * Order is kept (one FIFO per direction), bandwidth is not limited (whatever a read returns
 * is one chunk), an EOF is delayed like data and then passed on as a half-close.
 *
 *   latency_proxy UPSTREAM_PORT DELAY_MS     prints "PORT=<listening port>" once ready
 *
 * One process, one poll() loop, no threads; it runs until killed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536
#define MAX_CONNS 512

struct chunk {
  struct chunk *next;
  long long due_us; /* when it may be written */
  size_t len, off;  /* len 0: the EOF marker */
  char data[];
};

/* One direction: bytes read from `from` wait in the FIFO, then go to `to`. */
struct dir {
  int from, to;
  int read_eof;  /* `from` said EOF (marker queued) */
  int done;      /* marker delivered: `to` is shut for writing */
  int blocked;   /* the last write would block: wait for POLLOUT */
  struct chunk *head, *tail;
};

struct pair {
  struct dir d[2]; /* 0: client -> upstream, 1: upstream -> client */
};

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void drop_queue(struct dir *d) {
  while (d->head) {
    struct chunk *c = d->head;
    d->head = c->next;
    free(c);
  }
  d->tail = NULL;
}

static void close_pair(struct pair *p) {
  close(p->d[0].from);
  close(p->d[0].to);
  drop_queue(&p->d[0]);
  drop_queue(&p->d[1]);
}

static int enqueue(struct dir *d, const char *buf, size_t len, long long due) {
  struct chunk *c = malloc(sizeof *c + len);
  if (!c) return -1;
  c->next = NULL;
  c->due_us = due;
  c->len = len;
  c->off = 0;
  if (len) memcpy(c->data, buf, len);
  if (d->tail) d->tail->next = c; else d->head = c;
  d->tail = c;
  return 0;
}

/* Reads what `from` has and queues it; -1 when the pair must close. */
static int pump_in(struct dir *d, long long delay_us, char *buf) {
  ssize_t n = read(d->from, buf, CHUNK);
  if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
  if (n == 0) d->read_eof = 1;
  return enqueue(d, buf, (size_t)n, now_us() + delay_us);
}

/* Writes the chunks that are due; -1 when the pair must close. */
static int pump_out(struct dir *d, long long t) {
  while (d->head && d->head->due_us <= t) {
    struct chunk *c = d->head;
    if (c->len == 0) {
      shutdown(d->to, SHUT_WR);
      d->done = 1;
    } else {
      ssize_t n = write(d->to, c->data + c->off, c->len - c->off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) { d->blocked = 1; return 0; }
      if (n < 0) return -1;
      c->off += (size_t)n;
      if (c->off < c->len) { d->blocked = 1; return 0; }
    }
    d->head = c->next;
    if (!d->head) d->tail = NULL;
    free(c);
  }
  return 0;
}

static int connect_upstream(int port) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0) return -1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || nonblock(fd) < 0) {
    close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

int main(int argc, char **argv) {
  static struct pair pairs[MAX_CONNS];
  static struct pollfd fds[1 + 4 * MAX_CONNS];
  static char buf[CHUNK];
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  int npairs = 0, lfd, one = 1, upstream;
  long long delay_us;

  if (argc != 3) {
    fprintf(stderr, "usage: %s UPSTREAM_PORT DELAY_MS\n", argv[0]);
    return 2;
  }
  upstream = atoi(argv[1]);
  delay_us = atoll(argv[2]) * 1000;
  signal(SIGPIPE, SIG_IGN);
  lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) { perror("socket"); return 1; }
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 64) < 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 || nonblock(lfd) < 0) {
    perror("listen");
    return 1;
  }
  printf("PORT=%d\n", ntohs(a.sin_port));
  fflush(stdout);

  for (;;) {
    long long t = now_us(), next = -1;
    int nfds = 1, i, timeout;
    fds[0].fd = lfd;
    fds[0].events = npairs < MAX_CONNS ? POLLIN : 0;
    fds[0].revents = 0;
    /* two slots per direction: its reader (POLLIN until EOF) and its writer (POLLOUT only
       while a due chunk waits for room) */
    for (i = 0; i < npairs; i++) {
      for (int k = 0; k < 2; k++) {
        struct dir *d = &pairs[i].d[k];
        /* a negative fd is skipped: a hung-up socket must not wake poll() in a loop */
        fds[nfds].fd = d->read_eof ? -1 : d->from;
        fds[nfds].events = POLLIN;
        fds[nfds++].revents = 0;
        fds[nfds].fd = d->blocked ? d->to : -1;
        fds[nfds].events = POLLOUT;
        fds[nfds++].revents = 0;
        if (d->head && !d->blocked && (next < 0 || d->head->due_us < next)) next = d->head->due_us;
      }
    }
    timeout = next < 0 ? -1 : next <= t ? 0 : (int)((next - t + 999) / 1000);
    if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR) { perror("poll"); return 1; }

    t = now_us();
    for (i = 0; i < npairs; i++) {
      struct pair *p = &pairs[i];
      struct pollfd *f = &fds[1 + 4 * i];
      int bad = 0;
      for (int k = 0; k < 2 && !bad; k++) {
        struct dir *d = &p->d[k];
        if (!d->read_eof && (f[2 * k].revents & (POLLIN | POLLHUP | POLLERR)))
          bad = pump_in(d, delay_us, buf) < 0;
        if (!bad && (f[2 * k + 1].revents & (POLLOUT | POLLERR | POLLHUP))) d->blocked = 0;
        if (!bad && !d->blocked) bad = pump_out(d, t) < 0;
      }
      if (bad || (p->d[0].done && p->d[1].done)) {
        close_pair(p);
        pairs[i] = pairs[--npairs];
        break; /* the slots of the pair moved into i are stale: it is served next round */
      }
    }
    if (fds[0].revents & POLLIN) {
      int c = accept(lfd, NULL, NULL);
      if (c >= 0) {
        int u = connect_upstream(upstream);
        if (u < 0 || nonblock(c) < 0) {
          close(c);
          if (u >= 0) close(u);
        } else {
          struct pair *p = &pairs[npairs++];
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          memset(p, 0, sizeof *p);
          p->d[0].from = c; p->d[0].to = u;
          p->d[1].from = u; p->d[1].to = c;
        }
      }
    }
  }
}
