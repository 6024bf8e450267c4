using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using ZeroFL.Engine.IO;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Federation.Simulation;

/// <summary>Running totals of a federated run, kept in its checkpoints.</summary>
public sealed class RunTotals
{
    /// <summary>Bytes uploaded so far.</summary>
    public long UploadBytes { get; set; }

    /// <summary>Of <see cref="UploadBytes"/>, the bytes sent in each layer layout (by name).</summary>
    public Dictionary<string, long> UploadBytesByEncoding { get; set; } = [];

    /// <summary>Bytes dense uploads would have taken.</summary>
    public long DenseUploadBytes { get; set; }

    /// <summary>Training FLOPs actually used.</summary>
    public double TrainFlops { get; set; }

    /// <summary>Dense-equivalent training FLOPs.</summary>
    public double DenseTrainFlops { get; set; }

    /// <summary>Server seconds.</summary>
    public double ServerSeconds { get; set; }

    /// <summary>Wall seconds of the rounds run so far (over every resumed part).</summary>
    public double WallSeconds { get; set; }

    /// <summary>Last test accuracy measured.</summary>
    public double? LastAccuracy { get; set; }

    /// <summary>Client failures, "round R: client C: reason: detail".</summary>
    public List<string> Failures { get; set; } = [];

    /// <summary>Client failures counted by reason (<see cref="ClientFailure.Reason"/>).</summary>
    public Dictionary<string, int> FailuresByReason { get; set; } = [];

    /// <summary>The analyses' last values and mask record (absent from checkpoints written before them).</summary>
    public RunAnalyses Analyses { get; set; } = new();

    /// <summary>Bytes the coordinator sent to cluster workers (model broadcasts); 0 in process.</summary>
    public long CoordinatorBytesSent { get; set; }

    /// <summary>Bytes the coordinator received from cluster workers (encoded uploads); 0 in process.</summary>
    public long CoordinatorBytesReceived { get; set; }
}

/// <summary>
/// What a checkpoint's JSON file holds: the round it was taken after, the command line of the run
/// (so a resume runs the same experiment), the totals so far and the SHA-256 of the model file.
/// Sampling, client shuffling, augmentation and the learning rate are functions of (seed, round,
/// client), so this is the whole server state.
/// </summary>
/// <param name="Format">Format tag, <see cref="RunCheckpoint.FormatName"/>.</param>
/// <param name="Round">Rounds completed.</param>
/// <param name="Arguments">The run's command line (without --resume).</param>
/// <param name="ModelFile">The safetensors file written with this state (the pair is renamed together when it becomes the fallback).</param>
/// <param name="ModelSha256">Hex SHA-256 of that file.</param>
/// <param name="Totals">Totals so far.</param>
public sealed record CheckpointState(string Format, int Round, string[] Arguments, string ModelFile, string ModelSha256, RunTotals Totals)
{
    /// <summary>The safetensors file of the adaptive server optimizer's m and v written with this state; null under FedAvg.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ServerOptimizerFile { get; init; }

    /// <summary>Hex SHA-256 of <see cref="ServerOptimizerFile"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ServerOptimizerSha256 { get; init; }
}

/// <summary>
/// Checkpoints of a run directory: the global model as <c>checkpoint.safetensors</c> (tensor names
/// as in PyTorch, running statistics included), with an adaptive server optimizer its m and v as
/// <c>checkpoint.server-optimizer.safetensors</c> (tensors <c>NAME.m</c>, <c>NAME.v</c> per trainable
/// parameter), and the state as <c>checkpoint.json</c>, each written atomically; the previous set is
/// kept as <c>checkpoint.prev.*</c>, so a checkpoint damaged by a crash (or anything else) falls
/// back to the one before, with a warning.
/// </summary>
public static class RunCheckpoint
{
    /// <summary>The format tag written into every state file.</summary>
    public const string FormatName = "zerofl-checkpoint-1";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    private const string ServerOptimizerSuffix = "server-optimizer.safetensors";

