using System.Diagnostics;
using KvmSharp;
using MiniVmm.Firmware.Guests.Net;
using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>A test that boots a guest on a tap it creates: needs KVM and a tap (root, /dev/net/tun, iproute2).</summary>
public sealed class NetFactAttribute : FactAttribute
{
    public NetFactAttribute()
    {
        if (!KvmAvailability.IsAvailable && !KvmAvailability.IsCi)
            Skip = "needs /dev/kvm read-write access (" + KvmAvailability.Reason + "); set CI=true to make this a failure";
        else
            Skip = HostFeature.SkipUnlessPresent("a tap interface", TestTap.Reason);
    }
}

/// <summary>
/// virtio-net end to end: the vnet guest echoes frames of EtherType 0x88B5 with the MACs swapped. Each test makes its
/// own tap (no address, IPv6 off, nothing routed to it) and talks to the guest through it with raw frames only.
/// </summary>
public sealed class NetTests
{
    private static readonly byte[] GuestMac = [0x52, 0x54, 0x00, 0x6e, 0x65, 0x74];
    private static readonly byte[] HostMac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    private const string GuestMacText = "52:54:00:6e:65:74";

    private static byte[] Frame(int seq, int payload = 100)
    {
        var f = new byte[14 + payload];
        GuestMac.CopyTo(f, 0);
        HostMac.CopyTo(f, 6);
        f[12] = NetGuest.EchoEtherType >> 8;
        f[13] = NetGuest.EchoEtherType & 0xff;
        for (int i = 0; i < payload; i++) f[14 + i] = (byte)(seq * 31 + i);
        return f;
    }

