using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ZeroFL.Cli.Recording;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cli.Commands;

/// <summary>The federated run.</summary>
public static class RunCommand
{
    /// <summary>Runs the experiment and writes its files.</summary>
    public static int Run(RunOptions o)
    {
        CheckpointState? resumed = null;
        if (o.Resume is { } directory)
        {
            (o, resumed) = RunResume.Read(directory);
        }
        if (o.Preset is not null)
        {
            Presets.Apply(Presets.Find(o.Preset), o, o.Arguments);
        }
        var spec = TrainCommand.ParseDevice(o.Device);
        bool clustered = ClusterRun.Validate(o);
        var (options, split) = RunSetup.OptionsAndData(o);
        string outDir = o.Out ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(outDir);
        var partition = RunSetup.PartitionOf(o, options, split);

        using var device = ComputeDevice.Open(spec, Console.Error);
        using var cluster = clustered ? ClusterRun.Open(o, partition, device.IsCpu, Console.Error) : null;
        using var server = OutOfMemoryWithSizes(device, split, o, () => new FederatedServer(device, options, split.Train, split.Test, partition, cluster?.Backend));
        cluster?.Start(o, split.Train, server.Uplink.Layout);
        var sparseLayers = server.Uplink.Layout.Layers.Where(l => l.Sparse).Select(l => l.Name).ToList();
        var progress = new ProgressPrinter(o.Quiet || o.Json);
        progress.Line($"device {device.Description}; {o.Model} on {split.Train.Name}: {o.Clients} clients ({partition.Scheme}), {options.Sampling.CountFor(o.Clients)} per round, {o.Rounds} rounds; " +
            $"strategy {options.Uplink.Strategy.Name()}, sparsity {options.Sparsity.Sparsity}, r_mask {o.MaskRatio}, uplink encoding {o.UplinkEncoding}, upload values {o.UploadValues}{ServerOptimizerText(options.ServerOptimizer)}; dense upload {server.DenseUploadBytes / 1e6:F2} MB per client");
        if (cluster is not null)
        {
            progress.Line($"cluster: {cluster.Description}; workers {cluster.WorkerList}");
        }

        var totals = new RunTotals();
        int firstRound = 1;
        if (resumed is not null)
        {
            var state = RunResume.Restore(outDir, server, Console.Error);
            totals = state.Totals;
            firstRound = state.Round + 1;
            progress.Line($"resuming {outDir} after round {state.Round} of {o.Rounds}");
        }
        using var recorder = new RunRecorder(outDir, sparseLayers, totals, append: resumed is not null);
        var clock = Stopwatch.StartNew();
        double wallBefore = totals.WallSeconds;
        for (int round = firstRound; round <= o.Rounds; round++)
        {
            double elapsedBefore = clock.Elapsed.TotalSeconds;
            int roundsDone = round - firstRound;
            var bytesBefore = cluster?.Bytes ?? (0, 0);
            var m = OutOfMemoryWithSizes(device, split, o, () => server.RunRound(round, (done, total) =>
            {
                // Live on a terminal only (plain output gets the per-round lines): the run's ETA from the rounds so far and this round's share.
                double perRound = roundsDone > 0 ? elapsedBefore / roundsDone : double.NaN;
                string eta = double.IsNaN(perRound) ? "-" : TrainCommand.FormatDuration(perRound * (o.Rounds - round + 1) - (clock.Elapsed.TotalSeconds - elapsedBefore));
                progress.Live($"round {round}/{o.Rounds}: client {done + 1}/{total} ETA {eta}");
            }));
            recorder.Record(m, cluster?.TrafficSince(bytesBefore) ?? default, wallBefore + clock.Elapsed.TotalSeconds);
            long uploadTotal = totals.UploadBytes, denseTotal = totals.DenseUploadBytes;
            if (o.WritesCheckpoints && (round % o.CheckpointEvery == 0 || round == o.Rounds))
            {
                RunResume.Save(outDir, server, round, o.Arguments, totals);
            }
            double eta = clock.Elapsed.TotalSeconds / (round - firstRound + 1) * (o.Rounds - round);
            if (o.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(RoundLine.Of(m, uploadTotal)));
            }
            string accuracy = m.TestAccuracy is double a ? a.ToString("F4", CultureInfo.InvariantCulture) : "  -   ";
            if (m.TestAccuracy is not null && m.TestAccuracyDenseWeights is double all && options.Sparsity.Sparsity > 0)
            {
                accuracy += string.Create(CultureInfo.InvariantCulture, $" (all weights {all:F4})");
            }
            string failed = m.Failures.Count > 0 ? $" ({m.Failures.Count} failed{(m.Attempts > 1 ? $", {m.Attempts} samples" : string.Empty)})" : string.Empty;
            double share = denseTotal > 0 ? (double)uploadTotal / denseTotal : 0;
            progress.Line(string.Create(CultureInfo.InvariantCulture,
                $"round {round}/{o.Rounds} acc {accuracy} loss {m.TrainLoss:F4} upload {m.UploadBytes / 1e6:F2} MB (total {uploadTotal / 1e6:F1} MB, {share:P0} of dense) lr {m.LearningRate:G3} {m.Seconds:F1} s ETA {TrainCommand.FormatDuration(eta)}{failed}"));
        }
        RunCheckpoint.WriteModel(Path.Combine(outDir, "model.safetensors"), server.Global.Store, server.Global.Store.Download(), o.Rounds);
        var summary = new RunSummary
        {
            FinalTestAccuracy = totals.LastAccuracy,
            FinalTestAccuracyDenseWeights = totals.Analyses.LastAccuracyDenseWeights,
            FinalValidationAccuracy = totals.Analyses.LastValidationAccuracy,
            FinalValidationLoss = totals.Analyses.LastValidationLoss,
            ValidationFraction = o.ValidationFraction,
            MaskRecordEvery = o.MaskRecordEvery,
            Rounds = o.Rounds,
            Clients = o.Clients,
            ClientsPerRound = options.Sampling.CountFor(o.Clients),
            Strategy = options.Uplink.Strategy.Name(),
            Sparsity = options.Sparsity.Sparsity,
            MaskRatio = o.MaskRatio,
            UplinkBytesTotal = totals.UploadBytes,
            DenseUplinkBytesTotal = totals.DenseUploadBytes,
            UplinkEncoding = o.UplinkEncoding,
            ServerOptimizer = ServerOptimizerSummary.Of(options.ServerOptimizer),
            UploadValues = o.UploadValues,
            UplinkBytesByEncoding = totals.UploadBytesByEncoding.OrderBy(e => e.Key, StringComparer.Ordinal).ToDictionary(e => e.Key, e => e.Value),
            TrainFlopsTotal = totals.TrainFlops,
            DenseTrainFlopsTotal = totals.DenseTrainFlops,
            WallSeconds = totals.WallSeconds,
            ServerSecondsTotal = totals.ServerSeconds,
            FailuresByReason = totals.FailuresByReason,
            Failures = totals.Failures,
            Preset = o.Preset,
            Model = o.Model,
            Dataset = split.Train.Name,
            Partition = partition.Scheme,
            Alpha = o.Alpha,
            LocalEpochs = o.LocalEpochs,
            BatchSize = o.BatchSize,
            LearningRateStart = o.LearningRateStart,
            LearningRateEnd = o.LearningRateEnd,
            TopKPeriod = o.TopKPeriod,
            Recompute = o.Recompute,
            SparseLayers = sparseLayers,
            DenseUploadBytesPerClient = server.DenseUploadBytes,
            Device = device.Description,
            DeviceBytes = server.DeviceBytes,
            Cluster = cluster?.Description,
            Silos = cluster?.SiloSummary() ?? [],
            CoordinatorBytesSentTotal = totals.CoordinatorBytesSent,
            CoordinatorBytesReceivedTotal = totals.CoordinatorBytesReceived,
            Seed = o.Seed,
        };
        RunFiles.WriteJsonAtomically(Path.Combine(outDir, "summary.json"), summary);
        Console.Error.Flush();
        if (!o.Json)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"final test accuracy {summary.FinalTestAccuracy:F4}{(options.Sparsity.Sparsity > 0 ? $" (all weights {summary.FinalTestAccuracyDenseWeights:F4})" : string.Empty)} after {o.Rounds} rounds; uplink {summary.UplinkBytesTotal / 1e6:F1} MB = {summary.UplinkFractionOfDense ?? 0:P1} of dense; {summary.WallSeconds:F1} s; results in {outDir}"));
        }
        return 0;
    }

    private static string ServerOptimizerText(ServerOptimizerSettings s) => !s.IsAdaptive ? string.Empty : string.Create(CultureInfo.InvariantCulture,
        $"; server {s.Kind.Name()} lr {s.LearningRate:G4} beta1 {s.Beta1:G4}{(s.Kind == ServerOptimizerKind.FedAdagrad ? string.Empty : $" beta2 {s.Beta2:G4}")} tau {s.Tau:G4}");

    /// <summary>
    /// Runs <paramref name="step"/>; an out-of-memory error becomes one that names the sizes
    /// involved (device memory, data on the device, batch size) and what to reduce.
    /// </summary>
    private static T OutOfMemoryWithSizes<T>(ComputeDevice device, TrainTestSplit split, RunOptions o, Func<T> step)
    {
        try
        {
            return step();
        }
        catch (Exception e) when (Program.IsOutOfMemory(e) && e is not InsufficientMemoryException)
        {
            long data = 4L * (split.Train.Features.LongLength + split.Test.Features.LongLength);
            string memory = device.IsCpu ? "host memory" : $"{device.Accelerator.MemorySize / 1e9:F1} GB";
            throw new InsufficientMemoryException(
                $"out of memory on {device.Description} ({memory}; the data takes {data / 1e6:F0} MB of it, model {o.Model}, batch {o.BatchSize}): " +
                "try a smaller --batch-size or model, or fewer samples", e);
        }
    }
}
