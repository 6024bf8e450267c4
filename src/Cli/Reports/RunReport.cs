using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ZeroFL.Cli.Reports;

/// <summary>One round of a run, as metrics.csv records it.</summary>
/// <param name="Round">Round (1-based).</param>
/// <param name="TestAccuracy">Test accuracy when evaluated that round.</param>
/// <param name="UploadBytes">Bytes uploaded that round.</param>
/// <param name="TrainFlops">Training FLOPs used that round.</param>
public sealed record RoundRow(int Round, double? TestAccuracy, long UploadBytes, double TrainFlops);

/// <summary>A run directory read back: its name, rounds and summary.json values.</summary>
/// <param name="Name">Label (the directory name).</param>
/// <param name="Rounds">metrics.csv rows in round order.</param>
/// <param name="Summary">summary.json's top-level values, as text.</param>
public sealed record RunRecord(string Name, IReadOnlyList<RoundRow> Rounds, IReadOnlyDictionary<string, string> Summary)
{
    /// <summary>Reads <paramref name="directory"/>'s metrics.csv and summary.json; InvalidDataException naming the file for anything unreadable.</summary>
    public static RunRecord Read(string directory)
    {
        string metrics = Path.Combine(directory, "metrics.csv");
        string summaryPath = Path.Combine(directory, "summary.json");
        if (!File.Exists(metrics))
        {
            throw new InvalidDataException($"{metrics}: missing (is {directory} a run directory?)");
        }
        var lines = File.ReadAllLines(metrics);
        var header = lines.FirstOrDefault()?.Split(',') ?? [];
        int Column(string name) => Array.IndexOf(header, name) is int i and >= 0 ? i : throw new InvalidDataException($"{metrics}: no '{name}' column");
        int round = Column("round"), accuracy = Column("test_accuracy"), upload = Column("upload_bytes"), flops = Column("train_flops");
        var c = CultureInfo.InvariantCulture;
        var rows = new List<RoundRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            if (f.Length != header.Length || !int.TryParse(f[round], NumberStyles.Integer, c, out int r)
                || !long.TryParse(f[upload], NumberStyles.Integer, c, out long u) || !double.TryParse(f[flops], NumberStyles.Float, c, out double fl))
            {
                throw new InvalidDataException($"{metrics}: line {i + 1} is not a metrics row");
            }
            double? a = double.TryParse(f[accuracy], NumberStyles.Float, c, out double value) ? value : null;
            rows.Add(new RoundRow(r, a, u, fl));
        }
        var summary = new Dictionary<string, string>();
        if (File.Exists(summaryPath))
        {
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllText(summaryPath));
                foreach (var p in document.RootElement.EnumerateObject())
                {
                    summary[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
                }
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{summaryPath}: damaged ({e.Message.ReplaceLineEndings(" ")})");
            }
        }
        return new RunRecord(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))), rows, summary);
    }
}

