using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ZeroFL.Cli;
using ZeroFL.Federation.Partitioning;

namespace ZeroFL.Tests.Cli;

/// <summary>
/// The paper's analyses through <c>zerofl run</c> and <c>zerofl report</c>: dense-weights and
/// validation columns in metrics.csv, mask stability in layers.csv, their summary.json values,
/// --val-fraction and --mask-record-every, and the report's charts.
/// </summary>
[NonParallelizable]
public sealed class RunAnalysesCliTests
{
    private ZeroFL.Tests.Data.IdxFiles files = null!;

    [OneTimeSetUp]
    public void WriteData()
    {
        files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 300, testCount: 50);
    }

    [OneTimeTearDown]
    public void DeleteData() => files.Dispose();

    /// <summary>Runs a 4-round job (evaluated and masks recorded every 2 rounds) with <paramref name="extra"/> options into files/<paramref name="name"/>.</summary>
    private string RunJob(string name, params string[] extra)
    {
        string outDir = Path.Combine(files.Directory, name);
        var (code, _, err) = CliTests.Run(["run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "20", "--clients-per-round", "4",
            "--rounds", "4", "--eval-every", "2", "--mask-record-every", "2", "--batch-size", "16", "--quiet", "--out", outDir, .. extra]);
        Assert.That(code, Is.EqualTo(0), err);
        return outDir;
    }

    /// <summary>The data rows of a CSV file as column name -> cell maps.</summary>
    private static List<Dictionary<string, string>> Csv(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private static double Number(string cell) => double.Parse(cell, NumberStyles.Float, CultureInfo.InvariantCulture);

    [Test]
    public void ASparseRunWritesDenseWeightsAccuracyValidationAndMaskStability()
    {
        string outDir = RunJob("sparse");
        var metrics = Csv(Path.Combine(outDir, "metrics.csv"));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "metrics.csv"))[0], Does.Contain(",lr,test_accuracy_dense_weights,val_accuracy,val_loss,"));
        foreach (var row in metrics)
        {
            bool evaluated = row["round"] is "2" or "4";
            Assert.That(row["test_accuracy_dense_weights"], evaluated ? Is.Not.Empty : Is.Empty, $"round {row["round"]}: dense weights only when evaluated");
            Assert.That(Number(row["val_accuracy"]), Is.InRange(0.0, 1.0), $"round {row["round"]}: validation every round");
            Assert.That(Number(row["val_loss"]), Is.Positive);
        }
        Assert.That(Number(metrics[3]["test_accuracy_dense_weights"]), Is.InRange(0.0, 1.0));

        var layers = Csv(Path.Combine(outDir, "layers.csv"));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "layers.csv"))[0], Is.EqualTo("round,layer,nonzero_ratio,mask_stability"));
        Assert.That(layers, Has.Count.EqualTo(4 * 2), "both sparse layers every round (sparse uploads)");
        foreach (var row in layers)
        {
            Assert.That(Number(row["nonzero_ratio"]), Is.InRange(0.0, 1.0));
            bool recorded = row["round"] is "2" or "4";
            Assert.That(row["mask_stability"], recorded ? Is.Not.Empty : Is.Empty, $"round {row["round"]}");
            if (recorded)
            {
                Assert.That(Number(row["mask_stability"]), Is.InRange(0.0, 1.0));
            }
        }

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var root = summary.RootElement;
        Assert.That(root.GetProperty("final_test_accuracy_dense_weights").GetDouble(), Is.EqualTo(Number(metrics[3]["test_accuracy_dense_weights"])).Within(1e-6));
        Assert.That(root.GetProperty("final_val_accuracy").GetDouble(), Is.EqualTo(Number(metrics[3]["val_accuracy"])).Within(1e-6));
        Assert.That(root.GetProperty("final_val_loss").GetDouble(), Is.EqualTo(Number(metrics[3]["val_loss"])).Within(1e-5));
        Assert.That(root.GetProperty("val_fraction").GetDouble(), Is.EqualTo(0.1));
        Assert.That(root.GetProperty("mask_record_every").GetInt32(), Is.EqualTo(2));

        var (code, _, err) = CliTests.Run("report", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        string html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        Assert.That(Regex.Matches(html, "<svg ").Count, Is.EqualTo(7), "3 charts, then dense vs top-K, validation, non-zero ratio, mask stability");
        Assert.That(html, Does.Contain("Mask stability").And.Contain("Non-zero ratio").And.Contain("all weights").And.Contain("classifier.0.weight"));
    }

    [Test]
    public void ValFractionZeroTrainsOnEverySampleAndLeavesValidationEmpty()
    {
        string held = RunJob("val-default");
        string all = RunJob("val-zero", "--val-fraction", "0");
        foreach (var row in Csv(Path.Combine(all, "metrics.csv")))
        {
            Assert.That(row["val_accuracy"], Is.Empty);
            Assert.That(row["val_loss"], Is.Empty);
        }
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(all, "summary.json")));
        Assert.That(summary.RootElement.GetProperty("final_val_accuracy").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(File.ReadAllBytes(Path.Combine(all, "model.safetensors")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(held, "model.safetensors"))),
            "the held-out 10% now trains too");
    }

    [Test]
    public void TheDefaultValFractionIsTheHoldOutThePartitionsAlwaysHad()
    {
        Assert.That(Program.ParseRunArguments(["run"]).ValidationFraction, Is.EqualTo(new PartitionOptions(0).ValidationFraction));
        Assert.That(Program.ParseRunArguments(["run"]).MaskRecordEvery, Is.EqualTo(20));
    }

    [Test]
    public void ADenseRunWritesOneAccuracyTwiceAndNoLayerRows()
    {
        string outDir = RunJob("dense", "--strategy", "dense");
        foreach (var row in Csv(Path.Combine(outDir, "metrics.csv")))
        {
            Assert.That(row["test_accuracy_dense_weights"], Is.EqualTo(row["test_accuracy"]));
        }
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "layers.csv")), Has.Length.EqualTo(1), "no mask, no sparse upload");
    }

    [Test]
    public void ASwatRunWithDenseUploadsHasLayerRowsOnlyOnRecordRounds()
    {
        string outDir = RunJob("swat", "--strategy", "swat");
        var layers = Csv(Path.Combine(outDir, "layers.csv"));
        Assert.That(layers.Select(r => r["round"]), Is.EqualTo(new[] { "2", "2", "4", "4" }));
        Assert.That(layers.Select(r => r["nonzero_ratio"]), Is.All.Empty, "dense uploads have no non-zero ratio");
        Assert.That(layers.Select(r => Number(r["mask_stability"])), Is.All.InRange(0.0, 1.0));
    }
}
