/*
 * comms_bench: what libsbx_comms costs over a bare socketpair, between two processes (fork).
 *
 *   raw_tput_{1m,64k}_MBps    write()/read() loop of 1 MiB / 64 KiB chunks
 *   comms_tput_{1m,64k}_MBps  sbx_comms_send_bytes / sbx_comms_recv_bytes (malloc per message)
 *   raw_rtt_us                4-byte write/read ping-pong, per round trip
 *   comms_rtt_us              Uint32 send/recv ping-pong, per round trip
 *
 * Each figure is the median of REPS repetitions of ~100 ms of work; the number of iterations
 * per repetition is calibrated first. Prints one JSON object on stdout.
 */
#define _GNU_SOURCE /* clock_gettime under -std=c99 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sbx/comms.h"

#define REPS      7
#define TARGET_NS 100000000.0 /* ~100 ms per repetition */

/* What the parent asks of the child, sent as a Uint32 before each repetition. */
enum job { JOB_EXIT, JOB_RAW_SINK, JOB_COMMS_SINK, JOB_RAW_PONG, JOB_COMMS_PONG };

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, (const char *)buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, (char *)buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += (size_t)n;
  }
  return 0;
}

/* ---- Child: serves jobs until JOB_EXIT ---- */

static int child_job(sbx_comms *c, uint32_t job, uint64_t count, uint64_t size, char *buf) {
  uint64_t i;
  switch (job) {
    case JOB_RAW_SINK:
      for (i = 0; i < count; i++)
        if (read_all(c->fd, buf, size) < 0) return -1;
      return write_all(c->fd, "k", 1);
    case JOB_COMMS_SINK:
      for (i = 0; i < count; i++) {
        void *data;
        size_t n;
        if (sbx_comms_recv_bytes(c, &data, &n) < 0 || n != size) return -1;
        free(data);
      }
      return sbx_comms_send_uint8(c, 1);
    case JOB_RAW_PONG:
      for (i = 0; i < count; i++)
        if (read_all(c->fd, buf, 4) < 0 || write_all(c->fd, buf, 4) < 0) return -1;
      return 0;
    case JOB_COMMS_PONG:
      for (i = 0; i < count; i++) {
        uint32_t v;
        if (sbx_comms_recv_uint32(c, &v) < 0 || sbx_comms_send_uint32(c, v + 1) < 0) return -1;
      }
      return 0;
    default: return -1;
  }
}

static int child_main(sbx_comms *c) {
  char *buf = malloc(1 << 20);
  if (buf == NULL) return 1;
  for (;;) {
    uint32_t job;
    uint64_t count, size;
    if (sbx_comms_recv_uint32(c, &job) < 0) return 1;
    if (job == JOB_EXIT) return 0;
    if (sbx_comms_recv_uint64(c, &count) < 0 || sbx_comms_recv_uint64(c, &size) < 0 ||
        size > (1 << 20) || child_job(c, job, count, size, buf) < 0)
      return 1;
  }
}

/* ---- Parent: drives one repetition and times it ---- */

static double run_job(sbx_comms *c, uint32_t job, uint64_t count, uint64_t size, char *buf) {
  double t0;
  uint64_t i;
  char ack;
  uint8_t ack8;
  if (sbx_comms_send_uint32(c, job) < 0 || sbx_comms_send_uint64(c, count) < 0 ||
      sbx_comms_send_uint64(c, size) < 0)
    return -1;
  t0 = now_ns();
  switch (job) {
    case JOB_RAW_SINK:
      for (i = 0; i < count; i++)
        if (write_all(c->fd, buf, size) < 0) return -1;
      if (read_all(c->fd, &ack, 1) < 0) return -1;
      break;
    case JOB_COMMS_SINK:
      for (i = 0; i < count; i++)
        if (sbx_comms_send_bytes(c, buf, size) < 0) return -1;
      if (sbx_comms_recv_uint8(c, &ack8) < 0) return -1;
      break;
    case JOB_RAW_PONG:
      for (i = 0; i < count; i++)
        if (write_all(c->fd, buf, 4) < 0 || read_all(c->fd, buf, 4) < 0) return -1;
      break;
    case JOB_COMMS_PONG:
      for (i = 0; i < count; i++) {
        uint32_t v;
        if (sbx_comms_send_uint32(c, (uint32_t)i) < 0 || sbx_comms_recv_uint32(c, &v) < 0 ||
            v != (uint32_t)i + 1)
          return -1;
      }
      break;
  }
  return now_ns() - t0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median nanoseconds per iteration over REPS repetitions of ~TARGET_NS each. */
static double measure(sbx_comms *c, uint32_t job, uint64_t size, char *buf) {
  double per[REPS], t;
  uint64_t count = 16;
  int r;
  /* Calibrate: grow the count until one run takes a tenth of the target, then scale. */
  for (;;) {
    t = run_job(c, job, count, size, buf);
    if (t < 0) return -1;
    if (t >= TARGET_NS / 10) break;
    count *= 4;
  }
  count = (uint64_t)((double)count * TARGET_NS / t) + 1;
  for (r = 0; r < REPS; r++) {
    t = run_job(c, job, count, size, buf);
    if (t < 0) return -1;
    per[r] = t / (double)count;
  }
  qsort(per, REPS, sizeof per[0], cmp_double);
  return per[REPS / 2];
}

static double mbps(double ns_per_chunk, uint64_t size) {
  return ns_per_chunk > 0 ? (double)size / (1 << 20) / (ns_per_chunk / 1e9) : -1;
}

int main(void) {
  int fds[2], status;
  pid_t pid;
  sbx_comms c;
  char *buf;
  double raw1m, comms1m, raw64k, comms64k, rawrtt, commsrtt;

  if (sbx_comms_socketpair(fds) < 0) {
    perror("comms_bench: socketpair");
    return 1;
  }
  pid = fork();
  if (pid < 0) {
    perror("comms_bench: fork");
    return 1;
  }
  if (pid == 0) {
    close(fds[0]);
    sbx_comms_init(&c, fds[1]);
    _exit(child_main(&c));
  }
  close(fds[1]);
  sbx_comms_init(&c, fds[0]);
  buf = calloc(1, 1 << 20);
  if (buf == NULL) return 1;

  raw1m = mbps(measure(&c, JOB_RAW_SINK, 1 << 20, buf), 1 << 20);
  comms1m = mbps(measure(&c, JOB_COMMS_SINK, 1 << 20, buf), 1 << 20);
  raw64k = mbps(measure(&c, JOB_RAW_SINK, 64 << 10, buf), 64 << 10);
  comms64k = mbps(measure(&c, JOB_COMMS_SINK, 64 << 10, buf), 64 << 10);
  rawrtt = measure(&c, JOB_RAW_PONG, 4, buf) / 1e3;
  commsrtt = measure(&c, JOB_COMMS_PONG, 4, buf) / 1e3;

  sbx_comms_send_uint32(&c, JOB_EXIT);
  free(buf);
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || raw1m < 0 ||
      comms1m < 0 || raw64k < 0 || comms64k < 0 || rawrtt < 0 || commsrtt < 0) {
    fprintf(stderr, "comms_bench: a measurement failed\n");
    return 1;
  }
  printf(
      "{\"raw_tput_1m_MBps\":%.1f,\"comms_tput_1m_MBps\":%.1f,\"raw_tput_64k_MBps\":%.1f,"
      "\"comms_tput_64k_MBps\":%.1f,\"raw_rtt_us\":%.2f,\"comms_rtt_us\":%.2f}\n",
      raw1m, comms1m, raw64k, comms64k, rawrtt, commsrtt);
  return 0;
}
