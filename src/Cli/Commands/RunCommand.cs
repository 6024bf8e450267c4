using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CommandLine;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl run</c>: a federated ZeroFL experiment. The defaults are the embedded main job.</summary>
[Verb("run", isDefault: false, HelpText = "Run a federated ZeroFL experiment (defaults: Fashion-MNIST, small CNN, 100 clients, 10 per round, LDA alpha 1.0, sparsity 0.9, topk-weights, r_mask 0.1).")]
public class RunOptions : DataOptions
{
    /// <summary>A shallow copy (the sweep's cells each get one).</summary>
    public RunOptions MemberwiseCopy() => (RunOptions)MemberwiseClone();

    /// <summary>Clients.</summary>
    [Option("clients", Default = 100, HelpText = "Number of simulated clients.")]
    public int Clients { get; set; } = 100;

    /// <summary>Clients per round.</summary>
    [Option("clients-per-round", Default = 10, HelpText = "Clients sampled per round (ignored when --fraction-fit is given).")]
    public int ClientsPerRound { get; set; } = 10;

    /// <summary>Fraction of clients per round.</summary>
    [Option("fraction-fit", HelpText = "Fraction of the clients sampled per round (Flower's fraction_fit), at least --min-clients.")]
    public double? FractionFit { get; set; }

    /// <summary>Minimum clients per round with --fraction-fit.</summary>
    [Option("min-clients", Default = 1, HelpText = "Minimum clients per round with --fraction-fit, and the fewest that must succeed for a round to count (else it is retried with a fresh sample, up to 5 times).")]
    public int MinClients { get; set; } = 1;

    /// <summary>Rounds.</summary>
    [Option("rounds", Default = 30, HelpText = "Federated rounds.")]
    public int Rounds { get; set; } = 30;

    /// <summary>Local epochs.</summary>
    [Option("local-epochs", Default = 1, HelpText = "Local epochs per client per round.")]
    public int LocalEpochs { get; set; } = 1;

    /// <summary>Batch size.</summary>
    [Option("batch-size", Default = 32, HelpText = "Local mini-batch size.")]
    public int BatchSize { get; set; } = 32;

    /// <summary>Start learning rate.</summary>
    [Option("lr-start", Default = 0.05, HelpText = "Client learning rate in the first round (exponential decay to --lr-end).")]
    public double LearningRateStart { get; set; } = 0.05;

    /// <summary>End learning rate.</summary>
    [Option("lr-end", Default = 0.01, HelpText = "Client learning rate in the last round.")]
    public double LearningRateEnd { get; set; } = 0.01;

    /// <summary>Momentum.</summary>
    [Option("momentum", Default = 0.9f, HelpText = "Client SGD momentum (reset every round).")]
    public float Momentum { get; set; } = 0.9f;

    /// <summary>Weight decay.</summary>
    [Option("weight-decay", Default = 5e-4f, HelpText = "Client SGD weight decay.")]
    public float WeightDecay { get; set; } = 5e-4f;

    /// <summary>Partition.</summary>
    [Option("partition", Default = PartitionScheme.Lda, HelpText = "Data partition: iid, lda (Dirichlet over labels, equal samples per client) or natural (one client per writer or speaker; sets --clients).")]
    public PartitionScheme Partition { get; set; } = PartitionScheme.Lda;

    /// <summary>Alpha.</summary>
    [Option("alpha", Default = 1.0, HelpText = "LDA concentration: large = IID, small = skewed.")]
    public double Alpha { get; set; } = 1.0;

    /// <summary>Strategy.</summary>
    [Option("strategy", Default = "topk-weights", HelpText = "Uplink: dense, swat, topk-weights, diff-on-topk or topk-diff.")]
    public string Strategy { get; set; } = "topk-weights";

    /// <summary>Sparsity.</summary>
    [Option("sparsity", Default = 0.9, HelpText = "SWAT sparsity of local training and of the uplink (ignored by --strategy dense).")]
    public double Sparsity { get; set; } = 0.9;

    /// <summary>Mask ratio.</summary>
    [Option("mask-ratio", Default = 0.1, HelpText = "r_mask: extra share of each sparse layer uploaded (clients send the top 1 - sparsity + r_mask).")]
    public double MaskRatio { get; set; } = 0.1;

