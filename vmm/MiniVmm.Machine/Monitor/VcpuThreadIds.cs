namespace MiniVmm.Machine.Monitor;

/// <summary>
/// Linux thread ids of the vCPU threads, for query-cpus-fast (scripts pin or profile them). .NET does not expose a
/// thread's tid, but it names the OS thread after Thread.Name ("vcpuN"), which /proc/self/task/TID/comm shows.
/// </summary>
internal static class VcpuThreadIds
{
    public static long[] Find(int count)
    {
        var tids = new long[count];
        try
        {
            foreach (string dir in Directory.EnumerateDirectories("/proc/self/task"))
            {
                string comm;
                try { comm = File.ReadAllText(Path.Combine(dir, "comm")).Trim(); }
                catch (IOException) { continue; } // the thread ended meanwhile
                if (comm.StartsWith("vcpu", StringComparison.Ordinal) && int.TryParse(comm.AsSpan(4), out int index)
                    && index >= 0 && index < count && long.TryParse(Path.GetFileName(dir), out long tid))
                    tids[index] = tid;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return tids;
    }
}
