using ZeroFL.Engine.Autograd;

namespace ZeroFL.Engine.Modules;

/// <summary>How a parameter is initialised.</summary>
public enum ParameterInit
{
    /// <summary>All zeros (biases, batch-norm shift, running mean).</summary>
    Zeros,

    /// <summary>All ones (batch-norm scale, running variance).</summary>
    Ones,

    /// <summary>Kaiming (He) normal for ReLU: N(0, 2 / fanIn).</summary>
    KaimingNormal,

    /// <summary>Uniform(-1/sqrt(fanIn), 1/sqrt(fanIn)) — PyTorch's default for a classifier layer.</summary>
    UniformFanIn,
}

/// <summary>What a parameter is, so that sparsity rules and uplink strategies can select layers.</summary>
public enum ParameterRole
{
    /// <summary>A convolution weight [out, in, kh, kw].</summary>
    ConvWeight,

    /// <summary>A linear weight [out, in].</summary>
    LinearWeight,

    /// <summary>A bias [out].</summary>
    Bias,

    /// <summary>Batch-norm scale (gamma).</summary>
    NormScale,

    /// <summary>Batch-norm shift (beta).</summary>
    NormShift,

    /// <summary>A non-trainable buffer (batch-norm running statistics).</summary>
    RunningStatistic,
}

/// <summary>
/// A named model tensor. Its values (and, if trainable, gradient and momentum) are views into the
/// model's single <see cref="ParameterStore"/> blocks, bound when the model is built.
/// </summary>
public sealed class Parameter
{
    private Tensor? value;

    /// <summary>Declares a parameter; <see cref="FullName"/> is set when the model collects it.</summary>
    public Parameter(string name, int[] shape, ParameterInit init, int fanIn, ParameterRole role)
    {
        Name = name;
        FullName = name;
        Shape = (int[])shape.Clone();
        Init = init;
        FanIn = fanIn;
        Role = role;
    }

    /// <summary>Name inside its module (e.g. "weight").</summary>
    public string Name { get; }

    /// <summary>Dotted name inside the model, PyTorch style (e.g. "layer1.0.conv1.weight").</summary>
    public string FullName { get; internal set; }

    /// <summary>Dimensions.</summary>
    public int[] Shape { get; }

    /// <summary>Number of elements.</summary>
    public long Length => Tensor.ShapeLength(Shape);

    /// <summary>Initialisation rule.</summary>
    public ParameterInit Init { get; }

    /// <summary>Fan-in used by the initialisation.</summary>
    public int FanIn { get; }

    /// <summary>What the parameter is.</summary>
    public ParameterRole Role { get; }

    /// <summary>False for running statistics, which the optimizer never touches.</summary>
    public bool Trainable => Role != ParameterRole.RunningStatistic;

    /// <summary>Offset of the values in the store's value block.</summary>
    public long Offset { get; internal set; }

    /// <summary>The values (and gradient, if trainable) on the device.</summary>
    public Tensor Value => value ?? throw new InvalidOperationException($"parameter {FullName} is not bound to a parameter store yet");

    internal void Bind(Tensor tensor) => value = tensor;
}
