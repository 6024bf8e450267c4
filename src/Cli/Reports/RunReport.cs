using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using ZeroFL.Cli.Recording;

namespace ZeroFL.Cli.Reports;

/// <summary>One round of a run, as metrics.csv records it.</summary>
/// <param name="Round">Round (1-based).</param>
/// <param name="TestAccuracy">Test accuracy when evaluated that round.</param>
/// <param name="UploadBytes">Bytes uploaded that round.</param>
/// <param name="TrainFlops">Training FLOPs used that round.</param>
public sealed record RoundRow(int Round, double? TestAccuracy, long UploadBytes, double TrainFlops)
{
    /// <summary>Test accuracy with all weights (no top-K mask) when evaluated that round.</summary>
    public double? TestAccuracyDenseWeights { get; init; }

    /// <summary>The round's clients' weighted validation accuracy.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>The round's clients' weighted validation loss.</summary>
    public double? ValidationLoss { get; init; }
}

/// <summary>One row of layers.csv: a sparse layer in a round.</summary>
/// <param name="Round">Round (1-based).</param>
/// <param name="Layer">The layer's parameter name.</param>
/// <param name="NonZeroRatio">Non-zero entries of the aggregated upload / layer size, when the uploads were sparse.</param>
/// <param name="MaskStability">Share of the global model's top-K positions unchanged since the previous mask record, on record rounds.</param>
public sealed record LayerRow(int Round, string Layer, double? NonZeroRatio, double? MaskStability);

/// <summary>A run directory read back: its name, rounds and summary.json values.</summary>
/// <param name="Name">Label (the directory name).</param>
/// <param name="Rounds">metrics.csv rows in round order.</param>
/// <param name="Summary">summary.json's top-level values, as text.</param>
public sealed record RunRecord(string Name, IReadOnlyList<RoundRow> Rounds, IReadOnlyDictionary<string, string> Summary)
{
    /// <summary>layers.csv rows in file order (none when the run has no such file).</summary>
    public IReadOnlyList<LayerRow> Layers { get; init; } = [];

    /// <summary>
    /// Reads <paramref name="directory"/>'s metrics.csv, layers.csv (if any) and summary.json;
    /// InvalidDataException naming the file for anything unreadable. Columns added later
    /// (dense-weights and validation accuracy, mask stability) are optional, so older runs read.
    /// </summary>
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
        int round = Column(MetricsCsv.Column("round")), accuracy = Column(MetricsCsv.Column("test_accuracy")), upload = Column(MetricsCsv.Column("upload_bytes")),
            flops = Column(MetricsCsv.Column("train_flops"));
        int denseWeights = Array.IndexOf(header, MetricsCsv.Column("test_accuracy_dense_weights")), validation = Array.IndexOf(header, MetricsCsv.Column("val_accuracy")),
            validationLoss = Array.IndexOf(header, MetricsCsv.Column("val_loss"));
        var c = CultureInfo.InvariantCulture;
        double? Optional(string[] f, int column) => column >= 0 && double.TryParse(f[column], NumberStyles.Float, c, out double value) ? value : null;
        var rows = new List<RoundRow>();
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            if (f.Length != header.Length || !int.TryParse(f[round], NumberStyles.Integer, c, out int r)
                || !long.TryParse(f[upload], NumberStyles.Integer, c, out long u) || !double.TryParse(f[flops], NumberStyles.Float, c, out double fl))
            {
                throw new InvalidDataException($"{metrics}: line {i + 1} is not a metrics row");
            }
            rows.Add(new RoundRow(r, Optional(f, accuracy), u, fl)
            {
                TestAccuracyDenseWeights = Optional(f, denseWeights),
                ValidationAccuracy = Optional(f, validation),
                ValidationLoss = Optional(f, validationLoss),
            });
        }
        var layers = ReadLayers(Path.Combine(directory, "layers.csv"));
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
        return new RunRecord(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))), rows, summary) { Layers = layers };
    }

    /// <summary>The rows of a layers.csv (round, layer, nonzero_ratio and, in newer runs, mask_stability; empty cells are absent values); none when the file is missing.</summary>
    private static List<LayerRow> ReadLayers(string path)
    {
        var rows = new List<LayerRow>();
        if (!File.Exists(path))
        {
            return rows;
        }
        var lines = File.ReadAllLines(path);
        var header = lines.FirstOrDefault()?.Split(',') ?? [];
        int Column(string name) => Array.IndexOf(header, name) is int i and >= 0 ? i : throw new InvalidDataException($"{path}: no '{name}' column");
        int round = Column(LayersCsv.Column("round")), layer = Column(LayersCsv.Column("layer")), ratio = Column(LayersCsv.Column("nonzero_ratio")),
            stability = Array.IndexOf(header, LayersCsv.Column("mask_stability"));
        var c = CultureInfo.InvariantCulture;
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            if (f.Length != header.Length || !int.TryParse(f[round], NumberStyles.Integer, c, out int r)
                || !TryOptional(f[ratio], out double? nonZero) || !TryOptional(stability >= 0 ? f[stability] : string.Empty, out double? stable))
            {
                throw new InvalidDataException($"{path}: line {i + 1} is not a layers row");
            }
            rows.Add(new LayerRow(r, f[layer], nonZero, stable));
        }
        return rows;

        bool TryOptional(string text, out double? value)
        {
            value = null;
            if (text.Length == 0)
            {
                return true;
            }
            bool parsed = double.TryParse(text, NumberStyles.Float, c, out double v);
            value = v;
            return parsed;
        }
    }
}

