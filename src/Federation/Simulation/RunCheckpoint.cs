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
public sealed record CheckpointState(string Format, int Round, string[] Arguments, string ModelFile, string ModelSha256, RunTotals Totals);

/// <summary>
/// Checkpoints of a run directory: the global model as <c>checkpoint.safetensors</c> (tensor names
/// as in PyTorch, running statistics included) and the state as <c>checkpoint.json</c>, each written
/// atomically; the previous pair is kept as <c>checkpoint.prev.*</c>, so a checkpoint damaged by a
/// crash (or anything else) falls back to the one before, with a warning.
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

    /// <summary>
    /// Writes the checkpoint after <paramref name="round"/> (the model <paramref name="values"/> of
    /// <paramref name="store"/>, the run's <paramref name="arguments"/> and <paramref name="totals"/>);
    /// the one before becomes the fallback.
    /// </summary>
    public static void Save(string directory, ParameterStore store, float[] values, int round, string[] arguments, RunTotals totals)
    {
        foreach (var suffix in new[] { "safetensors", "json" })
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
    /// The newest usable checkpoint of <paramref name="directory"/> and its model values: the
    /// current one, or (after a warning through <paramref name="warn"/>) the previous one when the
    /// current is missing or damaged. Throws <see cref="InvalidDataException"/> when neither is usable.
    /// </summary>
    public static (CheckpointState State, float[] Values) Load(string directory, ParameterStore store, Action<string> warn) =>
        FirstUsable(directory, name => LoadOne(directory, name, store), (problem, result) =>
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

    private static (CheckpointState State, float[] Values) LoadOne(string directory, string name, ParameterStore store)
    {
        var state = ReadStateFile(directory, name);
        // The pair moves file by file (checkpoint.* -> checkpoint.prev.*): a run stopped between the
        // two moves leaves checkpoint.json beside a model already renamed to checkpoint.prev.*, so
        // the model is the pair's own file or, failing its checksum, the other pair's.
        string model = Path.Combine(directory, $"{name}.safetensors");
        string actual = File.Exists(model) ? Sha256(model) : "missing";
        if (!string.Equals(actual, state.ModelSha256, StringComparison.OrdinalIgnoreCase))
        {
            string other = Path.Combine(directory, name == "checkpoint" ? "checkpoint.prev.safetensors" : "checkpoint.safetensors");
            if (!File.Exists(other) || !string.Equals(Sha256(other), state.ModelSha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidDataException($"{model}: checksum {actual} does not match {state.ModelSha256} in {name}.json");
            }
            model = other;
        }
        var (tensors, _) = SafeTensors.Read(model);
        return (state, SafeTensors.ToStoreValues(store, tensors, model));
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
