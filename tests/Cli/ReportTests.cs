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
