using ZeroFL.Engine.Training;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// ZeroFL's FedAvg over sparse uploads, and Flower's FedOpt family as its configuration
/// (<see cref="FederatedOptions.ServerOptimizer"/>: fedadam, fedyogi, fedadagrad): the run's
/// sampling and learning-rate schedule configure each fit; uploads are summed on the device weighted
/// by examples (<see cref="DeviceAggregator"/>) and the average replaces the global model (or moves
/// it, for the diff uplinks), or, with an adaptive server optimizer, gives its pseudo-gradient. A
/// sample with fewer than <see cref="FederatedOptions.MinSuccessfulClients"/> successful clients is
/// refused. The fit clients evaluate on their validation splits, averaged by examples; the test set
/// is evaluated every <see cref="FederatedOptions.EvaluateEvery"/> rounds and after the last.
/// </summary>
public sealed class FedAvgStrategy : IStrategy
{
    private readonly StrategyContext context;
    private readonly FederatedOptions options;
    private readonly DeviceAggregator aggregator;

    /// <summary>Allocates the aggregation sum and, for an adaptive server optimizer, its state (m, v) on the context's device.</summary>
    public FedAvgStrategy(StrategyContext context)
    {
        this.context = context;
        options = context.Options;
        aggregator = new DeviceAggregator(context.Device, context.Uplink);
        ServerOptimizer = options.ServerOptimizer.IsAdaptive ? new ServerOptimizer(context.Device, options.ServerOptimizer, context.Uplink) : null;
    }

    /// <summary>The adaptive server optimizer's state (m, v), or null under FedAvg.</summary>
    public ServerOptimizer? ServerOptimizer { get; }

    /// <inheritdoc />
    public long DeviceBytes => aggregator.Bytes + (ServerOptimizer?.Bytes ?? 0);

    /// <inheritdoc />
    public FitInstructions ConfigureFit(int round, int attempt) =>
        new(round, attempt, options.Sampling.Sample(context.ClientCount, round, options.Seed, attempt), (float)options.LearningRate.At(round - 1));

    /// <inheritdoc />
    public FitAggregate? AggregateFit(int round, IEnumerable<ClientResult> results, IReadOnlyList<ClientFailure> failures)
    {
        aggregator.Begin();
        double lossSum = 0;
        long examples = 0;
        var clients = new List<int>();
        foreach (var result in results)
        {
            aggregator.Add(result.Upload ?? throw new ArgumentException($"client {result.ClientId} has no upload to aggregate", nameof(results)));
            lossSum += result.Metrics.TrainLoss * result.Examples;
            examples += result.Examples;
            clients.Add(result.ClientId);
        }
        if (clients.Count < options.MinSuccessfulClients)
        {
            return null; // nothing of this sample reaches the model
        }
        var ratios = aggregator.Finish(context.Global.Store.Values, options.Uplink.Strategy, ServerOptimizer, round) ?? [];
        return new FitAggregate(clients, examples > 0 ? lossSum / examples : double.NaN, ratios);
    }

    /// <inheritdoc />
    public IReadOnlyList<int> ConfigureEvaluate(int round, FitAggregate fit) => fit.Clients;

    /// <inheritdoc />
    public Evaluation? AggregateEvaluate(int round, IReadOnlyList<Evaluation> results) => FederatedEvaluation.Aggregate(results);

    /// <inheritdoc />
    public CentralEvaluation? Evaluate(int round)
    {
        if (round % options.EvaluateEvery != 0 && round != options.Rounds)
        {
            return null;
        }
        var topK = context.EvaluateTest();
        // A dense model's two evaluations are the same one: it is run once.
        return new CentralEvaluation(topK, options.Sparsity.Sparsity > 0f ? context.EvaluateTestAllWeights() : topK);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        ServerOptimizer?.Dispose();
        aggregator.Dispose();
    }
}
