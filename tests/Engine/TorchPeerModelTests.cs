using ZeroFL.Engine.Models;
using ZeroFL.Perf;

namespace ZeroFL.Tests.Engine;

/// <summary>
/// The PyTorch peer of the perf suite <c>torch</c> (perf/torch_step.py, compared through
/// perf/TorchPeer.cs) builds ZeroFL's catalogue models: the same parameter and running-statistic
/// tensors, by name and shape. Needs torch for /usr/bin/python3 (python3-torch); ignored without it.
/// </summary>
public sealed class TorchPeerModelTests
{
    private static readonly Lazy<string?> Unavailable = new(TorchPeer.Unavailable);

    [TestCase("resnet18", 3, 32, 10)]
    [TestCase("femnist-cnn", 1, 28, 62)]
    [TestCase("cnn", 1, 28, 10)]
    public void PyTorchBuildsTheCatalogueModel(string model, int channels, int size, int classes)
    {
        if (Unavailable.Value is string reason)
        {
            Assert.Ignore(reason);
        }
        string? script = TorchPeer.FindScript(TestContext.CurrentContext.TestDirectory);
        Assert.That(script, Is.Not.Null, "perf/torch_step.py above the test directory");
        var zerofl = ModelCatalog.Build(model, channels, size, classes).CollectParameters();
        var torch = TorchPeer.Tensors(script!, model, channels, size, classes);
        Assert.That(TorchPeer.Differences(zerofl, torch), Is.Empty);
        Assert.That(torch, Has.Count.EqualTo(zerofl.Count));
    }

    [Test]
    public void DifferencesNameEveryMismatch()
    {
        var zerofl = ModelCatalog.Build("cnn", 1, 28, 10).CollectParameters();
        var torch = zerofl.ToDictionary(p => p.FullName, p => p.Shape);
        Assert.That(TorchPeer.Differences(zerofl, torch), Is.Empty);

        torch.Remove("features.0.bias");
        torch["classifier.0.weight"] = [128, 3137];
        torch["classifier.1.weight"] = [1];
        var differences = TorchPeer.Differences(zerofl, torch);
        Assert.That(differences, Has.Count.EqualTo(4), string.Join("; ", differences));
        Assert.That(differences[0], Is.EqualTo("features.0.bias [32]: not in PyTorch's model"));
        Assert.That(differences[1], Is.EqualTo("classifier.0.weight: ZeroFL [128, 3136], PyTorch [128, 3137]"));
        Assert.That(differences[2], Is.EqualTo("classifier.1.weight [1]: PyTorch only"));
        Assert.That(differences[3], Is.EqualTo("totals: ZeroFL 421642 trainable + 0 running statistics, PyTorch 421739 + 0"));
    }
}
