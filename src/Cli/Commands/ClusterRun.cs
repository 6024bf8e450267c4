using System.Globalization;
using ZeroFL.Cli.Recording;
using ZeroFL.Cluster;
using ZeroFL.Data;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cli.Commands;

/// <summary>
/// The coordinator's side of <c>run --silos N</c> and <c>run --cluster HOST:PORT</c>: the cluster
/// session, the <see cref="ClusterFit"/> backend the server trains through, and the figures the run
/// records (silos, bytes through the coordinator).
/// </summary>
public sealed class ClusterRun : IDisposable
{
    private readonly ClusterSession session;

    private ClusterRun(ClusterSession session, ClusterFit backend)
    {
        this.session = session;
        Backend = backend;
    }

    /// <summary>The backend.</summary>
    public ClusterFit Backend { get; }

    /// <summary>What the coordinator is connected to.</summary>
    public string Description => session.Description;

    /// <summary>Checks the cluster options (usage errors); true when the run uses a cluster.</summary>
    public static bool Validate(RunOptions o)
    {
        if (o.Silos < 0)
        {
            throw new UsageException($"--silos must be at least 0, got {o.Silos}");
        }
        if (o.Silos > 0 && o.Cluster is not null)
        {
            throw new UsageException("--silos starts a cluster in this process and --cluster joins one elsewhere: give one of them");
        }
        if (o.Devices is not null && o.Silos == 0)
        {
            throw new UsageException("--devices names one device per silo of --silos");
        }
        if (o.Devices is not null && o.Devices.Split(',').Length != o.Silos)
        {
            throw new UsageException($"--devices names {o.Devices.Split(',').Length} devices for {o.Silos} silos");
        }
        if (o.FitTimeout < 1)
        {
            throw new UsageException($"--fit-timeout must be at least 1 second, got {o.FitTimeout}");
        }
        if (o.StopSiloInRound < 0 || (o.StopSiloInRound > 0 && o.Silos < 2))
        {
            throw new UsageException("--stop-silo-in-round needs --silos 2 or more (the last silo dies; the first keeps the cluster)");
        }
        if (o.Cluster is not null)
        {
            try
            {
                ClusterEndpoint.Parse(o.Cluster, "--cluster");
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
        }
        var devices = o.Devices?.Split(',') ?? [];
        foreach (var d in devices)
        {
            TrainCommand.ParseDevice(d.Trim());
        }
        return o.Silos > 0 || o.Cluster is not null;
    }

    /// <summary>Starts the local silos or connects to the remote cluster (each wait bounded).</summary>
    public static ClusterRun Open(RunOptions o, Partition partition, bool coordinatorOnCpu, TextWriter warnings)
    {
        var timeouts = ClusterTimeouts.Default with { Fit = TimeSpan.FromSeconds(o.FitTimeout) };
        var startTimeout = TimeSpan.FromSeconds(60);
        ClusterSession session;
        if (o.Silos > 0)
        {
            var devices = o.Devices?.Split(',').Select(d => TrainCommand.ParseDevice(d.Trim())).ToArray();
            session = ClusterSession.StartLocal(o.Silos, (i, name) => new WorkerSettings(name, devices?[i] ?? TrainCommand.ParseDevice(o.Device), o.DataDir, null, SiloCommand.Setup),
                startTimeout, o.StopSiloInRound);
        }
        else
        {
            session = ClusterSession.Connect(ClusterEndpoint.Parse(o.Cluster!, "--cluster"), startTimeout);
        }
        try
        {
            // A CPU accelerator coordinator aggregates once all results are in: its launches, each
            // followed by its threads spinning, would otherwise compete with the workers for cores.
            return new ClusterRun(session, new ClusterFit(session.Client, partition, timeouts, line => warnings.WriteLine($"zerofl: warning: {line}"), holdResults: coordinatorOnCpu));
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Waits for the silos and configures every worker for this run (a silo that disagrees ends the run with its reason).</summary>
    public void Start(RunOptions o, Dataset train, ModelLayout layout)
    {
        var configuration = new WorkerConfiguration([.. o.Arguments], o.Dataset, RunFingerprint.Data(train), RunFingerprint.Layout(layout));
        Backend.Start(configuration, layout, session.ExpectedSilos, TimeSpan.FromSeconds(60));
    }

    /// <summary>The workers, as "silo (device)".</summary>
    public string WorkerList => string.Join(", ", Backend.Workers.Select(w => $"{w.Silo} ({w.Device})"));

    /// <summary>The silos that served the run, for summary.json.</summary>
    public List<Dictionary<string, string>> SiloSummary() =>
        Backend.Served.Values.OrderBy(w => w.Key, StringComparer.Ordinal).Select(w => new Dictionary<string, string> { ["silo"] = w.Silo, ["device"] = w.Device }).ToList();

    /// <summary>Bytes through the coordinator since the start: sent (model pieces) and received (uploads).</summary>
    public (long Sent, long Received) Bytes => (Backend.BytesSent, Backend.BytesReceived);

    /// <summary>A round's line in metrics.csv: the workers of its last sample, and the bytes through the coordinator since <paramref name="before"/> (<see cref="Bytes"/> at the round's start).</summary>
    public ClusterTraffic TrafficSince((long Sent, long Received) before) =>
        new(Backend.Workers.Count, Backend.BytesSent - before.Sent, Backend.BytesReceived - before.Received);

    /// <summary>A figure for the progress line.</summary>
    public static string Megabytes(long bytes) => (bytes / 1e6).ToString("F1", CultureInfo.InvariantCulture);

    /// <inheritdoc />
    public void Dispose() => session.Dispose();
}