/// <summary>
/// A self-contained HTML report (inline SVG, no external files or scripts) of one or more runs: test
/// accuracy, cumulative upload and cumulative training FLOPs against the round, one line per run,
/// and a summary table.
/// </summary>
public static class RunReport
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    /// <summary>The report's HTML.</summary>
    public static string Html(IReadOnlyList<RunRecord> runs, string title)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(Escape(title)).Append("</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}")
            .Append("table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}")
            .Append("td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fff;border:1px solid #ddd}")
            .Append("</style></head><body>\n<h1>").Append(Escape(title)).Append("</h1>\n<div class=\"charts\">\n");
        html.Append(Chart("Test accuracy", "round", "accuracy", runs, r => r.Rounds.Where(x => x.TestAccuracy is not null).Select(x => (x.Round * 1.0, x.TestAccuracy!.Value))));
        html.Append(Chart("Cumulative upload", "round", "MB", runs, r => Cumulative(r.Rounds, x => x.UploadBytes / 1e6)));
        html.Append(Chart("Cumulative training compute", "round", "GFLOP", runs, r => Cumulative(r.Rounds, x => x.TrainFlops / 1e9)));
        html.Append("</div>\n<h2>Summary</h2>\n<table><tr><th>run</th><th>strategy</th><th>sparsity</th><th>r_mask</th><th>rounds</th><th>final test accuracy</th><th>uplink MB</th><th>of dense</th><th>training GFLOP</th><th>failed clients</th><th>seconds</th></tr>\n");
        foreach (var run in runs)
        {
            string Get(string key) => run.Summary.TryGetValue(key, out var v) ? v : "";
            string Number(string key, double scale, string format) =>
                double.TryParse(Get(key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? (v * scale).ToString(format, CultureInfo.InvariantCulture) : "-";
            html.Append("<tr><td>").Append(Escape(run.Name)).Append("</td><td>").Append(Escape(Get("strategy"))).Append("</td><td>").Append(Escape(Get("sparsity")))
                .Append("</td><td>").Append(Escape(Get("mask_ratio"))).Append("</td><td>").Append(run.Rounds.Count).Append("</td><td>").Append(Number("final_test_accuracy", 1, "F4"))
                .Append("</td><td>").Append(Number("uplink_bytes_total", 1e-6, "F1")).Append("</td><td>").Append(Number("uplink_fraction_of_dense", 100, "F1")).Append(" %")
                .Append("</td><td>").Append(Number("train_flops_total", 1e-9, "F1")).Append("</td><td>").Append(Escape(Get("failed_clients")))
                .Append("</td><td>").Append(Number("wall_seconds", 1, "F1")).Append("</td></tr>\n");
        }
        html.Append("</table>\n</body></html>\n");
        return html.ToString();
    }

    private static IEnumerable<(double X, double Y)> Cumulative(IReadOnlyList<RoundRow> rows, Func<RoundRow, double> value)
    {
        double sum = 0;
        foreach (var row in rows)
        {
            sum += value(row);
            yield return (row.Round, sum);
        }
    }

    /// <summary>One SVG line chart, 420 x 280, with axes, ticks and a legend.</summary>
    private static string Chart(string title, string xLabel, string yLabel, IReadOnlyList<RunRecord> runs, Func<RunRecord, IEnumerable<(double X, double Y)>> series)
    {
        const double width = 420, height = 280, left = 58, right = 12, top = 28, bottom = 44;
        var lines = runs.Select(r => series(r).ToList()).ToList();
        var all = lines.SelectMany(l => l).ToList();
        double xMax = all.Count > 0 ? all.Max(p => p.X) : 1, yMax = all.Count > 0 ? all.Max(p => p.Y) : 1;
        double xMin = Math.Min(1, xMax), yMin = 0;
        var xTicks = Ticks(xMin, xMax, wholeNumbers: true);
        var yTicks = Ticks(yMin, yMax);
        xMax = Math.Max(xMax, xTicks[^1]);
        yMax = Math.Max(yMax, yTicks[^1]);
        double X(double x) => left + (x - xMin) / Math.Max(1e-12, xMax - xMin) * (width - left - right);
        double Y(double y) => height - bottom - (y - yMin) / Math.Max(1e-12, yMax - yMin) * (height - top - bottom);
        var c = CultureInfo.InvariantCulture;
        var svg = new StringBuilder();
        svg.Append(c, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height + 18 * runs.Count}\" role=\"img\" aria-label=\"{Escape(title)}\">");
        svg.Append(c, $"<text x=\"{width / 2}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{Escape(title)}</text>");
        foreach (double t in yTicks)
        {
            svg.Append(c, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y(t):F1}\" y2=\"{Y(t):F1}\" stroke=\"#eee\"/><text x=\"{left - 6}\" y=\"{Y(t) + 4:F1}\" text-anchor=\"end\" font-size=\"11\">{t.ToString("G4", c)}</text>");
        }
        foreach (double t in xTicks)
        {
            svg.Append(c, $"<line x1=\"{X(t):F1}\" x2=\"{X(t):F1}\" y1=\"{height - bottom}\" y2=\"{height - bottom + 4}\" stroke=\"#333\"/><text x=\"{X(t):F1}\" y=\"{height - bottom + 16}\" text-anchor=\"middle\" font-size=\"11\">{t.ToString("G4", c)}</text>");
        }
        svg.Append(c, $"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{height - bottom}\" y2=\"{height - bottom}\" stroke=\"#333\"/><line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{height - bottom}\" stroke=\"#333\"/>");
        svg.Append(c, $"<text x=\"{(left + width - right) / 2}\" y=\"{height - 8}\" text-anchor=\"middle\" font-size=\"12\">{Escape(xLabel)}</text>");
        svg.Append(c, $"<text x=\"14\" y=\"{(top + height - bottom) / 2}\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 14 {(top + height - bottom) / 2})\">{Escape(yLabel)}</text>");
        for (int i = 0; i < lines.Count; i++)
        {
            string color = Colors[i % Colors.Length];
            if (lines[i].Count > 0)
            {
                svg.Append("<polyline fill=\"none\" stroke-width=\"2\" stroke=\"").Append(color).Append("\" points=\"")
                    .AppendJoin(' ', lines[i].Select(p => string.Create(c, $"{X(p.X):F1},{Y(p.Y):F1}"))).Append("\"/>");
                foreach (var p in lines[i].Count <= 40 ? lines[i] : [])
                {
                    svg.Append(c, $"<circle cx=\"{X(p.X):F1}\" cy=\"{Y(p.Y):F1}\" r=\"2.5\" fill=\"{color}\"/>");
                }
            }
            double ly = height + 12 + 18 * i;
            svg.Append(c, $"<line x1=\"{left}\" x2=\"{left + 22}\" y1=\"{ly - 4}\" y2=\"{ly - 4}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{left + 28}\" y=\"{ly}\" font-size=\"12\">{Escape(runs[i].Name)}</text>");
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>
    /// About five round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart; at least
    /// 1 apart with <paramref name="wholeNumbers"/>, for rounds).
    /// </summary>
    public static double[] Ticks(double lo, double hi, bool wholeNumbers = false)
    {
        if (!(hi > lo))
        {
            hi = lo + 1;
        }
        double raw = (hi - lo) / 5;
        double power = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2.0, 5.0, 10.0 }.Select(m => m * power).First(s => s >= raw);
        if (wholeNumbers)
        {
            step = Math.Max(1, step);
        }
        double first = Math.Floor(lo / step) * step;
        var ticks = new List<double>();
        for (double t = first; t < hi + step * 0.999; t += step)
        {
            ticks.Add(Math.Round(t, 10));
        }
        return [.. ticks];
    }

    private static string Escape(string text) => WebUtility.HtmlEncode(text);
}
