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
/// <param name="Recompute">Both runs recompute the model's segments in the backward (<see cref="Training.Trainer.RecomputesSegments"/>).</param>
public sealed record ProfileRequest(string Model, int Channels, int Size, int Classes, int Batch, SparsitySettings Settings, int Steps = 3, int Warmup = 1, int Seed = 1, bool Recompute = false);

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
/// <param name="Layers">Per-layer counters per step, averaged over a top-K period like <paramref name="StepSeconds"/> (times: the median of the profiled steps).</param>
/// <param name="RefreshStepSeconds">Median seconds of a step that recomputes the exact thresholds.</param>
/// <param name="ReuseStepSeconds">Median seconds of a step that reuses them.</param>
/// <param name="HostSyncsPerStep">
/// Times per step the host waited for the device (reads of counts, histograms and plans), in a
/// step that does not read its loss, averaged over a top-K period like <paramref name="StepSeconds"/>.
/// Free on the CPU accelerator, a full device synchronisation on a GPU.
/// </param>
/// <param name="DeviceToHostBytesPerStep">Bytes per step those reads copied to the host, averaged the same way.</param>
/// <param name="ProfiledStepSeconds">
/// Seconds of a whole step run under the per-op profiler (its syncs included), averaged over a top-K
/// period like <paramref name="StepSeconds"/>: what the rows of <paramref name="Layers"/> should add up to.
/// </param>
/// <param name="PeakStepBytes">
/// Peak device memory of a step's temporaries: the arenas' peak plus the reusable scratch buffers.
/// Parameters, gradients and momentum (<paramref name="ParameterBytes"/>) come on top.
/// </param>
public sealed record RunProfile(
    double StepSeconds, double TrainFlops, double DenseTrainFlops, long RetainedActivationBytes, long PeakWorkspaceBytes,
    long ParameterBytes, IReadOnlyList<LayerProfile> Layers, double RefreshStepSeconds, double ReuseStepSeconds,
    double HostSyncsPerStep, double DeviceToHostBytesPerStep, double ProfiledStepSeconds, long PeakStepBytes)
{
    /// <summary>The rows' seconds summed: the time the profiler accounts for in a step.</summary>
    public double AccountedSeconds => Layers.Sum(l => l.Seconds.Sum());
}

/// <summary>Runs real training steps of a model dense and with SWAT, and measures both.</summary>
public static class StepProfile
{
    /// <summary>
    /// Profiles the dense run (sparsity 0) and the sparse run of <paramref name="request"/>. Both
    /// models live side by side and their measured steps alternate (dense, sparse, dense, ...), so a
    /// drift in machine speed (another process, a slower phase of a shared host) moves both alike
    /// and their ratio stays meaningful.
    /// </summary>
    public static (RunProfile Dense, RunProfile Sparse) Run(ComputeDevice device, ProfileRequest request)
    {
        if (request.Batch <= 0 || request.Steps <= 0 || request.Warmup < 0)
        {
            throw new ArgumentException($"profile needs a positive batch and step count, got batch {request.Batch}, steps {request.Steps}, warmup {request.Warmup}");
        }
        using var dense = new ProfiledRun(device, request, request.Settings with { Sparsity = 0f });
        using var sparse = new ProfiledRun(device, request, request.Settings);
        ProfiledRun[] runs = Environment.GetEnvironmentVariable("ZEROFL_SPARSE_ONLY") is not null ? [sparse] : [dense, sparse];
        foreach (var run in runs)
        {
            run.Warmup();
        }
        for (int i = 0; i < request.Steps; i++)
        {
            foreach (var run in runs)
            {
                run.TimedPair();
            }
        }
        for (int i = 0; i < request.Steps; i++)
        {
            foreach (var run in runs)
            {
                run.ProfiledPair();
            }
        }
        return (dense.Result(), sparse.Result());
    }

