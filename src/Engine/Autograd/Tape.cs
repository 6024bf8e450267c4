using ILGPU;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Profiling;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Autograd;

/// <summary>
/// Records each op's backward as its forward runs, then replays them in reverse. Every op takes the
/// tape, launches its forward kernels, and records a closure that accumulates (+=) into the
/// gradients of its inputs. Temporaries come from the tape's <see cref="Workspace"/>; call
/// <see cref="Reset"/> once per step. With <see cref="Training"/> false nothing is recorded.
/// </summary>
/// <remarks>
/// Liveness: each record names the op's output, the tensors its backward reads and the buffers it
/// keeps. A tensor of the tape is freed when the forward has released it (<see cref="Release"/>:
/// a module releases what it made once its last forward reader ran; the caller owns a module's
/// input and output) and every backward reading it has run; an output's gradient is freed once its
/// producer's backward consumed it; an op's kept buffers once its backward ran. Freed memory is
/// reused by later launches on the same stream only (see <see cref="DeviceArena{T}"/>).
/// </remarks>
public sealed class Tape
{
    private readonly List<BackwardRecord> backwards = new();
    private readonly List<Tensor> gradientOwners = new();
    private bool inBackward;

    /// <summary>Creates a tape drawing temporaries from <paramref name="workspace"/>.</summary>
    public Tape(Workspace workspace)
    {
        Workspace = workspace;
    }

    /// <summary>
    /// True (the default) to free each temporary once its last reader has run; false keeps every
    /// temporary to <see cref="Reset"/> (the arena as a plain bump allocator: the same results, the
    /// memory of all the step's temporaries at once).
    /// </summary>
    public bool FreesEarly { get; set; } = true;

    /// <summary>Where activations and their gradients live.</summary>
    public Workspace Workspace { get; }

    /// <summary>The device.</summary>
    public ComputeDevice Device => Workspace.Device;

    /// <summary>The kernels of the device.</summary>
    public KernelLibrary Kernels => Workspace.Device.Kernels;

    /// <summary>True while training: ops record backwards and batch-norm uses batch statistics.</summary>
    public bool Training { get; set; } = true;

    /// <summary>Dotted path of the module whose ops are running (set by layers; names profiler rows).</summary>
    public string Scope { get; set; } = string.Empty;

    /// <summary>Per-layer timing and counters, or null when not profiling.</summary>
    public OpProfiler? Profiler { get; set; }

    /// <summary>Dense and actual FLOPs of conv and linear layers, summed until cleared.</summary>
    public FlopCounter Flops { get; } = new();

    /// <summary>
    /// Times a pass of op <paramref name="kind"/> under the module path <paramref name="name"/> (the
    /// current <see cref="Scope"/> when null) while profiling; a no-op scope otherwise.
    /// </summary>
    public OpProfiler.Scope Measure(string kind, Pass pass, string? name = null) =>
        Profiler is null ? default : Profiler.Measure(name ?? (Scope.Length == 0 ? kind : Scope), kind, pass);

    /// <summary>Number of recorded backward closures.</summary>
    public int Count => backwards.Count;

    /// <summary>
    /// A new activation tensor from the workspace (not zeroed), held by the forward until
    /// <see cref="Release"/>.
    /// </summary>
    public Tensor NewTensor(int[] shape, bool requiresGrad)
    {
        var view = Workspace.Floats.Allocate(Tensor.ShapeLength(shape));
        return new Tensor(view, shape, requiresGrad && Training) { OwnedByTape = true, Holds = 1 };
    }

    /// <summary>
    /// The forward is done with <paramref name="tensor"/> (every op that reads it in the forward has
    /// run): its data is freed now unless a recorded backward reads it (then after the last one ran).
    /// A tensor the tape did not make (a parameter, a caller's buffer) is left alone. Release each
    /// tensor once; a reshaped view releases its base.
    /// </summary>
    public void Release(Tensor tensor)
    {
        var root = tensor.Root ?? tensor;
        if (root.OwnedByTape && FreesEarly)
        {
            Drop(root);
        }
    }

    /// <summary>
    /// Records the backward of the op that just ran, which produced <paramref name="output"/> (null
    /// for none): after it runs, the output's gradient is freed, and so are what the record reads and
    /// keeps (<see cref="BackwardRecord"/>). When not training nothing is recorded and the returned
    /// record frees what it is asked to keep at once.
    /// </summary>
    public BackwardRecord Record(Tensor? output, Action backward)
    {
        if (!Training)
        {
            return new BackwardRecord(this, null, null);
        }
        var record = new BackwardRecord(this, output is null ? null : output.Root ?? output, backward);
        backwards.Add(record);
        return record;
    }

