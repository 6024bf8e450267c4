using System.Text.Json;
using ZeroFL.Cli;
using ZeroFL.Cli.Recording;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Tests.Cli;

/// <summary>
/// The run's records: metrics.csv's one column list and its rows, the totals and the failure text
/// (typed failures written as their reasons), and summary.json's fields in their order.
/// </summary>
public sealed class RunRecordingTests
{
    private static RoundMetrics Round(int round, IReadOnlyList<ClientFailure> failures) =>
        new(round, round == 2 ? 0.5 : null, 1.25, 1000, 4000, 2e6, 8e6, 1.5, 0.25, 0.125, 4, failures, 0.05, [0.2, 0.3])
        {
            UploadBytesByEncoding = new Dictionary<string, long> { ["bitmap"] = 900, ["dense"] = 100 },
            TestAccuracyDenseWeights = round == 2 ? 0.625 : null,
            ValidationAccuracy = 0.75,
            ValidationLoss = 0.875,
            MaskStability = round == 2 ? [0.5, 1.0] : null,
        };

    [Test]
    public void MetricsCsvHasOneColumnListAndEachRowFillsIt()
    {
        Assert.That(MetricsCsv.Header, Is.EqualTo(
            "round,test_accuracy,train_loss,upload_bytes,dense_upload_bytes,train_flops,dense_train_flops,seconds,server_seconds,encode_seconds,clients,failed_clients,lr," +
            "test_accuracy_dense_weights,val_accuracy,val_loss,silos,coordinator_bytes_sent,coordinator_bytes_received"));
        var failures = new[] { new ClientFailure(3, FailureKind.WorkerLost, "silo a left the cluster") };
        Assert.That(MetricsCsv.Row(Round(1, failures), new ClusterTraffic(2, 300, 200)),
            Is.EqualTo("1,,1.25,1000,4000,2E+06,8E+06,1.5,0.25,0.125,4,1,0.05,,0.75,0.875,2,300,200"), "a round without evaluation has empty cells");
        Assert.That(MetricsCsv.Row(Round(2, []), default), Is.EqualTo("2,0.5,1.25,1000,4000,2E+06,8E+06,1.5,0.25,0.125,4,0,0.05,0.625,0.75,0.875,0,0,0"));
        Assert.That(LayersCsv.Rows(Round(2, []), ["a", "b"]), Is.EqualTo(new[] { "2,a,0.2,0.5", "2,b,0.3,1" }));
    }

    [Test]
    public void TheRecorderTotalsRoundsAndWritesTypedFailuresAsTheirReasons()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"zerofl-recording-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var totals = new RunTotals();
            using (var recorder = new RunRecorder(directory, ["a", "b"], totals, append: false))
            {
                recorder.Record(Round(1, [new(3, FailureKind.WorkerLost, "silo a: no answer in time"), new(5, FailureKind.MalformedUpload, "client 5: 7 layers, the model has 8")]), new ClusterTraffic(2, 300, 200), 2.0);
                recorder.Record(Round(2, [new(1, FailureKind.NonFiniteUpdate, "non-finite training loss NaN")]), new ClusterTraffic(1, 30, 20), 3.5);
            }
            Assert.That(totals.Failures, Is.EqualTo(new[]
            {
                "round 1: client 3: worker lost: silo a: no answer in time",
                "round 1: client 5: malformed upload: client 5: 7 layers, the model has 8",
                "round 2: client 1: non-finite update: non-finite training loss NaN",
            }));
            Assert.That(totals.FailuresByReason, Is.EqualTo(new Dictionary<string, int> { ["worker lost"] = 1, ["malformed upload"] = 1, ["non-finite update"] = 1 }));
            Assert.That(totals.UploadBytes, Is.EqualTo(2000));
            Assert.That(totals.UploadBytesByEncoding["bitmap"], Is.EqualTo(1800));
            Assert.That((totals.CoordinatorBytesSent, totals.CoordinatorBytesReceived), Is.EqualTo((330L, 220L)));
            Assert.That(totals.WallSeconds, Is.EqualTo(3.5));
            Assert.That(totals.LastAccuracy, Is.EqualTo(0.5));
            var metrics = File.ReadAllLines(RunRecorder.MetricsPath(directory));
            Assert.That(metrics, Has.Length.EqualTo(3));
            Assert.That(metrics[0], Is.EqualTo(MetricsCsv.Header));
            Assert.That(File.ReadAllLines(RunRecorder.LayersPath(directory)), Is.EqualTo(new[] { LayersCsv.Header, "1,a,0.2,", "1,b,0.3,", "2,a,0.2,0.5", "2,b,0.3,1" }));

