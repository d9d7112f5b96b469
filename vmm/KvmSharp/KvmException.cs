using System.Runtime.InteropServices;

namespace KvmSharp;

/// <summary>A failed kernel call: which operation, and the errno it returned.</summary>
public sealed class KvmException : IOException
{
    public int Errno { get; }
    public string Operation { get; }

    public KvmException(string operation, int errno, string? detail = null)
        : base($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}){(detail is null ? "" : ": " + detail)}")
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>Throws for a negative result, using the calling thread's last errno.</summary>
    public static int Check(int result, string operation)
    {
        if (result < 0) throw new KvmException(operation, Marshal.GetLastPInvokeError());
        return result;
    }

    public static long Check(long result, string operation)
    {
        if (result < 0) throw new KvmException(operation, Marshal.GetLastPInvokeError());
        return result;
    }

    public static nint CheckPtr(nint result, string operation)
    {
        if (result == -1) throw new KvmException(operation, Marshal.GetLastPInvokeError());
        return result;
    }
}