    /// <summary>Frees a workspace view no kernel launched later reads (a temporary of the op running now).</summary>
    public void Discard(ArrayView<float> view)
    {
        if (FreesEarly)
        {
            Workspace.Floats.Free(view);
        }
    }

    /// <summary>Frees a workspace view no kernel launched later reads (a temporary of the op running now).</summary>
    public void Discard(ArrayView<int> view)
    {
        if (FreesEarly)
        {
            Workspace.Ints.Free(view);
        }
    }

    /// <summary>Adds a hold on a tape tensor's data (a record reads it).</summary>
    internal void Hold(Tensor root)
    {
        if (root.OwnedByTape)
        {
            if (root.Freed)
            {
                throw new InvalidOperationException($"{root} was freed before a backward that reads it was recorded");
            }
            root.Holds++;
        }
    }

    /// <summary>
    /// Removes a hold; frees the data at none. When the forward drops the last hold but the one of
    /// a record that can do with a smaller form (<see cref="Tensor.Compact"/>), that form is made and
    /// the data freed now rather than kept to the backward.
    /// </summary>
    internal void Drop(Tensor root)
    {
        if (!root.OwnedByTape || !FreesEarly)
        {
            return;
        }
        if (root.Holds <= 0)
        {
            throw new InvalidOperationException($"{root} released more often than it was held");
        }
        root.Holds--;
        if (root.Holds == 1 && root.Compact is { } compact && !inBackward)
        {
            root.Compact = null;
            compact();
            root.Compacted = true;
            root.Holds = 0;
        }
        if (root.Holds == 0)
        {
            Workspace.Floats.Free(root.Data);
            root.Freed = true;
        }
    }

    /// <summary>Frees the gradient of <paramref name="root"/> when the tape allocated it: its producer's backward consumed it.</summary>
    internal void FreeGradient(Tensor root)
    {
        if (FreesEarly && root.GradOwnedByTape && root.HasGrad)
        {
            Workspace.Floats.Free(root.Grad);
            root.DetachGrad();
        }
    }

    /// <summary>
    /// The gradient of <paramref name="tensor"/>, allocated zeroed from the workspace the first time
    /// it is asked for (parameters already carry theirs).
    /// </summary>
    public ArrayView<float> GradOf(Tensor tensor)
    {
        if (!tensor.HasGrad)
        {
            tensor.AttachGrad(Workspace.Floats.AllocateZeroed(tensor.Length));
            (tensor.Root ?? tensor).GradOwnedByTape = true;
            gradientOwners.Add(tensor.Root ?? tensor);
        }
        return tensor.Grad;
    }

    /// <summary>
    /// The gradient of <paramref name="tensor"/> for an op about to add its contribution. When the
    /// tensor has none yet, a new buffer, not zeroed: <paramref name="overwrite"/> is then true and
    /// the op must write every element (its contribution is the whole gradient so far), which saves
    /// zeroing the buffer and reading it back. Else the existing gradient, to accumulate into.
    /// </summary>
    public ArrayView<float> GradToWrite(Tensor tensor, out bool overwrite)
    {
        overwrite = !tensor.HasGrad;
        if (overwrite)
        {
            tensor.AttachGrad(Workspace.Floats.Allocate(tensor.Length));
            (tensor.Root ?? tensor).GradOwnedByTape = true;
            gradientOwners.Add(tensor.Root ?? tensor);
        }
        return tensor.Grad;
    }

    /// <summary>Runs every recorded backward in reverse order, freeing what each one was the last to read.</summary>
    public void Backward()
    {
        inBackward = true;
        try
        {
            for (int i = backwards.Count - 1; i >= 0; i--)
            {
                backwards[i].Run();
            }
        }
        finally
        {
            inBackward = false;
            backwards.Clear();
        }
    }

    /// <summary>Forgets the records and takes back every temporary of the step.</summary>
    public void Reset()
    {
        backwards.Clear();
        foreach (var tensor in gradientOwners)
        {
            tensor.DetachGrad();
        }
        gradientOwners.Clear();
        Workspace.Reset();
        inBackward = false;
    }
}
