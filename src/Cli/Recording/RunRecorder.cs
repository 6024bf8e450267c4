using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Recording;

/// <summary>
/// Records a run in its directory round by round: a row of metrics.csv and the round's rows of
/// layers.csv (flushed after each round), and the running totals that checkpoints keep and
/// summary.json reports.
/// </summary>
public sealed class RunRecorder : IDisposable
{
    private readonly StreamWriter metrics;
    private readonly StreamWriter layers;
    private readonly IReadOnlyList<string> sparseLayers;

    /// <summary>
    /// Opens <paramref name="directory"/>'s metrics.csv and layers.csv: new files with their headers,
    /// or, with <paramref name="append"/> (a resumed run, its files cut back to its checkpoint), the
    /// files as they are. <paramref name="totals"/> are the run's totals so far.
    /// </summary>
    public RunRecorder(string directory, IReadOnlyList<string> sparseLayers, RunTotals totals, bool append)
    {
        this.sparseLayers = sparseLayers;
        Totals = totals;
        metrics = new StreamWriter(MetricsPath(directory), append);
        layers = new StreamWriter(LayersPath(directory), append);
        if (!append)
        {
            metrics.WriteLine(MetricsCsv.Header);
            layers.WriteLine(LayersCsv.Header);
        }
    }

    /// <summary>The run's totals, the rounds recorded so far included.</summary>
    public RunTotals Totals { get; }

    /// <summary>metrics.csv of a run directory.</summary>
    public static string MetricsPath(string directory) => Path.Combine(directory, "metrics.csv");

    /// <summary>layers.csv of a run directory.</summary>
    public static string LayersPath(string directory) => Path.Combine(directory, "layers.csv");

    /// <summary>Adds round <paramref name="m"/> (with its cluster <paramref name="traffic"/>) to the totals and the files; <paramref name="wallSeconds"/> is the run's wall time so far.</summary>
    public void Record(RoundMetrics m, ClusterTraffic traffic, double wallSeconds)
    {
        var totals = Totals;
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
        totals.Failures.AddRange(m.Failures.Select(f => $"round {m.Round}: {f}"));
        foreach (var failure in m.Failures)
        {
            totals.FailuresByReason[failure.Reason] = totals.FailuresByReason.GetValueOrDefault(failure.Reason) + 1;
        }
        totals.LastAccuracy = m.TestAccuracy ?? totals.LastAccuracy;
        totals.Analyses.LastAccuracyDenseWeights = m.TestAccuracyDenseWeights ?? totals.Analyses.LastAccuracyDenseWeights;
        totals.Analyses.LastValidationAccuracy = m.ValidationAccuracy ?? totals.Analyses.LastValidationAccuracy;
        totals.Analyses.LastValidationLoss = m.ValidationLoss ?? totals.Analyses.LastValidationLoss;
        metrics.WriteLine(MetricsCsv.Row(m, traffic));
        foreach (var row in LayersCsv.Rows(m, sparseLayers))
        {
            layers.WriteLine(row);
        }
        metrics.Flush();
        layers.Flush();
        totals.WallSeconds = wallSeconds;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        layers.Dispose();
        metrics.Dispose();
    }
}
