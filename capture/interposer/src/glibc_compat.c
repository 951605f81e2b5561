/* Keeps libcdma_capture.so loadable on glibc 2.28 (RHEL 8, manylinux_2_28 images) although it is
 * built on a newer glibc (Debian 12: 2.36) with libstdc++ and libgcc linked statically.
 *
 * Built that way, the library would ask the dynamic linker for symbol versions an older glibc
 * lacks, and LD_PRELOAD would fail at process start:
 *   - GLIBC_2.34: dlopen, dlsym, dlerror, dlclose and the pthread_* calls that glibc 2.34 moved
 *     from libdl/libpthread into libc (new default versions of the same functions);
 *   - GLIBC_2.30: pthread_cond_clockwait (libstdc++'s condition_variable::wait_for, inline);
 *   - GLIBC_2.32: __libc_single_threaded (libstdc++'s reference-count fast path);
 *   - GLIBC_2.35: _dl_find_object (libgcc's unwinder, _Unwind_Find_FDE);
 *   - GLIBC_2.36: arc4random (libstdc++'s std::random_device, pulled in by cow-string-inst.o).
 * interposer/CMakeLists.txt links with -Wl,--wrap=NAME for each of them, so every reference,
 * also those from libstdc++.a and libgcc_eh.a, goes to __wrap_NAME below. The wrappers either
 * call the same function under its glibc 2.2.5 version (.symver; libc.so.6 of 2.34+ keeps those
 * as compatibility versions, and on older glibc libdl.so.2 / libpthread.so.0 define them, which
 * is why the library has those two DT_NEEDED), or implement what older glibc lacks from calls it
 * has. The test Capture.InterposerNeedsNoGlibcNewerThan228 checks `objdump -T`.
 *
 * x86-64 only (GLIBC_2.2.5 is that architecture's base version); elsewhere CMake links without
 * the wraps and this file compiles to nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <features.h> /* defines __GLIBC__ */

#if defined(__x86_64__) && defined(__GLIBC__)

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CDMA_HIDDEN __attribute__((visibility("hidden")))

/* The same functions under their glibc 2.2.5 versions. */
#define CDMA_OLD(ret, name, params)                      \
  extern ret cdma_old_##name params;                     \
  __asm__(".symver cdma_old_" #name "," #name "@GLIBC_2.2.5")

CDMA_OLD(void*, dlopen, (const char*, int));
CDMA_OLD(void*, dlsym, (void*, const char*));
CDMA_OLD(char*, dlerror, (void));
CDMA_OLD(int, dlclose, (void*));
CDMA_OLD(int, pthread_create, (pthread_t*, const pthread_attr_t*, void* (*)(void*), void*));
CDMA_OLD(int, pthread_join, (pthread_t, void**));
CDMA_OLD(int, pthread_detach, (pthread_t));
CDMA_OLD(int, pthread_once, (pthread_once_t*, void (*)(void)));
CDMA_OLD(int, pthread_key_create, (pthread_key_t*, void (*)(void*)));
CDMA_OLD(int, __pthread_key_create, (pthread_key_t*, void (*)(void*)));
CDMA_OLD(int, pthread_key_delete, (pthread_key_t));
CDMA_OLD(void*, pthread_getspecific, (pthread_key_t));
CDMA_OLD(int, pthread_setspecific, (pthread_key_t, const void*));

/* dlsym(RTLD_NEXT) and dlopen look at their caller's object: a call from here is still a call
 * from libcdma_capture.so. */
CDMA_HIDDEN void* __wrap_dlopen(const char* f, int m) { return cdma_old_dlopen(f, m); }
CDMA_HIDDEN void* __wrap_dlsym(void* h, const char* s) { return cdma_old_dlsym(h, s); }
CDMA_HIDDEN char* __wrap_dlerror(void) { return cdma_old_dlerror(); }
CDMA_HIDDEN int __wrap_dlclose(void* h) { return cdma_old_dlclose(h); }
CDMA_HIDDEN int __wrap_pthread_create(pthread_t* t, const pthread_attr_t* a, void* (*f)(void*), void* arg) {
  return cdma_old_pthread_create(t, a, f, arg);
}
CDMA_HIDDEN int __wrap_pthread_join(pthread_t t, void** r) { return cdma_old_pthread_join(t, r); }
CDMA_HIDDEN int __wrap_pthread_detach(pthread_t t) { return cdma_old_pthread_detach(t); }
CDMA_HIDDEN int __wrap_pthread_once(pthread_once_t* o, void (*f)(void)) { return cdma_old_pthread_once(o, f); }
CDMA_HIDDEN int __wrap_pthread_key_create(pthread_key_t* k, void (*d)(void*)) { return cdma_old_pthread_key_create(k, d); }
CDMA_HIDDEN int __wrap___pthread_key_create(pthread_key_t* k, void (*d)(void*)) {
  return cdma_old___pthread_key_create(k, d);
}
CDMA_HIDDEN int __wrap_pthread_key_delete(pthread_key_t k) { return cdma_old_pthread_key_delete(k); }
CDMA_HIDDEN void* __wrap_pthread_getspecific(pthread_key_t k) { return cdma_old_pthread_getspecific(k); }
CDMA_HIDDEN int __wrap_pthread_setspecific(pthread_key_t k, const void* v) { return cdma_old_pthread_setspecific(k, v); }

/* pthread_cond_clockwait (2.30): libstdc++ waits on the steady clock with it. A condition
 * variable initialised with default attributes measures pthread_cond_timedwait's deadline on
 * CLOCK_REALTIME, so translate a monotonic deadline into a realtime one (what libstdc++ itself
 * does where clockwait is missing; a wall-clock jump only lengthens or shortens that one wait). */
CDMA_HIDDEN int __wrap_pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                              const struct timespec* abstime) {
  if (clock == CLOCK_REALTIME) return pthread_cond_timedwait(c, m, abstime);
  if (clock != CLOCK_MONOTONIC || !abstime || abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000L)
    return EINVAL;
  struct timespec mono, real, rt;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  int64_t left = (int64_t)(abstime->tv_sec - mono.tv_sec) * 1000000000LL + (abstime->tv_nsec - mono.tv_nsec);
  if (left < 0) left = 0;
  int64_t ns = (int64_t)real.tv_nsec + left % 1000000000LL;
  rt.tv_sec = real.tv_sec + (time_t)(left / 1000000000LL) + (time_t)(ns / 1000000000LL);
  rt.tv_nsec = (long)(ns % 1000000000LL);
  return pthread_cond_timedwait(c, m, &rt);
}