    /// <summary>Uplink layout choice.</summary>
    [Option("uplink-encoding", Default = "auto", HelpText = "How each sparse layer is laid out on the uplink: auto (the smallest exact layout per layer: CSR with 32- or 16-bit columns, a bitmap of kept positions, or dense) or csr32 (the paper's CSR). Lossless: both give the same model.")]
    public string UplinkEncoding { get; set; } = "auto";

    /// <summary>Server optimizer.</summary>
    [Option("server-optimizer", Default = "fedavg", HelpText = "How the server applies each round's average: fedavg (as it is), or with the pseudo-gradient (average - global model) fedadam, fedyogi or fedadagrad (Flower's FedOpt strategies; m and v on the device, in checkpoints).")]
    public string ServerOptimizer { get; set; } = "fedavg";

    /// <summary>Server learning rate.</summary>
    [Option("server-lr", HelpText = "Server learning rate eta (Flower's defaults: fedadam 0.1, fedyogi 0.01, fedadagrad 0.1).")]
    public double? ServerLearningRate { get; set; }

    /// <summary>Server beta1.</summary>
    [Option("server-beta1", HelpText = "Server first-moment decay in [0, 1) (default 0.9; fedadagrad 0).")]
    public double? ServerBeta1 { get; set; }

    /// <summary>Server beta2.</summary>
    [Option("server-beta2", HelpText = "Server second-moment decay in [0, 1) for fedadam and fedyogi (default 0.99).")]
    public double? ServerBeta2 { get; set; }

    /// <summary>Server tau.</summary>
    [Option("server-tau", HelpText = "Server adaptivity constant tau, positive (default 1e-3).")]
    public double? ServerTau { get; set; }

    /// <summary>Width of the uploaded top-K values.</summary>
    [Option("upload-values", Default = "fp32", HelpText = "Width of the values of each sparse layer's top-K slice on the uplink: fp32 (lossless), fp16 or bf16 (2 bytes each, rounded to nearest even on the client, decoded to fp32 by the server before it aggregates). Layers sent whole (batch-norm, biases, the classifier; every layer under --strategy dense or swat) stay fp32.")]
    public string UploadValues { get; set; } = "fp32";

    /// <summary>Evaluate every N rounds.</summary>
    [Option("eval-every", Default = 5, HelpText = "Evaluate the global model on the test set every N rounds (and after the last).")]
    public int EvaluateEvery { get; set; } = 5;

    /// <summary>Mask record period.</summary>
    [Option("mask-record-every", Default = 20, HelpText = "Record the global model's top-K masks every N rounds (the initial model is the first record); layers.csv's mask_stability is the share of each sparse layer's top-K positions unchanged since the previous record (the paper records every 20).")]
    public int MaskRecordEvery { get; set; } = 20;

    /// <summary>Validation share of each client.</summary>
    [Option("val-fraction", Default = 0.1, HelpText = "Share of each client's samples held out for validation (the paper's 10%); each round the new global model is evaluated on the round's clients' splits (val_accuracy, val_loss in metrics.csv). 0 = train on everything.")]
    public double ValidationFraction { get; set; } = 0.1;

    /// <summary>Output directory.</summary>
    [Option("out", HelpText = "Output directory (default: runs/<timestamp>): metrics.csv, layers.csv, summary.json.")]
    public string? Out { get; set; }

    /// <summary>Preset.</summary>
    [Option("preset", HelpText = "The paper's setup: cifar10-resnet18, speech-resnet18 or femnist-cnn; options given on the command line override it.")]
    public string? Preset { get; set; }

    /// <summary>False for a sweep's cells: a killed cell is run again from round 1 (its command line is the sweep's).</summary>
    public bool WritesCheckpoints { get; set; } = true;

    /// <summary>The raw command line, so that a preset leaves the options given there alone.</summary>
    public IReadOnlyList<string> Arguments { get; set; } = [];

    /// <summary>Injected client failures.</summary>
    [Option("client-failure-rate", Default = 0.0, HelpText = "Testing: share of sampled clients whose local training throws (recorded as failures, left out).")]
    public double ClientFailureRate { get; set; }

