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
public sealed class Tape
{
    private readonly List<Action> backwards = new();
    private readonly List<Tensor> gradientOwners = new();

    /// <summary>Creates a tape drawing temporaries from <paramref name="workspace"/>.</summary>
    public Tape(Workspace workspace)
    {
        Workspace = workspace;
    }

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

    /// <summary>A new activation tensor from the workspace (not zeroed).</summary>
    public Tensor NewTensor(int[] shape, bool requiresGrad)
    {
        var view = Workspace.Floats.Allocate(Tensor.ShapeLength(shape));
        return new Tensor(view, shape, requiresGrad && Training);
    }

    /// <summary>Records the backward of the op that just ran.</summary>
    public void Record(Action backward)
    {
        if (Training)
        {
            backwards.Add(backward);
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
            gradientOwners.Add(tensor.Root ?? tensor);
        }
        return tensor.Grad;
    }

    /// <summary>Runs every recorded backward in reverse order.</summary>
    public void Backward()
    {
        for (int i = backwards.Count - 1; i >= 0; i--)
        {
            backwards[i]();
        }
        backwards.Clear();
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
    }
}
