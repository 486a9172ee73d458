// An LD_PRELOAD library for bench/alloc_bench.sh: counts the heap
// allocations a process makes (malloc, calloc, realloc, aligned
// allocations; operator new goes through malloc) and writes the running
// total to $ALLOC_COUNT_FILE every 20 ms, so that a benchmark can read it
// before and after a load. Not for production use.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_ulong allocations;

void* malloc(size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(size_t alignment, size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }
int posix_memalign(void** out, size_t alignment, size_t n) {
  void* p = memalign(alignment, n);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}

static void* reporter(void* path) {
  char text[32];
  for (;;) {
    unsigned long v = atomic_load_explicit(&allocations, memory_order_relaxed);
    int i = (int)sizeof text - 1;
    text[i] = '\n';
    do {
      text[--i] = (char)('0' + v % 10);
      v /= 10;
    } while (v && i > 0);
    // Written aside and renamed: a reader never sees a half-written number.
    char tmp[4096];
    size_t len = strlen((const char*)path);
    if (len + 5 < sizeof tmp) {
      memcpy(tmp, path, len);
      memcpy(tmp + len, ".tmp", 5);
      int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        (void)!write(fd, text + i, sizeof text - (size_t)i);
        close(fd);
        rename(tmp, (const char*)path);
      }
    }
    usleep(20000);
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  const char* path = getenv("ALLOC_COUNT_FILE");
  if (!path) return;
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &a, reporter, strdup(path));
}
