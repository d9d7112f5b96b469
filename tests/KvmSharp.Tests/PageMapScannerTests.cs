using KvmSharp.Interop;
using MiniVmm.Tests.Shared;

namespace KvmSharp.Tests;

/// <summary>PAGEMAP_SCAN over real anonymous memory: exact runs, walks continued past a full vector, WP_ASYNC state.</summary>
public sealed class PageMapScannerTests
{
    private const ulong Page = 4096;
    private const UffdFeatures AsyncWp = UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.WpAsync;

    private sealed class Runs : IPageRunSink
    {
        public List<(ulong Page, ulong Pages)> List { get; } = [];
        public void OnRun(ulong offset, ulong length, ulong categories) => List.Add((offset / Page, length / Page));
    }

    private static MemoryMapping SmallPages(ulong pages)
    {
        var m = MemoryMapping.Anonymous(pages * Page);
        m.Advise(Libc.MADV_NOHUGEPAGE); // runs are asserted per 4 KiB page
        return m;
    }

    private static void Touch(MemoryMapping m, ulong page) => m.GetSpan(page * Page + 8, 1)[0] = 1;

    [PageMapScanFact]
    public void Present_pages_come_back_as_exact_runs_across_many_ioctls()
    {
        using var m = SmallPages(64);
        ulong[] touched = [0, 1, 2, 10, 20, 21, 40, 63];
        foreach (ulong p in touched) Touch(m, p);
        using var scanner = new PageMapScanner(capacity: 2); // 5 runs: the kernel stops on a full vector 3 times
        var runs = new Runs();
        var query = new PageScanQuery(0, CategoryMask: PageMap.PAGE_IS_PRESENT, ReturnMask: PageMap.PAGE_IS_PRESENT);

        long pages = scanner.Scan(m, query, ref runs);

        pages.Should().Be(touched.Length);
        runs.List.Should().Equal((0UL, 3UL), (10UL, 1UL), (20UL, 2UL), (40UL, 1UL), (63UL, 1UL));
    }

    [PageMapScanFact]
    public void Written_pages_under_an_async_write_protection_are_reported_and_reprotected()
    {
        using var m = SmallPages(32);
        Touch(m, 5); // populated before tracking; the rest is never touched
        using var uffd = UserfaultFd.Create(AsyncWp);
        uffd.Register(m, UffdRegisterMode.WriteProtect);
        uffd.WriteProtect(m, 0, m.Length, protect: true);
        using var scanner = new PageMapScanner();
        var none = new Runs();
        scanner.ScanWritten(m, reprotect: false, ref none).Should().Be(0);

        foreach (ulong p in new ulong[] { 3, 4, 5, 31 }) Touch(m, p);
        var first = new Runs();
        scanner.ScanWritten(m, reprotect: true, ref first).Should().Be(4);
        first.List.Should().Equal((3UL, 3UL), (31UL, 1UL));

        // Re-protected by the same walk: clean until written again.
        Touch(m, 4);
        var second = new Runs();
        scanner.ScanWritten(m, reprotect: false, ref second);
        second.List.Should().Equal((4UL, 1UL));
    }

    [PageMapScanFact]
    public void Empty_finds_exactly_the_pages_discarded_after_an_unpopulated_protection()
    {
        using var m = SmallPages(16);
        for (ulong p = 0; p < 8; p++) Touch(m, p); // 8..15 never touched: protect installs markers there
        using var uffd = UserfaultFd.Create(AsyncWp);
        uffd.Register(m, UffdRegisterMode.WriteProtect);
        uffd.WriteProtect(m, 0, m.Length, protect: true);
        using var scanner = new PageMapScanner();
        var before = new Runs();
        scanner.Scan(m, PageScanQuery.Empty, ref before).Should().Be(0, "a marker is not empty");

        m.Discard(2 * Page, 2 * Page);   // populated pages
        m.Discard(12 * Page, Page);      // a marker
        Touch(m, 3);                     // re-populated: present again, no longer empty
        var after = new Runs();
        scanner.Scan(m, PageScanQuery.Empty, ref after);

        after.List.Should().Equal((2UL, 1UL), (12UL, 1UL));
    }

    [PageMapScanFact]
    public void A_written_scan_outside_an_async_registration_fails_with_a_reason()
    {
        using var m = SmallPages(4);
        using var scanner = new PageMapScanner();
        var runs = new Runs();
        var act = () => scanner.ScanWritten(m, reprotect: false, ref runs);
        act.Should().Throw<LinuxException>().Where(e => e.Errno == Errno.EPERM && e.Message.Contains("WP_ASYNC"));
    }

    [PageMapScanFact]
    public void An_unaligned_range_is_refused_before_the_kernel_sees_it()
    {
        using var m = SmallPages(4);
        using var scanner = new PageMapScanner();
        var runs = new Runs();
        var act = () => scanner.Scan(m.DangerousGetAddress() + 1, Page, PageScanQuery.Empty, ref runs);
        act.Should().Throw<ArgumentException>();
        scanner.Dispose();
        var disposed = () => scanner.Scan(m.DangerousGetAddress(), Page, PageScanQuery.Empty, ref runs);
        disposed.Should().Throw<ObjectDisposedException>();
    }
}

/// <summary>Needs PAGEMAP_SCAN and WP_ASYNC userfaultfd (Linux 6.7+, root or vm.unprivileged_userfaultfd=1); never skipped under CI=true.</summary>
public sealed class PageMapScanFactAttribute : FactAttribute
{
    public PageMapScanFactAttribute()
    {
        Skip = HostFeature.SkipUnlessPresent("PAGEMAP_SCAN and userfaultfd WP_ASYNC", Reason);
    }

    public static string Reason { get; } = Probe();

    private static string Probe()
    {
        if (!PageMapScanner.IsSupported(out string? why)) return why!;
        try
        {
            using var uffd = UserfaultFd.Create(UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.WpAsync);
            return "";
        }
        catch (LinuxException e) { return e.Message; }
    }
}