    /// <summary>One model under one setting: its steps, measured one refresh + reuse pair at a time.</summary>
    private sealed class ProfiledRun : IDisposable
    {
        private readonly ComputeDevice device;
        private readonly ProfileRequest request;
        private readonly Model model;
        private readonly DeviceDataset data;
        private readonly Trainer trainer;
        private readonly int[] batch;
        private readonly double refreshWeight;
        private readonly double reuseWeight;
        private readonly List<double> refreshSeconds = [];
        private readonly List<double> reuseSeconds = [];
        private readonly OpProfiler refreshProfiler;
        private readonly OpProfiler reuseProfiler;
        /// <summary>Each row's seconds per pass in each profiled step, by the step's index among its profiler's steps.</summary>
        private readonly Dictionary<LayerProfile, Dictionary<int, double[]>> stepSeconds = [];
        private readonly List<double> profiledRefreshSeconds = [];
        private readonly List<double> profiledReuseSeconds = [];
        private double flops;
        private double denseFlops;
        private double syncs;
        private double deviceToHostBytes;

        public ProfiledRun(ComputeDevice device, ProfileRequest r, SparsitySettings settings)
        {
            this.device = device;
            request = r;
            var random = new Random(r.Seed);
            int sampleLength = r.Channels * r.Size * r.Size;
            var features = new float[(long)r.Batch * sampleLength];
            for (int i = 0; i < features.Length; i++)
            {
                features[i] = (float)(random.NextDouble() * 2 - 1);
            }
            var labels = Enumerable.Range(0, r.Batch).Select(_ => random.Next(r.Classes)).ToArray();
            model = ModelCatalog.Create(device, r.Model, r.Channels, r.Size, r.Classes, r.Seed);
            try
            {
                SwatRules.Apply(model, settings);
                data = new DeviceDataset(device, features, labels, [r.Channels, r.Size, r.Size], r.Classes);
                trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 5e-4f)) { RecomputesSegments = r.Recompute };
            }
            catch
            {
                data?.Dispose();
                model.Dispose();
                throw;
            }
            batch = Enumerable.Range(0, r.Batch).ToArray();

