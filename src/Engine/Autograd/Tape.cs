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
    private readonly List<Tensor> gradientOwners = new();
    private List<BackwardRecord> backwards = new();
    private bool inBackward;
    private bool unrecorded;

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

    /// <summary>
    /// True (off by default) to run a <see cref="Checkpoint"/> segment's forward without keeping what
    /// its backward needs and to run that forward again inside the backward (activation
    /// recomputation): a lower peak, the same bits, one more forward of each segment.
    /// </summary>
    public bool RecomputesSegments { get; set; }

    /// <summary>
    /// True while ops record their backwards: training, outside the first forward of a recomputed
    /// segment. An op does the work only its backward needs (e.g. compressing its input) only then.
    /// </summary>
    public bool Recording => Training && !unrecorded;

    /// <summary>
    /// True while a recomputed segment's forward runs again inside the backward: ops reuse what the
    /// first forward selected (the top-K weights), leave the running statistics alone and count no
    /// FLOPs (the model's FLOPs are those of one forward).
    /// </summary>
    public bool Recomputing { get; private set; }

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
        if (!Recording)
        {
            return new BackwardRecord(this, null, null);
        }
        var record = new BackwardRecord(this, output is null ? null : output.Root ?? output, backward);
        backwards.Add(record);
        return record;
    }

    /// <summary>
    /// Runs <paramref name="forward"/> on <paramref name="input"/> as one segment. With
    /// <see cref="RecomputesSegments"/> while recording, the forward runs unrecorded (it keeps nothing
    /// for the backward; every temporary but its output is freed as it goes) and the segment
    /// records one backward that keeps <paramref name="input"/>, runs the forward again recorded, and
    /// then that forward's backwards. The forward must be deterministic and read nothing but its
    /// input and parameters: the recomputed output is bitwise the first one, so the gradients are
    /// those of the plain forward. Otherwise it is just <c>forward(input)</c>.
    /// </summary>
    public Tensor Checkpoint(Tensor input, Func<Tensor, Tensor> forward)
    {
        if (!RecomputesSegments || !Recording || Recomputing)
        {
            return forward(input);
        }
        Tensor output;
        unrecorded = true;
        try
        {
            output = forward(input);
        }
        finally
        {
            unrecorded = false;
        }
        if (!output.RequiresGrad)
        {
            return output;
        }
        Record(output, () => Recompute(input, output, forward)).Reads(input);
        return output;
    }

    /// <summary>The recorded backward of a <see cref="Checkpoint"/> segment.</summary>
    private void Recompute(Tensor input, Tensor output, Func<Tensor, Tensor> forward)
    {
        if (!output.HasGrad)
        {
            return;
        }
        var outer = backwards;
        backwards = new();
        inBackward = false;
        Recomputing = true;
        try
        {
            var again = forward(input);
            var root = again.Root ?? again;
            if (again.Length != output.Length || !root.OwnedByTape)
            {
                throw new InvalidOperationException($"a recomputed segment gave {again}, the first forward {output}");
            }
            // The segment's output gradient is the first output's (freed by this record, not by
            // the recomputed output's producer: the tape does not own it through this tensor).
            again.AttachGrad(output.Grad);
            Release(again);
            Recomputing = false;
            inBackward = true;
            for (int i = backwards.Count - 1; i >= 0; i--)
            {
                backwards[i].Run();
            }
        }
        finally
        {
            backwards = outer;
            Recomputing = false;
            inBackward = true;
        }
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
        var records = backwards;
        try
        {
            for (int i = records.Count - 1; i >= 0; i--)
            {
                records[i].Run();
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
        unrecorded = false;
        Recomputing = false;
        foreach (var tensor in gradientOwners)
        {
            tensor.DetachGrad();
        }
        gradientOwners.Clear();
        Workspace.Reset();
        inBackward = false;
    }
}
