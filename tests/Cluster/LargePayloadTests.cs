using System.Text.Json;
using ZeroFL.Tests.Cli;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Cluster;

/// <summary>
/// ResNet-18-sized payloads through the cluster: the dense model broadcast (44.7 MB of values and
/// running statistics, 11 pieces per worker) and CSR32 uploads at sparsity 0.9, r_mask 0.1 (18.4 MB
/// each, 5 pieces), on a small CIFAR-10-shaped set; the model still equals the in-process run's.
/// </summary>
[NonParallelizable]
public sealed class LargePayloadTests
{
    private string directory = null!;

    [OneTimeSetUp]
    public void WriteData()
    {
        directory = Path.Combine(Path.GetTempPath(), "zerofl-cluster-tests", Guid.NewGuid().ToString("N"));
        string batches = Path.Combine(directory, "cifar-10-batches-bin");
        Directory.CreateDirectory(batches);
        CifarFiles.Write(batches, trainPerBatch: 8, test: 4, seed: 5);
    }

    [OneTimeTearDown]
    public void DeleteData() => Directory.Delete(directory, recursive: true);

    private string[] Arguments(string outDir, params string[] extra) =>
        ["run", "--dataset", "cifar10", "--data-dir", directory, "--model", "resnet18", "--device", "cpu", "--partition", "iid", "--clients", "2", "--clients-per-round", "2",
         "--rounds", "1", "--batch-size", "8", "--uplink-encoding", "csr32", "--quiet", "--out", outDir, .. extra];

    [Test]
    public void AResNet18BroadcastAndItsUploadsPassAndGiveTheInProcessModel()
    {
        string single = Path.Combine(directory, "single"), clustered = Path.Combine(directory, "clustered");
        var (code, _, err) = CliTests.Run(Arguments(single));
        Assert.That(code, Is.EqualTo(0), err);
        (code, _, err) = CliTests.Run(Arguments(clustered, "--silos", "2"));
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.ReadAllBytes(Path.Combine(clustered, "model.safetensors")), Is.EqualTo(File.ReadAllBytes(Path.Combine(single, "model.safetensors"))));

        var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(clustered, "summary.json"))).RootElement;
        Assert.That(summary.GetProperty("failed_clients").GetInt32(), Is.Zero);
        // The model once to each of the 2 workers: its values, i.e. a dense upload less its per-layer headers.
        long sent = summary.GetProperty("coordinator_bytes_sent_total").GetInt64();
        long dense = summary.GetProperty("dense_upload_bytes_per_client").GetInt64();
        Assert.That(sent % 2, Is.Zero);
        Assert.That(sent / 2, Is.GreaterThan(44_000_000L).And.LessThanOrEqualTo(dense).And.GreaterThan(dense - 1000), "a dense ResNet-18 per worker");
        long uploads = summary.GetProperty("uplink_bytes_total").GetInt64();
        Assert.That(uploads / 2, Is.GreaterThan(18_000_000L), "each upload is ResNet-18-sized");
        Assert.That(summary.GetProperty("coordinator_bytes_received_total").GetInt64(), Is.GreaterThan(uploads));
    }
}
