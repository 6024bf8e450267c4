using System.Diagnostics;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Engine.Profiling;

/// <summary>The three passes of a convolution or linear layer in a training step.</summary>
public enum Pass
{
    /// <summary>y = f(x, w).</summary>
    Forward = 0,

    /// <summary>dx = G(dy, w).</summary>
    BackwardInput = 1,

    /// <summary>dw = H(dy, x).</summary>
    BackwardWeight = 2,

    /// <summary>The backward of an op with one gradient pass (batch-norm, activations, the optimizer): the second slot.</summary>
    Backward = BackwardInput,
}

/// <summary>The kinds of profiler rows: every op of a training step is timed under one of them.</summary>
public static class OpKinds
{
    /// <summary>Convolution (dense or SWAT).</summary>
    public const string Conv = "conv";

    /// <summary>Fully connected layer (dense or SWAT).</summary>
    public const string Linear = "linear";

    /// <summary>Batch normalisation, alone or fused with what follows it (ReLU, a residual add).</summary>
    public const string BatchNorm = "batchnorm";

    /// <summary>A ReLU on its own.</summary>
    public const string Relu = "relu";

    /// <summary>A residual add on its own.</summary>
    public const string Add = "add";

    /// <summary>Max or average pooling.</summary>
    public const string Pool = "pool";

    /// <summary>Softmax cross-entropy and its gradient.</summary>
    public const string Loss = "loss";

    /// <summary>Gathering (and augmenting) the batch on the device.</summary>
    public const string Data = "data";

    /// <summary>Zeroing the parameter gradients before a step.</summary>
    public const string ZeroGrad = "zero-grad";

    /// <summary>The optimizer's update of the flat parameter block.</summary>
    public const string Optimizer = "optimizer";

    /// <summary>SWAT's top-K: selecting and encoding the weights, compressing the kept input, expanding it for backward.</summary>
    public const string TopK = "topk";
}

/// <summary>Counters of one layer, summed over the steps profiled.</summary>
public sealed class LayerProfile
{
    internal LayerProfile(string name, string kind)
    {
        Name = name;
        Kind = kind;
    }

    /// <summary>Dotted module path ("layer1.0.conv1").</summary>
    public string Name { get; }

    /// <summary>One of <see cref="OpKinds"/>.</summary>
    public string Kind { get; }

    /// <summary>True if the layer ran with SWAT sparsity.</summary>
    public bool Sparse { get; internal set; }

    /// <summary>True if the sparse layer used the sparse (zero-skipping) kernels rather than the dense fallback.</summary>
    public bool SparseKernels { get; internal set; }

    /// <summary>Dense-equivalent FLOPs per pass (2 per multiply-add of the dense layer).</summary>
    public double[] DenseFlops { get; } = new double[3];

    /// <summary>FLOPs per pass counted from the entries actually used (equal to dense for dense layers).</summary>
    public double[] SparseFlops { get; } = new double[3];

    /// <summary>Seconds per pass (ops other than conv and linear use the forward and <see cref="Pass.Backward"/> slots).</summary>
    public double[] Seconds { get; } = new double[3];

    /// <summary>Forward seconds.</summary>
    public double ForwardSeconds => Seconds[(int)Pass.Forward];

    /// <summary>Backward seconds (both gradient passes of a layer).</summary>
    public double BackwardSeconds => Seconds[(int)Pass.BackwardInput] + Seconds[(int)Pass.BackwardWeight];

    /// <summary>Bytes of the layer input a dense layer keeps for its weight gradient.</summary>
    public long RetainedDenseBytes { get; internal set; }

    /// <summary>Bytes this layer actually kept (values and indices of the top-K input when sparse).</summary>
    public long RetainedBytes { get; internal set; }

    /// <summary>Training forwards recorded.</summary>
    public int Steps { get; internal set; }
}

/// <summary>
/// Per-op timing, FLOP and retained-memory counters for the profiler: one row per (module path, op
/// kind), so a layer's convolution and its top-K work are separate rows. Timing synchronises the
/// device around each measured pass, so it is only switched on for profiling runs.
/// </summary>
public sealed class OpProfiler
{
    private readonly Dictionary<(string Name, string Kind), LayerProfile> layers = new();
    private readonly List<LayerProfile> order = new();
    private readonly Dictionary<object, long> retained = new(ReferenceEqualityComparer.Instance);
    private readonly ComputeDevice device;

    /// <summary>Creates a profiler for <paramref name="device"/>.</summary>
    public OpProfiler(ComputeDevice device)
    {
        this.device = device;
    }

    /// <summary>Rows in the order they first ran.</summary>
    public IReadOnlyList<LayerProfile> Layers => order;

    /// <summary>The counters of op <paramref name="kind"/> in module <paramref name="name"/>.</summary>
    public LayerProfile Layer(string name, string kind)
    {
        if (!layers.TryGetValue((name, kind), out var profile))
        {
            profile = new LayerProfile(name, kind);
            layers.Add((name, kind), profile);
            order.Add(profile);
        }
        return profile;
    }

    /// <summary>
    /// Bytes kept for backward over all layers, each kept tensor counted once (a block input that
    /// both a 3x3 convolution and a 1x1 shortcut keep is one tensor).
    /// </summary>
    public long RetainedBytes => retained.Values.Sum();

    /// <summary>
    /// Records that <paramref name="layer"/> keeps <paramref name="bytes"/> of <paramref name="tensor"/>
    /// for its backward; <paramref name="denseBytes"/> is what the dense layer would keep.
    /// </summary>
    public void Retain(LayerProfile layer, object tensor, long bytes, long denseBytes)
    {
        layer.RetainedBytes += bytes;
        layer.RetainedDenseBytes += denseBytes;
        retained[tensor] = bytes;
    }

    /// <summary>Times a pass of <paramref name="layer"/> until the returned scope is disposed.</summary>
    public Scope Measure(LayerProfile layer, Pass pass)
    {
        device.Synchronize();
        return new Scope(this, layer, pass);
    }

    /// <summary>Times a pass of op <paramref name="kind"/> in module <paramref name="name"/> until the returned scope is disposed.</summary>
    public Scope Measure(string name, string kind, Pass pass) => Measure(Layer(name, kind), pass);

    /// <summary>Forgets every counter.</summary>
    public void Clear()
    {
        layers.Clear();
        order.Clear();
        retained.Clear();
    }

    /// <summary>A running measurement.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly OpProfiler owner;
        private readonly LayerProfile layer;
        private readonly Pass pass;
        private readonly long start;

        internal Scope(OpProfiler owner, LayerProfile layer, Pass pass)
        {
            this.owner = owner;
            this.layer = layer;
            this.pass = pass;
            start = Stopwatch.GetTimestamp();
        }

        /// <summary>Stops the measurement.</summary>
        public void Dispose()
        {
            if (owner is null)
            {
                return;
            }
            owner.device.Synchronize();
            layer.Seconds[(int)pass] += Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
    }
}
