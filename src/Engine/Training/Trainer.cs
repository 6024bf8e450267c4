using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Profiling;
using Op = ZeroFL.Engine.Ops.Ops;

namespace ZeroFL.Engine.Training;

/// <summary>Accuracy and mean loss of a model over a dataset.</summary>
public readonly record struct Evaluation(double Accuracy, double Loss, int Samples);

/// <summary>
/// Runs training steps and evaluation of one model on its device. Each step: gather the batch on
/// the device, forward, fused loss, backward, SGD; all temporaries come from one reusable
/// <see cref="Workspace"/>, so after the first step nothing is allocated on the device.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly Tape tape;
    private readonly bool ownsWorkspace;
    private float[] lossHost = [];
    private int[] predictionHost = [];

    /// <summary>Creates a trainer; it owns a new workspace unless one is given.</summary>
    public Trainer(Model model, Sgd optimizer, Workspace? workspace = null)
    {
        Model = model;
        Optimizer = optimizer;
        ownsWorkspace = workspace is null;
        tape = new Tape(workspace ?? new Workspace(model.Device));
    }

    /// <summary>The model trained.</summary>
    public Model Model { get; }

    /// <summary>The optimizer.</summary>
    public Sgd Optimizer { get; }

    /// <summary>Training FLOPs of conv and linear layers (dense-equivalent and actual) since last cleared.</summary>
    public Profiling.FlopCounter Flops => tape.Flops;

    /// <summary>Per-layer profiler, or null (the default) when not profiling.</summary>
    public Profiling.OpProfiler? Profiler
    {
        get => tape.Profiler;
        set => tape.Profiler = value;
    }

    /// <summary>Whether the step frees each temporary after its last reader (<see cref="Tape.FreesEarly"/>; on by default).</summary>
    public bool FreesEarly
    {
        get => tape.FreesEarly;
        set => tape.FreesEarly = value;
    }

    /// <summary>
    /// Whether the step recomputes the model's segments in the backward instead of keeping their
    /// activations (<see cref="Tape.RecomputesSegments"/>; off by default). Only a model with
    /// segments (<see cref="Model.HasSegments"/>) can turn it on.
    /// </summary>
    public bool RecomputesSegments
    {
        get => tape.RecomputesSegments;
        set
        {
            if (value && !Model.HasSegments)
            {
                throw new ArgumentException($"model {Model.Name} has no segments to recompute (only resnet18's basic blocks are)");
            }
            tape.RecomputesSegments = value;
        }
    }

    /// <summary>The step workspace (its peak is the step's temporary device memory).</summary>
    public Workspace Workspace => tape.Workspace;

    /// <summary>Seed of the next step's augmentation draws (when the data augments); every step uses it and adds one.</summary>
    public int AugmentationSeed { get; set; }

    /// <summary>One SGD step on the samples <paramref name="batch"/> of <paramref name="data"/>; returns the mean loss.</summary>
    public float Step(DeviceDataset data, ReadOnlySpan<int> batch) => Step(data, batch, readLoss: true)!.Value;

    /// <summary>
    /// One SGD step; with <paramref name="readLoss"/> false the step only launches work (the loss
    /// stays on the device, null is returned), so that on a GPU the host does not wait for it.
    /// </summary>
    public float? Step(DeviceDataset data, ReadOnlySpan<int> batch, bool readLoss)
    {
        if (batch.Length == 0)
        {
            throw new ArgumentException("a training batch needs at least one sample");
        }
        tape.Reset();
        tape.Training = true;
        using (tape.Measure(OpKinds.ZeroGrad, Pass.Forward, "parameters"))
        {
            Model.Store.ZeroGradients();
        }
        Tensor input;
        ArrayView<int> labels;
        using (tape.Measure(OpKinds.Data, Pass.Forward, "batch"))
        {
            (input, labels) = data.Batch(tape, batch, unchecked(AugmentationSeed++));
        }
        var logits = Model.Forward(tape, input);
        tape.Release(input);
        var loss = Op.SoftmaxCrossEntropy(tape, logits, labels);
        tape.Release(logits);
        tape.Backward();
        using (tape.Measure(OpKinds.Optimizer, Pass.Backward, "parameters"))
        {
            Optimizer.Step(Model.Store, Model.Device);
        }
        return readLoss ? Mean(loss, batch.Length) : null;
    }

    /// <summary>Accuracy and mean loss over every sample of <paramref name="data"/>, in evaluation mode.</summary>
    public Evaluation Evaluate(DeviceDataset data, int batchSize = 256) => EvaluateSamples(data, null, batchSize);

    /// <summary>
    /// Accuracy and mean loss over the samples <paramref name="samples"/> of <paramref name="data"/>
    /// (indices in [0, data.Count), checked here), in evaluation mode, in batches of
    /// <paramref name="batchSize"/> in the order given (e.g. a client's validation split).
    /// </summary>
    public Evaluation Evaluate(DeviceDataset data, IReadOnlyList<int> samples, int batchSize = 256)
    {
        ArgumentNullException.ThrowIfNull(samples);
        for (int i = 0; i < samples.Count; i++)
        {
            if ((uint)samples[i] >= (uint)data.Count)
            {
                throw new ArgumentException($"evaluation sample {samples[i]} is outside [0, {data.Count})");
            }
        }
        return EvaluateSamples(data, samples, batchSize);
    }

    private Evaluation EvaluateSamples(DeviceDataset data, IReadOnlyList<int>? samples, int batchSize)
    {
        if (batchSize <= 0)
        {
            throw new ArgumentException($"evaluation batch size must be positive, got {batchSize}");
        }
        tape.Training = false;
        int total = samples?.Count ?? data.Count;
        var order = new int[Math.Min(batchSize, total)];
        long correct = 0;
        double lossSum = 0;
        try
        {
            for (int start = 0; start < total; start += batchSize)
            {
                int count = Math.Min(batchSize, total - start);
                var indices = order.AsSpan(0, count);
                for (int i = 0; i < count; i++)
                {
                    indices[i] = samples?[start + i] ?? start + i;
                }
                tape.Reset();
                var (input, labels) = data.Batch(tape, indices);
                var logits = Model.Forward(tape, input);
                tape.Release(input);
                var loss = Op.SoftmaxCrossEntropy(tape, logits, labels);
                var predictions = tape.Workspace.Ints.Allocate(count);
                Model.Device.Kernels.SoftmaxCrossEntropy.Predict(logits.Data, predictions, count, Model.Classes);
                tape.Release(logits);
                lossSum += Mean(loss, count) * (double)count;
                var predicted = Download(predictions, count);
                for (int i = 0; i < count; i++)
                {
                    if (predicted[i] == data.HostLabels[indices[i]])
                    {
                        correct++;
                    }
                }
            }
        }
        finally
        {
            tape.Reset();
            tape.Training = true;
        }
        return new Evaluation(total == 0 ? 0 : (double)correct / total, total == 0 ? 0 : lossSum / total, total);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (ownsWorkspace)
        {
            tape.Workspace.Dispose();
        }
    }

    private float Mean(ArrayView<float> loss, int count)
    {
        if (lossHost.Length < count)
        {
            lossHost = new float[count];
        }
        Model.Device.Kernels.Launch.ReadBack(loss.SubView(0, count), lossHost.AsSpan(0, count));
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            sum += lossHost[i];
        }
        return (float)(sum / count);
    }

    private int[] Download(ArrayView<int> view, int count)
    {
        if (predictionHost.Length < count)
        {
            predictionHost = new int[count];
        }
        Model.Device.Kernels.Launch.ReadBack(view.SubView(0, count), predictionHost.AsSpan(0, count));
        return predictionHost;
    }
}
