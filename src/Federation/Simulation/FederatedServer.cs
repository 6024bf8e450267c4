using System.Diagnostics;
using ILGPU.Runtime;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>One round's figures (one row of metrics.csv).</summary>
/// <param name="Round">1-based round.</param>
/// <param name="TestAccuracy">Test accuracy of the global model with its top-K weights, when evaluated this round.</param>
/// <param name="TrainLoss">Clients' mean training loss, weighted by examples.</param>
/// <param name="UploadBytes">Bytes uploaded by the round's successful clients.</param>
/// <param name="DenseUploadBytes">What they would have uploaded densely.</param>
/// <param name="TrainFlops">Conv/linear FLOPs of the round's local training, counted from the entries used.</param>
/// <param name="DenseTrainFlops">The same, dense-equivalent.</param>
/// <param name="Seconds">Wall time of the round (evaluation included).</param>
/// <param name="ServerSeconds">Of which server work: validating, staging and aggregating uploads.</param>
/// <param name="EncodeSeconds">Of which clients' upload encoding (top-K, CSR, copy to host).</param>
/// <param name="Clients">Clients sampled.</param>
/// <param name="Failures">Clients that failed, with their typed reasons.</param>
/// <param name="LearningRate">Client learning rate of the round.</param>
/// <param name="NonZeroRatios">Per sparse layer: non-zero entries of the aggregated upload / layer size.</param>
public sealed record RoundMetrics(
    int Round, double? TestAccuracy, double TrainLoss, long UploadBytes, long DenseUploadBytes, double TrainFlops, double DenseTrainFlops,
    double Seconds, double ServerSeconds, double EncodeSeconds, int Clients, IReadOnlyList<ClientFailure> Failures, double LearningRate, IReadOnlyList<double> NonZeroRatios)
{
    /// <summary>Samples drawn for this round (1, or more when too few clients succeeded).</summary>
    public int Attempts { get; init; } = 1;

    /// <summary>Of <see cref="UploadBytes"/>, the bytes sent in each layer layout (<see cref="WireLayer.LayoutName"/>: "bitmap", or "bitmap+fp16" with 16-bit values; headers included).</summary>
    public IReadOnlyDictionary<string, long> UploadBytesByEncoding { get; init; } = new Dictionary<string, long>();

    /// <summary>Test accuracy of the global model with all its weights (no top-K mask), when evaluated this round; equal to <see cref="TestAccuracy"/> for a dense model.</summary>
    public double? TestAccuracyDenseWeights { get; init; }

    /// <summary>The new global model's accuracy on the validation splits of the round's successful clients, weighted by their examples; null when they have none.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>The same clients' weighted mean validation loss.</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>Per sparse layer (layout order): the share of the global model's top-K positions unchanged since the previous mask record, on rounds that record (null otherwise).</summary>
    public IReadOnlyList<double>? MaskStability { get; init; }
}

/// <summary>
/// Flower-style server: the round loop. One global model lives on the device; each round the
/// <see cref="IStrategy"/> configures the fit, the <see cref="IFitBackend"/> trains the sampled
/// clients (in process: each on a reusable <see cref="ClientRunner"/> slot of this device, every
/// client an index list into the training data uploaded once; or on a cluster's workers), the
/// uploads are validated on the host and the strategy aggregates them on the device, then the
/// strategy's evaluations run on the new model. Only where Fit runs depends on the backend.
/// </summary>
public sealed class FederatedServer : IDisposable
{
    private readonly ComputeDevice device;
    private readonly FederatedOptions options;
    private readonly Partition partition;
    private readonly Model global;
    private readonly DeviceDataset test;
    private readonly DeviceDataset? train;
    private readonly Workspace workspace;
    private readonly ClientRunner? runner;
    private readonly IFitBackend backend;
    private readonly IStrategy strategy;
    private readonly Trainer evaluator;
    private readonly MaskRecorder? masks;

    /// <summary>Uploads the data, builds the global model and one client slot.</summary>
    public FederatedServer(ComputeDevice device, FederatedOptions options, Dataset trainData, Dataset testData, Partition partition)
        : this(device, options, trainData, testData, partition, null)
    {
    }

    /// <summary>
    /// Builds the global model; clients train through <paramref name="backend"/> (not owned), or,
    /// when it is null, on a slot of this device (the training data is then uploaded here). The
    /// strategy is <see cref="FedAvgStrategy"/> configured by the options.
    /// </summary>
    public FederatedServer(ComputeDevice device, FederatedOptions options, Dataset trainData, Dataset testData, Partition partition, IFitBackend? backend)
        : this(device, options, trainData, testData, partition, backend, null)
    {
    }

