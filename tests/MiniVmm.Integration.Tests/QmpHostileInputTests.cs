using MiniVmm.Tests.Shared;

namespace MiniVmm.Integration.Tests;

/// <summary>Malformed QMP input gets a QMP error and leaves the session (and the VM) working.</summary>
public sealed class QmpHostileInputTests
{
    [KvmFact]
    public void Lone_surrogates_in_names_ids_and_arguments_are_json_errors_and_the_session_goes_on()
    {
        using var vm = new QmpVmFixture();
        using var client = QmpTestClient.Negotiated(vm.SocketPath);
        string[] bad =
        [
            "{\"execute\":\"\\ud800\"}\n",
            "{\"execute\":\"query-status\",\"id\":\"\\ud800\"}\n",
            "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"\\udc00\"}}\n",
            "{\"execute\":\"query-status\",\"\\ud800\":1}\n",
            "{\"execute\":\"migrate\",\"arguments\":{\"uri\":[\"\\udbff\"]}}\n",
        ];
        foreach (string request in bad)
        {
            client.SendRaw(request);
            var reply = client.ReadReply();
            QmpTestClient.ErrorClass(reply).Should().Be("GenericError", request);
            ((string)reply["error"]!["desc"]!).Should().Contain("JSON parse error", request);
        }
        ((string)client.Return("query-status")["status"]!).Should().Be("running");
    }
}