    /// <summary>
    /// Writes the checkpoint after <paramref name="round"/> (the model <paramref name="values"/> of
    /// <paramref name="store"/>, the run's <paramref name="arguments"/> and <paramref name="totals"/>,
    /// and the adaptive server optimizer's <paramref name="serverOptimizer"/> state, m then v, when
    /// there is one); the one before becomes the fallback.
    /// </summary>
    public static void Save(string directory, ParameterStore store, float[] values, int round, string[] arguments, RunTotals totals, float[]? serverOptimizer = null)
    {
        foreach (var suffix in new[] { "safetensors", ServerOptimizerSuffix, "json" })
        {
            string current = Path.Combine(directory, $"checkpoint.{suffix}");
            if (File.Exists(current))
            {
                File.Move(current, Path.Combine(directory, $"checkpoint.prev.{suffix}"), overwrite: true);
            }
        }
        string model = Path.Combine(directory, "checkpoint.safetensors");
        WriteModel(model, store, values, round);
        var state = new CheckpointState(FormatName, round, arguments, Path.GetFileName(model), Sha256(model), totals);
        if (serverOptimizer is not null)
        {
            string optimizer = Path.Combine(directory, $"checkpoint.{ServerOptimizerSuffix}");
            WriteServerOptimizer(optimizer, store, serverOptimizer, round);
            state = state with { ServerOptimizerFile = Path.GetFileName(optimizer), ServerOptimizerSha256 = Sha256(optimizer) };
        }
        AtomicFile.WriteAllText(Path.Combine(directory, "checkpoint.json"), JsonSerializer.Serialize(state, Json) + "\n");
    }

