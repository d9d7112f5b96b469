using KvmSharp.Interop;

namespace KvmSharp;

/// <summary>Scheduling class of the calling thread (sched_setscheduler(2) on thread id 0: the caller only).</summary>
public static unsafe class ThreadScheduling
{
    /// <summary>
    /// Makes the calling thread SCHED_FIFO at <paramref name="priority"/> (1–99): it then runs as soon as it is runnable,
    /// ahead of every normal thread. Returns the errno when the kernel refuses (EPERM without CAP_SYS_NICE or an
    /// RLIMIT_RTPRIO that allows it), <see cref="Errno"/> 0 on success.
    /// </summary>
    public static Errno TrySetCurrentThreadRealtime(int priority)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(priority, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(priority, 99);
        int param = priority;
        return Libc.sched_setscheduler(0, Libc.SCHED_FIFO, &param) == 0 ? Errno.None : LastErrno.Get();
    }

    /// <summary>Puts the calling thread back in the normal time-sharing class (SCHED_OTHER).</summary>
    public static Errno TrySetCurrentThreadNormal()
    {
        int param = 0;
        return Libc.sched_setscheduler(0, Libc.SCHED_OTHER, &param) == 0 ? Errno.None : LastErrno.Get();
    }
}
