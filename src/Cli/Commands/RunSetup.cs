using ZeroFL.Data;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cli.Commands;

/// <summary>What a run's command line becomes: validated options, its data set and its clients' partition (usage errors on bad values).</summary>
public static class RunSetup
{
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

    /// <summary>The clients of the run: its training set split by the options' partition scheme (each client's validation share held out).</summary>
    public static Partition PartitionOf(RunOptions o, FederatedOptions options, TrainTestSplit split)
    {
        var partitionOptions = new PartitionOptions(o.Seed, o.ValidationFraction);
        return options.Partition switch
        {
            PartitionScheme.Iid => IidPartitioner.Create(split.Train, o.Clients, partitionOptions),
            PartitionScheme.Lda => DirichletPartitioner.Create(split.Train, o.Clients, o.Alpha, partitionOptions),
            _ => NaturalPartitioner.Create(split.Train, split.TrainGroups!, partitionOptions),
        };
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
}
