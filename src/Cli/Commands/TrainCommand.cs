using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CommandLine;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl train</c>: central (non-federated) training to prove the engine.</summary>
[Verb("train", HelpText = "Train one model centrally on a dataset and evaluate it on the test set.")]
public sealed class TrainOptions : DataOptions
{
    /// <summary>Epochs.</summary>
    [Option("epochs", Default = 1, HelpText = "Training epochs.")]
    public int Epochs { get; set; } = 1;

    /// <summary>Batch size.</summary>
    [Option("batch-size", Default = 64, HelpText = "Mini-batch size.")]
    public int BatchSize { get; set; } = 64;

    /// <summary>Learning rate.</summary>
    [Option("lr", Default = 0.05f, HelpText = "SGD learning rate.")]
    public float LearningRate { get; set; } = 0.05f;

    /// <summary>Momentum.</summary>
    [Option("momentum", Default = 0.9f, HelpText = "SGD momentum.")]
    public float Momentum { get; set; } = 0.9f;

    /// <summary>Weight decay.</summary>
    [Option("weight-decay", Default = 5e-4f, HelpText = "L2 weight decay.")]
    public float WeightDecay { get; set; } = 5e-4f;

    /// <summary>SWAT sparsity.</summary>
    [Option("sparsity", Default = 0f, HelpText = "SWAT sparsity: fraction of weights and activations dropped in the sparse layers (0 = dense).")]
    public float Sparsity { get; set; }

    /// <summary>Limit of training batches per epoch (0 = all).</summary>
    [Option("max-batches", Default = 0, HelpText = "Stop each epoch after this many batches (0 = the whole epoch).")]
    public int MaxBatches { get; set; }

    /// <summary>Output directory.</summary>
    [Option("out", HelpText = "Output directory for summary.json (default: runs/train-<timestamp>).")]
    public string? Out { get; set; }
}

