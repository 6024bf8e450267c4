using System.Diagnostics;
using System.Text.Json;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;

namespace ZeroFL.Perf;

/// <summary>
/// ZeroFL's training step against PyTorch's on the same models in the same run (see perf/README.md,
/// the <c>torch</c> suite). Per model, ZeroFL (this process) and PyTorch (a
/// <c>perf/torch_step.py</c> process per block) take turns: for each round and each mode, a ZeroFL
/// block, then a PyTorch block of the same mode. SWAT rows are compared with PyTorch's dense step
/// (the targets' baseline) and also with its masked SWAT step.
/// </summary>
internal sealed class TorchBench(ComputeDevice device, bool quick)
{
    /// <summary>The models, their CIFAR/FEMNIST/Fashion-MNIST shapes, the modes timed and the targets (ZeroFL step / PyTorch's dense step).</summary>
    private static readonly ModelCase[] Cases =
    [
        new("resnet18", 3, 32, 10, 32, [new(0f, 1.25), new(0.9f, 0.5), new(0.95f, 0.4)], StepsPerBlock: 3, TorchWarmup: 2),
        new("femnist-cnn", 1, 28, 62, 32, [new(0f, 1.0), new(0.95f, 0.5)], StepsPerBlock: 8, TorchWarmup: 3),
        new("cnn", 1, 28, 10, 64, [new(0f, 1 / 1.5)], StepsPerBlock: 20, TorchWarmup: 3),
    ];

    private readonly string script = TorchPeer.FindScript(AppContext.BaseDirectory)
        ?? TorchPeer.FindScript(Environment.CurrentDirectory)
        ?? throw new InvalidOperationException("perf/torch_step.py not found above the harness or the current folder");

    /// <summary>Rounds of alternating blocks per model.</summary>
    private int Rounds => quick ? 2 : 3;

    /// <summary>
    /// Checks that PyTorch builds every model with ZeroFL's parameter names and shapes (throws
    /// <see cref="ValidationException"/> on a difference), then times each model's modes.
    /// </summary>
    public void Run()
    {
        if (TorchPeer.Unavailable() is string reason)
        {
            throw new InvalidOperationException(reason);
        }
        foreach (var c in Cases)
        {
            CheckParameters(c);
        }
        foreach (var c in Cases)
        {
            Time(c);
        }
    }

    private void CheckParameters(ModelCase c)
    {
        var zerofl = ModelCatalog.Build(c.Model, c.Channels, c.Size, c.Classes).CollectParameters();
        var differences = TorchPeer.Differences(zerofl, TorchPeer.Tensors(script, c.Model, c.Channels, c.Size, c.Classes));
        if (differences.Count > 0)
        {
            throw new ValidationException($"PyTorch's {c.Model} is not ZeroFL's: {string.Join("; ", differences.Take(8))}");
        }
        Console.Error.WriteLine($"# {c.Model}: PyTorch's model has ZeroFL's {zerofl.Count} parameter tensors, names and shapes ({zerofl.Sum(p => p.Length)} values)");
    }

    private void Time(ModelCase c)
    {
        int steps = quick ? Math.Max(2, c.StepsPerBlock / 2) : c.StepsPerBlock;
        var runs = new List<ZeroFlRun>();
        try
        {
            foreach (var mode in c.Modes)
            {
                runs.Add(new ZeroFlRun(device, c, mode.Sparsity));
            }
            var torchSeconds = c.Modes.Select(_ => new List<double>()).ToArray();
            TorchSteps? last = null;
            double childCpu = 0;
            var probe = LoadProbe.Start();
            for (int round = 0; round < Rounds; round++)
            {
                for (int m = 0; m < c.Modes.Length; m++)
                {
                    runs[m].Block(steps);
                    last = TorchPeer.Steps(script, c.Model, c.Channels, c.Size, c.Classes, c.Batch, c.Modes[m].Sparsity, c.TorchWarmup, steps);
                    torchSeconds[m].AddRange(last.Seconds);
                    childCpu += last.CpuSeconds;
                }
            }
            double? background = probe.BackgroundShare(childCpu);
            double torchDense = Median(torchSeconds[0]);
            for (int m = 0; m < c.Modes.Length; m++)
            {
                Report(c, c.Modes[m], Median(runs[m].Seconds), Median(torchSeconds[m]), torchDense,
                    runs[m].Seconds.Count, torchSeconds[m].Count, last!, background);
            }
        }
        finally
        {
            foreach (var run in runs)
            {
                run.Dispose();
            }
        }
    }

