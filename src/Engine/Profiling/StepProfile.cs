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
/// <param name="Steps">Measurements of each run, each one refresh step and one reuse step (see <see cref="RunProfile.StepSeconds"/>).</param>
/// <param name="Warmup">Unmeasured steps first.</param>
/// <param name="Seed">Seed of the weights and the random batch.</param>
public sealed record ProfileRequest(string Model, int Channels, int Size, int Classes, int Batch, SparsitySettings Settings, int Steps = 3, int Warmup = 1, int Seed = 1);

/// <summary>Measured figures of one run (dense or sparse), per training step.</summary>
/// <param name="StepSeconds">
/// Seconds of a whole training step (no profiler syncs), averaged over a top-K period: the median
/// refresh step weighted 1 / TopKPeriod and the median reuse step the rest.
/// </param>
/// <param name="TrainFlops">FLOPs of conv and linear layers counted from the entries used.</param>
/// <param name="DenseTrainFlops">The same layers' dense-equivalent FLOPs.</param>
/// <param name="RetainedActivationBytes">Bytes of layer inputs kept for the weight gradients, each tensor counted once.</param>
/// <param name="PeakWorkspaceBytes">Peak per-step device temporaries (activations, gradients, scratch).</param>
/// <param name="ParameterBytes">Device bytes of parameters, gradients and momentum.</param>
/// <param name="Layers">Per-layer counters per step, averaged over a top-K period like <paramref name="StepSeconds"/>.</param>
/// <param name="RefreshStepSeconds">Median seconds of a step that recomputes the exact thresholds.</param>
/// <param name="ReuseStepSeconds">Median seconds of a step that reuses them.</param>
public sealed record RunProfile(
    double StepSeconds, double TrainFlops, double DenseTrainFlops, long RetainedActivationBytes, long PeakWorkspaceBytes,
    long ParameterBytes, IReadOnlyList<LayerProfile> Layers, double RefreshStepSeconds, double ReuseStepSeconds);

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

        // A sparse run recomputes the exact top-K thresholds on one step in every TopKPeriod and
        // reuses them on the others, so each measurement is one refresh step (thresholds forgotten
        // first) and one reuse step right after it, weighted 1 : (period - 1). Dense runs have no
        // thresholds; both steps are alike and weigh the same.
        int period = settings.Sparsity > 0 ? settings.TopKPeriod : 2;
        double refreshWeight = 1.0 / period, reuseWeight = 1 - refreshWeight;
        var refreshSeconds = new List<double>();
        var reuseSeconds = new List<double>();
        double flops = 0, denseFlops = 0;
        for (int i = 0; i < r.Steps; i++)
        {
            SwatRules.ResetThresholds(model);
            foreach (var (times, weight) in new[] { (refreshSeconds, refreshWeight), (reuseSeconds, reuseWeight) })
            {
                trainer.Flops.Clear();
                times.Add(TimedStep(device, trainer, data, batch));
                flops += weight * trainer.Flops.Sparse / r.Steps;
                denseFlops += weight * trainer.Flops.Dense / r.Steps;
            }
        }

        var refreshProfiler = new OpProfiler(device);
        var reuseProfiler = new OpProfiler(device);
        for (int i = 0; i < r.Steps; i++)
        {
            SwatRules.ResetThresholds(model);
            trainer.Profiler = refreshProfiler;
            trainer.Step(data, batch);
            trainer.Profiler = reuseProfiler;
            trainer.Step(data, batch);
        }
        trainer.Profiler = null;
        var layers = reuseProfiler.Layers;
        foreach (var layer in layers)
        {
            var refresh = refreshProfiler.Layers.First(l => l.Name == layer.Name);
            Scale(layer, reuseWeight / Math.Max(1, layer.Steps));
            Scale(refresh, refreshWeight / Math.Max(1, refresh.Steps));
            for (int p = 0; p < 3; p++)
            {
                layer.DenseFlops[p] += refresh.DenseFlops[p];
                layer.SparseFlops[p] += refresh.SparseFlops[p];
                layer.Seconds[p] += refresh.Seconds[p];
            }
            layer.RetainedBytes += refresh.RetainedBytes;
            layer.RetainedDenseBytes += refresh.RetainedDenseBytes;
        }
        double refreshMedian = Median(refreshSeconds), reuseMedian = Median(reuseSeconds);
        return new RunProfile(
            refreshWeight * refreshMedian + reuseWeight * reuseMedian, flops, denseFlops,
            (long)(refreshWeight * refreshProfiler.RetainedBytes + reuseWeight * reuseProfiler.RetainedBytes) / r.Steps,
            trainer.Workspace.PeakBytes,
            model.Store.Bytes,
            layers,
            refreshMedian,
            reuseMedian);
    }

    private static double TimedStep(ComputeDevice device, Trainer trainer, DeviceDataset data, int[] batch)
    {
        device.Synchronize();
        var clock = Stopwatch.StartNew();
        trainer.Step(data, batch);
        device.Synchronize();
        return clock.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
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