    /// <summary>The next echo from the guest (source = the guest's MAC, our EtherType), or null after the timeout.</summary>
    private static byte[]? ReceiveEcho(PacketSocket wire, TimeSpan timeout)
    {
        var buffer = new byte[2048];
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            int n = wire.Receive(buffer, 100);
            if (n < 14) continue;
            if (buffer.AsSpan(6, 6).SequenceEqual(GuestMac) && buffer[12] == NetGuest.EchoEtherType >> 8 && buffer[13] == (NetGuest.EchoEtherType & 0xff))
                return buffer.AsSpan(0, n).ToArray();
        }
        return null;
    }

    private static void ExpectEcho(byte[]? echo, int seq)
    {
        echo.Should().NotBeNull($"frame {seq} comes back");
        var sent = Frame(seq);
        echo!.AsSpan(0, 6).ToArray().Should().Equal(HostMac, "the guest swapped the addresses");
        echo.AsSpan(14).ToArray().Should().Equal(sent.AsSpan(14).ToArray(), $"frame {seq}'s payload is unchanged");
    }

    /// <summary>Reads stdout lines until one starts with <paramref name="prefix"/>.</summary>
    private static Task<bool> WaitForLine(Process p, string prefix) => Task.Run(() =>
    {
        while (p.StandardOutput.ReadLine() is { } line)
            if (line.StartsWith(prefix, StringComparison.Ordinal)) return true;
        return false;
    });

    [NetFact]
    public void The_guest_echoes_every_frame_sent_to_it_over_the_tap()
    {
        using var tap = new TestTap();
        using var wire = new PacketSocket(tap.Name);
        const int Frames = 40;
        using var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--cmdline", $"frames={Frames}",
            "--net", $"tap={tap.Name},mac={GuestMacText}");
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            var ready = WaitForLine(p, NetGuest.ReadyLine);
            ready.Wait(TimeSpan.FromMinutes(1)).Should().BeTrue();
            ready.Result.Should().BeTrue("the guest brings the device up");
            // More frames than the guest has receive buffers (8): the rest wait in the tap until buffers come back.
            for (int i = 0; i < Frames; i++) wire.Send(Frame(i));
            for (int i = 0; i < Frames; i++) ExpectEcho(ReceiveEcho(wire, TimeSpan.FromSeconds(20)), i);
            p.WaitForExit(60_000).Should().BeTrue();
            string rest = p.StandardOutput.ReadToEnd();
            p.ExitCode.Should().Be(0, rest + stderr.Result);
            rest.Should().Contain($"vnet: echoed {Frames} frames, ignored 0");
            ReceiveEcho(wire, TimeSpan.FromMilliseconds(300)).Should().BeNull("exactly one echo per frame");
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    [KvmFact]
    public void A_tap_that_does_not_exist_is_exit_120_with_the_name()
    {
        string name = $"mvno{Environment.ProcessId % 100000}";
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--net", $"tap={name}");
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain($"tap '{name}' does not exist").And.Contain("ip tuntap add");
    }

    [KvmTheory]
    [InlineData("tap=t0,mac=52:54:00:12:34", "six hex byte pairs")]
    [InlineData("tap=t0,mac=01:00:5e:00:00:01", "multicast")]
    [InlineData("mac=52:54:00:12:34:56", "needs tap=NAME")]
    [InlineData("tap=averyveryverylongname", "longer than 15 bytes")]
    public void A_bad_net_option_is_exit_120_with_the_reason(string option, string why)
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--net", option);
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().StartWith("minivmm: --net").And.Contain(why);
    }

    [KvmFact]
    public void An_interface_that_is_not_a_tap_is_exit_120()
    {
        var r = MinivmmProcess.Run("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--net", "tap=lo");
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain("'lo' is not a tap device");
    }

    [NetFact]
    public void A_snapshot_of_an_echoing_vm_restores_into_one_that_keeps_echoing_on_the_same_tap()
    {
        using var tap = new TestTap();
        using var wire = new PacketSocket(tap.Name);
        string snapshot = GuestFiles.TempPath("net.mvs");
        using (var p = MinivmmProcess.Start("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--cmdline", "frames=0",
                   "--net", $"tap={tap.Name},mac={GuestMacText}", "--snapshot-to", snapshot, "--exit-after-snapshot"))
        {
            p.StandardInput.Close();
            var stderr = p.StandardError.ReadToEndAsync();
            try
            {
                var ready = WaitForLine(p, NetGuest.ReadyLine);
                ready.Wait(TimeSpan.FromMinutes(1)).Should().BeTrue();
                for (int i = 0; i < 10; i++) wire.Send(Frame(i));
                for (int i = 0; i < 10; i++) ExpectEcho(ReceiveEcho(wire, TimeSpan.FromSeconds(20)), i);
                // Frames keep arriving while the snapshot is taken: the device is quiesced at the freeze.
                var sender = Task.Run(() => { for (int i = 10; i < 30; i++) { wire.Send(Frame(i)); Thread.Sleep(2); } });
                Process.Start("kill", ["-USR1", p.Id.ToString()])!.WaitForExit();
                sender.Wait(TimeSpan.FromSeconds(30)).Should().BeTrue();
                p.WaitForExit(60_000).Should().BeTrue("--exit-after-snapshot");
                p.ExitCode.Should().Be(0, stderr.Result);
            }
            finally
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
            }
        }
        // Drain what the first VM echoed before it stopped.
        while (ReceiveEcho(wire, TimeSpan.FromMilliseconds(300)) is not null) { }

        using var r = MinivmmProcess.Start("restore", snapshot);
        r.StandardInput.Close();
        var rErr = r.StandardError.ReadToEndAsync();
        try
        {
            // The restored VM reopens the tap by name; until then the kernel drops what is sent (no reader).
            byte[]? first = null;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (first is null && DateTime.UtcNow < deadline && !r.HasExited)
            {
                wire.Send(Frame(100));
                first = ReceiveEcho(wire, TimeSpan.FromMilliseconds(200));
            }
            first.Should().NotBeNull("the restored guest echoes; " + (r.HasExited ? rErr.Result : ""));
            ExpectEcho(first, 100);
            while (ReceiveEcho(wire, TimeSpan.FromMilliseconds(300)) is not null) { }
            for (int i = 200; i < 220; i++) wire.Send(Frame(i));
            for (int i = 200; i < 220; i++) ExpectEcho(ReceiveEcho(wire, TimeSpan.FromSeconds(20)), i);
            r.HasExited.Should().BeFalse();
        }
        finally
        {
            if (!r.HasExited) { Process.Start("kill", ["-TERM", r.Id.ToString()])!.WaitForExit(); r.WaitForExit(30_000); }
            File.Delete(snapshot);
        }
        r.ExitCode.Should().Be(143);
    }

    [NetFact]
    public void Restoring_a_vm_whose_tap_is_gone_is_exit_120_naming_the_tap()
    {
        string snapshot = GuestFiles.TempPath("gone.mvs");
        string name;
        using (var tap = new TestTap())
        {
            name = tap.Name;
            var run = MinivmmProcess.Run("run", "--kernel", GuestFiles.Net, "--mem", "32M", "--cmdline", "frames=0",
                "--net", $"tap={tap.Name}", "--snapshot-to", snapshot, "--snapshot-after", "300ms", "--exit-after-snapshot");
            run.ExitCode.Should().Be(0, run.Stderr);
            run.Stdout.Should().Contain(NetGuest.ReadyLine);
        }
        var printed = MinivmmProcess.Run("restore", "--print-config", snapshot);
        printed.ExitCode.Should().Be(0, printed.Stderr);
        printed.Stdout.Should().Contain($"\"tap={name},mac=52:54:00:12:34:56\"", "the default MAC is recorded, so a new boot keeps it");
        var r = MinivmmProcess.Run("restore", snapshot);
        r.ExitCode.Should().Be(120);
        r.Stderr.Should().Contain($"tap '{name}' does not exist");
        File.Delete(snapshot);
    }
}