/// <summary>
/// A self-contained HTML report (inline SVG, no external files or scripts) of one or more runs: test
/// accuracy, cumulative upload and cumulative training FLOPs against the round, one line per run;
/// the paper's analyses where the runs have them (test accuracy with the top-K weights against all
/// weights, the clients' validation accuracy, and per sparse layer the non-zero ratio after
/// aggregation and the mask stability); and a summary table.
/// </summary>
public static class RunReport
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

    /// <summary>One line of a chart: its legend, points, colour (index into the palette) and whether it is dashed.</summary>
    private sealed record Series(string Name, IReadOnlyList<(double X, double Y)> Points, int Color, bool Dashed = false);

    /// <summary>The report's HTML.</summary>
    public static string Html(IReadOnlyList<RunRecord> runs, string title)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>").Append(Escape(title)).Append("</title>\n<style>")
            .Append("body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}")
            .Append("table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}")
            .Append("td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fff;border:1px solid #ddd}")
            .Append("</style></head><body>\n<h1>").Append(Escape(title)).Append("</h1>\n<div class=\"charts\">\n");
        html.Append(Chart("Test accuracy", "round", "accuracy", PerRun(runs, r => r.Rounds.Where(x => x.TestAccuracy is not null).Select(x => (x.Round * 1.0, x.TestAccuracy!.Value)))));
        html.Append(Chart("Cumulative upload", "round", "MB", PerRun(runs, r => Cumulative(r.Rounds, x => x.UploadBytes / 1e6))));
        html.Append(Chart("Cumulative training compute", "round", "GFLOP", PerRun(runs, r => Cumulative(r.Rounds, x => x.TrainFlops / 1e9))));
        html.Append("</div>\n");
        // The analyses span the runs' rounds even where they have fewer points (mask records).
        int lastRound = runs.SelectMany(r => r.Rounds).Select(x => x.Round).DefaultIfEmpty(1).Max();
        var analyses = new StringBuilder();
        analyses.Append(Chart("Test accuracy: top-K (solid), all weights (dashed)", "round", "accuracy", DenseVsSparse(runs), optional: true, lastRound));
        analyses.Append(Chart("Validation accuracy of the round's clients", "round", "accuracy",
            PerRun(runs, r => r.Rounds.Where(x => x.ValidationAccuracy is not null).Select(x => (x.Round * 1.0, x.ValidationAccuracy!.Value))), optional: true, lastRound));
        analyses.Append(Chart("Non-zero ratio after aggregation", "round", "non-zero entries / layer size", PerLayer(runs, l => l.NonZeroRatio), optional: true, lastRound));
        analyses.Append(Chart("Mask stability since the previous record", "round", "share of top-K positions unchanged", PerLayer(runs, l => l.MaskStability), optional: true, lastRound));
        if (analyses.Length > 0)
        {
            html.Append("<h2>Analyses</h2>\n<div class=\"charts\">\n").Append(analyses).Append("</div>\n");
        }
        html.Append("<h2>Summary</h2>\n<table><tr><th>run</th><th>strategy</th><th>sparsity</th><th>r_mask</th><th>rounds</th><th>final test accuracy</th><th>with all weights</th>")
            .Append("<th>validation accuracy</th><th>uplink MB</th><th>of dense</th><th>training GFLOP</th><th>failed clients</th><th>seconds</th></tr>\n");
        foreach (var run in runs)
        {
            string Get(string key) => run.Summary.TryGetValue(RunSummary.Field(key), out var v) ? v : "";
            string Number(string key, double scale, string format) =>
                double.TryParse(Get(key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? (v * scale).ToString(format, CultureInfo.InvariantCulture) : "-";
            html.Append("<tr><td>").Append(Escape(run.Name)).Append("</td><td>").Append(Escape(Get("strategy"))).Append("</td><td>").Append(Escape(Get("sparsity")))
                .Append("</td><td>").Append(Escape(Get("mask_ratio"))).Append("</td><td>").Append(run.Rounds.Count).Append("</td><td>").Append(Number("final_test_accuracy", 1, "F4"))
                .Append("</td><td>").Append(Number("final_test_accuracy_dense_weights", 1, "F4")).Append("</td><td>").Append(Number("final_val_accuracy", 1, "F4"))
                .Append("</td><td>").Append(Number("uplink_bytes_total", 1e-6, "F1")).Append("</td><td>").Append(Number("uplink_fraction_of_dense", 100, "F1")).Append(" %")
                .Append("</td><td>").Append(Number("train_flops_total", 1e-9, "F1")).Append("</td><td>").Append(Escape(Get("failed_clients")))
                .Append("</td><td>").Append(Number("wall_seconds", 1, "F1")).Append("</td></tr>\n");
        }
        html.Append("</table>\n</body></html>\n");
        return html.ToString();
    }

    /// <summary>One line per run, named by the run, in the run's colour.</summary>
    private static List<Series> PerRun(IReadOnlyList<RunRecord> runs, Func<RunRecord, IEnumerable<(double X, double Y)>> points) =>
        runs.Select((r, i) => new Series(r.Name, points(r).ToList(), i)).ToList();

    /// <summary>Per run that has both: its top-K test accuracy solid and its all-weights accuracy dashed, in the run's colour.</summary>
    private static List<Series> DenseVsSparse(IReadOnlyList<RunRecord> runs)
    {
        var series = new List<Series>();
        for (int i = 0; i < runs.Count; i++)
        {
            var rows = runs[i].Rounds.Where(x => x.TestAccuracy is not null && x.TestAccuracyDenseWeights is not null).ToList();
            if (rows.Count == 0)
            {
                continue;
            }
            series.Add(new Series($"{runs[i].Name}: top-K weights", rows.Select(x => (x.Round * 1.0, x.TestAccuracy!.Value)).ToList(), i));
            series.Add(new Series($"{runs[i].Name}: all weights", rows.Select(x => (x.Round * 1.0, x.TestAccuracyDenseWeights!.Value)).ToList(), i, Dashed: true));
        }
        return series;
    }

    /// <summary>One line per (run, sparse layer) with values, named by the layer (and the run when there are several), a colour per layer, dashed from the second run on.</summary>
    private static List<Series> PerLayer(IReadOnlyList<RunRecord> runs, Func<LayerRow, double?> value)
    {
        var series = new List<Series>();
        for (int i = 0; i < runs.Count; i++)
        {
            var layers = runs[i].Layers.Where(l => value(l) is not null).GroupBy(l => l.Layer).ToList();
            for (int j = 0; j < layers.Count; j++)
            {
                string name = runs.Count == 1 ? layers[j].Key : $"{runs[i].Name}: {layers[j].Key}";
                series.Add(new Series(name, layers[j].Select(l => (l.Round * 1.0, value(l)!.Value)).ToList(), j, Dashed: i % 2 == 1));
            }
        }
        return series;
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

    /// <summary>
    /// One SVG line chart, 420 x 280, with axes, ticks and a legend; the x axis reaches at least
    /// <paramref name="xMaxAtLeast"/>. An <paramref name="optional"/> chart (an analysis not every
    /// run has) is left out, as empty text, when no line has a point.
    /// </summary>
    private static string Chart(string title, string xLabel, string yLabel, IReadOnlyList<Series> lines, bool optional = false, double xMaxAtLeast = 1)
    {
        const double width = 420, height = 280, left = 58, right = 12, top = 28, bottom = 44;
        var all = lines.SelectMany(l => l.Points).ToList();
        if (optional && all.Count == 0)
        {
            return string.Empty;
        }
        double xMax = Math.Max(xMaxAtLeast, all.Count > 0 ? all.Max(p => p.X) : 1), yMax = all.Count > 0 ? all.Max(p => p.Y) : 1;
        double xMin = Math.Min(1, xMax), yMin = 0;
        var xTicks = Ticks(xMin, xMax, wholeNumbers: true);
        var yTicks = Ticks(yMin, yMax);
        xMax = Math.Max(xMax, xTicks[^1]);
        yMax = Math.Max(yMax, yTicks[^1]);
        double X(double x) => left + (x - xMin) / Math.Max(1e-12, xMax - xMin) * (width - left - right);
        double Y(double y) => height - bottom - (y - yMin) / Math.Max(1e-12, yMax - yMin) * (height - top - bottom);
        var c = CultureInfo.InvariantCulture;
        var svg = new StringBuilder();
        svg.Append(c, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height + 18 * lines.Count}\" role=\"img\" aria-label=\"{Escape(title)}\">");
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
            var line = lines[i];
            string color = Colors[line.Color % Colors.Length];
            string dash = line.Dashed ? " stroke-dasharray=\"6 4\"" : string.Empty;
            if (line.Points.Count > 0)
            {
                svg.Append("<polyline fill=\"none\" stroke-width=\"2\"").Append(dash).Append(" stroke=\"").Append(color).Append("\" points=\"")
                    .AppendJoin(' ', line.Points.Select(p => string.Create(c, $"{X(p.X):F1},{Y(p.Y):F1}"))).Append("\"/>");
                foreach (var p in line.Points.Count <= 40 ? line.Points : [])
                {
                    svg.Append(c, $"<circle cx=\"{X(p.X):F1}\" cy=\"{Y(p.Y):F1}\" r=\"2.5\" fill=\"{color}\"/>");
                }
            }
            double ly = height + 12 + 18 * i;
            svg.Append(c, $"<line x1=\"{left}\" x2=\"{left + 22}\" y1=\"{ly - 4}\" y2=\"{ly - 4}\" stroke=\"{color}\" stroke-width=\"3\"{dash}/><text x=\"{left + 28}\" y=\"{ly}\" font-size=\"12\">{Escape(line.Name)}</text>");
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