    /// <summary>Injected corrupt uploads.</summary>
    [Option("corrupt-upload-rate", Default = 0.0, HelpText = "Testing: share of the other clients whose upload arrives corrupted (rejected by the server's validation).")]
    public double CorruptUploadRate { get; set; }

    /// <summary>Checkpoint period.</summary>
    [Option("checkpoint-every", Default = 10, HelpText = "Write a checkpoint (checkpoint.safetensors + checkpoint.json, the previous one kept) every N rounds and after the last.")]
    public int CheckpointEvery { get; set; } = 10;

    /// <summary>Run directory to resume.</summary>
    [Option("resume", HelpText = "Continue the killed run in DIR from its last good checkpoint, with the options it was started with.")]
    public string? Resume { get; set; }

    /// <summary>JSON lines.</summary>
    [Option("json", Default = false, HelpText = "Print one JSON object per round on stdout instead of progress lines.")]
    public bool Json { get; set; }

    /// <summary>Silos started in this process.</summary>
    [Option("silos", Default = 0, HelpText = "Train the clients on an Orleans cluster of N silos started in this process, one worker and device per silo (same model, bit for bit); 0: no cluster.")]
    public int Silos { get; set; }

    /// <summary>One device per local silo.</summary>
    [Option("devices", HelpText = "With --silos: one device per silo, comma-separated (e.g. cuda:0,cuda:1); default --device for each.")]
    public string? Devices { get; set; }

    /// <summary>A remote cluster.</summary>
    [Option("cluster", HelpText = "Coordinate the cluster of the silo at HOST:PORT (started with 'zerofl silo'): its silos train the clients.")]
    public string? Cluster { get; set; }

    /// <summary>Bound on one client's training on a worker.</summary>
    [Option("fit-timeout", Default = 3600, HelpText = "With a cluster: seconds a worker may take to train one client before its worker counts as lost.")]
    public int FitTimeout { get; set; } = 3600;

    /// <summary>Testing: a silo dies mid-round.</summary>
    [Option("stop-silo-in-round", Default = 0, HelpText = "Testing, with --silos 2 or more: the last silo dies as it starts training in round R (its clients become 'worker lost' failures).")]
    public int StopSiloInRound { get; set; }
}

/// <summary>The federated run.</summary>
public static class RunCommand
{
    private static readonly string[] MetricsColumns =
        ["round", "test_accuracy", "train_loss", "upload_bytes", "dense_upload_bytes", "train_flops", "dense_train_flops", "seconds", "server_seconds", "encode_seconds", "clients", "failed_clients", "lr",
         "test_accuracy_dense_weights", "val_accuracy", "val_loss", "silos", "coordinator_bytes_sent", "coordinator_bytes_received"];