    private void Report(ModelCase c, Mode mode, double zerofl, double torch, double torchDense, int zeroflSteps, int torchSteps,
        TorchSteps peer, double? background)
    {
        bool sparse = mode.Sparsity > 0;
        double ratio = zerofl / torchDense;
        var line = new Dictionary<string, object>
        {
            ["name"] = $"torch_step_{c.Model}_b{c.Batch}_{(sparse ? $"swat_{mode.Sparsity}" : "dense")}",
            ["model"] = c.Model,
            ["batch"] = c.Batch,
            ["sparsity"] = mode.Sparsity,
            ["zerofl_step_ms"] = Math.Round(zerofl * 1e3, 1),
            ["torch_step_ms"] = Math.Round(torch * 1e3, 1),
            ["torch_mode"] = sparse ? "swat_masked" : "dense",
            ["torch_dense_step_ms"] = Math.Round(torchDense * 1e3, 1),
            ["ratio"] = Math.Round(ratio, 3),
            ["ratio_same_mode"] = Math.Round(zerofl / torch, 3),
            ["target"] = Math.Round(mode.Target, 3),
            ["met"] = ratio <= mode.Target,
        };
        if (c.Model == "cnn")
        {
            line["zerofl_samples_per_s"] = Math.Round(c.Batch / zerofl, 0);
            line["torch_samples_per_s"] = Math.Round(c.Batch / torch, 0);
        }
        line["zerofl_steps"] = zeroflSteps;
        line["torch_steps"] = torchSteps;
        line["rounds"] = Rounds;
        line["zerofl_topk_period"] = 1;
        line["device"] = device.Description;
        line["torch"] = $"{peer.Version}, {peer.Threads} threads";
        line["background_cpu_share"] = background is double share ? Math.Round(share, 2) : null!;
        Console.WriteLine(JsonSerializer.Serialize(line));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        int n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    /// <summary>A model of the suite: catalogue name, input [channels, size, size], classes, batch, modes, steps per timed block, PyTorch's untimed steps per block.</summary>
    private sealed record ModelCase(string Model, int Channels, int Size, int Classes, int Batch, Mode[] Modes, int StepsPerBlock, int TorchWarmup);

    /// <summary>Sparsity (0 = dense) and the target: ZeroFL's step at most this times PyTorch's dense step.</summary>
    private sealed record Mode(float Sparsity, double Target);

    /// <summary>ZeroFL's model under one mode, trained on one random batch as StepProfile does, with SWAT's top-K every step (period 1).</summary>
    private sealed class ZeroFlRun : IDisposable
    {
        private const int Warmup = 2;
        private readonly ComputeDevice device;
        private readonly Model model;
        private readonly DeviceDataset data;
        private readonly Trainer trainer;
        private readonly int[] batch;

        public ZeroFlRun(ComputeDevice device, ModelCase c, float sparsity)
        {
            this.device = device;
            var random = new Random(1);
            var features = new float[(long)c.Batch * c.Channels * c.Size * c.Size];
            for (int i = 0; i < features.Length; i++)
            {
                features[i] = (float)(random.NextDouble() * 2 - 1);
            }
            var labels = Enumerable.Range(0, c.Batch).Select(_ => random.Next(c.Classes)).ToArray();
            model = ModelCatalog.Create(device, c.Model, c.Channels, c.Size, c.Classes, seed: 1);
            try
            {
                SwatRules.Apply(model, new SparsitySettings(sparsity, TopKPeriod: 1));
                data = new DeviceDataset(device, features, labels, [c.Channels, c.Size, c.Size], c.Classes);
                trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 5e-4f));
            }
            catch
            {
                data?.Dispose();
                model.Dispose();
                throw;
            }
            batch = Enumerable.Range(0, c.Batch).ToArray();
            for (int i = 0; i < Warmup; i++)
            {
                trainer.Step(data, batch, readLoss: false);
            }
            device.Synchronize();
            // The first steps outgrow the arenas; merge them now (a device sync), not in a timed step.
            trainer.Workspace.Reset();
        }

        /// <summary>Seconds of every timed step so far.</summary>
        public List<double> Seconds { get; } = [];

        /// <summary>One untimed step (PyTorch's process ran since the last block), then <paramref name="steps"/> timed ones.</summary>
        public void Block(int steps)
        {
            trainer.Step(data, batch, readLoss: false);
            for (int i = 0; i < steps; i++)
            {
                device.Synchronize();
                long start = Stopwatch.GetTimestamp();
                trainer.Step(data, batch, readLoss: false);
                device.Synchronize();
                Seconds.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }

        public void Dispose()
        {
            trainer.Dispose();
            data.Dispose();
            model.Dispose();
        }
    }
}
