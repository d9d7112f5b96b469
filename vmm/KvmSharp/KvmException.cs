using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>
/// A failed Linux call (a syscall or ioctl): which operation, and the errno it returned. It is an
/// <see cref="IOException"/>, so callers that only report I/O failures need not know about it.
/// </summary>
public class LinuxException : IOException
{
    public Errno Errno { get; }
    public string Operation { get; }

    public LinuxException(string operation, Errno errno, string? detail = null)
        : base($"{operation} failed: {Marshal.GetPInvokeErrorMessage((int)errno)} (errno {(int)errno}){(detail is null ? "" : ": " + detail)}")
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>Throws for a negative result, using the calling thread's last errno.</summary>
    internal static int Check(int result, string operation)
    {
        if (result < 0) throw new LinuxException(operation, LastErrno.Get());
        return result;
    }

    internal static long Check(long result, string operation)
    {
        if (result < 0) throw new LinuxException(operation, LastErrno.Get());
        return result;
    }

    internal static nint CheckPtr(nint result, string operation)
    {
        if (result == -1) throw new LinuxException(operation, LastErrno.Get());
        return result;
    }
}

/// <summary>
/// A KVM call failed (an ioctl on /dev/kvm, a VM or a vCPU), or KVM lacks a capability MiniVmm needs. The CLI reports
/// it as the host not supporting what was asked.
/// </summary>
public sealed class KvmException : LinuxException
{
    public KvmException(string operation, Errno errno, string? detail = null) : base(operation, errno, detail) { }

    internal static new int Check(int result, string operation)
    {
        if (result < 0) throw new KvmException(operation, LastErrno.Get());
        return result;
    }

    internal static new long Check(long result, string operation)
    {
        if (result < 0) throw new KvmException(operation, LastErrno.Get());
        return result;
    }

    internal static new nint CheckPtr(nint result, string operation)
    {
        if (result == -1) throw new KvmException(operation, LastErrno.Get());
        return result;
    }
}
