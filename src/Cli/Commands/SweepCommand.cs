using System.Globalization;
using System.Text;
using System.Text.Json;
using CommandLine;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl sweep</c>: every run option, plus the grid.</summary>
[Verb("sweep", HelpText = "Run a grid of federated runs (strategies x mask ratios x sparsities x alphas, plus the dense-upload SWAT baseline) and write table.md / table.csv like the paper's Table 1. Finished cells are skipped.")]
public sealed class SweepOptions : RunOptions
{
    /// <summary>Strategies.</summary>
    [Option("strategies", Default = "topk-weights,diff-on-topk,topk-diff", HelpText = "Comma list of sparse-upload strategies.")]
    public string Strategies { get; set; } = "topk-weights,diff-on-topk,topk-diff";

    /// <summary>Mask ratios.</summary>
    [Option("mask-ratios", Default = "0,0.1,0.2", HelpText = "Comma list of r_mask values.")]
    public string MaskRatios { get; set; } = "0,0.1,0.2";

    /// <summary>Sparsities.</summary>
    [Option("sparsities", Default = "0.9,0.95", HelpText = "Comma list of SWAT sparsities.")]
    public string Sparsities { get; set; } = "0.9,0.95";

    /// <summary>Alphas.</summary>
    [Option("alphas", Default = "1", HelpText = "Comma list of LDA alphas (ignored with --partition iid or natural).")]
    public string Alphas { get; set; } = "1";
}

/// <summary>One cell of the grid and, once run, its result.</summary>
/// <param name="Directory">The cell's run directory (its name is the cell's key).</param>
/// <param name="Strategy">Uplink strategy ("swat" is the dense-upload baseline).</param>
/// <param name="MaskRatio">r_mask (0 for the baseline).</param>
/// <param name="Sparsity">SWAT sparsity.</param>
/// <param name="Alpha">LDA alpha.</param>
public sealed record SweepCell(string Directory, string Strategy, double MaskRatio, double Sparsity, double Alpha);

/// <summary>What a finished cell's summary.json says.</summary>
/// <param name="Accuracy">Final test accuracy.</param>
/// <param name="UploadMegabytesPerClientRound">Mean upload per client per round, in MB (10^6 B).</param>
/// <param name="DenseMegabytesPerClientRound">The dense upload of the same model, in MB.</param>
public sealed record SweepResult(double? Accuracy, double UploadMegabytesPerClientRound, double DenseMegabytesPerClientRound);

/// <summary>The sweep: runs each missing cell through <see cref="RunCommand"/>, then writes the tables.</summary>
public static class SweepCommand
{
    /// <summary>Runs the grid and writes DIR/table.md and DIR/table.csv.</summary>
    public static int Run(SweepOptions o)
    {
        if (o.Preset is not null)
        {
            Presets.Apply(Presets.Find(o.Preset), o, o.Arguments);
            o.Preset = null;
        }
        string outDir = o.Out ?? throw new UsageException("sweep needs --out DIR (finished cells there are skipped on a rerun)");
        var cells = Cells(o, outDir);
        foreach (var cell in cells)
        {
            RunSetup.BuildOptions(CellOptions(o, cell)); // every cell's options are valid before the first runs
        }
        Directory.CreateDirectory(outDir);
        var progress = new ProgressPrinter(o.Quiet || o.Json);
        for (int i = 0; i < cells.Count; i++)
        {
            var cell = cells[i];
            string name = Path.GetFileName(cell.Directory);
            if (File.Exists(Path.Combine(cell.Directory, "summary.json")))
            {
                progress.Line($"sweep cell {i + 1}/{cells.Count} {name}: done already, skipped");
                continue;
            }
            progress.Line($"sweep cell {i + 1}/{cells.Count} {name}");
            int code = RunCommand.Run(CellOptions(o, cell));
            if (code != 0)
            {
                return code;
            }
        }
        var results = cells.ToDictionary(c => c, c => ReadResult(Path.Combine(c.Directory, "summary.json")));
        RunFiles.WriteAtomically(Path.Combine(outDir, "table.csv"), Csv(cells, results));
        RunFiles.WriteAtomically(Path.Combine(outDir, "table.md"), Markdown(o, cells, results));
        ReportCommand.Write(cells.Select(c => Reports.RunRecord.Read(c.Directory)).ToList(), Path.Combine(outDir, "report.html"), $"ZeroFL sweep: {o.Model} on {o.Dataset}");
        Console.WriteLine($"sweep: {cells.Count} cells; tables in {Path.Combine(outDir, "table.md")} and table.csv, report.html");
        return 0;
    }

    /// <summary>The grid: per (alpha, sparsity) the dense-upload baseline, then every strategy x mask ratio.</summary>
    public static List<SweepCell> Cells(SweepOptions o, string outDir)
    {
        var strategies = Split(o.Strategies, "--strategies", s => s);
        var maskRatios = Split(o.MaskRatios, "--mask-ratios", ParseNumber);
        var sparsities = Split(o.Sparsities, "--sparsities", ParseNumber);
        var alphas = o.Partition == Federation.Simulation.PartitionScheme.Lda ? Split(o.Alphas, "--alphas", ParseNumber) : [o.Alpha];
        var cells = new List<SweepCell>();
        foreach (double alpha in alphas)
        {
            foreach (double sparsity in sparsities)
            {
                string Key(string strategy, double r) => string.Create(CultureInfo.InvariantCulture, $"alpha{alpha:G}-sp{sparsity:G}-{strategy}-r{r:G}");
                cells.Add(new SweepCell(Path.Combine(outDir, Key("swat", 0)), "swat", 0, sparsity, alpha));
                foreach (var strategy in strategies)
                {
                    foreach (double r in maskRatios)
                    {
                        cells.Add(new SweepCell(Path.Combine(outDir, Key(strategy, r)), strategy, r, sparsity, alpha));
                    }
                }
            }
        }
        return cells;
    }

