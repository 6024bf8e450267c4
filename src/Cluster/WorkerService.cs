using System.Security.Cryptography;
using System.Text;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cluster;

/// <summary>What a silo makes of a run's command line: the options and its own copy of the training set.</summary>
/// <param name="Options">The run's options.</param>
/// <param name="Train">The training set, loaded from the silo's data directory.</param>
public sealed record WorkerRun(FederatedOptions Options, Dataset Train);

/// <summary>Turns a run's command line and the silo's data directory (null: the data set's default place) into a <see cref="WorkerRun"/> (the CLI's own parsing).</summary>
public delegate WorkerRun WorkerSetup(IReadOnlyList<string> runArguments, string? dataDirectory);

/// <summary>A silo's worker settings.</summary>
/// <param name="Name">The silo's name (its address).</param>
/// <param name="Device">The device the worker trains on.</param>
/// <param name="DataDirectory">Where the silo's data sets are (null: each data set's default place).</param>
/// <param name="Dataset">The one data set this silo serves, or null for any.</param>
/// <param name="Setup">How a run's command line becomes options and data.</param>
public sealed record WorkerSettings(string Name, DeviceSpec Device, string? DataDirectory, string? Dataset, WorkerSetup Setup)
{
    /// <summary>Testing: awaited before each client's training with the round (a local cluster uses it to stop a silo mid-round).</summary>
    public Func<int, Task>? BeforeFit { get; init; }
}

/// <summary>
/// The state of one silo's worker, kept for the silo's life: its device (opened when the silo
/// starts), and per configured run its copy of the training set on the device, the global model's
/// values and one training slot (<see cref="ClientRunner"/>). The worker's grain calls it one call
/// at a time.
/// </summary>
public sealed class WorkerService : IDisposable
{
    private readonly WorkerSettings settings;
    private readonly ComputeDevice device;
    private readonly object gate = new();
    private Session? session;
    private float[]? staging;
    private string? stagingSha;
    private int stagingReceived;
    private (int ClientId, byte[] Bytes)? lastUpload;

    /// <summary>Opens the device (a device that is not there fails the silo's start).</summary>
    public WorkerService(WorkerSettings settings)
    {
        this.settings = settings;
        device = ComputeDevice.Open(settings.Device, Console.Error);
    }

    /// <summary>The device's description.</summary>
    public string Device => device.Description;

