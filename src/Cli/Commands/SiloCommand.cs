using System.Runtime.InteropServices;
using CommandLine;
using ZeroFL.Cluster;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl silo</c>: one worker silo of a ZeroFL cluster.</summary>
[Verb("silo", HelpText = "Start a worker silo of a ZeroFL cluster (Orleans): it trains the clients that a coordinator ('zerofl run --cluster HOST:PORT') sends it, on its device, with its own copy of the training set. Runs until stopped (Ctrl-C, SIGTERM).")]
public sealed class SiloOptions : DeviceOptions
{
    /// <summary>Where the data sets are.</summary>
    [Option("data-dir", HelpText = "Directory with the training data (default: each data set's default place); the coordinator checks that it holds the same training set.")]
    public string? DataDir { get; set; }

    /// <summary>The one data set served.</summary>
    [Option("dataset", HelpText = "Serve only this data set (a coordinator asking for another is refused); default: whatever the coordinator asks for.")]
    public string? Dataset { get; set; }

    /// <summary>Own address.</summary>
    [Option("listen", Required = true, HelpText = "HOST:PORT this silo listens on: PORT for other silos, PORT + 1 for the coordinator.")]
    public string Listen { get; set; } = string.Empty;

    /// <summary>The primary silo.</summary>
    [Option("join", HelpText = "HOST:PORT of the cluster's primary silo (the one started without --join); without it this silo is the primary.")]
    public string? Join { get; set; }

    /// <summary>Seconds to wait for the silo to start (joining the primary included).</summary>
    [Option("start-timeout", Default = 60, HelpText = "Seconds to wait for the silo to start and join the cluster before giving up.")]
    public int StartTimeout { get; set; } = 60;
}

/// <summary>A worker silo, and how any silo turns a run's command line into its options and data.</summary>
public static class SiloCommand
{
    /// <summary>Starts the silo and serves until stopped.</summary>
    public static int Run(SiloOptions o)
    {
        ClusterEndpoint listen, join;
        try
        {
            listen = ClusterEndpoint.Parse(o.Listen, "--listen");
            join = o.Join is null ? listen : ClusterEndpoint.Parse(o.Join, "--join");
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        if (o.Dataset is not null && !ZeroFL.Data.DatasetCatalog.Names.Contains(o.Dataset))
        {
            throw new UsageException($"unknown --dataset '{o.Dataset}' (expected one of: {string.Join(", ", ZeroFL.Data.DatasetCatalog.Names)})");
        }
        if (o.StartTimeout < 1)
        {
            throw new UsageException($"--start-timeout must be at least 1, got {o.StartTimeout}");
        }
        var device = TrainCommand.ParseDevice(o.Device);
        var settings = new WorkerSettings(listen.ToString(), device, o.DataDir, o.Dataset, Setup);
        using var host = WorkerSilo.Build(settings, listen.Address, listen.Port, listen.Port + 1, o.Join is null ? null : join.Silo);
        string what = o.Join is null ? $"silo {listen}" : $"silo {listen} joining the primary silo {join}";
        WorkerSilo.StartAsync(host, TimeSpan.FromSeconds(o.StartTimeout), what).GetAwaiter().GetResult();
        var service = (WorkerService)host.Services.GetService(typeof(WorkerService))!;
        Console.WriteLine($"silo {listen} ready: device {service.Device}; coordinators connect to {listen} (gateway port {listen.Port + 1}); {(o.Join is null ? "primary silo" : $"joined {join}")}");
        Console.Out.Flush();
        using var stop = new ManualResetEventSlim();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Set();
        });
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Set();
        };
        stop.Wait();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            host.StopAsync(cancel.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // stopped ungracefully after the bound
        }
        Console.WriteLine($"silo {listen} stopped");
        return 0;
    }

    /// <summary>
    /// The worker side of a run: its command line parsed as the coordinator parsed it (preset
    /// included), with the silo's own data directory, into options and the training set.
    /// </summary>
    public static WorkerRun Setup(IReadOnlyList<string> arguments, string? dataDirectory)
    {
        var o = Program.ParseRunArguments(arguments);
        o.Arguments = arguments;
        if (o.Preset is not null)
        {
            Presets.Apply(Presets.Find(o.Preset), o, o.Arguments);
        }
        o.DataDir = dataDirectory;
        var (options, split) = RunSetup.OptionsAndData(o);
        return new WorkerRun(options, split.Train);
    }
}
