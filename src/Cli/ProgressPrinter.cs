using System.Diagnostics;

namespace ZeroFL.Cli;

/// <summary>
/// Progress output: on a terminal one line rewritten in place, otherwise a plain line at most every
/// few seconds; nothing with <c>--quiet</c>.
/// </summary>
public sealed class ProgressPrinter
{
    private readonly bool quiet;
    private readonly bool terminal = !Console.IsOutputRedirected;
    private readonly Stopwatch sinceLast = Stopwatch.StartNew();
    private bool pending;
    private bool transient;

    /// <summary>Creates the printer.</summary>
    public ProgressPrinter(bool quiet)
    {
        this.quiet = quiet;
    }

    /// <summary>Seconds between plain progress lines when not on a terminal.</summary>
    public double PlainInterval { get; init; } = 5;

    /// <summary>Prints a line that stays.</summary>
    public void Line(string text)
    {
        if (quiet)
        {
            return;
        }
        EndPending();
        Console.WriteLine(text);
    }

    /// <summary>A transient status shown in place on a terminal (at most 5 times a second) and nowhere else; the next line replaces it.</summary>
    public void Live(string text)
    {
        if (quiet || !terminal || sinceLast.Elapsed.TotalSeconds < 0.2)
        {
            return;
        }
        Console.Write("\r" + text.PadRight(Width));
        pending = true;
        transient = true;
        sinceLast.Restart();
    }

    private static int Width => Math.Max(0, Math.Min(Console.BufferWidth - 1, 120));

    /// <summary>Shows a progress update; <paramref name="final"/> forces it out and ends the line.</summary>
    public void Tick(bool final, string text)
    {
        if (quiet)
        {
            return;
        }
        if (terminal)
        {
            if (final || sinceLast.Elapsed.TotalSeconds >= 0.2)
            {
                Console.Write("\r" + text.PadRight(Width));
                pending = true;
                transient = false;
                sinceLast.Restart();
            }
            if (final)
            {
                EndPending();
            }
        }
        else if (final || sinceLast.Elapsed.TotalSeconds >= PlainInterval)
        {
            Console.WriteLine(text);
            sinceLast.Restart();
        }
    }

    private void EndPending()
    {
        if (pending)
        {
            // A transient status is wiped; a progress line that was ticked to its end stays.
            Console.Write(transient ? "\r" + new string(' ', Width) + "\r" : Environment.NewLine);
            pending = false;
        }
    }
}
