using System.Globalization;
using ZeroFL.Cli.Recording;
using ZeroFL.Federation.Simulation;

namespace ZeroFL.Cli.Commands;

/// <summary>
/// A run's checkpoints from the CLI's side: <c>--resume DIR</c> reads the killed run's command line
/// and state, restores the server from its last good checkpoint and cuts its files back to it; a
/// running run saves a checkpoint every <c>--checkpoint-every</c> rounds.
/// </summary>
public static class RunResume
{
    /// <summary>The options the run in <paramref name="directory"/> was started with (writing into it again) and its checkpoint's state.</summary>
    public static (RunOptions Options, CheckpointState State) Read(string directory)
    {
        CheckpointState state;
        try
        {
            state = RunCheckpoint.ReadState(directory);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidOperationException($"--resume {directory}: {e.Message}");
        }
        var o = Program.ParseRunArguments(state.Arguments);
        o.Arguments = state.Arguments;
        o.Out = directory;
        return (o, state);
    }

    /// <summary>
    /// Loads the last good checkpoint of <paramref name="directory"/> into <paramref name="server"/>
    /// (global model, server optimizer state, mask record) and drops the rows of later rounds from
    /// its metrics.csv and layers.csv (the killed process computed them; they are run again).
    /// Returns the checkpoint's state: its round and the totals so far.
    /// </summary>
    public static CheckpointState Restore(string directory, FederatedServer server, TextWriter warnings)
    {
        var (state, values, serverState) = RunCheckpoint.Load(directory, server.Global.Store, server.ServerOptimizer is not null, warning => warnings.WriteLine($"zerofl: warning: {warning}"));
        server.Global.Store.Upload(values);
        if (serverState is not null)
        {
            server.ServerOptimizer!.Upload(serverState);
        }
        state.Totals.Analyses ??= new RunAnalyses();
        if (server.RestoreMaskRecord(state.Totals.Analyses.MaskRecord, state.Round) is { } problem)
        {
            warnings.WriteLine($"zerofl: warning: {problem}");
        }
        KeepRowsUpTo(RunRecorder.MetricsPath(directory), state.Round);
        KeepRowsUpTo(RunRecorder.LayersPath(directory), state.Round);
        return state;
    }

    /// <summary>Writes the checkpoint after <paramref name="round"/>: the server's model, optimizer state and mask record, the run's <paramref name="arguments"/> (without --resume) and <paramref name="totals"/>.</summary>
    public static void Save(string directory, FederatedServer server, int round, IReadOnlyList<string> arguments, RunTotals totals)
    {
        totals.Analyses.MaskRecord = server.SaveMaskRecord();
        RunCheckpoint.Save(directory, server.Global.Store, server.Global.Store.Download(), round, ArgumentsWithout(arguments, "--resume"), totals, server.ServerOptimizer?.Download());
    }

    /// <summary>Drops the data rows of a CSV file whose first column (the round) is above <paramref name="round"/>.</summary>
    private static void KeepRowsUpTo(string path, int round)
    {
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{path}: missing; the run directory does not belong to this checkpoint");
        }
        var lines = File.ReadAllLines(path);
        var kept = lines.Take(1).Concat(lines.Skip(1).Where(l =>
            int.TryParse(l.Split(',')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int r) && r <= round));
        RunFiles.WriteAtomically(path, string.Concat(kept.Select(l => l + "\n")));
    }

    /// <summary><paramref name="arguments"/> without <paramref name="option"/> and its value.</summary>
    private static string[] ArgumentsWithout(IReadOnlyList<string> arguments, string option)
    {
        var kept = new List<string>();
        for (int i = 0; i < arguments.Count; i++)
        {
            if (arguments[i] == option)
            {
                i++;
                continue;
            }
            if (!arguments[i].StartsWith(option + "=", StringComparison.Ordinal))
            {
                kept.Add(arguments[i]);
            }
        }
        return [.. kept];
    }
}
