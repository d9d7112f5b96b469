using System.Text;
using System.Text.Json.Nodes;
using MiniVmm.Machine;
using MiniVmm.Machine.Monitor;
using MiniVmm.Tests.Shared;

using MiniVmm.Qmp;

namespace MiniVmm.Integration.Tests;

/// <summary>The QMP protocol over a real Unix socket: greeting, negotiation, replies, errors, and hostile clients.</summary>
public sealed class QmpProtocolTests
{
    [KvmFact]
    public void Greeting_negotiation_and_replies_follow_the_QMP_spec()
    {
        using var vm = new QmpVmFixture();
        using var client = new QmpTestClient(vm.SocketPath);
        var greeting = client.Read();
        greeting["QMP"]!["version"]!["qemu"]!["major"]!.GetValue<int>().Should().Be(QmpMessages.QemuMajor);
        ((string)greeting["QMP"]!["version"]!["package"]!).Should().StartWith("MiniVmm");
        greeting["QMP"]!["capabilities"]!.AsArray().Should().BeEmpty();

        var early = client.Command("query-status");
        QmpTestClient.ErrorClass(early).Should().Be("CommandNotFound", "commands need negotiation first");
        client.Command("qmp_capabilities", new JsonObject { ["enable"] = new JsonArray("oob") })
            .Should().ContainKey("error", "oob is not offered");
        client.Command("qmp_capabilities", id: 7)["id"]!.GetValue<int>().Should().Be(7);
        QmpTestClient.ErrorClass(client.Command("qmp_capabilities")).Should().Be("CommandNotFound", "negotiation is complete");

        var status = client.Return("query-status");
        ((string)status["status"]!).Should().Be("running");
        status["running"]!.GetValue<bool>().Should().BeTrue();
        client.Return("query-version")["qemu"]!["minor"]!.GetValue<int>().Should().Be(QmpMessages.QemuMinor);
        var names = client.Return("query-commands").AsArray().Select(c => (string)c!["name"]!).ToList();
        names.Should().Contain(["qmp_capabilities", "query-status", "stop", "cont", "system_reset", "quit", "query-cpus-fast",
            "query-version", "query-commands", "migrate-set-capabilities", "query-migrate-capabilities", "migrate-set-parameters",
            "query-migrate-parameters", "migrate", "query-migrate", "migrate_cancel", "human-monitor-command"]);
        var cpus = client.Return("query-cpus-fast").AsArray();
        cpus.Should().HaveCount(1);
        cpus[0]!["thread-id"]!.GetValue<long>().Should().BePositive("the vCPU thread's Linux tid is found");
        client.Return("query-migrate").AsObject().Should().BeEmpty("no migration has run yet");
    }

