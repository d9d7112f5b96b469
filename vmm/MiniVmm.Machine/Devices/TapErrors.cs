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
    // Linux errno values.
    private const int EINTR = 4, EAGAIN = 11, ENOMEM = 12, EINVAL = 22, EMSGSIZE = 90, ENOBUFS = 105;

    public static TapFailure Classify(int errno) => errno switch
    {
        EAGAIN or EINTR or ENOBUFS or ENOMEM => TapFailure.Transient,
        EINVAL or EMSGSIZE => TapFailure.FrameRefused,
        _ => TapFailure.Dead,
    };
}
