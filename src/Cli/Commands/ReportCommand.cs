using CommandLine;
using ZeroFL.Cli.Reports;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl report</c>.</summary>
[Verb("report", HelpText = "Write a self-contained report.html (inline SVG: test accuracy, cumulative upload MB and training FLOPs vs round, one line per run; summary table) for one or more run directories.")]
public sealed class ReportOptions
{
    /// <summary>Run directories.</summary>
    [Value(0, MetaName = "DIR", Required = true, HelpText = "Run directories (each with metrics.csv and summary.json).")]
    public IEnumerable<string> Directories { get; set; } = [];

    /// <summary>Output file.</summary>
    [Option("out", HelpText = "Where to write the report (default: DIR/report.html for one run, ./report.html for several).")]
    public string? Out { get; set; }

    /// <summary>Title.</summary>
    [Option("title", HelpText = "Report title.")]
    public string? Title { get; set; }
}

/// <summary>Writes the HTML report of runs.</summary>
public static class ReportCommand
{
    /// <summary>Reads the runs and writes the report atomically.</summary>
    public static int Run(ReportOptions o)
    {
        var directories = o.Directories.ToList();
        if (directories.Count == 0)
        {
            throw new UsageException("report needs at least one run directory");
        }
        var runs = new List<RunRecord>();
        foreach (var directory in directories)
        {
            try
            {
                runs.Add(RunRecord.Read(directory));
            }
            catch (InvalidDataException e)
            {
                throw new InvalidOperationException(e.Message);
            }
        }
        string path = o.Out ?? (directories.Count == 1 ? Path.Combine(directories[0], "report.html") : "report.html");
        Write(runs, path, o.Title ?? (runs.Count == 1 ? $"ZeroFL run {runs[0].Name}" : $"ZeroFL: {runs.Count} runs"));
        Console.WriteLine($"report: {runs.Count} run(s) in {path}");
        return 0;
    }

    /// <summary>Writes <paramref name="runs"/>' report to <paramref name="path"/> (temporary file, then rename).</summary>
    public static void Write(IReadOnlyList<RunRecord> runs, string path, string title) =>
        RunFiles.WriteAtomically(path, RunReport.Html(runs, title));
}