            using (var resumed = new RunRecorder(directory, ["a", "b"], totals, append: true))
            {
                resumed.Record(Round(3, []), default, 4.0);
            }
            Assert.That(File.ReadAllLines(RunRecorder.MetricsPath(directory)).Count(l => l == MetricsCsv.Header), Is.EqualTo(1), "a resumed run appends, no second header");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void FailureKindsKeepTheirRecordedText()
    {
        Assert.That(Enum.GetValues<FailureKind>().Select(k => k.Reason()), Is.EqualTo(new[] { "training failed", "non-finite update", "malformed upload", "worker lost" }));
        Assert.That(new FitFailure(FailureKind.TrainingFailed, "no training samples").Of(4).ToString(), Is.EqualTo("client 4: training failed: no training samples"));
        Assert.That(ClientResult.Failed(2, FailureKind.NonFiniteUpdate, "x").FailureRecord(), Is.EqualTo(new ClientFailure(2, FailureKind.NonFiniteUpdate, "x")));
        Assert.That(new ClientResult(2, null, 0, FitMetrics.None, null).FailureRecord(), Is.EqualTo(new ClientFailure(2, FailureKind.TrainingFailed, "no upload")), "no upload and no reason");
    }

    [Test]
    public void TheSummaryWritesItsFieldsInTheirOrder()
    {
        var summary = new RunSummary
        {
            FinalTestAccuracy = 0.5, FinalTestAccuracyDenseWeights = null, FinalValidationAccuracy = 0.25, FinalValidationLoss = 1.5, ValidationFraction = 0.1, MaskRecordEvery = 20,
            Rounds = 3, Clients = 10, ClientsPerRound = 4, Strategy = "topk-weights", Sparsity = 0.9f, MaskRatio = 0.1, UplinkBytesTotal = 25, DenseUplinkBytesTotal = 100,
            UplinkEncoding = "auto", ServerOptimizer = ServerOptimizerSummary.Of(ServerOptimizerSettings.Defaults(ServerOptimizerKind.FedAdagrad)), UploadValues = "fp32",
            UplinkBytesByEncoding = new Dictionary<string, long> { ["bitmap+fp16"] = 25 }, TrainFlopsTotal = 1, DenseTrainFlopsTotal = 2, WallSeconds = 3, ServerSecondsTotal = 0.5,
            FailuresByReason = new Dictionary<string, int> { ["worker lost"] = 1 }, Failures = ["round 1: client 3: worker lost: silo a left the cluster"], Preset = null,
            Model = "cnn", Dataset = "mnist/train", Partition = "iid", Alpha = 1, LocalEpochs = 1, BatchSize = 16, LearningRateStart = 0.05, LearningRateEnd = 0.01, TopKPeriod = 1, Recompute = false,
            SparseLayers = ["a"], DenseUploadBytesPerClient = 100, Device = "cpu", DeviceBytes = 5, Cluster = null, Silos = [], CoordinatorBytesSentTotal = 0,
            CoordinatorBytesReceivedTotal = 0, Seed = 2,
        };
        var root = JsonDocument.Parse(JsonSerializer.Serialize<object>(summary)).RootElement;
        Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[]
        {
            "final_test_accuracy", "final_test_accuracy_dense_weights", "final_val_accuracy", "final_val_loss", "val_fraction", "mask_record_every", "rounds", "clients",
            "clients_per_round", "strategy", "sparsity", "mask_ratio", "uplink_bytes_total", "dense_uplink_bytes_total", "uplink_fraction_of_dense", "uplink_encoding",
            "server_optimizer", "upload_values", "uplink_bytes_by_encoding", "train_flops_total", "dense_train_flops_total", "wall_seconds", "server_seconds_total",
            "failed_clients", "failures_by_reason", "failures", "preset", "model", "dataset", "partition", "alpha", "local_epochs", "batch_size", "lr_start", "lr_end",
            "topk_period", "recompute", "sparse_layers", "dense_upload_bytes_per_client", "device", "device_bytes", "cluster", "silos", "coordinator_bytes_sent_total",
            "coordinator_bytes_received_total", "seed",
        }));
        Assert.That(root.GetProperty("uplink_fraction_of_dense").GetDouble(), Is.EqualTo(0.25));
        Assert.That(root.GetProperty("failed_clients").GetInt32(), Is.EqualTo(1));
        Assert.That(root.GetProperty("server_optimizer").EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "name", "lr", "beta1", "beta2", "tau" }));
        Assert.That(root.GetProperty("server_optimizer").GetProperty("beta2").ValueKind, Is.EqualTo(JsonValueKind.Null), "fedadagrad has no beta2");
        Assert.That(JsonSerializer.Serialize(ServerOptimizerSummary.Of(ServerOptimizerSettings.FedAvg)), Is.EqualTo("{\"name\":\"fedavg\"}"));
    }

    /// <summary>The report reads the files by the names their writers define: a name they do not write fails at once.</summary>
    [Test]
    public void ReadersNameOnlyColumnsAndFieldsTheWritersWrite()
    {
        Assert.That(MetricsCsv.Column("val_accuracy"), Is.EqualTo("val_accuracy"));
        Assert.That(LayersCsv.Column("mask_stability"), Is.EqualTo("mask_stability"));
        Assert.That(RunSummary.Field("uplink_fraction_of_dense"), Is.EqualTo("uplink_fraction_of_dense"));
        Assert.Throws<InvalidOperationException>(() => MetricsCsv.Column("accuracy"));
        Assert.Throws<InvalidOperationException>(() => LayersCsv.Column("stability"));
        Assert.Throws<InvalidOperationException>(() => RunSummary.Field("final_accuracy"));
    }
}
