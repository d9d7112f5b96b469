using System.Reflection;

namespace MiniVmm.Architecture.Tests;

/// <summary>
/// KvmSharp's raw layer cannot leak: the P/Invoke declarations, ioctl numbers and kernel structs of
/// <c>KvmSharp.Interop</c> are internal, and nothing public hands out a pointer or a raw host address. Kernel ABI
/// structs that callers must read (vCPU registers, irqchip state) are public in <c>KvmSharp.Abi</c>, as plain data.
/// </summary>
public sealed class InteropSurfaceTests
{
    private static readonly Assembly KvmSharp = typeof(global::KvmSharp.UserfaultFd).Assembly;

    private const BindingFlags Visible = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    [Fact]
    public void No_type_of_the_interop_namespace_is_public()
    {
        KvmSharp.GetExportedTypes().Where(t => t.Namespace == "KvmSharp.Interop").Select(t => t.FullName)
            .Should().BeEmpty("libc, ioctl numbers and kernel structs stay inside KvmSharp");
    }

    [Fact]
    public void No_public_member_takes_or_returns_a_pointer_or_a_raw_address()
    {
        var leaks = new List<string>();
        foreach (var type in KvmSharp.GetExportedTypes())
        {
            foreach (var m in type.GetMethods(Visible).Where(m => !m.IsSpecialName || m.Name.StartsWith("get_", StringComparison.Ordinal)))
            {
                if (IsRaw(m.ReturnType)) leaks.Add($"{type.Name}.{m.Name} returns {m.ReturnType.Name}");
                foreach (var p in m.GetParameters().Where(p => IsRaw(p.ParameterType)))
                    leaks.Add($"{type.Name}.{m.Name}({p.Name}: {p.ParameterType.Name})");
            }
            foreach (var c in type.GetConstructors(Visible))
                foreach (var p in c.GetParameters().Where(p => IsRaw(p.ParameterType)))
                    leaks.Add($"{type.Name}..ctor({p.Name}: {p.ParameterType.Name})");
        }
        leaks.Should().BeEmpty("callers name memory by mapping and offset; only KvmSharp turns that into an address");
    }

    [Fact]
    public void Kernel_objects_are_not_handed_out_as_handles()
    {
        // Owners stay owners: an epoll borrows a kernel object through IPollable, it never gets its SafeHandle.
        var handles = new List<string>();
        foreach (var type in KvmSharp.GetExportedTypes())
            foreach (var p in type.GetProperties(Visible).Where(p => typeof(System.Runtime.InteropServices.SafeHandle).IsAssignableFrom(p.PropertyType)))
                handles.Add($"{type.Name}.{p.Name}");
        handles.Should().BeEmpty();
    }

    private static bool IsRaw(Type t)
    {
        if (t.IsByRef) t = t.GetElementType()!;
        return t.IsPointer || t == typeof(nint) || t == typeof(nuint) || t.IsFunctionPointer;
    }
}