    /// <summary>Writes the model <paramref name="values"/> of <paramref name="store"/> after <paramref name="round"/> as safetensors (format and round in the metadata), atomically.</summary>
    public static void WriteModel(string path, ParameterStore store, float[] values, int round) =>
        SafeTensors.Write(path, SafeTensors.FromStore(store, values), new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["round"] = round.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    /// <summary>
    /// The newest usable checkpoint of <paramref name="directory"/>, its model values and (with
    /// <paramref name="serverOptimizer"/>, required then) the server optimizer's state: the
    /// current one, or (after a warning through <paramref name="warn"/>) the previous one when the
    /// current is missing or damaged. Throws <see cref="InvalidDataException"/> when neither is usable.
    /// </summary>
    public static (CheckpointState State, float[] Values, float[]? ServerOptimizer) Load(string directory, ParameterStore store, bool serverOptimizer, Action<string> warn) =>
        FirstUsable(directory, name => LoadOne(directory, name, store, serverOptimizer), (problem, result) =>
            warn($"checkpoint: {problem}; resuming from the previous checkpoint (after round {result.State.Round})"));

    /// <summary>Reads only the state file of the newest usable checkpoint (to learn the run's command line before building the model).</summary>
    public static CheckpointState ReadState(string directory) =>
        FirstUsable(directory, name => ReadStateFile(directory, name), (_, _) => { });

    /// <summary>The current checkpoint read by <paramref name="read"/>, else the previous one (reporting why through <paramref name="fellBack"/>).</summary>
    private static T FirstUsable<T>(string directory, Func<string, T> read, Action<string, T> fellBack)
    {
        var problems = new List<string>();
        foreach (var name in new[] { "checkpoint", "checkpoint.prev" })
        {
            try
            {
                var result = read(name);
                if (problems.Count > 0)
                {
                    fellBack(problems[0], result);
                }
                return result;
            }
            catch (InvalidDataException e)
            {
                problems.Add(e.Message);
            }
        }
        throw new InvalidDataException($"no usable checkpoint in {directory}: {string.Join("; ", problems)}");
    }

    private static (CheckpointState State, float[] Values, float[]? ServerOptimizer) LoadOne(string directory, string name, ParameterStore store, bool serverOptimizer)
    {
        var state = ReadStateFile(directory, name);
        string model = FindBySum(directory, name, "safetensors", state.ModelSha256);
        var (tensors, _) = SafeTensors.Read(model);
        var values = SafeTensors.ToStoreValues(store, tensors, model);
        if (!serverOptimizer)
        {
            return (state, values, null);
        }
        if (state.ServerOptimizerSha256 is not { } sum)
        {
            throw new InvalidDataException($"{Path.Combine(directory, name)}.json: no server optimizer state (the run was checkpointed under FedAvg)");
        }
        return (state, values, ReadServerOptimizer(FindBySum(directory, name, ServerOptimizerSuffix, sum), store));
    }

    /// <summary>
    /// The file NAME.SUFFIX whose SHA-256 is <paramref name="sum"/>. The set moves file by file
    /// (checkpoint.* -> checkpoint.prev.*): a run stopped between the moves leaves checkpoint.json
    /// beside files already renamed to checkpoint.prev.*, so a file is the set's own or, failing
    /// its checksum, the other set's.
    /// </summary>
    private static string FindBySum(string directory, string name, string suffix, string sum)
    {
        string path = Path.Combine(directory, $"{name}.{suffix}");
        string actual = File.Exists(path) ? Sha256(path) : "missing";
        if (string.Equals(actual, sum, StringComparison.OrdinalIgnoreCase))
        {
            return path;
        }
        string other = Path.Combine(directory, $"{(name == "checkpoint" ? "checkpoint.prev" : "checkpoint")}.{suffix}");
        if (!File.Exists(other) || !string.Equals(Sha256(other), sum, StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{path}: checksum {actual} does not match {sum} in {name}.json");
        }
        return other;
    }

    /// <summary>Writes m then v (<paramref name="state"/>) as NAME.m and NAME.v per trainable parameter of <paramref name="store"/>.</summary>
    private static void WriteServerOptimizer(string path, ParameterStore store, float[] state, int round)
    {
        long length = store.TrainableLength;
        if (state.LongLength != 2 * length)
        {
            throw new ArgumentException($"server optimizer state: {state.Length} values for {length} trainable values");
        }
        var trainable = store.Parameters.Where(p => p.Trainable).ToList();
        var tensors = trainable.Select(p => new NamedTensor($"{p.FullName}.m", p.Shape, state.AsSpan((int)p.Offset, (int)p.Length).ToArray()))
            .Concat(trainable.Select(p => new NamedTensor($"{p.FullName}.v", p.Shape, state.AsSpan((int)(length + p.Offset), (int)p.Length).ToArray())))
            .ToList();
        SafeTensors.Write(path, tensors, new Dictionary<string, string>
        {
            ["format"] = FormatName,
            ["round"] = round.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    /// <summary>m then v from a file of <see cref="WriteServerOptimizer"/>; every tensor must be there with its shape.</summary>
    private static float[] ReadServerOptimizer(string path, ParameterStore store)
    {
        var (tensors, _) = SafeTensors.Read(path);
        var byName = tensors.ToDictionary(t => t.Name);
        long length = store.TrainableLength;
        var state = new float[2 * length];
        var trainable = store.Parameters.Where(p => p.Trainable).ToList();
        foreach (var (suffix, start) in new[] { ("m", 0L), ("v", length) })
        {
            foreach (var p in trainable)
            {
                if (!byName.TryGetValue($"{p.FullName}.{suffix}", out var t) || !t.Shape.SequenceEqual(p.Shape))
                {
                    throw new InvalidDataException($"{path}: tensor {p.FullName}.{suffix} [{string.Join(", ", p.Shape)}] is missing or has another shape");
                }
                t.Values.CopyTo(state, start + p.Offset);
            }
        }
        if (byName.Count != 2 * trainable.Count)
        {
            throw new InvalidDataException($"{path}: {byName.Count} tensors for {2 * trainable.Count}");
        }
        return state;
    }

    private static CheckpointState ReadStateFile(string directory, string name)
    {
        string path = Path.Combine(directory, $"{name}.json");
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"{path}: missing");
        }
        try
        {
            var state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path}: empty");
            if (state.Format != FormatName || state.Round < 1 || state.Arguments is null || state.Totals is null
                || string.IsNullOrEmpty(state.ModelFile) || state.ModelFile != Path.GetFileName(state.ModelFile))
            {
                throw new InvalidDataException($"{path}: not a {FormatName} state");
            }
            return state;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: damaged ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    private static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }
}
