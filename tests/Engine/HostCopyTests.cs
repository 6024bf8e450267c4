using System.Text.RegularExpressions;
using ZeroFL.Data;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>
/// Host-device copies while the garbage collector moves objects. ILGPU's
/// <c>CopyToCPU(ref T, long)</c> / <c>CopyFromCPU(ref T, long)</c> overloads expect memory the
/// caller has pinned: given an ordinary array element they copy to or from wherever the array was
/// when the pointer was taken, so a collection in between loses the data and overwrites whatever
/// the collector put there (the intermittent corruption seen in 2026-11). The project copies through
/// the span and array overloads, which pin.
/// </summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class HostCopyTests(string device) : DeviceTest(device)
{
    [Test]
    public void CopiesStayExactWhileCompactingCollectionsRun()
    {
        using var model = ModelCatalog.Create(Device, "cnn", 1, 8, 4, seed: 3);
        SwatRules.Apply(model, new SparsitySettings(0.9f));
        var uplink = new UplinkModel(model.Store, SwatRules.SparseWeights(model).ToList());
        var settings = new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1);
        using var encoder = new DeviceUplinkEncoder(Device, uplink, settings);
        using var aggregator = new DeviceAggregator(Device, uplink);
        var random = new Random(5);
        var pixels = new byte[64 * 64];
        random.NextBytes(pixels);
        var labels = Enumerable.Range(0, 64).Select(i => (byte)(i % 4)).ToArray();
        var data = Dataset.FromBytes("tiny", pixels, labels, 8, 8, 4, Normalization.FashionMnist);
        using var deviceData = new DeviceDataset(Device, data.Features, data.Labels, [1, 8, 8], 4);
        using var trainer = new Trainer(model, new Sgd(0.01f, 0.9f, 0f));
        var global = Upload(model.Store.Download());
        var expected = encoder.Encode(0, 10, model.Store.Values, global);
        var batch = Enumerable.Range(0, 16).ToArray();
        var expectedEvaluation = trainer.Evaluate(deviceData, batchSize: 7);

        using var stop = new CancellationTokenSource();
        var collector = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                // Garbage at full speed: gen-0 collections (which compact) keep happening.
                GC.KeepAlive(new byte[16 * 1024]);
            }
        });
        try
        {
            for (int i = 0; i < 50; i++)
            {
                var wire = encoder.Encode(0, 10, model.Store.Values, global);
                for (int l = 0; l < wire.Layers.Count; l++)
                {
                    Assert.That(wire.Layers[l].Values, Is.EqualTo(expected.Layers[l].Values), $"pass {i}, layer {l}: values");
                    Assert.That(wire.Layers[l].Columns, Is.EqualTo(expected.Layers[l].Columns), $"pass {i}, layer {l}: columns");
                }
                aggregator.Begin();
                aggregator.Add(wire);
                var evaluation = trainer.Evaluate(deviceData, batchSize: 7);
                Assert.That(evaluation, Is.EqualTo(expectedEvaluation), $"pass {i}: evaluation (batch indices up, predictions and losses down)");
            }
        }
        finally
        {
            stop.Cancel();
            collector.Wait();
        }
    }

    [Test]
    public void NoCodeCopiesThroughTheUnpinnedRefOverloads()
    {
        var root = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "ZeroFL.sln")))
        {
            root = root.Parent;
        }
        Assert.That(root, Is.Not.Null, "the repository root (ZeroFL.sln) above the test directory");
        var unpinned = new Regex(@"\.Copy(To|From)CPU(UnsafeAsync)?\s*\(\s*(stream\s*,\s*)?ref\b|UnsafeAsync\s*\(");
        var offenders = new List<string>();
        foreach (var folder in new[] { "src", "tests", "perf" })
        {
            foreach (var file in Directory.EnumerateFiles(Path.Combine(root!.FullName, folder), "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") || file.EndsWith(nameof(HostCopyTests) + ".cs"))
                {
                    continue;
                }
                var lines = File.ReadAllLines(file);
                for (int i = 0; i < lines.Length; i++)
                {
                    if (unpinned.IsMatch(lines[i]))
                    {
                        offenders.Add($"{Path.GetRelativePath(root.FullName, file)}:{i + 1}: {lines[i].Trim()}");
                    }
                }
            }
        }
        Assert.That(offenders, Is.Empty, "copy through the span or array overloads (they pin); the ref overloads need pinned memory");
    }
}
