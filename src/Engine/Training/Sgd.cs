using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Training;

/// <summary>SGD with momentum and weight decay (PyTorch semantics), one launch over the flat parameter block.</summary>
public sealed class Sgd
{
    /// <summary>Creates the optimizer.</summary>
    public Sgd(float learningRate, float momentum, float weightDecay)
    {
        if (!(learningRate > 0) || !(momentum >= 0 && momentum < 1) || !(weightDecay >= 0))
        {
            throw new ArgumentException($"invalid SGD settings: lr {learningRate}, momentum {momentum}, weight decay {weightDecay}");
        }
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
    }

    /// <summary>Step size (may be changed between steps by a schedule).</summary>
    public float LearningRate { get; set; }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }

    /// <summary>L2 weight decay.</summary>
    public float WeightDecay { get; }

    /// <summary>Applies one update from the gradients in <paramref name="store"/>.</summary>
    public void Step(ParameterStore store, Devices.ComputeDevice device) =>
        device.Kernels.Sgd.Step(store.TrainableValues, store.Gradients, store.Momentum, LearningRate, Momentum, WeightDecay);
}
