using System.Runtime.ExceptionServices;
using KvmSharp;
using Microsoft.Extensions.Logging;

namespace MiniVmm.Core.Runtime;

public enum VcpuRunState { Created, Running, Paused, Stopped }

/// <summary>
/// One named thread per vCPU running KVM_RUN in a loop. Other threads talk to it through a mailbox: pause (acknowledged
/// once the vCPU is out of the guest), resume, stop, and work to run on the vCPU thread while paused (state capture and
/// restore). A kick (immediate_exit + real-time signal) gets the thread out of KVM_RUN even in a tight guest loop.
/// </summary>
public sealed class VcpuThread : IDisposable
{
    private readonly Vcpu _vcpu;
    private readonly IVcpuExitHandler _handler;
    private readonly ILogger _log;
    private readonly Thread _thread;
    private readonly object _gate = new();
    private readonly Queue<Action<Vcpu>> _work = new();
    private bool _pauseRequested;
    private bool _stopRequested;
    private VcpuRunState _state = VcpuRunState.Created;
    private Exception? _fault;

    public VcpuThread(Vcpu vcpu, IVcpuExitHandler handler, ILogger log)
    {
        _vcpu = vcpu;
        _handler = handler;
        _log = log;
        _thread = new Thread(Loop) { Name = $"vcpu{vcpu.Index}", IsBackground = true };
    }

    public int Index => _vcpu.Index;

    public VcpuRunState State { get { lock (_gate) return _state; } }

    /// <summary>An exception that ended the loop (a VMM bug or a KVM failure), for the VM to report.</summary>
    public Exception? Fault { get { lock (_gate) return _fault; } }

    /// <summary>Raised on the vCPU thread when the loop ends by itself (guest exit, fatal exit, fault).</summary>
    public event Action<VcpuThread>? Exited;

    /// <summary>Starts the thread; with <paramref name="paused"/> it waits for <see cref="Resume"/> before entering the guest.</summary>
    public void Start(bool paused = false)
    {
        lock (_gate) _pauseRequested = paused;
        VcpuKickSignal.Install();
        _thread.Start();
    }

    /// <summary>Asks the vCPU to leave the guest and waits until it has (or has stopped). True when paused.</summary>
    public bool Pause(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            if (_state is VcpuRunState.Stopped) return false;
            _pauseRequested = true;
        }
        while (true)
        {
            _vcpu.Kick();
            lock (_gate)
            {
                if (_state is VcpuRunState.Paused) return true;
                if (_state is VcpuRunState.Stopped) return false;
                // Re-kick periodically: a kick can be lost while the thread is between checks, e.g. blocked in the
                // kernel on a write-protected page (it re-enters KVM_RUN once the fault is served).
                if (!Monitor.Wait(_gate, 20) && DateTime.UtcNow > deadline) return _state is VcpuRunState.Paused;
                if (_state is VcpuRunState.Paused) return true;
            }
        }
    }

    public void Resume()
    {
        lock (_gate)
        {
            _pauseRequested = false;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the calling thread while the vCPU is paused (it is parked outside KVM_RUN, so
    /// its ioctls are free). Saves the two thread wake-ups of <see cref="Invoke{T}"/>, which cost ~1–4 ms each on a
    /// nested-virtualization host: state capture sits inside the snapshot's downtime.
    /// </summary>
    public T InvokePaused<T>(Func<Vcpu, T> work)
    {
        lock (_gate)
        {
            if (_state is not VcpuRunState.Paused || _pauseRequested is false)
                throw new InvalidOperationException($"vcpu{Index} must be paused to read its state (state {_state})");
            // Holding the lock keeps a concurrent Resume from letting the thread back into KVM_RUN meanwhile.
            return work(_vcpu);
        }
    }

    /// <summary>Runs <paramref name="work"/> on the vCPU thread while it is paused and returns its result; an exception
    /// it throws is rethrown here as it is (type and stack kept).</summary>
    public T Invoke<T>(Func<Vcpu, T> work)
    {
        T result = default!;
        Exception? error = null;
        using var done = new ManualResetEventSlim();
        lock (_gate)
        {
            if (_state is not VcpuRunState.Paused and not VcpuRunState.Created)
                throw new InvalidOperationException($"vcpu{Index} must be paused to run work on it (state {_state})");
            _work.Enqueue(v =>
            {
                try { result = work(v); }
                catch (Exception e) { error = e; }
                finally { done.Set(); }
            });
            Monitor.PulseAll(_gate);
        }
        if (_state is VcpuRunState.Created) { RunPendingWork(); }
        done.Wait();
        // The work's own exception, unchanged: callers tell a bad snapshot (StateRestoreException) from a VMM bug by
        // its type, so wrapping it would turn every refused state into an internal error.
        if (error is not null) ExceptionDispatchInfo.Throw(error);
        return result;
    }

    private void RunPendingWork()
    {
        while (true)
        {
            Action<Vcpu> item;
            lock (_gate)
            {
                if (_work.Count == 0) return;
                item = _work.Dequeue();
            }
            item(_vcpu);
        }
    }

    /// <summary>Stops the loop and waits for the thread to end.</summary>
    public void Stop(TimeSpan timeout)
    {
        lock (_gate)
        {
            _stopRequested = true;
            Monitor.PulseAll(_gate);
        }
        if (!_thread.IsAlive) return;
        var deadline = DateTime.UtcNow + timeout;
        while (!_thread.Join(20))
        {
            _vcpu.Kick();
            if (DateTime.UtcNow > deadline)
            {
                _log.LogWarning("vcpu{Index} did not stop within {Timeout}", Index, timeout);
                return;
            }
        }
    }

    private void Loop()
    {
        _vcpu.BindToCurrentThread();
        bool selfExit = false;
        try
        {
            while (true)
            {
                if (!WaitWhilePaused()) break;
                var exit = _vcpu.Run();
                if (exit.Kind == VcpuExitKind.Interrupted) continue;
                if (_handler.Handle(_vcpu, exit) == VcpuAction.Stop)
                {
                    selfExit = true;
                    break;
                }
            }
        }
        catch (Exception e)
        {
            _log.LogError(e, "vcpu{Index} failed", Index);
            lock (_gate) _fault = e;
            selfExit = true;
        }
        finally
        {
            lock (_gate)
            {
                _state = VcpuRunState.Stopped;
                Monitor.PulseAll(_gate);
            }
            // Fail pending Invoke calls instead of leaving their callers blocked.
            RunPendingWorkAfterStop();
        }
        if (selfExit) Exited?.Invoke(this);
    }

    private void RunPendingWorkAfterStop()
    {
        lock (_gate)
        {
            while (_work.Count > 0)
            {
                var item = _work.Dequeue();
                try { item(_vcpu); } catch { /* reported through Invoke */ }
            }
        }
    }

    /// <summary>Parks the thread while a pause is requested, running queued work. False when a stop was requested.</summary>
    private bool WaitWhilePaused()
    {
        while (true)
        {
            Action<Vcpu>? item = null;
            lock (_gate)
            {
                if (_stopRequested) return false;
                if (!_pauseRequested && _work.Count == 0)
                {
                    _state = VcpuRunState.Running;
                    return true;
                }
                if (_state != VcpuRunState.Paused)
                {
                    _state = VcpuRunState.Paused;
                    Monitor.PulseAll(_gate);
                }
                if (_work.Count > 0) item = _work.Dequeue();
                else Monitor.Wait(_gate);
            }
            item?.Invoke(_vcpu);
        }
    }

    public void Dispose() => Stop(TimeSpan.FromSeconds(5));
}