    /// <summary>Loads the run's data and builds the slot, or says in one line why this silo cannot serve the run.</summary>
    public WorkerReady Configure(WorkerConfiguration configuration)
    {
        lock (gate)
        {
            try
            {
                return new WorkerReady(settings.Name, device.Description, ConfigureLocked(configuration));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return new WorkerReady(settings.Name, device.Description, $"silo {settings.Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
        }
    }

    private string? ConfigureLocked(WorkerConfiguration configuration)
    {
        if (settings.Dataset is { } served && served != configuration.Dataset)
        {
            return $"silo {settings.Name} serves data set {served}, the run asks for {configuration.Dataset}";
        }
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', configuration.RunArguments.Append(configuration.DataFingerprint).Append(configuration.LayoutFingerprint)))));
        if (session?.Key == key)
        {
            return null;
        }
        session?.Dispose();
        session = null;
        var run = settings.Setup(configuration.RunArguments, settings.DataDirectory);
        string data = RunFingerprint.Data(run.Train);
        if (data != configuration.DataFingerprint)
        {
            return $"silo {settings.Name}: its training set ({run.Train.Name}, {run.Train.Count} samples, from {settings.DataDirectory ?? "the default place"}) differs from the coordinator's (SHA-256 {Short(data)} vs {Short(configuration.DataFingerprint)}): start it with the same data";
        }
        var next = new Session(key, device, run);
        string layout = RunFingerprint.Layout(next.Uplink.Layout);
        if (layout != configuration.LayoutFingerprint)
        {
            next.Dispose();
            return $"silo {settings.Name}: its model layout for {run.Options.Model} differs from the coordinator's (another zerofl build?)";
        }
        session = next;
        return null;
    }

    /// <summary>Takes one piece of the global model; true once the whole block is here, matches its SHA-256 and is on the device.</summary>
    public bool PutModel(ModelChunk chunk)
    {
        lock (gate)
        {
            var s = session ?? throw new InvalidOperationException($"silo {settings.Name}: not configured for a run");
            long length = s.Global.Store.TotalLength;
            if (chunk.TotalLength != length || chunk.Offset < 0 || chunk.Values.Length == 0 || (long)chunk.Offset + chunk.Values.Length > length)
            {
                throw new InvalidOperationException($"silo {settings.Name}: model piece [{chunk.Offset}, +{chunk.Values.Length}) of {chunk.TotalLength} for a model of {length} values");
            }
            if (chunk.Offset == 0)
            {
                staging ??= new float[length];
                stagingSha = chunk.Sha256;
                stagingReceived = 0;
            }
            if (staging is null || stagingSha != chunk.Sha256 || chunk.Offset != stagingReceived)
            {
                throw new InvalidOperationException($"silo {settings.Name}: model piece at {chunk.Offset} out of order");
            }
            chunk.Values.CopyTo(staging, chunk.Offset);
            stagingReceived += chunk.Values.Length;
            if (stagingReceived < length)
            {
                return false;
            }
            string sha = RunFingerprint.Values(staging);
            if (sha != chunk.Sha256)
            {
                throw new InvalidOperationException($"silo {settings.Name}: the model arrived with SHA-256 {Short(sha)}, expected {Short(chunk.Sha256)}");
            }
            s.Global.Store.Upload(staging);
            s.ModelSha = sha;
            return true;
        }
    }

    /// <summary>The test hook of <see cref="WorkerSettings.BeforeFit"/>.</summary>
    public Task BeforeFit(int round) => settings.BeforeFit?.Invoke(round) ?? Task.CompletedTask;

    /// <summary>Trains one client and keeps its encoded upload for <see cref="ReadUpload"/>.</summary>
    public FitReply Fit(FitOrder order)
    {
        lock (gate)
        {
            var s = session ?? throw new InvalidOperationException($"silo {settings.Name}: not configured for a run");
            if (s.ModelSha != order.ModelSha256)
            {
                throw new InvalidOperationException($"silo {settings.Name}: asked to train from model {Short(order.ModelSha256)}, holds {Short(s.ModelSha ?? "none")}");
            }
            int count = s.Train.Count;
            for (int i = 0; i < order.Train.Length; i++)
            {
                if ((uint)order.Train[i] >= (uint)count)
                {
                    throw new InvalidOperationException($"silo {settings.Name}: client {order.ClientId}: sample index {order.Train[i]} outside [0, {count})");
                }
            }
            var instructions = new FitInstructions(order.Round, order.Attempt, [order.ClientId], order.LearningRate);
            var result = ClientFit.Run(s.Runner, order.ClientId, order.Train, s.Data, s.Global.Store.Values, instructions, s.Options);
            byte[] bytes = result.Upload is { } upload ? UploadCodec.Encode(upload) : [];
            lastUpload = (order.ClientId, bytes);
            var m = result.Metrics;
            return new FitReply(result.ClientId, result.Examples, m.TrainLoss, m.TrainFlops, m.DenseTrainFlops, m.EncodeSeconds, (int)(result.Failure?.Kind ?? default), result.Failure?.Detail,
                bytes.Length, bytes.AsSpan(0, Math.Min(bytes.Length, ClusterLimits.ChunkBytes)).ToArray());
        }
    }

    /// <summary>Bytes [offset, offset + count) of client <paramref name="clientId"/>'s encoded upload (the last one trained).</summary>
    public byte[] ReadUpload(int clientId, int offset, int count)
    {
        lock (gate)
        {
            if (lastUpload is not { } last || last.ClientId != clientId)
            {
                throw new InvalidOperationException($"silo {settings.Name}: no upload of client {clientId} is held");
            }
            if (offset < 0 || count < 1 || count > ClusterLimits.ChunkBytes || (long)offset + count > last.Bytes.Length)
            {
                throw new InvalidOperationException($"silo {settings.Name}: bytes [{offset}, +{count}) of an upload of {last.Bytes.Length}");
            }
            return last.Bytes.AsSpan(offset, count).ToArray();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (gate)
        {
            session?.Dispose();
            session = null;
            device.Dispose();
        }
    }

    private static string Short(string sha) => sha.Length > 12 ? sha[..12] : sha;

    /// <summary>One configured run on the worker's device.</summary>
    private sealed class Session : IDisposable
    {
        public Session(string key, ComputeDevice device, WorkerRun run)
        {
            Key = key;
            Options = run.Options;
            Train = run.Train;
            int[] shape = [run.Train.Channels, run.Train.Height, run.Train.Width];
            Global = ModelCatalog.Create(device, Options.Model, run.Train.Channels, run.Train.Height, run.Train.ClassCount, Options.Seed);
            SwatRules.Apply(Global, Options.Sparsity);
            Uplink = new UplinkModel(Global.Store, SwatRules.SparseWeights(Global, Options.Sparsity.Layers).ToList());
            Data = new DeviceDataset(device, run.Train.Features, run.Train.Labels, shape, run.Train.ClassCount);
            if (run.Train.Augmentation is { } augmentation)
            {
                Data.EnableCropFlip(augmentation.Padding, augmentation.Fill);
            }
            Workspace = new Workspace(device);
            Runner = new ClientRunner(device, Options, shape, run.Train.ClassCount, Uplink, Workspace);
        }

        public string Key { get; }

        public FederatedOptions Options { get; }

        public Dataset Train { get; }

        public Model Global { get; }

        public UplinkModel Uplink { get; }

        public DeviceDataset Data { get; }

        public Workspace Workspace { get; }

        public ClientRunner Runner { get; }

        public string? ModelSha { get; set; }

        public void Dispose()
        {
            Runner.Dispose();
            Workspace.Dispose();
            Data.Dispose();
            Global.Dispose();
        }
    }
}
