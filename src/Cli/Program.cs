using CommandLine;
using CommandLine.Text;
using ZeroFL.Cli.Commands;

namespace ZeroFL.Cli;

/// <summary>
/// Entry point of <c>zerofl</c>. Exit codes: 0 success, 1 runtime failure (one line on stderr),
/// 2 bad command line (one line on stderr; <c>--help</c> shows every option).
/// </summary>
public static class Program
{
    /// <summary>Exit code for a bad command line.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code for a failure while running.</summary>
    public const int RuntimeError = 1;

    /// <summary>Parses <paramref name="args"/> and runs the verb.</summary>
    public static int Main(string[] args)
    {
        using var parser = NewParser();
        var result = parser.ParseArguments<RunOptions, SweepOptions, TrainOptions, ProfileOptions, DevicesOptions, DataVerbOptions, ReportOptions, SiloOptions>(args);
        return result.MapResult(
            (DevicesOptions o) => Run(() => DevicesCommand.Run(o)),
            (SweepOptions o) => Run(() => { o.Arguments = args; return SweepCommand.Run(o); }),  // before run: a sweep's options are run options too
            (RunOptions o) => Run(() => { o.Arguments = args; return RunCommand.Run(o); }),
            (TrainOptions o) => Run(() => TrainCommand.Run(o)),
            (ProfileOptions o) => Run(() => ProfileCommand.Run(o)),
            (DataVerbOptions o) => Run(() => DataCommand.Run(o)),
            (ReportOptions o) => Run(() => ReportCommand.Run(o)),
            (SiloOptions o) => Run(() => SiloCommand.Run(o)),
            errors => ReportParseErrors(result, errors));
    }

    /// <summary>Parses a saved <c>run</c> command line (a checkpoint's) into options; a usage error if it no longer parses.</summary>
    public static RunOptions ParseRunArguments(IReadOnlyList<string> args)
    {
        using var parser = NewParser();
        return parser.ParseArguments<RunOptions>(args.SkipWhile(a => a == "run")).MapResult(
            o => o,
            _ => throw new UsageException($"the saved command line '{string.Join(' ', args)}' does not parse as 'zerofl run' options"));
    }

    private static Parser NewParser() => new(settings =>
    {
        settings.HelpWriter = null;
        settings.CaseInsensitiveEnumValues = true;
        settings.AutoVersion = false;
    });

    /// <summary>Runs a verb, turning any exception into one line on stderr.</summary>
    public static int Run(Func<int> verb)
    {
        try
        {
            return verb();
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"zerofl: {e.Message}");
            return UsageError;
        }
        catch (InsufficientMemoryException e)
        {
            Console.Error.WriteLine($"zerofl: {OneLine(e)}"); // already names the sizes and what to reduce
            return RuntimeError;
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            long managed = GC.GetTotalMemory(forceFullCollection: false);
            Console.Error.WriteLine($"zerofl: out of memory ({OneLine(e)}; host heap {managed / 1e6:F0} MB): try a smaller --batch-size, a smaller model, fewer clients per round or --device cpu");
            return RuntimeError;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"zerofl: {OneLine(e)}");
            if (Environment.GetEnvironmentVariable(TraceVariable) == "1")
            {
                Console.Error.WriteLine(e);
            }
            return RuntimeError;
        }
    }

    /// <summary>With this environment variable at 1, a runtime failure also prints the whole exception (for bug reports).</summary>
    public const string TraceVariable = "ZEROFL_TRACE";

    /// <summary>True for host and device out-of-memory errors (ILGPU reports CUDA's as an exception whose message says so).</summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
        || e.Message.Contains("OUT_OF_MEMORY", StringComparison.Ordinal) || (e.InnerException is { } inner && IsOutOfMemory(inner));

    private static int ReportParseErrors<T>(ParserResult<T> result, IEnumerable<Error> errors)
    {
        var list = errors.ToList();
        if (list.Any(e => e.Tag is ErrorType.HelpRequestedError or ErrorType.HelpVerbRequestedError or ErrorType.VersionRequestedError))
        {
            Console.Out.WriteLine(HelpText.AutoBuild(result, h =>
            {
                h.Heading = "zerofl - sparse, communication-efficient federated learning (ZeroFL)";
                h.Copyright = string.Empty;
                h.AddDashesToOption = true;
                h.MaximumDisplayWidth = 110;
                return h;
            }, e => e));
            return 0;
        }
        if (list.Any(e => e.Tag == ErrorType.NoVerbSelectedError))
        {
            Console.Error.WriteLine("zerofl: no verb given; try 'zerofl --help' (verbs: run, sweep, train, profile, devices, data, report, silo)");
            return UsageError;
        }
        var sentence = SentenceBuilder.Create();
        Console.Error.WriteLine($"zerofl: {sentence.FormatError(list[0])} (see 'zerofl {VerbOf(result)}--help')");
        return UsageError;
    }

    private static string VerbOf<T>(ParserResult<T> result) =>
        result.TypeInfo.Current.GetCustomAttributes(typeof(VerbAttribute), false).FirstOrDefault() is VerbAttribute verb ? verb.Name + " " : string.Empty;

    private static string OneLine(Exception e)
    {
        var inner = e is AggregateException { InnerException: not null } a ? a.InnerException! : e;
        var message = inner is ILGPU.Runtime.OpenCL.CLException cl ? $"OpenCL error {cl.Error}" : inner.Message;
        return message.ReplaceLineEndings(" ");
    }
}

/// <summary>A bad option value found after parsing (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);
