using CommandLine;
using ZeroFL.Data;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl data speech-demo</c>.</summary>
[Verb("data", HelpText = "Make a data set: 'data speech-demo --out DIR' speaks the Speech Commands words with espeak-ng (each voice, speed and pitch a speaker) in the v0.02 layout.")]
public sealed class DataVerbOptions
{
    /// <summary>What to make.</summary>
    [Value(0, MetaName = "what", Required = true, HelpText = "speech-demo")]
    public string What { get; set; } = string.Empty;

    /// <summary>Output directory.</summary>
    [Option("out", Required = true, HelpText = "Directory to write (then: run --dataset speech-commands --data-dir DIR).")]
    public string Out { get; set; } = string.Empty;

    /// <summary>Speakers.</summary>
    [Option("speakers", Default = 40, HelpText = "Number of synthetic speakers (voice x speed x pitch combinations).")]
    public int Speakers { get; set; } = 40;

    /// <summary>Seed.</summary>
    [Option("seed", Default = 1, HelpText = "Seed of the speaker choice, the held-out speakers and the noise.")]
    public int Seed { get; set; } = 1;
}

/// <summary>Writes generated data sets.</summary>
public static class DataCommand
{
    /// <summary>Writes the demo set and prints what was written.</summary>
    public static int Run(DataVerbOptions o)
    {
        if (o.What != "speech-demo")
        {
            throw new UsageException($"unknown data set to make '{o.What}' (expected: speech-demo)");
        }
        if (o.Speakers < 2 || o.Speakers > SpeechDemo.MaxSpeakers)
        {
            throw new UsageException($"--speakers must be in [2, {SpeechDemo.MaxSpeakers}], got {o.Speakers}");
        }
        var summary = SpeechDemo.Write(o.Out, o.Speakers, o.Seed);
        Console.WriteLine($"speech demo: {summary.Clips} clips of {summary.Words.Count} words by {summary.Speakers} speakers ({summary.TestSpeakers} held out for testing), " +
            $"{summary.NoiseFiles} noise files, {summary.Bytes / 1e6:F1} MB in {summary.Directory} ({summary.Elapsed.TotalSeconds:F1} s); " +
            $"train on it with: zerofl run --dataset speech-commands --data-dir {summary.Directory}");
        return 0;
    }
}