            // A sparse run recomputes the exact top-K thresholds on one step in every TopKPeriod and
            // reuses them on the others, so each measurement is one refresh step (thresholds forgotten
            // first) and one reuse step right after it, weighted 1 : (period - 1). Dense runs have no
            // thresholds; both steps are alike and weigh the same.
            int period = settings.Sparsity > 0 ? settings.TopKPeriod : 2;
            refreshWeight = 1.0 / period;
            reuseWeight = 1 - refreshWeight;
            refreshProfiler = new OpProfiler(device);
            reuseProfiler = new OpProfiler(device);
        }

        public void Warmup()
        {
            for (int i = 0; i < request.Warmup; i++)
            {
                trainer.Step(data, batch);
            }
            // The first steps outgrow the arenas; merge them now (a device sync), not at the start of a timed step.
            trainer.Workspace.Reset();
        }

        /// <summary>A refresh step and a reuse step, timed whole (no profiler syncs).</summary>
        public void TimedPair()
        {
            SwatRules.ResetThresholds(model);
            foreach (var (times, weight) in new[] { (refreshSeconds, refreshWeight), (reuseSeconds, reuseWeight) })
            {
                trainer.Flops.Clear();
                device.Synchronize();
                var clock = Stopwatch.StartNew();
                var traffic = device.Traffic.Snapshot();
                trainer.Step(data, batch, readLoss: false);
                syncs += weight * (device.Traffic.Syncs - traffic.Syncs) / request.Steps;
                deviceToHostBytes += weight * (device.Traffic.DeviceToHostBytes - traffic.DeviceToHostBytes) / request.Steps;
                device.Synchronize();
                times.Add(clock.Elapsed.TotalSeconds);
                flops += weight * trainer.Flops.Sparse / request.Steps;
                denseFlops += weight * trainer.Flops.Dense / request.Steps;
            }
        }

        /// <summary>A refresh step and a reuse step under the per-layer profilers.</summary>
        public void ProfiledPair()
        {
            SwatRules.ResetThresholds(model);
            StepUnder(refreshProfiler, profiledRefreshSeconds);
            StepUnder(reuseProfiler, profiledReuseSeconds);
            trainer.Profiler = null;
        }

        /// <summary>One step under <paramref name="profiler"/>, keeping each row's seconds per pass of this step and the step's own.</summary>
        private void StepUnder(OpProfiler profiler, List<double> wholeSteps)
        {
            var before = profiler.Layers.ToDictionary(l => l, l => (double[])l.Seconds.Clone());
            trainer.Profiler = profiler;
            device.Synchronize();
            var clock = Stopwatch.StartNew();
            trainer.Step(data, batch, readLoss: false);
            device.Synchronize();
            wholeSteps.Add(clock.Elapsed.TotalSeconds);
            int step = wholeSteps.Count - 1;
            foreach (var layer in profiler.Layers)
            {
                var start = before.TryGetValue(layer, out var seconds) ? seconds : new double[3];
                if (!stepSeconds.TryGetValue(layer, out var steps))
                {
                    stepSeconds[layer] = steps = [];
                }
                steps[step] = [layer.Seconds[0] - start[0], layer.Seconds[1] - start[1], layer.Seconds[2] - start[2]];
            }
        }

        /// <summary>
        /// Replaces each row's summed seconds by its seconds in the median profiled step (by wall time),
        /// so that one disturbed step (another process, a page-fault burst) does not move the figures
        /// and the rows still add up to a real step (a median per row would not).
        /// </summary>
        private void UseMedianStep(OpProfiler profiler, List<double> wholeSteps)
        {
            int median = MedianIndex(wholeSteps);
            foreach (var layer in profiler.Layers)
            {
                var seconds = stepSeconds.TryGetValue(layer, out var steps) && steps.TryGetValue(median, out var s) ? s : new double[3];
                seconds.CopyTo(layer.Seconds, 0);
            }
        }

        public RunProfile Result()
        {
            UseMedianStep(refreshProfiler, profiledRefreshSeconds);
            UseMedianStep(reuseProfiler, profiledReuseSeconds);
            // Rows of the reuse step with their refresh-step twins added, plus any op that ran only in the refresh step.
            var refreshRows = refreshProfiler.Layers.ToDictionary(l => (l.Name, l.Kind));
            var reuseKeys = reuseProfiler.Layers.Select(l => (l.Name, l.Kind)).ToHashSet();
            var refreshOnly = refreshProfiler.Layers.Where(l => !reuseKeys.Contains((l.Name, l.Kind))).ToList();
            foreach (var layer in refreshOnly)
            {
                Scale(layer, refreshWeight);
            }
            foreach (var layer in reuseProfiler.Layers)
            {
                Scale(layer, reuseWeight);
                if (!refreshRows.TryGetValue((layer.Name, layer.Kind), out var refresh))
                {
                    continue;
                }
                Scale(refresh, refreshWeight);
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
                (long)(refreshWeight * refreshProfiler.RetainedBytes + reuseWeight * reuseProfiler.RetainedBytes) / request.Steps,
                trainer.Workspace.PeakBytes,
                model.Store.Bytes,
                reuseProfiler.Layers.Concat(refreshOnly).ToList(),
                refreshMedian,
                reuseMedian,
                syncs,
                deviceToHostBytes,
                refreshWeight * Median(profiledRefreshSeconds) + reuseWeight * Median(profiledReuseSeconds),
                trainer.Workspace.PeakBytes + trainer.Workspace.ScratchBytes);
        }

        public void Dispose()
        {
            trainer.Dispose();
            data.Dispose();
            model.Dispose();
        }
    }

    /// <summary>The index of the median of <paramref name="values"/> (the upper one of an even count).</summary>
    internal static int MedianIndex(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("no values to take the median of");
        }
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToList();
        return order[values.Count / 2];
    }

    private static double Median(List<double> values) => values[MedianIndex(values)];

    /// <summary>
    /// Weighs a row of one kind of step (refresh or reuse) by <paramref name="weight"/>: its seconds
    /// are already per step, its FLOPs and retained bytes are summed over the layer's recorded steps.
    /// </summary>
    private static void Scale(LayerProfile layer, double weight)
    {
        double perStep = weight / Math.Max(1, layer.Steps);
        for (int p = 0; p < 3; p++)
        {
            layer.DenseFlops[p] *= perStep;
            layer.SparseFlops[p] *= perStep;
            layer.Seconds[p] *= weight;
        }
        layer.RetainedBytes = (long)(layer.RetainedBytes * perStep);
        layer.RetainedDenseBytes = (long)(layer.RetainedDenseBytes * perStep);
        layer.Steps = 1;
    }
}