/// <summary>Central training.</summary>
public static class TrainCommand
{
    /// <summary>Trains, evaluates, writes <c>summary.json</c>.</summary>
    public static int Run(TrainOptions o)
    {
        Validate(o);
        var spec = ParseDevice(o.Device);
        var split = RunSetup.LoadData(o);
        string outDir = o.Out ?? Path.Combine("runs", "train-" + DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(outDir);

        using var device = ComputeDevice.Open(spec, Console.Error);
        var train = split.Train;
        using var model = ModelCatalog.Create(device, o.Model, train.Channels, train.Height, train.ClassCount, o.Seed);
        using var trainData = new DeviceDataset(device, train.Features, train.Labels, [train.Channels, train.Height, train.Width], train.ClassCount);
        using var testData = new DeviceDataset(device, split.Test.Features, split.Test.Labels, [train.Channels, train.Height, train.Width], train.ClassCount);
        if (train.Augmentation is { } augmentation)
        {
            trainData.EnableCropFlip(augmentation.Padding, augmentation.Fill);
        }
        var sparseLayers = SwatRules.Apply(model, new SparsitySettings(o.Sparsity, o.TopKPeriod, o.SparseLayers));
        using var trainer = new Trainer(model, new Sgd(o.LearningRate, o.Momentum, o.WeightDecay)) { RecomputesSegments = o.Recompute };
        trainer.AugmentationSeed = o.Seed;
        var progress = new ProgressPrinter(o.Quiet);
        progress.Line($"device {device.Description}; model {o.Model} ({model.Store.TrainableLength:N0} parameters, {sparseLayers.Count} sparse layers at {o.Sparsity}); {train.Name}: {train.Count} train, {split.Test.Count} test");

        var sampler = new BatchSampler(train.Count, o.BatchSize, o.Seed);
        int batchesPerEpoch = o.MaxBatches > 0 ? Math.Min(o.MaxBatches, sampler.BatchCount) : sampler.BatchCount;
        long totalBatches = (long)batchesPerEpoch * o.Epochs;
        long samples = 0, done = 0;
        double lastLoss = double.NaN;
        var clock = Stopwatch.StartNew();
        for (int epoch = 0; epoch < o.Epochs; epoch++)
        {
            sampler.StartEpoch(epoch);
            double epochLoss = 0;
            for (int b = 0; b < batchesPerEpoch; b++)
            {
                var batch = sampler.Batch(b);
                float loss = trainer.Step(trainData, batch);
                if (!float.IsFinite(loss))
                {
                    throw new InvalidOperationException($"training diverged: loss is {loss} at epoch {epoch + 1}, batch {b + 1} (try a smaller --lr)");
                }
                epochLoss += loss;
                lastLoss = epochLoss / (b + 1);
                samples += batch.Length;
                done++;
                double seconds = clock.Elapsed.TotalSeconds;
                double eta = seconds / done * (totalBatches - done);
                progress.Tick(done == totalBatches,
                    $"epoch {epoch + 1}/{o.Epochs} batch {b + 1}/{batchesPerEpoch} loss {lastLoss:F4} {samples / seconds:F0} samples/s ETA {FormatDuration(eta)}");
            }
        }
        double trainSeconds = clock.Elapsed.TotalSeconds;
        var evaluation = trainer.Evaluate(testData);
        double wall = clock.Elapsed.TotalSeconds;
        var summary = new Dictionary<string, object>
        {
            ["test_accuracy"] = evaluation.Accuracy,
            ["test_loss"] = evaluation.Loss,
            ["train_loss"] = lastLoss,
            ["epochs"] = o.Epochs,
            ["batches"] = done,
            ["train_samples"] = samples,
            ["train_samples_per_second"] = samples / trainSeconds,
            ["train_seconds"] = trainSeconds,
            ["wall_seconds"] = wall,
            ["device"] = device.Description,
            ["model"] = o.Model,
            ["dataset"] = train.Name,
            ["batch_size"] = o.BatchSize,
            ["lr"] = o.LearningRate,
            ["momentum"] = o.Momentum,
            ["weight_decay"] = o.WeightDecay,
            ["seed"] = o.Seed,
            ["sparsity"] = o.Sparsity,
            ["topk_period"] = o.TopKPeriod,
            ["recompute"] = o.Recompute,
            ["sparse_layer_rule"] = o.SparseLayers.ToString().ToLowerInvariant(),
            ["sparse_layers"] = sparseLayers.Select(l => l.Path).ToArray(),
            ["train_flops"] = trainer.Flops.Sparse,
            ["dense_train_flops"] = trainer.Flops.Dense,
            ["parameters"] = model.Store.TrainableLength,
            ["workspace_peak_bytes"] = trainer.Workspace.PeakBytes,
        };
        RunFiles.WriteJsonAtomically(Path.Combine(outDir, "summary.json"), summary);
        Console.WriteLine($"test accuracy {evaluation.Accuracy:F4} (loss {evaluation.Loss:F4}) after {o.Epochs} epoch(s), {samples / trainSeconds:F0} samples/s, {wall:F1} s; summary in {Path.Combine(outDir, "summary.json")}");
        return 0;
    }

    private static void Validate(TrainOptions o)
    {
        if (o.Epochs <= 0)
        {
            throw new UsageException($"--epochs must be positive, got {o.Epochs}");
        }
        if (o.BatchSize <= 0)
        {
            throw new UsageException($"--batch-size must be positive, got {o.BatchSize}");
        }
        if (!(o.LearningRate > 0) || !float.IsFinite(o.LearningRate))
        {
            throw new UsageException($"--lr must be a positive number, got {o.LearningRate}");
        }
        if (!(o.Momentum >= 0 && o.Momentum < 1))
        {
            throw new UsageException($"--momentum must be in [0, 1), got {o.Momentum}");
        }
        if (!(o.WeightDecay >= 0) || !float.IsFinite(o.WeightDecay))
        {
            throw new UsageException($"--weight-decay must be a non-negative number, got {o.WeightDecay}");
        }
        if (!(o.Sparsity >= 0f && o.Sparsity < 1f))
        {
            throw new UsageException($"--sparsity must be in [0, 1), got {o.Sparsity}");
        }
        if (o.TopKPeriod < 1)
        {
            throw new UsageException($"--topk-period must be at least 1, got {o.TopKPeriod}");
        }
        if (o.MaxBatches < 0)
        {
            throw new UsageException($"--max-batches must not be negative, got {o.MaxBatches}");
        }
        if (!ModelCatalog.Names.Contains(o.Model))
        {
            throw new UsageException($"unknown --model '{o.Model}' (expected one of: {string.Join(", ", ModelCatalog.Names)})");
        }
        o.CheckRecompute(o.Model);
    }

    /// <summary>Parses --device, turning a format error into a usage error.</summary>
    public static DeviceSpec ParseDevice(string text)
    {
        try
        {
            return DeviceSpec.Parse(text);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--device: {e.Message}");
        }
    }

    /// <summary>h:mm:ss.</summary>
    public static string FormatDuration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
        {
            return "?";
        }
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return $"{(int)t.TotalHours}:{t.Minutes:D2}:{t.Seconds:D2}";
    }
}
