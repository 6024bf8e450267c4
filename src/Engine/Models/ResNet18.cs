using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Modules;
using Op = ZeroFL.Engine.Ops.Ops;

namespace ZeroFL.Engine.Models;

/// <summary>
/// ResNet-18 in its CIFAR form: 3x3 stem (stride 1, no max-pool), four stages of two basic blocks
/// (64, 128, 256, 512 channels; stride 2 at stages 2-4), global average pool, fc. Parameter names
/// follow torchvision ("layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.weight").
/// </summary>
public sealed class ResNet18 : Module
{
    private readonly Sequential stages;

    /// <summary>Builds the network for <paramref name="inChannels"/> input channels and <paramref name="classes"/> outputs.</summary>
    public ResNet18(int inChannels, int classes)
    {
        Stem = AddChild("conv1", new Conv2d(inChannels, 64, 3, 1, 1, bias: false));
        StemNorm = AddChild("bn1", new BatchNorm2d(64));
        var blocks = new List<BasicBlock>();
        int channels = 64;
        int[] widths = [64, 128, 256, 512];
        var layers = new Module[4];
        for (int s = 0; s < 4; s++)
        {
            int stride = s == 0 ? 1 : 2;
            var first = new BasicBlock(channels, widths[s], stride);
            var second = new BasicBlock(widths[s], widths[s], 1);
            blocks.Add(first);
            blocks.Add(second);
            layers[s] = AddChild($"layer{s + 1}", new Sequential(first, second));
            channels = widths[s];
        }
        stages = new Sequential(layers);
        Blocks = blocks;
        Fc = AddChild("fc", new Linear(512, classes, classifier: true));
    }

    /// <summary>The dense 3x3 stem convolution.</summary>
    public Conv2d Stem { get; }

    /// <summary>Batch-norm after the stem.</summary>
    public BatchNorm2d StemNorm { get; }

    /// <summary>The eight basic blocks in order.</summary>
    public IReadOnlyList<BasicBlock> Blocks { get; }

    /// <summary>Classifier.</summary>
    public Linear Fc { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        // The stem is a segment too: recomputed, it keeps the image rather than its batch-norm input.
        var x = tape.Checkpoint(input, image =>
        {
            var stem = Stem.Forward(tape, image);
            var normalised = StemNorm.Forward(tape, stem, null, relu: true);
            tape.Release(stem);
            return normalised;
        });
        var features = stages.Forward(tape, x);
        tape.Release(x);
        tape.Scope = "avgpool";
        var pooled = Op.GlobalAvgPool(tape, features);
        tape.Release(features);
        var logits = Fc.Forward(tape, pooled);
        tape.Release(pooled);
        return logits;
    }
}

/// <summary>ResNet basic block: conv3x3-bn-relu-conv3x3-bn plus identity or 1x1-conv-bn shortcut, then relu.</summary>
public sealed class BasicBlock : Module
{
    private readonly Sequential? downsample;

    /// <summary>Builds the block.</summary>
    public BasicBlock(int inChannels, int outChannels, int stride)
    {
        Conv1 = AddChild("conv1", new Conv2d(inChannels, outChannels, 3, stride, 1, bias: false));
        Norm1 = AddChild("bn1", new BatchNorm2d(outChannels));
        Conv2 = AddChild("conv2", new Conv2d(outChannels, outChannels, 3, 1, 1, bias: false));
        Norm2 = AddChild("bn2", new BatchNorm2d(outChannels));
        if (stride != 1 || inChannels != outChannels)
        {
            Shortcut = new Conv2d(inChannels, outChannels, 1, stride, 0, bias: false);
            downsample = AddChild("downsample", new Sequential(Shortcut, new BatchNorm2d(outChannels)));
        }
    }

    /// <summary>First 3x3 convolution.</summary>
    public Conv2d Conv1 { get; }

    /// <summary>First batch-norm.</summary>
    public BatchNorm2d Norm1 { get; }

    /// <summary>Second 3x3 convolution.</summary>
    public Conv2d Conv2 { get; }

    /// <summary>Second batch-norm.</summary>
    public BatchNorm2d Norm2 { get; }

    /// <summary>The 1x1 shortcut convolution when the block changes shape, else null.</summary>
    public Conv2d? Shortcut { get; }

    /// <summary>
    /// The block as one segment of the tape (<see cref="Tape.Checkpoint"/>): with recomputation on,
    /// only its input is kept to the backward, where the block runs again.
    /// </summary>
    public override Tensor Forward(Tape tape, Tensor input) => tape.Checkpoint(input, x => Body(tape, x));

    /// <inheritdoc />
    public override bool IsSegment => true;

    private Tensor Body(Tape tape, Tensor input)
    {
        var a = Conv1.Forward(tape, input);
        var b = Norm1.Forward(tape, a, null, relu: true);
        tape.Release(a);
        var c = Conv2.Forward(tape, b);
        tape.Release(b);
        var shortcut = downsample is null ? input : downsample.Forward(tape, input);
        // bn2, the shortcut add and the ReLU in one pass (forward and backward).
        var output = Norm2.Forward(tape, c, shortcut, relu: true);
        tape.Release(c);
        if (downsample is not null)
        {
            tape.Release(shortcut);
        }
        return output;
    }
}