    private static RunOptions CellOptions(SweepOptions o, SweepCell cell)
    {
        var copy = o.MemberwiseCopy();
        copy.Strategy = cell.Strategy;
        copy.MaskRatio = cell.MaskRatio;
        copy.Sparsity = cell.Sparsity;
        copy.Alpha = cell.Alpha;
        copy.Out = cell.Directory;
        copy.Preset = null;
        copy.WritesCheckpoints = false;
        return copy;
    }

    /// <summary>Reads a finished cell's summary.json; a damaged one is a one-line error naming the file.</summary>
    public static SweepResult ReadResult(string summaryPath)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(summaryPath));
            var root = document.RootElement;
            double? accuracy = root.GetProperty("final_test_accuracy").ValueKind == JsonValueKind.Number ? root.GetProperty("final_test_accuracy").GetDouble() : null;
            double clientRounds = root.GetProperty("rounds").GetDouble() * root.GetProperty("clients_per_round").GetDouble();
            double upload = root.GetProperty("uplink_bytes_total").GetDouble() / clientRounds / 1e6;
            double dense = root.GetProperty("dense_upload_bytes_per_client").GetDouble() / 1e6;
            return new SweepResult(accuracy, upload, dense);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or IOException)
        {
            throw new InvalidOperationException($"{summaryPath}: not a usable run summary ({e.Message.ReplaceLineEndings(" ")}); delete the cell's directory to rerun it");
        }
    }

    private static string Csv(List<SweepCell> cells, Dictionary<SweepCell, SweepResult> results)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder("alpha,sparsity,strategy,mask_ratio,test_accuracy,upload_mb_per_client_round,dense_upload_mb,saving_factor\n");
        foreach (var cell in cells)
        {
            var r = results[cell];
            text.AppendLine(string.Join(',', cell.Alpha.ToString("G", c), cell.Sparsity.ToString("G", c), cell.Strategy, cell.MaskRatio.ToString("G", c),
                r.Accuracy?.ToString("G6", c) ?? string.Empty, r.UploadMegabytesPerClientRound.ToString("G6", c),
                r.DenseMegabytesPerClientRound.ToString("G6", c), (r.DenseMegabytesPerClientRound / r.UploadMegabytesPerClientRound).ToString("G4", c)));
        }
        return text.ToString();
    }

    private static string Markdown(SweepOptions o, List<SweepCell> cells, Dictionary<SweepCell, SweepResult> results)
    {
        var c = CultureInfo.InvariantCulture;
        var columns = cells.Select(x => (x.Sparsity, x.Alpha)).Distinct().ToList();
        var rows = cells.Select(x => (x.Strategy, x.MaskRatio)).Distinct().ToList();
        var text = new StringBuilder();
        text.AppendLine(string.Create(c, $"# ZeroFL sweep: {o.Model} on {o.Dataset}, {o.Rounds} rounds, {o.Clients} clients ({o.Partition})"));
        text.AppendLine();
        text.AppendLine("Test accuracy (%) after the last round, and upload per client per round in MB with the saving factor against the dense upload. `swat` is SWAT training with a dense upload.");
        text.AppendLine();
        text.Append("| strategy | r_mask |");
        foreach (var (sparsity, alpha) in columns)
        {
            text.Append(string.Create(c, $" acc sp {sparsity:G} alpha {alpha:G} | MB (x) sp {sparsity:G} alpha {alpha:G} |"));
        }
        text.AppendLine();
        text.AppendLine("|---|---|" + string.Concat(Enumerable.Repeat("---|---|", columns.Count)));
        foreach (var (strategy, r) in rows)
        {
            text.Append(string.Create(c, $"| {strategy} | {(strategy == "swat" ? "-" : r.ToString("G", c))} |"));
            foreach (var (sparsity, alpha) in columns)
            {
                var cell = cells.First(x => x.Strategy == strategy && x.MaskRatio == r && x.Sparsity == sparsity && x.Alpha == alpha);
                var result = results[cell];
                string accuracy = result.Accuracy is double a ? (100 * a).ToString("F2", c) : "-";
                text.Append(string.Create(c, $" {accuracy} | {result.UploadMegabytesPerClientRound:F2} ({result.DenseMegabytesPerClientRound / result.UploadMegabytesPerClientRound:F1}x) |"));
            }
            text.AppendLine();
        }
        return text.ToString();
    }

    private static List<T> Split<T>(string list, string option, Func<string, T> parse)
    {
        var items = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0)
        {
            throw new UsageException($"{option} needs at least one value");
        }
        try
        {
            return items.Select(parse).ToList();
        }
        catch (FormatException)
        {
            throw new UsageException($"{option}: '{list}' is not a comma list of numbers");
        }
    }

    private static double ParseNumber(string text) => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
}
