using System.Diagnostics;
using MiniVmm.Snapshot.S3;

namespace MiniVmm.Integration.Tests;

/// <summary>
/// A real Ceph RADOS Gateway on loopback, started with tests/s3/rgw.sh under a directory of its own and stopped (and
/// deleted) on dispose. A host that cannot start it fails the test, loudly: the S3 tests never pass without a store.
/// </summary>
public sealed class RgwStore : IDisposable
{
    private readonly string _dir;
    private bool _stopped;

    public RgwStore()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"minivmm-rgw-{System.Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        var (rc, stdout, stderr) = Script("start");
        if (rc != 0)
            throw new InvalidOperationException($"tests/s3/rgw.sh start failed (exit {rc}; install ceph-mon ceph-osd radosgw ceph-common): {stderr} {Logs()}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length < 3) throw new InvalidOperationException($"tests/s3/rgw.sh printed no endpoint: {stdout}");
        Endpoint = lines[0];
        AccessKey = lines[1];
        SecretKey = lines[2];
    }

    public string Endpoint { get; }
    public string AccessKey { get; }
    public string SecretKey { get; }
    public S3Settings Settings => new(Endpoint, AccessKey, SecretKey, "us-east-1");

    /// <summary>The environment a minivmm process gets to reach this store.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["AWS_ENDPOINT_URL"] = Endpoint, ["AWS_ACCESS_KEY_ID"] = AccessKey, ["AWS_SECRET_ACCESS_KEY"] = SecretKey,
    };

    /// <summary>A new, empty bucket for one test.</summary>
    public string NewBucket()
    {
        string bucket = "t-" + Guid.NewGuid().ToString("N")[..20];
        using var store = new S3ObjectStore(Settings);
        store.CreateBucketAsync(bucket, CancellationToken.None).GetAwaiter().GetResult();
        return bucket;
    }

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "MiniVmm.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root");
        }
    }

    private (int, string, string) Script(string command)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(RepositoryRoot, "tests", "s3", "rgw.sh"));
        psi.ArgumentList.Add(command);
        psi.ArgumentList.Add(_dir);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "", "rgw.sh " + command + " did not finish within 90 s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private string Logs()
    {
        try { return string.Join("\n", Directory.GetFiles(Path.Combine(_dir, "log")).Select(f => f + ": " + string.Join("\n", File.ReadLines(f).TakeLast(5)))); }
        catch (IOException) { return ""; }
    }

    /// <summary>Stops the gateway and its cluster (the store becomes unreachable).</summary>
    public void Stop()
    {
        if (_stopped) return;
        _stopped = true;
        Script("stop");
    }

    public void Dispose()
    {
        Stop();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>One gateway shared by the S3 tests of a class (each test makes its own bucket).</summary>
[CollectionDefinition("rgw")]
public sealed class RgwCollection : ICollectionFixture<RgwStore>;