    /// <summary>
    /// As above, with the strategy <paramref name="strategy"/> builds from its context (owned by the
    /// server); null: <see cref="FedAvgStrategy"/>.
    /// </summary>
    public FederatedServer(ComputeDevice device, FederatedOptions options, Dataset trainData, Dataset testData, Partition partition, IFitBackend? backend, Func<StrategyContext, IStrategy>? strategy)
    {
        options.Validate();
        this.device = device;
        this.options = options;
        this.partition = partition;
        int[] shape = [trainData.Channels, trainData.Height, trainData.Width];
        global = ModelCatalog.Create(device, options.Model, trainData.Channels, trainData.Height, trainData.ClassCount, options.Seed);
        SwatRules.Apply(global, options.Sparsity);
        Uplink = new UplinkModel(global.Store, SwatRules.SparseWeights(global, options.Sparsity.Layers).ToList());
        test = new DeviceDataset(device, testData.Features, testData.Labels, shape, testData.ClassCount);
        workspace = new Workspace(device);
        if (backend is null)
        {
            train = new DeviceDataset(device, trainData.Features, trainData.Labels, shape, trainData.ClassCount);
            if (trainData.Augmentation is { } augmentation)
            {
                train.EnableCropFlip(augmentation.Padding, augmentation.Fill);
            }
            runner = new ClientRunner(device, options, shape, trainData.ClassCount, Uplink, workspace);
            backend = new InProcessFit(runner, train, partition, options);
        }
        else if (partition.Clients.Any(c => c.Validation.Length > 0))
        {
            // On a cluster the workers train; the coordinator still evaluates the global model on
            // the round's clients' validation splits, which live in the training set.
            train = new DeviceDataset(device, trainData.Features, trainData.Labels, shape, trainData.ClassCount);
        }
        this.backend = backend;
        var context = new StrategyContext(device, options, partition.ClientCount, global, Uplink, Evaluate, EvaluateDenseWeights);
        this.strategy = strategy is null ? new FedAvgStrategy(context) : strategy(context);
        evaluator = new Trainer(global, new Sgd(1f, 0f, 0f), workspace);
        if (options.Sparsity.Sparsity > 0f)
        {
            var sparseWeights = Enumerable.Range(0, Uplink.Layout.Layers.Count).Where(l => Uplink.Layout.Layers[l].Sparse)
                .Select(l => Uplink.View(global.Store.Values, l)).ToList();
            masks = new MaskRecorder(device, sparseWeights, options.Sparsity);
            masks.Record(0); // the initial model is the first record
        }
    }

    /// <summary>The model layout the uplink uses.</summary>
    public UplinkModel Uplink { get; }

    /// <summary>The global model.</summary>
    public Model Global => global;

    /// <summary>The round's strategy.</summary>
    public IStrategy Strategy => strategy;

    /// <summary>The adaptive server optimizer's state (m, v) of a <see cref="FedAvgStrategy"/>, or null (FedAvg, or another strategy).</summary>
    public ServerOptimizer? ServerOptimizer => (strategy as FedAvgStrategy)?.ServerOptimizer;

    /// <summary>Bytes of one dense upload.</summary>
    public long DenseUploadBytes => UplinkBytes.DenseModel(Uplink.Layout);

    /// <summary>Device bytes held: data, global model, one client slot (in process), the strategy's (aggregator, server optimizer state), mask records, step workspace (peak).</summary>
    public long DeviceBytes => (train?.Bytes ?? 0) + test.Bytes + global.Store.Bytes + (runner?.Bytes ?? 0) + strategy.DeviceBytes + (masks?.Bytes ?? 0) + workspace.CapacityBytes;

    /// <summary>Test accuracy of the global model (top-K weights in sparse layers).</summary>
    public Evaluation Evaluate() => evaluator.Evaluate(test);

    /// <summary>Test accuracy of the global model with all its weights: its sparse layers run dense for this evaluation only.</summary>
    public Evaluation EvaluateDenseWeights()
    {
        using (SwatRules.Suspend(global))
        {
            return evaluator.Evaluate(test);
        }
    }

    /// <summary>
    /// Flower's evaluate round with the fit clients: the global model (top-K weights) on each of
    /// <paramref name="clients"/>' validation split, averaged weighted by their examples (null when they have none).
    /// </summary>
    public Evaluation? EvaluateClients(IEnumerable<int> clients) => FederatedEvaluation.Aggregate(EvaluateOnValidation(clients));

