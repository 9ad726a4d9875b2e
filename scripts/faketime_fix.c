/* Preloaded before Debian's libfaketime 0.9.10 by scripts/faketime-tests.sh.
 *
 * libfaketime reads every absolute deadline as one on the fake wall clock, whatever clock it is
 * for (https://github.com/wolfcw/libfaketime/issues/426; "only CLOCK_REALTIME is handled" in its
 * timer code). A deadline on the monotonic clock then lands at a negative time or days away:
 * - clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME): EINVAL at once. Python's time.sleep() sleeps
 *   that way.
 * - timerfd_settime(TFD_TIMER_ABSTIME) on a monotonic timerfd: the timer fires a day and a half
 *   late (or at once). MAVSDK's asio reactor keeps its timers that way, so its timeouts and its
 *   heartbeats stopped: first_autopilot(timeout_s=3) never returned, and a simulated PX4 whose
 *   only ground station was an in-process MAVSDK declared the data link lost.
 *
 * The runs leave the monotonic clock real (FAKETIME_DONT_FAKE_MONOTONIC=1), so a monotonic
 * deadline is already a real one: these calls hand it to the kernel unchanged. Everything on the
 * wall clock still goes through libfaketime, which fakes it as before.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED_FD 65536

static atomic_uchar monotonic_timerfd[MAX_TRACKED_FD];

static int is_monotonic(clockid_t clock_id)
{
    return clock_id == CLOCK_MONOTONIC || clock_id == CLOCK_MONOTONIC_RAW || clock_id == CLOCK_BOOTTIME;
}

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *request, struct timespec *remain)
{
    if (is_monotonic(clock_id)) {
        /* clock_nanosleep returns the error number; the raw system call sets errno. */
        return syscall(SYS_clock_nanosleep, clock_id, flags, request, remain) == 0 ? 0 : errno;
    }
    int (*next)(clockid_t, int, const struct timespec *, struct timespec *) = dlsym(RTLD_NEXT, "clock_nanosleep");
    return next != NULL ? next(clock_id, flags, request, remain) : ENOSYS;
}

int timerfd_create(int clock_id, int flags)
{
    int fd = (int)syscall(SYS_timerfd_create, clock_id, flags);
    if (fd >= 0 && fd < MAX_TRACKED_FD) {
        atomic_store(&monotonic_timerfd[fd], (unsigned char)is_monotonic(clock_id));
    }
    return fd;
}

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value, struct itimerspec *old_value)
{
    if (fd >= 0 && fd < MAX_TRACKED_FD && atomic_load(&monotonic_timerfd[fd])) {
        return (int)syscall(SYS_timerfd_settime, fd, flags, new_value, old_value);
    }
    int (*next)(int, int, const struct itimerspec *, struct itimerspec *) = dlsym(RTLD_NEXT, "timerfd_settime");
    if (next == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return next(fd, flags, new_value, old_value);
}
