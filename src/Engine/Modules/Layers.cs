using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Sparsity;
using Op = ZeroFL.Engine.Ops.Ops;

namespace ZeroFL.Engine.Modules;

/// <summary>2-D convolution layer with weight [out, in, k, k] and optional bias [out].</summary>
public sealed class Conv2d : Module
{
    /// <summary>Declares the layer; the weight starts Kaiming-normal, the bias zero.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = true)
    {
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
        int fanIn = inChannels * kernelSize * kernelSize;
        Weight = AddParameter("weight", [outChannels, inChannels, kernelSize, kernelSize], ParameterInit.KaimingNormal, fanIn, ParameterRole.ConvWeight);
        Bias = bias ? AddParameter("bias", [outChannels], ParameterInit.Zeros, fanIn, ParameterRole.Bias) : null;
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Square kernel size.</summary>
    public int KernelSize { get; }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>Weight [out, in, k, k].</summary>
    public Parameter Weight { get; }

    /// <summary>Bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>SWAT state when the layer trains sparse; null for a dense layer.</summary>
    public SparseLayerState? Sparsity { get; set; }

    /// <summary>
    /// When dense, 1x1, strided and unpadded: keep only the strided subsample of the input for the
    /// weight gradient (see <see cref="ZeroFL.Engine.Ops.Ops.Conv2d"/>). Worth it only when no other layer keeps the
    /// input; <see cref="SwatRules.Apply"/> sets it on ResNet-18 shortcuts whose block's conv1 is sparse.
    /// </summary>
    public bool RetainSubsampledInput { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        tape.Scope = Path;
        return Sparsity is null
            ? Op.Conv2d(tape, input, Weight.Value, Bias?.Value, Stride, Padding, RetainSubsampledInput)
            : Op.SwatConv2d(tape, input, Weight.Value, Bias?.Value, Stride, Padding, Sparsity);
    }
}

/// <summary>Fully connected layer with weight [out, in] and optional bias [out].</summary>
public sealed class Linear : Module
{
    /// <summary>Declares the layer; <paramref name="classifier"/> uses PyTorch's uniform init, else Kaiming-normal.</summary>
    public Linear(int inputs, int outputs, bool bias = true, bool classifier = false)
    {
        Inputs = inputs;
        Outputs = outputs;
        Weight = AddParameter("weight", [outputs, inputs], classifier ? ParameterInit.UniformFanIn : ParameterInit.KaimingNormal, inputs, ParameterRole.LinearWeight);
        Bias = bias ? AddParameter("bias", [outputs], ParameterInit.Zeros, inputs, ParameterRole.Bias) : null;
    }

    /// <summary>Input features.</summary>
    public int Inputs { get; }

    /// <summary>Output features.</summary>
    public int Outputs { get; }

    /// <summary>Weight [out, in].</summary>
    public Parameter Weight { get; }

    /// <summary>Bias [out], or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>SWAT state when the layer trains sparse; null for a dense layer.</summary>
    public SparseLayerState? Sparsity { get; set; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        tape.Scope = Path;
        var flat = input.Shape.Length == 2 ? input : Op.Flatten(input);
        return Sparsity is null
            ? Op.Linear(tape, flat, Weight.Value, Bias?.Value)
            : Op.SwatLinear(tape, flat, Weight.Value, Bias?.Value, Sparsity);
    }
}

/// <summary>Batch normalisation over channels, PyTorch names (weight, bias, running_mean, running_var).</summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>Declares scale 1, shift 0, running mean 0, running variance 1.</summary>
    public BatchNorm2d(int channels)
    {
        Scale = AddParameter("weight", [channels], ParameterInit.Ones, channels, ParameterRole.NormScale);
        Shift = AddParameter("bias", [channels], ParameterInit.Zeros, channels, ParameterRole.NormShift);
        RunningMean = AddParameter("running_mean", [channels], ParameterInit.Zeros, channels, ParameterRole.RunningStatistic);
        RunningVar = AddParameter("running_var", [channels], ParameterInit.Ones, channels, ParameterRole.RunningStatistic);
    }

    /// <summary>Gamma.</summary>
    public Parameter Scale { get; }

    /// <summary>Beta.</summary>
    public Parameter Shift { get; }

    /// <summary>Running mean.</summary>
    public Parameter RunningMean { get; }

    /// <summary>Running variance.</summary>
    public Parameter RunningVar { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input) => Forward(tape, input, null, relu: false);

    /// <summary>
    /// The normalisation fused with what follows it: + <paramref name="residual"/> (when not null),
    /// then a ReLU when <paramref name="relu"/> (see <see cref="Op.BatchNorm"/>).
    /// </summary>
    public Tensor Forward(Tape tape, Tensor input, Tensor? residual, bool relu)
    {
        tape.Scope = Path;
        return Op.BatchNorm(tape, input, Scale.Value, Shift.Value, RunningMean.Value, RunningVar.Value, residual, relu);
    }
}

/// <summary>ReLU.</summary>
public sealed class Relu : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        tape.Scope = Path;
        return Op.Relu(tape, input);
    }
}

/// <summary>2x2 max-pool, stride 2.</summary>
public sealed class MaxPool2x2 : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        tape.Scope = Path;
        return Op.MaxPool2x2(tape, input);
    }
}

/// <summary>Global average pool to [batch, channels].</summary>
public sealed class GlobalAvgPool : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        tape.Scope = Path;
        return Op.GlobalAvgPool(tape, input);
    }
}

/// <summary>Runs its children in order; children are named "0", "1", ... like torch.nn.Sequential.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> layers = new();

    /// <summary>Creates the chain.</summary>
    public Sequential(params Module[] modules)
    {
        foreach (var m in modules)
        {
            layers.Add(AddChild(layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), m));
        }
    }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        var x = input;
        foreach (var layer in layers)
        {
            var next = layer.Forward(tape, x);
            if (!ReferenceEquals(x, input) && !ReferenceEquals(next.Root ?? next, x.Root ?? x))
            {
                tape.Release(x);
            }
            x = next;
        }
        return x;
    }
}