    /// <summary>The global model (top-K weights) on each of <paramref name="clients"/>' validation splits, in order; a client without one is skipped.</summary>
    private List<Evaluation> EvaluateOnValidation(IEnumerable<int> clients) =>
        clients.Select(id => partition.Clients[id].Validation)
            .Where(samples => samples.Length > 0)
            .Select(samples => evaluator.Evaluate(train!, samples)).ToList();

    /// <summary>The last mask record for a checkpoint, or null (a dense model records none).</summary>
    public MaskRecord? SaveMaskRecord() => masks?.Save();

    /// <summary>
    /// After a resume from the checkpoint of round <paramref name="checkpointRound"/>: takes its
    /// mask <paramref name="record"/>. Without one (a checkpoint from before mask records), the
    /// initial model's record stands while no record round has passed, else the next record has no
    /// predecessor. Returns a warning when the record does not fit (it is then dropped), else null.
    /// </summary>
    public string? RestoreMaskRecord(MaskRecord? record, int checkpointRound)
    {
        if (masks is null)
        {
            return null;
        }
        if (record is null)
        {
            if (checkpointRound >= options.MaskRecordEvery)
            {
                masks.Forget();
            }
            return null;
        }
        if (record.Round > checkpointRound || record.Round % options.MaskRecordEvery != 0)
        {
            masks.Forget();
            return $"the checkpoint's mask record (round {record.Round}) does not fit its round {checkpointRound} and a record every {options.MaskRecordEvery} rounds; the next record has no predecessor";
        }
        string? problem = masks.Restore(record);
        return problem is null ? null : $"{problem}; the next mask record has no predecessor";
    }

    /// <summary>
    /// Runs round <paramref name="round"/> (1-based): the strategy samples clients, the backend
    /// trains them, their uploads are validated and the strategy aggregates them, then evaluates the
    /// new model. A client that fails is recorded and left out; when the strategy refuses a sample
    /// (for FedAvg: fewer than <see cref="FederatedOptions.MinSuccessfulClients"/> succeeded), the
    /// round is run again from the same global model with a fresh sample (at most
    /// <see cref="FederatedOptions.MaxRoundAttempts"/> samples, then InvalidOperationException).
    /// <paramref name="clientDone"/>, when given, hears (clients finished, clients sampled) after each client.
    /// </summary>
    public RoundMetrics RunRound(int round, Action<int, int>? clientDone = null)
    {
        var clock = Stopwatch.StartNew();
        var failures = new List<ClientFailure>();
        var tally = new RoundTally();
        for (int attempt = 0; attempt < options.MaxRoundAttempts; attempt++)
        {
            var instructions = strategy.ConfigureFit(round, attempt);
            CheckInstructions(instructions, round, attempt);
            var sample = tally.StartSample();
            var results = new ReadOnce<ClientResult>(Receive(round, instructions, tally, sample, failures, clientDone));
            var aggregate = strategy.AggregateFit(round, results, failures);
            if (aggregate is null)
            {
                continue; // nothing of this sample reaches the model; draw a fresh one
            }
            device.Synchronize();
            tally.ServerSeconds += sample.FinishClock.Elapsed.TotalSeconds;
            var validation = strategy.AggregateEvaluate(round, EvaluateOnValidation(strategy.ConfigureEvaluate(round, aggregate)));
            var stability = masks is not null && round % options.MaskRecordEvery == 0 ? masks.Record(round) : null;
            var central = strategy.Evaluate(round);
            return new RoundMetrics(round, central?.TopK.Accuracy, aggregate.TrainLoss, sample.UploadBytes, sample.DenseBytes, tally.Flops, tally.DenseFlops,
                clock.Elapsed.TotalSeconds, tally.ServerSeconds, tally.EncodeSeconds, instructions.Clients.Count, failures, instructions.LearningRate, aggregate.NonZeroRatios)
            {
                Attempts = attempt + 1,
                UploadBytesByEncoding = sample.BytesByEncoding,
                TestAccuracyDenseWeights = central?.AllWeights.Accuracy,
                ValidationAccuracy = validation?.Accuracy,
                ValidationLoss = validation?.Loss,
                MaskStability = stability,
            };
        }
        throw new InvalidOperationException(
            $"round {round}: fewer than {options.MinSuccessfulClients} clients succeeded in each of {options.MaxRoundAttempts} samples (last failure: {failures.LastOrDefault()})");
    }

