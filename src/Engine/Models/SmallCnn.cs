using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Models;

/// <summary>
/// The default model for Fashion-MNIST/MNIST (28x28): conv3x3(32)-relu-pool, conv3x3(64)-relu-pool,
/// fc(128)-relu, fc(classes). About 420k parameters.
/// </summary>
public sealed class SmallCnn : Module
{
    private readonly Sequential features;
    private readonly Sequential classifier;

    /// <summary>Builds the network for [inChannels, size, size] inputs (size divisible by 4).</summary>
    public SmallCnn(int inChannels, int size, int classes)
    {
        if (size % 4 != 0)
        {
            throw new ArgumentException($"the small CNN needs an input size divisible by 4, got {size}");
        }
        Conv1 = new Conv2d(inChannels, 32, 3, 1, 1);
        Conv2 = new Conv2d(32, 64, 3, 1, 1);
        Fc1 = new Linear(64 * (size / 4) * (size / 4), 128);
        Fc2 = new Linear(128, classes, classifier: true);
        features = AddChild("features", new Sequential(Conv1, new Relu(), new MaxPool2x2(), Conv2, new Relu(), new MaxPool2x2()));
        classifier = AddChild("classifier", new Sequential(Fc1, new Relu(), Fc2));
    }

    /// <summary>First convolution.</summary>
    public Conv2d Conv1 { get; }

    /// <summary>Second convolution.</summary>
    public Conv2d Conv2 { get; }

    /// <summary>Hidden fully connected layer.</summary>
    public Linear Fc1 { get; }

    /// <summary>Classifier.</summary>
    public Linear Fc2 { get; }

    /// <inheritdoc />
    public override Tensor Forward(Tape tape, Tensor input)
    {
        var x = features.Forward(tape, input);
        var logits = classifier.Forward(tape, x);
        tape.Release(x);
        return logits;
    }
}
