using System.Text.RegularExpressions;
using ZeroFL.Cli.Reports;

namespace ZeroFL.Tests.Cli;

/// <summary>The self-contained HTML report.</summary>
public sealed class ReportTests
{
    private static RunRecord Run(string name, double scale) => new(name,
        Enumerable.Range(1, 6).Select(r => new RoundRow(r, r % 2 == 0 ? 0.5 + 0.05 * r * scale : null, (long)(1e6 * scale), 2e9 * scale)).ToList(),
        new Dictionary<string, string> { ["strategy"] = "topk-weights", ["final_test_accuracy"] = "0.8", ["uplink_bytes_total"] = "6000000", ["uplink_fraction_of_dense"] = "0.4" });

    [Test]
    public void OneLinePerRunInEachOfTheThreeChartsAndNothingExternal()
    {
        var html = RunReport.Html([Run("dense <baseline>", 1), Run("zerofl", 0.5)], "two runs");
        Assert.That(Regex.Matches(html, "<svg ").Count, Is.EqualTo(3), "accuracy, upload and compute charts");
        Assert.That(Regex.Matches(html, "<polyline ").Count, Is.EqualTo(6), "two runs in each chart");
        Assert.That(html, Does.Contain("dense &lt;baseline&gt;"), "names are escaped");
        Assert.That(html, Does.Not.Contain("<script").And.Not.Contain(" src=").And.Not.Contain(" href=").And.Not.Contain("<link"), "self-contained");
        Assert.That(html, Does.Contain("<td>40.0 %"), "the summary table shows the upload share");
    }

    /// <summary>A run with the analyses: accuracy with all weights, validation, and two sparse layers' ratios and stability.</summary>
    private static RunRecord WithAnalyses(string name) => Run(name, 1) with
    {
        Rounds = Enumerable.Range(1, 6).Select(r => new RoundRow(r, r % 2 == 0 ? 0.8 : null, 1_000_000, 2e9)
        {
            TestAccuracyDenseWeights = r % 2 == 0 ? 0.1 : null,
            ValidationAccuracy = 0.7,
            ValidationLoss = 0.9,
        }).ToList(),
        Layers = Enumerable.Range(1, 6).SelectMany(r => new[] { "conv.weight", "fc.weight" }
            .Select(layer => new LayerRow(r, layer, 0.25, r % 3 == 0 ? 0.875 : null))).ToList(),
    };

    private static string ChartNamed(string html, string title)
    {
        int at = html.IndexOf(title, StringComparison.Ordinal);
        Assert.That(at, Is.Not.Negative, $"a chart '{title}'");
        var chart = html[at..];
        return chart[..chart.IndexOf("</svg>", StringComparison.Ordinal)];
    }

    [Test]
    public void TheAnalysesAreDrawnPerLayerAndDenseAgainstTopK()
    {
        var html = RunReport.Html([WithAnalyses("zerofl")], "analyses");
        Assert.That(Regex.Matches(html, "<svg ").Count, Is.EqualTo(7));
        var accuracy = ChartNamed(html, "top-K (solid), all weights (dashed)");
        Assert.That(Regex.Matches(accuracy, "<polyline ").Count, Is.EqualTo(2));
        Assert.That(Regex.Matches(accuracy, "<polyline [^>]*stroke-dasharray").Count, Is.EqualTo(1), "all weights dashed");
        var ratio = ChartNamed(html, "Non-zero ratio after aggregation");
        Assert.That(Regex.Matches(ratio, "<polyline ").Count, Is.EqualTo(2), "one line per sparse layer");
        Assert.That(Regex.Matches(ratio, "<circle ").Count, Is.EqualTo(12), "every round");
        Assert.That(ratio, Does.Contain(">conv.weight<").And.Contain(">fc.weight<"));
        var stability = ChartNamed(html, "Mask stability");
        Assert.That(Regex.Matches(stability, "<circle ").Count, Is.EqualTo(4), "rounds 3 and 6 of two layers");
        Assert.That(Regex.Matches(ChartNamed(html, "Validation accuracy"), "<circle ").Count, Is.EqualTo(6));
        Assert.That(html, Does.Contain("<th>with all weights</th>"));
    }

    [Test]
    public void RunsWithoutTheAnalysesGetOnlyTheThreeCharts()
    {
        Assert.That(Regex.Matches(RunReport.Html([Run("old", 1)], "old"), "<svg ").Count, Is.EqualTo(3));
        var both = RunReport.Html([Run("old", 1), WithAnalyses("new")], "both");
        Assert.That(Regex.Matches(both, "<svg ").Count, Is.EqualTo(7));
        Assert.That(Regex.Matches(ChartNamed(both, "Mask stability"), "<polyline ").Count, Is.EqualTo(2), "the new run's two layers");
        Assert.That(ChartNamed(both, "Mask stability"), Does.Contain(">new: fc.weight<"), "several runs: the run names the line");
    }

    [Test]
    public void ARunDirectoryOfAnOlderVersionStillReads()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"zerofl-report-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            File.WriteAllText(Path.Combine(directory, "metrics.csv"), "round,test_accuracy,train_loss,upload_bytes,train_flops\n1,,1.5,100,2e9\n2,0.5,1.2,100,2e9\n");
            File.WriteAllText(Path.Combine(directory, "layers.csv"), "round,layer,nonzero_ratio\n1,fc.weight,0.3\n2,fc.weight,0.25\n");
            var run = RunRecord.Read(directory);
            Assert.That(run.Rounds[1].TestAccuracy, Is.EqualTo(0.5));
            Assert.That(run.Rounds[1].TestAccuracyDenseWeights, Is.Null);
            Assert.That(run.Layers, Is.EqualTo(new[] { new LayerRow(1, "fc.weight", 0.3, null), new LayerRow(2, "fc.weight", 0.25, null) }));

            File.WriteAllText(Path.Combine(directory, "layers.csv"), "round,layer,nonzero_ratio,mask_stability\n2,fc.weight,,0.9\n3,fc.weight,x,\n");
            var error = Assert.Throws<InvalidDataException>(() => RunRecord.Read(directory));
            Assert.That(error!.Message, Does.Contain("layers.csv: line 3"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void CumulativeUploadEndsAtTheSumOfTheRounds()
    {
        var html = RunReport.Html([Run("a", 1)], "one run");
        // Cumulative upload is 6 MB after round 6: the axis must reach it.
        var uploadChart = html[html.IndexOf("Cumulative upload", StringComparison.Ordinal)..];
        uploadChart = uploadChart[..uploadChart.IndexOf("</svg>", StringComparison.Ordinal)];
        Assert.That(uploadChart, Does.Contain(">6<"), "a tick at 6 MB");
    }

    [Test]
    public void RoundTicksAreWholeRounds()
    {
        Assert.That(RunReport.Ticks(1, 3, wholeNumbers: true), Is.EqualTo(new double[] { 1, 2, 3 }));
    }

    [TestCase(0, 1, 0, 1)]
    [TestCase(1, 30, 0, 30)]
    [TestCase(0, 0.853, 0, 1)]
    [TestCase(1, 700, 0, 800)]
    public void TicksAreRoundAndCoverTheRange(double lo, double hi, double first, double last)
    {
        var ticks = RunReport.Ticks(lo, hi);
        Assert.That(ticks[0], Is.EqualTo(first).Within(1e-9));
        Assert.That(ticks[^1], Is.EqualTo(last).Within(1e-9));
        Assert.That(ticks, Has.Length.InRange(3, 11));
    }
}