    /// <summary>The strategy's fit instructions are for this sample and name each client of the partition at most once.</summary>
    private void CheckInstructions(FitInstructions instructions, int round, int attempt)
    {
        if (instructions.Round != round || instructions.Attempt != attempt)
        {
            throw new InvalidOperationException($"round {round}: the strategy configured round {instructions.Round}, sample {instructions.Attempt} for sample {attempt}");
        }
        if (instructions.Clients.Count == 0 || instructions.Clients.Any(id => (uint)id >= (uint)partition.ClientCount) || instructions.Clients.Distinct().Count() != instructions.Clients.Count)
        {
            throw new InvalidOperationException($"round {round}: the strategy sampled clients [{string.Join(", ", instructions.Clients)}]; each must be one of the {partition.ClientCount} clients, at most once");
        }
    }

    /// <summary>
    /// The sample's results as the strategy reads them: the backend's results in sampled order,
    /// failures (typed) and uploads that fail validation recorded in <paramref name="failures"/> and
    /// left out; each accepted upload counted once the strategy has taken it (device synchronised:
    /// its aggregation counts as server time).
    /// </summary>
    private IEnumerable<ClientResult> Receive(int round, FitInstructions instructions, RoundTally tally, SampleTally sample, List<ClientFailure> failures, Action<int, int>? clientDone)
    {
        var sampled = instructions.Clients;
        using var results = backend.Fit(instructions, global.Store).GetEnumerator();
        for (int done = 0; done < sampled.Count; done++)
        {
            clientDone?.Invoke(done, sampled.Count);
            int id = sampled[done];
            var result = results.MoveNext() ? results.Current : throw new InvalidOperationException($"round {round}: the fit backend returned {done} results for {sampled.Count} clients");
            if (result.ClientId != id)
            {
                throw new InvalidOperationException($"round {round}: the fit backend returned client {result.ClientId} where client {id} was due");
            }
            tally.Flops += result.Metrics.TrainFlops;
            tally.DenseFlops += result.Metrics.DenseTrainFlops;
            tally.EncodeSeconds += result.Metrics.EncodeSeconds;
            if (result.FailureRecord() is { } failure)
            {
                failures.Add(failure);
                continue;
            }
            var upload = result.Upload!;
            var serverClock = Stopwatch.StartNew();
            try
            {
                WireValidator.Validate(Uplink.Layout, upload, options.Uplink);
            }
            catch (MalformedUploadException e)
            {
                failures.Add(new ClientFailure(id, FailureKind.MalformedUpload, e.Message));
                continue;
            }
            yield return result; // the strategy aggregates it before asking for the next
            device.Synchronize();
            tally.ServerSeconds += serverClock.Elapsed.TotalSeconds;
            sample.Count(upload, DenseUploadBytes);
        }
        sample.FinishClock.Restart();
    }

    /// <summary>What a round adds up over its samples (a refused sample's training counts too).</summary>
    private sealed class RoundTally
    {
        public double Flops { get; set; }

        public double DenseFlops { get; set; }

        public double ServerSeconds { get; set; }

        public double EncodeSeconds { get; set; }

        public SampleTally StartSample() => new();
    }

    /// <summary>The uploads one sample's strategy took, and the clock of its aggregation's end.</summary>
    private sealed class SampleTally
    {
        public long UploadBytes { get; private set; }

        public long DenseBytes { get; private set; }

        public Dictionary<string, long> BytesByEncoding { get; } = [];

        public Stopwatch FinishClock { get; } = new();

        public void Count(WireUpload upload, long denseBytes)
        {
            UploadBytes += upload.Bytes;
            foreach (var layer in upload.Layers)
            {
                string name = layer.LayoutName;
                BytesByEncoding[name] = BytesByEncoding.GetValueOrDefault(name) + layer.Bytes;
            }
            DenseBytes += denseBytes;
        }
    }

    /// <summary>A sequence that can be enumerated once: the results are trained as they are read, so reading them twice would train twice.</summary>
    private sealed class ReadOnce<T>(IEnumerable<T> source) : IEnumerable<T>
    {
        private bool read;

        public IEnumerator<T> GetEnumerator()
        {
            if (read)
            {
                throw new InvalidOperationException("a sample's results can be read once (they are trained as they are read)");
            }
            read = true;
            return source.GetEnumerator();
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        masks?.Dispose();
        evaluator.Dispose();
        strategy.Dispose();
        runner?.Dispose();
        workspace.Dispose();
        test.Dispose();
        train?.Dispose();
        global.Dispose();
    }
}
