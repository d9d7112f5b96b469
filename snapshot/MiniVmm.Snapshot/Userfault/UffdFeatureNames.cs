using KvmSharp;

namespace MiniVmm.Snapshot.Userfault;

/// <summary>Names userfaultfd features for the error that says which ones a kernel lacks.</summary>
internal static class UffdFeatureNames
{
    public static string Describe(UffdFeatures bits)
    {
        var names = new List<string>();
        if ((bits & UffdFeatures.PagefaultFlagWp) != 0) names.Add("PAGEFAULT_FLAG_WP (write protection)");
        if ((bits & UffdFeatures.WpUnpopulated) != 0) names.Add("WP_UNPOPULATED (Linux 6.4+: protection of never-touched pages)");
        if ((bits & UffdFeatures.WpAsync) != 0) names.Add("WP_ASYNC (Linux 6.7+: write protection resolved by the kernel)");
        if ((bits & UffdFeatures.ThreadId) != 0) names.Add("THREAD_ID");
        if ((bits & UffdFeatures.Move) != 0) names.Add("MOVE (Linux 6.8+: UFFDIO_MOVE)");
        var rest = bits & ~(UffdFeatures.PagefaultFlagWp | UffdFeatures.WpUnpopulated | UffdFeatures.WpAsync | UffdFeatures.ThreadId | UffdFeatures.Move);
        if (rest != 0) names.Add(rest.ToString());
        return names.Count > 0 ? string.Join(", ", names) : "none";
    }
}
