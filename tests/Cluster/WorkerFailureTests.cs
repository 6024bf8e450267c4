using ZeroFL.Cluster;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Tests.Cluster;

/// <summary>
/// A worker's reply without an upload: the coordinator takes the failures a worker can know of
/// (training failed, a non-finite update) as reported, and turns any other kind it claims, or a
/// kind outside the enumeration, into a malformed upload naming the silo.
/// </summary>
public sealed class WorkerFailureTests
{
    private static FitReply Reply(int kind, string? failure) =>
        new(ClientId: 7, Examples: 40, TrainLoss: 0.5, TrainFlops: 1, DenseTrainFlops: 2, EncodeSeconds: 0, FailureKind: kind, Failure: failure, UploadLength: 0, FirstChunk: []);

    [TestCase(FailureKind.TrainingFailed)]
    [TestCase(FailureKind.NonFiniteUpdate)]
    public void FailuresAWorkerCanReportAreKept(FailureKind kind)
    {
        var result = ClusterFit.FailureOf(Reply((int)kind, "it broke"), 7, "silo-a");
        Assert.That(result.FailureRecord(), Is.EqualTo(new ClientFailure(7, kind, "it broke")));
        Assert.That(result.Examples, Is.EqualTo(40), "the worker's metrics are kept");
        Assert.That(result.Metrics.TrainLoss, Is.EqualTo(0.5));
    }

    [TestCase((int)FailureKind.WorkerLost)]
    [TestCase((int)FailureKind.MalformedUpload)]
    [TestCase(99)]
    [TestCase(-1)]
    public void AnyOtherKindIsAMalformedUpload(int kind)
    {
        var failure = ClusterFit.FailureOf(Reply(kind, "made up"), 7, "silo-a").FailureRecord();
        Assert.That(failure!.Kind, Is.EqualTo(FailureKind.MalformedUpload));
        Assert.That(failure.Detail, Is.EqualTo($"silo silo-a reported a failure of kind {kind} (made up)"));
    }

    [Test]
    public void NoUploadAndNoReasonIsATrainingFailure()
    {
        Assert.That(ClusterFit.FailureOf(Reply(0, null), 7, "silo-a").FailureRecord(), Is.EqualTo(new ClientFailure(7, FailureKind.TrainingFailed, "no upload")));
    }
}
