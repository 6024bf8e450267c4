using System.Diagnostics;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;

namespace ZeroFL.Engine.Profiling;

/// <summary>What to profile.</summary>
/// <param name="Model">Catalogue name.</param>
/// <param name="Channels">Input channels.</param>
/// <param name="Size">Input height and width.</param>
/// <param name="Classes">Classes.</param>
/// <param name="Batch">Mini-batch size.</param>
/// <param name="Settings">SWAT settings of the sparse run.</param>
/// <param name="Steps">Measured steps of each run.</param>
/// <param name="Warmup">Unmeasured steps first.</param>
/// <param name="Seed">Seed of the weights and the random batch.</param>
public sealed record ProfileRequest(string Model, int Channels, int Size, int Classes, int Batch, SparsitySettings Settings, int Steps = 3, int Warmup = 1, int Seed = 1);

/// <summary>Measured figures of one run (dense or sparse), per training step.</summary>
/// <param name="StepSeconds">Median seconds of a whole training step (no profiler syncs).</param>
/// <param name="TrainFlops">FLOPs of conv and linear layers counted from the entries used.</param>
/// <param name="DenseTrainFlops">The same layers' dense-equivalent FLOPs.</param>
/// <param name="RetainedActivationBytes">Bytes of layer inputs kept for the weight gradients, each tensor counted once.</param>
/// <param name="PeakWorkspaceBytes">Peak per-step device temporaries (activations, gradients, scratch).</param>
/// <param name="ParameterBytes">Device bytes of parameters, gradients and momentum.</param>
/// <param name="Layers">Per-layer counters, averaged per step.</param>
public sealed record RunProfile(double StepSeconds, double TrainFlops, double DenseTrainFlops, long RetainedActivationBytes, long PeakWorkspaceBytes, long ParameterBytes, IReadOnlyList<LayerProfile> Layers);

/// <summary>Runs real training steps of a model dense and with SWAT, and measures both.</summary>
public static class StepProfile
{
    /// <summary>Profiles the dense run (sparsity 0) and the sparse run of <paramref name="request"/>.</summary>
    public static (RunProfile Dense, RunProfile Sparse) Run(ComputeDevice device, ProfileRequest request)
    {
        var dense = RunOne(device, request, request.Settings with { Sparsity = 0f });
        var sparse = RunOne(device, request, request.Settings);
        return (dense, sparse);
    }

    private static RunProfile RunOne(ComputeDevice device, ProfileRequest r, SparsitySettings settings)
    {
        if (r.Batch <= 0 || r.Steps <= 0 || r.Warmup < 0)
        {
            throw new ArgumentException($"profile needs a positive batch and step count, got batch {r.Batch}, steps {r.Steps}, warmup {r.Warmup}");
        }
        var random = new Random(r.Seed);
        int sampleLength = r.Channels * r.Size * r.Size;
        var features = new float[(long)r.Batch * sampleLength];
        for (int i = 0; i < features.Length; i++)
        {
            features[i] = (float)(random.NextDouble() * 2 - 1);
        }
        var labels = Enumerable.Range(0, r.Batch).Select(_ => random.Next(r.Classes)).ToArray();
        using var model = ModelCatalog.Create(device, r.Model, r.Channels, r.Size, r.Classes, r.Seed);
        SwatRules.Apply(model, settings);
        using var data = new DeviceDataset(device, features, labels, [r.Channels, r.Size, r.Size], r.Classes);
        using var trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 5e-4f));
        var batch = Enumerable.Range(0, r.Batch).ToArray();
        for (int i = 0; i < r.Warmup; i++)
        {
            trainer.Step(data, batch);
        }

        var seconds = new List<double>();
        trainer.Flops.Clear();
        for (int i = 0; i < r.Steps; i++)
        {
            var clock = Stopwatch.StartNew();
            trainer.Step(data, batch);
            device.Synchronize();
            seconds.Add(clock.Elapsed.TotalSeconds);
        }
        double flops = trainer.Flops.Sparse / r.Steps, denseFlops = trainer.Flops.Dense / r.Steps;

        var profiler = new OpProfiler(device);
        trainer.Profiler = profiler;
        for (int i = 0; i < r.Steps; i++)
        {
            trainer.Step(data, batch);
        }
        trainer.Profiler = null;
        foreach (var layer in profiler.Layers)
        {
            Scale(layer, 1.0 / Math.Max(1, layer.Steps));
        }
        seconds.Sort();
        return new RunProfile(
            seconds[seconds.Count / 2], flops, denseFlops,
            profiler.RetainedBytes / r.Steps,
            trainer.Workspace.PeakBytes,
            model.Store.Bytes,
            profiler.Layers);
    }

    private static void Scale(LayerProfile layer, double factor)
    {
        for (int p = 0; p < 3; p++)
        {
            layer.DenseFlops[p] *= factor;
            layer.SparseFlops[p] *= factor;
            layer.Seconds[p] *= factor;
        }
        layer.RetainedBytes = (long)(layer.RetainedBytes * factor);
        layer.RetainedDenseBytes = (long)(layer.RetainedDenseBytes * factor);
        layer.Steps = 1;
    }
}
