using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Devices;

namespace ZeroFL.Engine.Modules;

/// <summary>
/// All of a model's parameters in three device blocks allocated once: values (trainable parameters
/// first, then running statistics), gradients and momentum (trainable part only). Each
/// <see cref="Parameter"/> is bound to views carved from these blocks, so the optimizer, gradient
/// zeroing and model exchange are single launches or copies over one flat vector.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly ComputeDevice device;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> values;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> gradients;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> momentum;

    /// <summary>Lays out, allocates, binds and initialises <paramref name="parameters"/> from <paramref name="seed"/>.</summary>
    public ParameterStore(ComputeDevice device, IReadOnlyList<Parameter> parameters, int seed)
    {
        this.device = device;
        Parameters = parameters.Where(p => p.Trainable).Concat(parameters.Where(p => !p.Trainable)).ToList();
        long offset = 0;
        foreach (var p in Parameters)
        {
            p.Offset = offset;
            offset += p.Length;
        }
        TotalLength = offset;
        TrainableLength = Parameters.Where(p => p.Trainable).Sum(p => p.Length);
        values = device.Accelerator.Allocate1D<float>(Math.Max(1, TotalLength));
        gradients = device.Accelerator.Allocate1D<float>(Math.Max(1, TrainableLength));
        momentum = device.Accelerator.Allocate1D<float>(Math.Max(1, TrainableLength));
        device.Kernels.Launch.Zero(gradients.View.AsContiguous());
        device.Kernels.Launch.Zero(momentum.View.AsContiguous());
        foreach (var p in Parameters)
        {
            var tensor = new Tensor(values.View.SubView(p.Offset, p.Length), p.Shape, p.Trainable);
            if (p.Trainable)
            {
                tensor.AttachGrad(gradients.View.SubView(p.Offset, p.Length));
            }
            p.Bind(tensor);
        }
        Upload(Initialise(Parameters, TotalLength, seed));
    }

    /// <summary>Parameters in storage order: trainable ones, then running statistics.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Elements of all values.</summary>
    public long TotalLength { get; }

    /// <summary>Elements of the trainable values (the prefix of <see cref="Values"/>).</summary>
    public long TrainableLength { get; }

    /// <summary>Every value: trainable parameters then running statistics.</summary>
    public ArrayView<float> Values => values.View.SubView(0, TotalLength);

    /// <summary>The trainable values.</summary>
    public ArrayView<float> TrainableValues => values.View.SubView(0, TrainableLength);

    /// <summary>Gradients of the trainable values.</summary>
    public ArrayView<float> Gradients => gradients.View.SubView(0, TrainableLength);

    /// <summary>SGD momentum buffers of the trainable values.</summary>
    public ArrayView<float> Momentum => momentum.View.SubView(0, TrainableLength);

    /// <summary>Bytes of device memory held.</summary>
    public long Bytes => (values.Length + gradients.Length + momentum.Length) * sizeof(float);

    /// <summary>The parameter called <paramref name="fullName"/>.</summary>
    public Parameter this[string fullName] => Parameters.FirstOrDefault(p => p.FullName == fullName)
        ?? throw new KeyNotFoundException($"no parameter named {fullName}");

    /// <summary>Zeroes every gradient (explicit, once per step).</summary>
    public void ZeroGradients() => device.Kernels.Launch.Zero(Gradients);

    /// <summary>Zeroes the momentum buffers.</summary>
    public void ZeroMomentum() => device.Kernels.Launch.Zero(Momentum);

    /// <summary>Copies all values to the host.</summary>
    public float[] Download()
    {
        var host = new float[TotalLength];
        device.Kernels.Launch.ReadBack(Values, host);
        return host;
    }

    /// <summary>Replaces all values from the host.</summary>
    public void Upload(float[] host)
    {
        if (host.Length != TotalLength)
        {
            throw new ArgumentException($"model state has {TotalLength} values, got {host.Length}");
        }
        device.Kernels.Launch.Upload<float>(host, Values);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        momentum.Dispose();
        gradients.Dispose();
        values.Dispose();
    }

    private static float[] Initialise(IReadOnlyList<Parameter> parameters, long total, int seed)
    {
        var host = new float[total];
        var random = new Random(seed);
        foreach (var p in parameters)
        {
            var span = host.AsSpan((int)p.Offset, (int)p.Length);
            switch (p.Init)
            {
                case ParameterInit.Zeros:
                    span.Clear();
                    break;
                case ParameterInit.Ones:
                    span.Fill(1f);
                    break;
                case ParameterInit.KaimingNormal:
                    double std = Math.Sqrt(2.0 / p.FanIn);
                    for (int i = 0; i < span.Length; i++)
                    {
                        span[i] = (float)(std * Gaussian(random));
                    }
                    break;
                case ParameterInit.UniformFanIn:
                    double bound = 1.0 / Math.Sqrt(p.FanIn);
                    for (int i = 0; i < span.Length; i++)
                    {
                        span[i] = (float)((random.NextDouble() * 2 - 1) * bound);
                    }
                    break;
            }
        }
        return host;
    }

    private static double Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble();
        double u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