    [KvmFact]
    public void Ids_of_any_type_are_echoed_on_success_and_on_error()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        var objectId = new JsonObject { ["seq"] = 1, ["tag"] = "x" };
        client.Command("query-status", id: objectId)["id"]!.ToJsonString().Should().Be(objectId.ToJsonString());
        var error = client.Command("no-such-command", id: "abc");
        ((string)error["id"]!).Should().Be("abc");
        QmpTestClient.ErrorClass(error).Should().Be("CommandNotFound");
        ((string)error["error"]!["desc"]!).Should().Contain("no-such-command");
    }

    [KvmFact]
    public void Malformed_input_gets_a_GenericError_and_the_session_and_guest_go_on()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        foreach (string bad in new[] { "{\"execute\": }\n", "]\n", "hello\n", "[1, 2]\n", "{\"execute\": 5}\n",
                     "{\"arguments\": {}}\n", "{\"execute\": \"query-status\", \"arguments\": []}\n",
                     "{\"execute\": \"query-status\", \"bogus\": 1}\n", "{\"execute\": \"x\", \"execute\": \"y\"}\n" })
        {
            client.SendRaw(bad);
            var reply = client.ReadReply();
            QmpTestClient.ErrorClass(reply).Should().Be("GenericError", $"'{bad.Trim()}' is not a valid request: {reply.ToJsonString()}");
            ((string)reply["error"]!["desc"]!).Should().NotContain("internal error", "each case has its own diagnosis");
        }
        client.Return("query-status");
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void Messages_without_newlines_and_several_in_one_write_are_all_answered()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        // QEMU's own Python library sends objects back to back with no newline.
        client.SendRaw("{\"execute\":\"query-status\",\"id\":1}{\"execute\":\"query-version\",\"id\":2} {\"execute\":\"query-name\",\"id\":\"{}\\\"\"}");
        client.ReadReply()["id"]!.GetValue<int>().Should().Be(1);
        client.ReadReply()["id"]!.GetValue<int>().Should().Be(2);
        ((string)client.ReadReply()["id"]!).Should().Be("{}\"", "braces and quotes inside strings do not confuse framing");
    }

    [KvmFact]
    public void Oversized_message_is_refused_and_the_session_goes_on()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        var huge = new StringBuilder("{\"execute\":\"query-status\",\"arguments\":{\"x\":\"");
        huge.Append('a', 200 * 1024).Append("\"}}\n");
        client.SendRaw(huge.ToString());
        var reply = client.ReadReply();
        QmpTestClient.ErrorClass(reply).Should().Be("GenericError");
        ((string)reply["error"]!["desc"]!).Should().Contain("exceeds");
        client.Command("query-status", id: "after").Should().ContainKey("return");
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void Wrong_argument_types_and_unknown_or_missing_arguments_are_GenericErrors()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        Desc(client.Command("migrate", new JsonObject { ["uri"] = 5 })).Should().Contain("Invalid parameter type for 'uri', expected: string");
        Desc(client.Command("migrate", new JsonObject())).Should().Contain("Parameter 'uri' is missing");
        Desc(client.Command("query-status", new JsonObject { ["verbose"] = true })).Should().Contain("Parameter 'verbose' is unexpected");
        Desc(client.Command("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = "fast" })).Should().Contain("expected: integer");
        Desc(client.Command("migrate-set-parameters", new JsonObject { ["max-bandwidth"] = 1.5 })).Should().Contain("expected: integer");
        Desc(client.Command("migrate-set-capabilities", new JsonObject
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "background-snapshot", ["state"] = "yes" }),
        })).Should().Contain("Invalid parameter type for 'capabilities[0].state', expected: boolean");
        Desc(client.Command("migrate-set-capabilities", new JsonObject
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "warp-drive", ["state"] = true }),
        })).Should().Contain("warp-drive");
        Desc(client.Command("migrate-set-capabilities", new JsonObject
        {
            ["capabilities"] = new JsonArray(new JsonObject { ["capability"] = "postcopy-ram", ["state"] = true }),
        })).Should().Contain("does not support");
        Desc(client.Command("migrate", new JsonObject { ["uri"] = "tcp:localhost:4444" })).Should().Contain("Unknown migration protocol");
        client.Return("query-migrate").AsObject().Should().BeEmpty("no failed argument check started a migration");
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void Two_clients_are_served_at_once_and_both_get_the_events()
    {
        using var vm = new QmpVmFixture();
        using var first = vm.Connect();
        using var second = vm.Connect();
        first.Return("stop");
        first.WaitForEvent("STOP");
        second.WaitForEvent("STOP").Should().NotBeNull("events go to every client");
        ((string?)second.Return("query-status")["status"]).Should().Be("paused", "the clients share one VM");
        second.Return("cont");
        first.WaitForEvent("RESUME");
        second.WaitForEvent("RESUME");
        first.Dispose();
        second.Return("query-status"); // one leaving does not end the other's session
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void Hmp_shows_registers_and_guest_memory_and_the_schema_lists_every_command()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        string regs = client.Hmp("info registers");
        regs.Should().MatchRegex(@"RIP=[0-9a-f]{16} RFL=").And.Contain("CR3=");
        // hvm_start_info at 0x6000 starts with its magic, 0x336ec578 (the PVH ABI).
        client.Hmp("xp /1xw 0x6000").Should().Be("0000000000006000: 0x336ec578\n");
        client.Hmp("xp /2xw 0xffffffffff000").Should().Contain("Cannot access memory", "an address outside RAM is refused, not read");
        client.Hmp("x /1xb 0x6000").Should().MatchRegex(@"^0000000000006000: 0x[0-9a-f]{2}\n$", "a virtual address goes through the guest's page tables");
        client.Hmp("info status").Should().Be("VM status: running\n");
        vm.ShouldBeRunning();

        var schema = client.Return("query-qmp-schema").AsArray();
        var commands = schema.Where(e => (string?)e!["meta-type"] == "command").Select(e => (string)e!["name"]!).ToList();
        var listed = client.Return("query-commands").AsArray().Select(c => (string)c!["name"]!).ToList();
        commands.Should().BeEquivalentTo(listed);
        var migrateArgs = schema.Single(e => (string?)e!["name"] == "migrate-arg")!["members"]!.AsArray();
        migrateArgs.Single(m => (string?)m!["name"] == "uri")!.AsObject().ContainsKey("default").Should().BeFalse("uri is required");
    }

    [KvmFact]
    public void A_client_that_disconnects_mid_command_leaves_the_vm_running()
    {
        using var vm = new QmpVmFixture();
        string image = GuestFiles.TempPath("qmp-disconnect.mvs");
        using (var client = vm.Connect())
        {
            client.SendRaw($"{{\"execute\":\"migrate\",\"arguments\":{{\"uri\":\"file:{image}\"}}}}\n{{\"execute\":\"query-migrate\"}}\n");
        } // gone before reading either reply
        using var next = RetryConnect(vm.SocketPath);
        ((string)next.WaitForMigration()["status"]!).Should().Be("completed", "the snapshot the vanished client started still ends");
        vm.ShouldBeRunning();
        File.Delete(image);
    }

    [KvmFact]
    public void The_socket_is_owner_only_and_removed_when_the_monitor_closes()
    {
        var vm = new QmpVmFixture();
        string path = vm.SocketPath;
        File.GetUnixFileMode(path).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        vm.Dispose();
        File.Exists(path).Should().BeFalse();
    }

    [KvmFact]
    public void Stop_and_cont_pause_the_guest_with_STOP_and_RESUME_events()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        client.Return("stop");
        client.WaitForEvent("STOP")["timestamp"]!["seconds"]!.GetValue<long>().Should().BePositive();
        ((string)client.Return("query-status")["status"]!).Should().Be("paused");
        client.Hmp("info status").Should().Be("VM status: paused\n");
        ulong frozen = vm.Generation;
        Thread.Sleep(300);
        vm.Generation.Should().Be(frozen, "no vCPU runs while stopped");
        client.Return("stop");
        client.Return("cont");
        client.WaitForEvent("RESUME");
        client.Events.Count(e => (string?)e["event"] == "STOP").Should().Be(1, "a second stop changes nothing");
        ((string)client.Return("query-status")["status"]!).Should().Be("running");
        vm.ShouldBeRunning();
    }

    [KvmFact]
    public void Quit_replies_sends_SHUTDOWN_and_stops_the_vm()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        client.Command("quit", id: "q")["id"]!.GetValue<string>().Should().Be("q");
        ((string)client.WaitForEvent("SHUTDOWN")["data"]!["reason"]!).Should().Be("host-qmp-quit");
        vm.Run.WaitForExit(TimeSpan.FromSeconds(20)).Reason.Should().Be(VmStopReason.HostRequest);
        vm.Server.QuitRequested.Should().BeTrue("the CLI exits 0 for quit, as QEMU does");
    }

    [KvmFact]
    public void System_reset_stops_the_vm_with_the_reset_status_as_QEMU_does_under_no_reboot()
    {
        using var vm = new QmpVmFixture();
        using var client = vm.Connect();
        client.Return("system_reset");
        ((string)client.WaitForEvent("SHUTDOWN")["data"]!["reason"]!).Should().Be("host-qmp-system-reset");
        vm.Run.WaitForExit(TimeSpan.FromSeconds(20)).ProcessExitCode.Should().Be(VmExitStatus.ExitReset);
    }

    private static string Desc(JsonObject reply)
    {
        reply.Should().ContainKey("error", reply.ToJsonString());
        QmpTestClient.ErrorClass(reply).Should().Be("GenericError");
        return (string)reply["error"]!["desc"]!;
    }

    /// <summary>The server notices a closed session asynchronously: retry the connection briefly.</summary>
    internal static QmpTestClient RetryConnect(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var client = new QmpTestClient(path);
            var first = client.Read();
            if (first.ContainsKey("QMP"))
            {
                client.Command("qmp_capabilities").Should().ContainKey("return");
                return client;
            }
            client.Dispose();
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the previous QMP session did not end: " + first.ToJsonString());
            Thread.Sleep(50);
        }
    }
}
