using KvmSharp;

namespace MiniVmm.Machine.Devices;

/// <summary>What a failed tap read or write means for the device.</summary>
public enum TapFailure
{
    /// <summary>The host is short of room or memory for now: this frame is lost, the next may pass.</summary>
    Transient,
    /// <summary>The kernel refused this frame (a malformed vnet header, a bad length): drop it, go on.</summary>
    FrameRefused,
    /// <summary>The tap is gone (the interface was deleted) or its fd is broken: no frame will pass again.</summary>
    Dead,
}

/// <summary>Sorts the errno of a tap read or write (those <see cref="KvmSharp.TapDevice"/> does not already turn into
/// "no frame" or "dropped") into <see cref="TapFailure"/>.</summary>
public static class TapErrors
{
    public static TapFailure Classify(Errno errno) => errno switch
    {
        Errno.EAGAIN or Errno.EINTR or Errno.ENOBUFS or Errno.ENOMEM => TapFailure.Transient,
        Errno.EINVAL or Errno.EMSGSIZE => TapFailure.FrameRefused,
        _ => TapFailure.Dead,
    };
}
