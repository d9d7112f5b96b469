// Fixtures for NamespaceCycleTests: namespaces that use each other only inside method bodies and lambdas, which a
// signature-only scan would miss.
namespace MiniVmm.Architecture.Tests.Samples.Lower
{
    internal static class Callee
    {
        public static int Value() => 42;
    }
}

namespace MiniVmm.Architecture.Tests.Samples.Upper
{
    internal static class Caller
    {
        public static int Call() => Lower.Callee.Value() + 1;
    }
}

namespace MiniVmm.Architecture.Tests.Samples.CycleA
{
    internal static class First
    {
        public static int Call() => CycleB.Second.Value();
        public static int Value() => 1;
    }
}

namespace MiniVmm.Architecture.Tests.Samples.CycleB
{
    internal static class Second
    {
        public static int Value() => 2;
        public static Func<int> Later(int k) => () => CycleA.First.Value() + k; // only inside a closure class
    }
}
