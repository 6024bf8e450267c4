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
/// <param name="Failures">Clients that failed, with their reasons.</param>
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

/// <summary>A client left out of a round: who, why (a short reason), and the details.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="Reason">One of <see cref="TrainingFailed"/>, <see cref="NonFiniteUpdate"/>, <see cref="MalformedUpload"/>, <see cref="WorkerLost"/>.</param>
/// <param name="Detail">What happened.</param>
public sealed record ClientFailure(int ClientId, string Reason, string Detail)
{
    /// <summary>Training threw or had no data.</summary>
    public const string TrainingFailed = "training failed";

    /// <summary>Training produced NaN or infinity.</summary>
    public const string NonFiniteUpdate = "non-finite update";

    /// <summary>The upload did not pass the server's validation.</summary>
    public const string MalformedUpload = "malformed upload";

    /// <summary>The cluster worker training the client was lost (its silo died or stopped answering).</summary>
    public const string WorkerLost = "worker lost";

    /// <inheritdoc />
    public override string ToString() => $"client {ClientId}: {Reason}: {Detail}";
}

/// <summary>
/// Flower-style server simulating ZeroFL on one device: the training data is uploaded once and
/// every client is an index list into it; one global model lives on the device; each sampled
/// client runs on a reusable <see cref="ClientRunner"/> slot; uploads are validated on the host
/// and averaged on the device.
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
    private readonly DeviceAggregator aggregator;
    private readonly ServerOptimizer? serverOptimizer;
    private readonly Trainer evaluator;
    private readonly MaskRecorder? masks;

    /// <summary>Uploads the data, builds the global model and one client slot.</summary>
    public FederatedServer(ComputeDevice device, FederatedOptions options, Dataset trainData, Dataset testData, Partition partition)
        : this(device, options, trainData, testData, partition, null)
    {
    }

    /// <summary>
    /// Builds the global model; clients train through <paramref name="backend"/> (not owned), or,
    /// when it is null, on a slot of this device (the training data is then uploaded here).
    /// </summary>
    public FederatedServer(ComputeDevice device, FederatedOptions options, Dataset trainData, Dataset testData, Partition partition, IFitBackend? backend)
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
        aggregator = new DeviceAggregator(device, Uplink);
        serverOptimizer = options.ServerOptimizer.IsAdaptive ? new ServerOptimizer(device, options.ServerOptimizer, Uplink) : null;
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

    /// <summary>The adaptive server optimizer's state (m, v), or null under FedAvg.</summary>
    public ServerOptimizer? ServerOptimizer => serverOptimizer;

    /// <summary>Bytes of one dense upload.</summary>
    public long DenseUploadBytes => UplinkBytes.DenseModel(Uplink.Layout);

    /// <summary>Device bytes held: data, global model, one client slot (in process), aggregator, server optimizer state, mask records, step workspace (peak).</summary>
    public long DeviceBytes => (train?.Bytes ?? 0) + test.Bytes + global.Store.Bytes + (runner?.Bytes ?? 0) + aggregator.Bytes + (serverOptimizer?.Bytes ?? 0) + (masks?.Bytes ?? 0) + workspace.CapacityBytes;

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
    public Evaluation? EvaluateClients(IEnumerable<int> clients) =>
        FederatedEvaluation.Aggregate(clients.Select(id => partition.Clients[id].Validation)
            .Where(samples => samples.Length > 0)
            .Select(samples => evaluator.Evaluate(train!, samples)).ToList());

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
    /// Runs round <paramref name="round"/> (1-based): samples clients, trains each on the slot,
    /// validates and aggregates the uploads. A client that fails is recorded and left out; when
    /// fewer than <see cref="FederatedOptions.MinSuccessfulClients"/> succeed, the round is run
    /// again from the same global model with a fresh sample (at most
    /// <see cref="FederatedOptions.MaxRoundAttempts"/> samples, then InvalidOperationException).
    /// <paramref name="clientDone"/>, when given, hears (clients finished, clients sampled) after each client.
    /// </summary>
    public RoundMetrics RunRound(int round, Action<int, int>? clientDone = null)
    {
        var clock = Stopwatch.StartNew();
        float lr = (float)options.LearningRate.At(round - 1);
        var failures = new List<ClientFailure>();
        double flops = 0, denseFlops = 0, serverSeconds = 0, encodeSeconds = 0;
        for (int attempt = 0; attempt < options.MaxRoundAttempts; attempt++)
        {
            var sampled = options.Sampling.Sample(partition.ClientCount, round, options.Seed, attempt);
            double lossSum = 0;
            long examples = 0, uploadBytes = 0, denseBytes = 0;
            var bytesByEncoding = new Dictionary<string, long>();
            int succeeded = 0;
            var fitClients = new List<int>();
            aggregator.Begin();
            using var results = backend.Fit(new FitInstructions(round, attempt, sampled, lr), global.Store).GetEnumerator();
            for (int done = 0; done < sampled.Length; done++)
            {
                clientDone?.Invoke(done, sampled.Length);
                int id = sampled[done];
                var result = results.MoveNext() ? results.Current : throw new InvalidOperationException($"round {round}: the fit backend returned {done} results for {sampled.Length} clients");
                if (result.ClientId != id)
                {
                    throw new InvalidOperationException($"round {round}: the fit backend returned client {result.ClientId} where client {id} was due");
                }
                flops += result.TrainFlops;
                denseFlops += result.DenseTrainFlops;
                encodeSeconds += result.EncodeSeconds;
                if (result.Upload is not { } upload)
                {
                    string reason = result.Reason ?? (result.Failure?.StartsWith("non-finite", StringComparison.Ordinal) == true ? ClientFailure.NonFiniteUpdate : ClientFailure.TrainingFailed);
                    failures.Add(new ClientFailure(id, reason, result.Failure ?? "no upload"));
                    continue;
                }
                var serverClock = Stopwatch.StartNew();
                try
                {
                    WireValidator.Validate(Uplink.Layout, upload, options.Uplink);
                }
                catch (MalformedUploadException e)
                {
                    failures.Add(new ClientFailure(id, ClientFailure.MalformedUpload, e.Message));
                    continue;
                }
                aggregator.Add(upload);
                device.Synchronize();
                serverSeconds += serverClock.Elapsed.TotalSeconds;
                uploadBytes += upload.Bytes;
                foreach (var layer in upload.Layers)
                {
                    string name = layer.LayoutName;
                    bytesByEncoding[name] = bytesByEncoding.GetValueOrDefault(name) + layer.Bytes;
                }
                denseBytes += DenseUploadBytes;
                lossSum += result.TrainLoss * result.Examples;
                examples += result.Examples;
                succeeded++;
                fitClients.Add(id);
            }
            if (succeeded < options.MinSuccessfulClients)
            {
                continue; // nothing of this sample reaches the model; draw a fresh one
            }
            var finishClock = Stopwatch.StartNew();
            var ratios = aggregator.Finish(global.Store.Values, options.Uplink.Strategy, serverOptimizer, round) ?? [];
            device.Synchronize();
            serverSeconds += finishClock.Elapsed.TotalSeconds;
            var validation = EvaluateClients(fitClients);
            var stability = masks is not null && round % options.MaskRecordEvery == 0 ? masks.Record(round) : null;
            bool evaluated = round % options.EvaluateEvery == 0 || round == options.Rounds;
            double? accuracy = evaluated ? Evaluate().Accuracy : null;
            // A dense model's two evaluations are the same one: it is run once.
            double? denseWeights = evaluated && masks is not null ? EvaluateDenseWeights().Accuracy : accuracy;
            return new RoundMetrics(round, accuracy, examples > 0 ? lossSum / examples : double.NaN, uploadBytes, denseBytes, flops, denseFlops,
                clock.Elapsed.TotalSeconds, serverSeconds, encodeSeconds, sampled.Length, failures, lr, ratios)
            {
                Attempts = attempt + 1,
                UploadBytesByEncoding = bytesByEncoding,
                TestAccuracyDenseWeights = denseWeights,
                ValidationAccuracy = validation?.Accuracy,
                ValidationLoss = validation?.Loss,
                MaskStability = stability,
            };
        }
        throw new InvalidOperationException(
            $"round {round}: fewer than {options.MinSuccessfulClients} clients succeeded in each of {options.MaxRoundAttempts} samples (last failure: {failures.LastOrDefault()})");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        masks?.Dispose();
        evaluator.Dispose();
        serverOptimizer?.Dispose();
        aggregator.Dispose();
        runner?.Dispose();
        workspace.Dispose();
        test.Dispose();
        train?.Dispose();
        global.Dispose();
    }
}
