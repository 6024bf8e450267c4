using CommandLine;
using ZeroFL.Federation.Simulation;

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
