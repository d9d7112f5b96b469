using Microsoft.Extensions.Logging;

namespace MiniVmm.Core.Runtime;

/// <summary>
/// What a composite (a VM) acquires, level by level, and releases in the matching reverse order: the highest level
/// first, and within a level the last acquired first (the model is kvmtool's init/exit levels). Anything can be added
/// later at its own level (a lazy-restore backend after the vCPUs exist) and still goes in its place.
/// A <em>guard</em> sits at the bottom of its level: once that level is released, teardown asks it whether the
/// threads that use the lower levels have ended. If not, teardown stops there and reports an internal error: what is
/// below is left (reclaimed at process exit), never freed under a running thread.
/// </summary>
/// <typeparam name="TLevel">The levels, in acquisition order (lowest value first).</typeparam>
public sealed class OrderedLifetime<TLevel> : IDisposable where TLevel : struct, Enum
{
    private readonly record struct Entry(TLevel Level, long Sequence, string Name, Action? Release, Func<bool>? HasQuiesced);

    private readonly ILogger _log;
    private readonly object _gate = new();
    private readonly List<Entry> _entries = new();
    private long _sequence;
    private bool _released;

    public OrderedLifetime(ILogger log) => _log = log;

    /// <summary>Takes ownership of <paramref name="resource"/> at <paramref name="level"/> and returns it.</summary>
    /// <exception cref="ObjectDisposedException">Teardown has begun: the resource is released at once.</exception>
    public T Own<T>(TLevel level, T resource) where T : IDisposable
    {
        ArgumentNullException.ThrowIfNull(resource);
        Add(level, resource.GetType().Name, resource.Dispose, null);
        return resource;
    }

    /// <summary>Registers a release step at <paramref name="level"/> (for a resource that is not an <see cref="IDisposable"/>).</summary>
    public void OnRelease(TLevel level, string name, Action release)
    {
        ArgumentNullException.ThrowIfNull(release);
        Add(level, name, release, null);
    }

    /// <summary>
    /// Registers a guard at the bottom of <paramref name="level"/>: after everything at that level and above is released,
    /// <paramref name="hasQuiesced"/> must say that <paramref name="threads"/> have ended before anything lower is.
    /// </summary>
    public void Guard(TLevel level, string threads, Func<bool> hasQuiesced)
    {
        ArgumentNullException.ThrowIfNull(hasQuiesced);
        Add(level, threads, null, hasQuiesced);
    }

    /// <summary>The steps teardown would run now, in order (for tests and diagnostics).</summary>
    public IReadOnlyList<string> TeardownOrder()
    {
        lock (_gate) return [.. InTeardownOrder().Select(e => e.Release is null ? $"guard: {e.Name}" : e.Name)];
    }

    /// <summary>True when the last teardown stopped at a guard and left the lower levels unreleased.</summary>
    public bool LeftResources { get; private set; }

    public void Dispose()
    {
        Entry[] order;
        lock (_gate)
        {
            if (_released) return;
            _released = true;
            order = InTeardownOrder();
            _entries.Clear();
        }
        foreach (var entry in order)
        {
            if (entry.HasQuiesced is { } quiesced)
            {
                if (quiesced()) continue;
                LeftResources = true;
                _log.LogError("internal error: {Threads} did not stop; what they use ({Levels}) is left allocated", entry.Name,
                    string.Join(", ", order.SkipWhile(e => !e.Equals(entry)).Skip(1).Where(e => e.Release is not null).Select(e => e.Name)));
                return;
            }
            try { entry.Release!(); }
            catch (Exception e)
            {
                // One failed release must not leak everything below it.
                _log.LogError(e, "releasing {Name} failed", entry.Name);
            }
        }
    }

    private void Add(TLevel level, string name, Action? release, Func<bool>? hasQuiesced)
    {
        lock (_gate)
        {
            if (!_released)
            {
                // A guard sorts below everything of its level however late it is added.
                long sequence = hasQuiesced is null ? ++_sequence : long.MinValue + ++_sequence;
                _entries.Add(new Entry(level, sequence, name, release, hasQuiesced));
                return;
            }
        }
        release?.Invoke();
        throw new ObjectDisposedException(nameof(OrderedLifetime<TLevel>), $"{name} was added after teardown began; it has been released");
    }

    private Entry[] InTeardownOrder() =>
        [.. _entries.OrderByDescending(e => e.Level).ThenByDescending(e => e.Sequence)];
}
