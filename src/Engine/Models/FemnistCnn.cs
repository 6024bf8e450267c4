using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Models;

/// <summary>
/// LEAF's FEMNIST CNN for 28x28 inputs: conv5x5(32, pad 2)-relu-pool, conv5x5(64, pad 2)-relu-pool,
/// fc(2048)-relu, fc(classes).
/// </summary>
public sealed class FemnistCnn : Module
{
    private readonly Sequential network;

    /// <summary>Builds the network for [inChannels, size, size] inputs (size divisible by 4).</summary>
    public FemnistCnn(int inChannels, int size, int classes)
    {
        if (size % 4 != 0)
        {
            throw new ArgumentException($"the FEMNIST CNN needs an input size divisible by 4, got {size}");
        }
        Conv1 = new Conv2d(inChannels, 32, 5, 1, 2);
        Conv2 = new Conv2d(32, 64, 5, 1, 2);
        Fc1 = new Linear(64 * (size / 4) * (size / 4), 2048);
        Fc2 = new Linear(2048, classes, classifier: true);
        network = AddChild("net", new Sequential(Conv1, new Relu(), new MaxPool2x2(), Conv2, new Relu(), new MaxPool2x2(), Fc1, new Relu(), Fc2));
    }

    /// <summary>First convolution (sparse under SWAT).</summary>
    public Conv2d Conv1 { get; }

    /// <summary>Second convolution (sparse under SWAT).</summary>
    public Conv2d Conv2 { get; }

    /// <summary>First linear layer (sparse under SWAT).</summary>
    public Linear Fc1 { get; }

    /// <summary>Classifier (dense under SWAT).</summary>
    public Linear Fc2 { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input) => network.Forward(tape, input);
}