    /// <summary>Runs the experiment and writes its files.</summary>
    public static int Run(RunOptions o)
    {
        CheckpointState? resumed = null;
        if (o.Resume is not null)
        {
            string directory = o.Resume;
            try
            {
                resumed = RunCheckpoint.ReadState(directory);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidOperationException($"--resume {directory}: {e.Message}");
            }
            o = Program.ParseRunArguments(resumed.Arguments);
            o.Arguments = resumed.Arguments;
            o.Out = directory;
        }
        if (o.Preset is not null)
        {
            Presets.Apply(Presets.Find(o.Preset), o, o.Arguments);
        }
        var spec = TrainCommand.ParseDevice(o.Device);
        bool clustered = ClusterRun.Validate(o);
        var (options, split) = OptionsAndData(o);
        string outDir = o.Out ?? Path.Combine("runs", DateTime.Now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(outDir);
        var partitionOptions = new PartitionOptions(o.Seed, o.ValidationFraction);
        var partition = options.Partition switch
        {
            PartitionScheme.Iid => IidPartitioner.Create(split.Train, o.Clients, partitionOptions),
            PartitionScheme.Lda => DirichletPartitioner.Create(split.Train, o.Clients, o.Alpha, partitionOptions),
            _ => NaturalPartitioner.Create(split.Train, split.TrainGroups!, partitionOptions),
        };

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

        string metricsPath = Path.Combine(outDir, "metrics.csv");
        string layersPath = Path.Combine(outDir, "layers.csv");
        var totals = new RunTotals();
        int firstRound = 1;
        if (resumed is not null)
        {
            var (state, values, serverState) = RunCheckpoint.Load(outDir, server.Global.Store, server.ServerOptimizer is not null, warning => Console.Error.WriteLine($"zerofl: warning: {warning}"));
            server.Global.Store.Upload(values);
            if (serverState is not null)
            {
                server.ServerOptimizer!.Upload(serverState);
            }
            totals = state.Totals;
            totals.Analyses ??= new RunAnalyses();
            if (server.RestoreMaskRecord(totals.Analyses.MaskRecord, state.Round) is { } problem)
            {
                Console.Error.WriteLine($"zerofl: warning: {problem}");
            }
            firstRound = state.Round + 1;
            // Rows of rounds after the checkpoint were computed by the killed process: they are run again.
            KeepRowsUpTo(metricsPath, state.Round);
            KeepRowsUpTo(layersPath, state.Round);
            progress.Line($"resuming {outDir} after round {state.Round} of {o.Rounds}");
        }
        using var metrics = new StreamWriter(metricsPath, append: resumed is not null);
        using var layers = new StreamWriter(layersPath, append: resumed is not null);
        if (resumed is null)
        {
            metrics.WriteLine(string.Join(',', MetricsColumns));
            layers.WriteLine("round,layer,nonzero_ratio,mask_stability");
        }
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
            var bytesAfter = cluster?.Bytes ?? (0, 0);
            var traffic = (Silos: cluster?.Backend.Workers.Count ?? 0, Sent: bytesAfter.Sent - bytesBefore.Sent, Received: bytesAfter.Received - bytesBefore.Received);
            totals.CoordinatorBytesSent += traffic.Sent;
            totals.CoordinatorBytesReceived += traffic.Received;
            totals.UploadBytes += m.UploadBytes;
            foreach (var (encoding, bytes) in m.UploadBytesByEncoding)
            {
                totals.UploadBytesByEncoding[encoding] = totals.UploadBytesByEncoding.GetValueOrDefault(encoding) + bytes;
            }
            totals.DenseUploadBytes += m.DenseUploadBytes;
            totals.TrainFlops += m.TrainFlops;
            totals.DenseTrainFlops += m.DenseTrainFlops;
            totals.ServerSeconds += m.ServerSeconds;
            totals.Failures.AddRange(m.Failures.Select(f => $"round {round}: {f}"));
            foreach (var failure in m.Failures)
            {
                totals.FailuresByReason[failure.Reason] = totals.FailuresByReason.GetValueOrDefault(failure.Reason) + 1;
            }
            totals.LastAccuracy = m.TestAccuracy ?? totals.LastAccuracy;
            totals.Analyses.LastAccuracyDenseWeights = m.TestAccuracyDenseWeights ?? totals.Analyses.LastAccuracyDenseWeights;
            totals.Analyses.LastValidationAccuracy = m.ValidationAccuracy ?? totals.Analyses.LastValidationAccuracy;
            totals.Analyses.LastValidationLoss = m.ValidationLoss ?? totals.Analyses.LastValidationLoss;
            long uploadTotal = totals.UploadBytes, denseTotal = totals.DenseUploadBytes;
            WriteMetrics(metrics, m, traffic);
            WriteLayers(layers, m, sparseLayers);
            metrics.Flush();
            layers.Flush();
            totals.WallSeconds = wallBefore + clock.Elapsed.TotalSeconds;
            if (o.WritesCheckpoints && (round % o.CheckpointEvery == 0 || round == o.Rounds))
            {
                totals.Analyses.MaskRecord = server.SaveMaskRecord();
                RunCheckpoint.Save(outDir, server.Global.Store, server.Global.Store.Download(), round, ArgumentsWithout(o.Arguments, "--resume"), totals, server.ServerOptimizer?.Download());
            }
            double eta = clock.Elapsed.TotalSeconds / (round - firstRound + 1) * (o.Rounds - round);
            if (o.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(RoundJson(m, uploadTotal)));
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
        double wall = totals.WallSeconds;
        long uploadAll = totals.UploadBytes, denseAll = totals.DenseUploadBytes;
        var failures = totals.Failures;
        double? lastAccuracy = totals.LastAccuracy;
        RunCheckpoint.WriteModel(Path.Combine(outDir, "model.safetensors"), server.Global.Store, server.Global.Store.Download(), o.Rounds);
        var summary = new Dictionary<string, object?>
        {
            ["final_test_accuracy"] = lastAccuracy,
            ["final_test_accuracy_dense_weights"] = totals.Analyses.LastAccuracyDenseWeights,
            ["final_val_accuracy"] = totals.Analyses.LastValidationAccuracy,
            ["final_val_loss"] = totals.Analyses.LastValidationLoss,
            ["val_fraction"] = o.ValidationFraction,
            ["mask_record_every"] = o.MaskRecordEvery,
            ["rounds"] = o.Rounds,
            ["clients"] = o.Clients,
            ["clients_per_round"] = options.Sampling.CountFor(o.Clients),
            ["strategy"] = options.Uplink.Strategy.Name(),
            ["sparsity"] = options.Sparsity.Sparsity,
            ["mask_ratio"] = o.MaskRatio,
            ["uplink_bytes_total"] = uploadAll,
            ["dense_uplink_bytes_total"] = denseAll,
            ["uplink_fraction_of_dense"] = denseAll > 0 ? (double)uploadAll / denseAll : null,
            ["uplink_encoding"] = o.UplinkEncoding,
            ["server_optimizer"] = ServerOptimizerJson(options.ServerOptimizer),
            ["upload_values"] = o.UploadValues,
            ["uplink_bytes_by_encoding"] = totals.UploadBytesByEncoding.OrderBy(e => e.Key, StringComparer.Ordinal).ToDictionary(e => e.Key, e => e.Value),
            ["train_flops_total"] = totals.TrainFlops,
            ["dense_train_flops_total"] = totals.DenseTrainFlops,
            ["wall_seconds"] = wall,
            ["server_seconds_total"] = totals.ServerSeconds,
            ["failed_clients"] = failures.Count,
            ["failures_by_reason"] = totals.FailuresByReason,
            ["failures"] = failures,
            ["preset"] = o.Preset,
            ["model"] = o.Model,
            ["dataset"] = split.Train.Name,
            ["partition"] = partition.Scheme,
            ["alpha"] = o.Alpha,
            ["local_epochs"] = o.LocalEpochs,
            ["batch_size"] = o.BatchSize,
            ["lr_start"] = o.LearningRateStart,
            ["lr_end"] = o.LearningRateEnd,
            ["topk_period"] = o.TopKPeriod,
            ["recompute"] = o.Recompute,
            ["sparse_layers"] = sparseLayers,
            ["dense_upload_bytes_per_client"] = server.DenseUploadBytes,
            ["device"] = device.Description,
            ["device_bytes"] = server.DeviceBytes,
            ["cluster"] = cluster?.Description,
            ["silos"] = cluster?.SiloSummary() ?? [],
            ["coordinator_bytes_sent_total"] = totals.CoordinatorBytesSent,
            ["coordinator_bytes_received_total"] = totals.CoordinatorBytesReceived,
            ["seed"] = o.Seed,
        };
        RunFiles.WriteJsonAtomically(Path.Combine(outDir, "summary.json"), summary);
        Console.Error.Flush();
        if (!o.Json)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"final test accuracy {lastAccuracy:F4}{(options.Sparsity.Sparsity > 0 ? $" (all weights {totals.Analyses.LastAccuracyDenseWeights:F4})" : string.Empty)} after {o.Rounds} rounds; uplink {uploadAll / 1e6:F1} MB = {(denseAll > 0 ? (double)uploadAll / denseAll : 0):P1} of dense; {wall:F1} s; results in {outDir}"));
        }
        return 0;
    }

    private static string ServerOptimizerText(ServerOptimizerSettings s) => !s.IsAdaptive ? string.Empty : string.Create(CultureInfo.InvariantCulture,
        $"; server {s.Kind.Name()} lr {s.LearningRate:G4} beta1 {s.Beta1:G4}{(s.Kind == ServerOptimizerKind.FedAdagrad ? string.Empty : $" beta2 {s.Beta2:G4}")} tau {s.Tau:G4}");

    private static Dictionary<string, object?> ServerOptimizerJson(ServerOptimizerSettings s) => s.IsAdaptive
        ? new() { ["name"] = s.Kind.Name(), ["lr"] = s.LearningRate, ["beta1"] = s.Beta1, ["beta2"] = s.Kind == ServerOptimizerKind.FedAdagrad ? null : s.Beta2, ["tau"] = s.Tau }
        : new() { ["name"] = s.Kind.Name() };

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

    /// <summary>Drops the data rows of a CSV file whose first column (the round) is above <paramref name="round"/>.</summary>
    private static void KeepRowsUpTo(string path, int round)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path}: missing; the run directory does not belong to this checkpoint");
        }
        var lines = File.ReadAllLines(path);
        var kept = lines.Take(1).Concat(lines.Skip(1).Where(l =>
            int.TryParse(l.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int r) && r <= round));
        RunFiles.WriteAtomically(path, string.Concat(kept.Select(l => l + "\n")));
    }

    /// <summary><paramref name="arguments"/> without <paramref name="option"/> and its value.</summary>
    private static string[] ArgumentsWithout(IReadOnlyList<string> arguments, string option)
    {
        var kept = new List<string>();
        for (int i = 0; i < arguments.Count; i++)
        {
            if (arguments[i] == option)
            {
                i++;
                continue;
            }
            if (!arguments[i].StartsWith(option + "=", StringComparison.Ordinal))
            {
                kept.Add(arguments[i]);
            }
        }
        return [.. kept];
    }

    /// <summary>
    /// The validated options and the data set they name. Under <c>--partition natural</c> the clients
    /// are the data set's own groups, so their count is set once it is loaded.
    /// </summary>
    public static (FederatedOptions Options, TrainTestSplit Split) OptionsAndData(RunOptions o)
    {
        if (o.Partition != PartitionScheme.Natural)
        {
            var options = BuildOptions(o);
            return (options, LoadData(o));
        }
        if (!DatasetCatalog.WithNaturalGroups.Contains(o.Dataset))
        {
            throw new UsageException($"--partition natural needs a data set with natural groups (femnist, speech-commands), not {o.Dataset}");
        }
        var split = LoadData(o);
        var groups = split.TrainGroups ?? throw new InvalidOperationException($"{o.Dataset} loaded without its group ids");
        o.Clients = groups.Length == 0 ? 0 : groups.Max() + 1;
        return (BuildOptions(o), split);
    }

    /// <summary>The data set named by the options; an unknown name is a usage error.</summary>
    public static TrainTestSplit LoadData(DataOptions o)
    {
        if (!DatasetCatalog.Names.Contains(o.Dataset))
        {
            throw new UsageException($"unknown --dataset '{o.Dataset}' (expected one of: {string.Join(", ", DatasetCatalog.Names)})");
        }
        return DatasetCatalog.Load(o.Dataset, o.DataDir, o.Seed);
    }

    /// <summary>Turns the command line into validated options (usage errors on bad values).</summary>
    public static FederatedOptions BuildOptions(RunOptions o)
    {
        if (!ModelCatalog.Names.Contains(o.Model))
        {
            throw new UsageException($"unknown --model '{o.Model}' (expected one of: {string.Join(", ", ModelCatalog.Names)})");
        }
        if (!UplinkStrategies.TryParse(o.Strategy, out var strategy))
        {
            throw new UsageException($"unknown --strategy '{o.Strategy}' (expected one of: {string.Join(", ", UplinkStrategies.Names)})");
        }
        if (!(o.Sparsity >= 0 && o.Sparsity < 1))
        {
            throw new UsageException($"--sparsity must be in [0, 1), got {o.Sparsity}");
        }
        if (!(o.MaskRatio >= 0 && o.MaskRatio <= o.Sparsity) && strategy.SparsifiesUpload())
        {
            throw new UsageException($"--mask-ratio must be in [0, sparsity], got {o.MaskRatio}");
        }
        if (!LayerEncodings.TryParseMode(o.UplinkEncoding, out var encoding))
        {
            throw new UsageException($"unknown --uplink-encoding '{o.UplinkEncoding}' (expected one of: {string.Join(", ", LayerEncodings.ModeNames)})");
        }
        var serverOptimizer = ServerOptimizerSettingsOf(o);
        if (!UploadValueWidths.TryParse(o.UploadValues, out var values))
        {
            throw new UsageException($"unknown --upload-values '{o.UploadValues}' (expected one of: {string.Join(", ", UploadValueWidths.Names)})");
        }
        o.CheckRecompute(o.Model);
        if (strategy is not UplinkStrategy.Dense && o.Sparsity == 0)
        {
            throw new UsageException($"--strategy {o.Strategy} needs --sparsity above 0 (use --strategy dense for plain FedAvg)");
        }
        if (o.Clients < 1 || o.Rounds < 1 || o.LocalEpochs < 1 || o.BatchSize < 1 || o.EvaluateEvery < 1 || o.TopKPeriod < 1 || o.MinClients < 1 || o.CheckpointEvery < 1)
        {
            throw new UsageException("--clients, --rounds, --local-epochs, --batch-size, --eval-every, --topk-period, --min-clients and --checkpoint-every must be at least 1");
        }
        if (o.MaskRecordEvery < 1)
        {
            throw new UsageException($"--mask-record-every must be at least 1, got {o.MaskRecordEvery}");
        }
        if (!(o.ValidationFraction >= 0 && o.ValidationFraction < 1))
        {
            throw new UsageException($"--val-fraction must be in [0, 1), got {o.ValidationFraction}");
        }
        if (o.FractionFit is null && (o.ClientsPerRound < 1 || o.ClientsPerRound > o.Clients))
        {
            throw new UsageException($"--clients-per-round must be in [1, {o.Clients}], got {o.ClientsPerRound}");
        }
        try
        {
            var sampling = o.FractionFit is double f ? ClientSampling.OfFraction(f, o.MinClients) : ClientSampling.Fixed(o.ClientsPerRound);
            double sparsity = strategy == UplinkStrategy.Dense ? 0 : o.Sparsity;
            var options = new FederatedOptions(
                o.Model, o.Clients, sampling, o.Rounds, o.LocalEpochs, o.BatchSize,
                new ExponentialDecay(o.LearningRateStart, o.LearningRateEnd, o.Rounds),
                o.Momentum, o.WeightDecay,
                new UplinkSettings(strategy, sparsity, strategy.SparsifiesUpload() ? o.MaskRatio : 0) { Encoding = encoding, Values = values },
                new SparsitySettings((float)sparsity, o.TopKPeriod, o.SparseLayers),
                o.Partition, o.Alpha, o.EvaluateEvery, o.Seed)
            {
                Faults = new FaultInjection(o.ClientFailureRate, o.CorruptUploadRate),
                MinSuccessfulClients = o.MinClients,
                MaskRecordEvery = o.MaskRecordEvery,
                ServerOptimizer = serverOptimizer,
                RecomputeSegments = o.Recompute,
            };
            options.Validate();
            return options;
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>The server optimizer of the command line: Flower's defaults for what it leaves out (usage errors on bad values).</summary>
    private static ServerOptimizerSettings ServerOptimizerSettingsOf(RunOptions o)
    {
        if (!ServerOptimizers.TryParse(o.ServerOptimizer, out var kind))
        {
            throw new UsageException($"unknown --server-optimizer '{o.ServerOptimizer}' (expected one of: {string.Join(", ", ServerOptimizers.Names)})");
        }
        if (kind == ServerOptimizerKind.FedAvg)
        {
            if (o.ServerLearningRate is not null || o.ServerBeta1 is not null || o.ServerBeta2 is not null || o.ServerTau is not null)
            {
                throw new UsageException("--server-lr, --server-beta1, --server-beta2 and --server-tau need --server-optimizer fedadam, fedyogi or fedadagrad");
            }
            return ServerOptimizerSettings.FedAvg;
        }
        if (kind == ServerOptimizerKind.FedAdagrad && o.ServerBeta2 is not null)
        {
            throw new UsageException("--server-beta2 has no effect with --server-optimizer fedadagrad (v = v + d^2)");
        }
        var defaults = ServerOptimizerSettings.Defaults(kind);
        var s = defaults with
        {
            LearningRate = o.ServerLearningRate ?? defaults.LearningRate,
            Beta1 = o.ServerBeta1 ?? defaults.Beta1,
            Beta2 = o.ServerBeta2 ?? defaults.Beta2,
            Tau = o.ServerTau ?? defaults.Tau,
        };
        if (!(s.LearningRate > 0) || !double.IsFinite(s.LearningRate))
        {
            throw new UsageException($"--server-lr must be positive and finite, got {s.LearningRate}");
        }
        if (!(s.Beta1 >= 0 && s.Beta1 < 1))
        {
            throw new UsageException($"--server-beta1 must be in [0, 1), got {s.Beta1}");
        }
        if (!(s.Beta2 >= 0 && s.Beta2 < 1))
        {
            throw new UsageException($"--server-beta2 must be in [0, 1), got {s.Beta2}");
        }
        if (!(s.Tau > 0) || !double.IsFinite(s.Tau))
        {
            throw new UsageException($"--server-tau must be positive and finite, got {s.Tau}");
        }
        return s;
    }

    private static void WriteMetrics(StreamWriter writer, RoundMetrics m, (int Silos, long Sent, long Received) cluster)
    {
        var c = CultureInfo.InvariantCulture;
        writer.WriteLine(string.Join(',',
            m.Round.ToString(c), m.TestAccuracy?.ToString("G6", c) ?? string.Empty, m.TrainLoss.ToString("G6", c),
            m.UploadBytes.ToString(c), m.DenseUploadBytes.ToString(c), m.TrainFlops.ToString("G6", c), m.DenseTrainFlops.ToString("G6", c),
            m.Seconds.ToString("G6", c), m.ServerSeconds.ToString("G6", c), m.EncodeSeconds.ToString("G6", c),
            m.Clients.ToString(c), m.Failures.Count.ToString(c), m.LearningRate.ToString("G6", c),
            m.TestAccuracyDenseWeights?.ToString("G6", c) ?? string.Empty, m.ValidationAccuracy?.ToString("G6", c) ?? string.Empty,
            m.ValidationLoss?.ToString("G6", c) ?? string.Empty,
            cluster.Silos.ToString(c), cluster.Sent.ToString(c), cluster.Received.ToString(c)));
    }

    /// <summary>
    /// layers.csv rows of a round: one per sparse layer when the round has a non-zero ratio (sparse
    /// uploads) or a mask record; a value the round does not have is an empty cell.
    /// </summary>
    private static void WriteLayers(StreamWriter writer, RoundMetrics m, IReadOnlyList<string> sparseLayers)
    {
        var c = CultureInfo.InvariantCulture;
        var stability = m.MaskStability ?? [];
        for (int i = 0; i < sparseLayers.Count && (i < m.NonZeroRatios.Count || i < stability.Count); i++)
        {
            string ratio = i < m.NonZeroRatios.Count ? m.NonZeroRatios[i].ToString("G6", c) : string.Empty;
            string stable = i < stability.Count ? stability[i].ToString("G6", c) : string.Empty;
            writer.WriteLine($"{m.Round.ToString(c)},{sparseLayers[i]},{ratio},{stable}");
        }
    }

    private static Dictionary<string, object?> RoundJson(RoundMetrics m, long uploadTotal) => new()
    {
        ["round"] = m.Round,
        ["test_accuracy"] = m.TestAccuracy,
        ["train_loss"] = double.IsFinite(m.TrainLoss) ? m.TrainLoss : null,
        ["upload_bytes"] = m.UploadBytes,
        ["upload_bytes_total"] = uploadTotal,
        ["dense_upload_bytes"] = m.DenseUploadBytes,
        ["train_flops"] = m.TrainFlops,
        ["dense_train_flops"] = m.DenseTrainFlops,
        ["seconds"] = m.Seconds,
        ["server_seconds"] = m.ServerSeconds,
        ["clients"] = m.Clients,
        ["failed_clients"] = m.Failures.Count,
        ["lr"] = m.LearningRate,
        ["nonzero_ratios"] = m.NonZeroRatios,
        ["test_accuracy_dense_weights"] = m.TestAccuracyDenseWeights,
        ["val_accuracy"] = m.ValidationAccuracy,
        ["val_loss"] = m.ValidationLoss,
        ["mask_stability"] = m.MaskStability,
    };
}
