using System.Buffers.Binary;
using System.Collections.Immutable;
using MiniVmm.Devices.Legacy;

namespace MiniVmm.Snapshot.State;

/// <summary>
/// Binary encodings of device state records (version 1 each). Decoding checks lengths only; the devices' own Restore
/// validates the values as strictly as guest input.
/// </summary>
public static class DeviceStateCodec
{
    public const ushort Version = 1;

    public static byte[] Encode(Serial8250State s)
    {
        var fifo = s.RxFifo.IsDefault ? [] : s.RxFifo.AsSpan().ToArray();
        var data = new byte[11 + fifo.Length];
        data[0] = s.InterruptEnable; data[1] = s.FifoControl; data[2] = s.LineControl; data[3] = s.ModemControl;
        data[4] = s.Scratch; data[5] = s.DivisorLow; data[6] = s.DivisorHigh;
        data[7] = (byte)(s.ThrEmptyInterruptPending ? 1 : 0); data[8] = (byte)(s.OverrunError ? 1 : 0);
        data[9] = s.ModemStatusDelta; data[10] = (byte)fifo.Length;
        fifo.CopyTo(data, 11);
        return data;
    }

    public static Serial8250State DecodeSerial(byte[] d)
    {
        if (d.Length < 11 || d.Length != 11 + d[10])
            throw new FormatException($"serial state is {d.Length} bytes; malformed");
        if (d[7] > 1 || d[8] > 1) throw new FormatException("serial state has a boolean that is neither 0 nor 1");
        return new Serial8250State(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] == 1, d[8] == 1, d[9],
            ImmutableArray.Create(d, 11, d[10]));
    }

    public static byte[] Encode(DebugExitPortState s)
    {
        var data = new byte[5];
        data[0] = (byte)(s.LastValue.HasValue ? 1 : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(1), s.LastValue ?? 0);
        return data;
    }

    public static DebugExitPortState DecodeDebugExit(byte[] d)
    {
        if (d.Length != 5 || d[0] > 1) throw new FormatException("debug-exit state is malformed");
        return new DebugExitPortState(d[0] == 1 ? BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(1)) : null);
    }

    public static byte[] Encode(ControlPortState s)
    {
        var data = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(data, s.Status);
        return data;
    }

    public static ControlPortState DecodeControl(byte[] d)
    {
        if (d.Length != 4) throw new FormatException("control-port state is malformed");
        return new ControlPortState(BinaryPrimitives.ReadUInt32LittleEndian(d));
    }
}