/* __libc_single_threaded (2.32): 0 tells libstdc++ to use atomic reference counts always, which
 * is right for a library whose own writer thread runs from the first intercepted call. */
CDMA_HIDDEN char __wrap___libc_single_threaded = 0;

/* arc4random (2.36): only std::random_device("arc4random") would call it; the interposer never
 * does. Kernel randomness (getrandom, else /dev/urandom) all the same. */
CDMA_HIDDEN uint32_t __wrap_arc4random(void) {
  uint32_t v = 0;
#ifdef SYS_getrandom
  if (syscall(SYS_getrandom, &v, sizeof v, 0) == (long)sizeof v) return v;
#endif
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, &v, sizeof v);
    close(fd);
    if (n == (ssize_t)sizeof v) return v;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t z = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
  z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ULL;
  return (uint32_t)(z ^ (z >> 29));
}

/* _dl_find_object (2.35): libgcc's _Unwind_Find_FDE asks it for the PT_GNU_EH_FRAME segment of
 * the object that holds a return address, and has no fallback when it fails. The same answer
 * from dl_iterate_phdr (glibc 2.2.5), which is what libgcc used before 2.35. */
struct cdma_find_state {
  uintptr_t pc;
  struct dl_find_object* out;
  int found;
};

static int cdma_find_cb(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct cdma_find_state* st = (struct cdma_find_state*)data;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  const ElfW(Phdr)* eh = NULL;
  int inside = 0;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* p = &info->dlpi_phdr[i];
    if (p->p_type == PT_LOAD) {
      uintptr_t s = (uintptr_t)info->dlpi_addr + p->p_vaddr, e = s + p->p_memsz;
      if (s < lo) lo = s;
      if (e > hi) hi = e;
      if (st->pc >= s && st->pc < e) inside = 1;
    } else if (p->p_type == PT_GNU_EH_FRAME) {
      eh = p;
    }
  }
  if (!inside) return 0;
  memset(st->out, 0, sizeof *st->out);
  st->out->dlfo_map_start = (void*)lo;
  st->out->dlfo_map_end = (void*)hi;
  st->out->dlfo_eh_frame = eh ? (void*)((uintptr_t)info->dlpi_addr + eh->p_vaddr) : NULL;
  st->found = 1;
  return 1;
}

CDMA_HIDDEN int __wrap__dl_find_object(void* pc, struct dl_find_object* out) {
  struct cdma_find_state st = {(uintptr_t)pc, out, 0};
  dl_iterate_phdr(cdma_find_cb, &st);
  return st.found ? 0 : -1;
}

#endif
