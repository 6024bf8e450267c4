using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ZeroFL.Data;

/// <summary>What <see cref="SpeechDemo.Write"/> wrote.</summary>
/// <param name="Directory">The full path of the data set.</param>
/// <param name="Speakers">Speakers (voice, speed, pitch combinations), all of them.</param>
/// <param name="TestSpeakers">Speakers whose clips are listed in <c>testing_list.txt</c>.</param>
/// <param name="ValidationSpeakers">Speakers whose clips are listed in <c>validation_list.txt</c>.</param>
/// <param name="Words">The words spoken: the ten command words, then the unknown words.</param>
/// <param name="Clips">Word clips written (Speakers * Words.Count).</param>
/// <param name="NoiseFiles">Background-noise files written.</param>
/// <param name="Bytes">Total size of the files written.</param>
/// <param name="Elapsed">Wall time of the whole generation.</param>
public sealed record SpeechDemoSummary(
    string Directory, int Speakers, int TestSpeakers, int ValidationSpeakers, IReadOnlyList<string> Words,
    int Clips, int NoiseFiles, long Bytes, TimeSpan Elapsed);

/// <summary>A program the code needs to run is not installed. The message says how to install it.</summary>
public sealed class ExternalToolNotFoundException : Exception
{
    /// <summary>Creates the exception for <paramref name="tool"/> with its one-line message.</summary>
    public ExternalToolNotFoundException(string tool, string message, Exception? inner = null)
        : base(message, inner)
    {
        Tool = tool;
    }

    /// <summary>The program's name, e.g. "espeak-ng".</summary>
    public string Tool { get; }
}

/// <summary>
/// Writes a small real-audio keyword-spotting set in the Speech Commands v0.02 layout (see
/// <see cref="SpeechCommands"/>) with the <c>espeak-ng</c> speech synthesiser
/// (<c>apt-get install espeak-ng</c>). Each speaker is one (voice, speed, pitch) combination whose
/// id is the first 8 hex digits of the SHA-256 of <c>"voice|speed|pitch"</c>; every speaker says
/// every word of <see cref="Words"/> once (<c>&lt;word&gt;/&lt;id&gt;_nohash_0.wav</c>).
/// espeak-ng's 22050 Hz output is resampled to 16 kHz by linear interpolation and the speech
/// (samples above 2% of the peak) is centred in a 1 s clip (cut to its middle second when longer).
/// About 20% of the speakers (at least one when there are two or more) go to <c>testing_list.txt</c>,
/// about 10% (none below ten speakers) to <c>validation_list.txt</c>; <c>_background_noise_/</c>
/// gets 10 s of white and of pink noise. Everything is a fixed function of the speaker count and seed.
/// </summary>
public static class SpeechDemo
{
    /// <summary>The words that are not commands (they become the unknown class).</summary>
    public static IReadOnlyList<string> UnknownWords { get; } = ["bed", "cat", "happy"];

    /// <summary>All words spoken: <see cref="SpeechCommands.CommandWords"/> then <see cref="UnknownWords"/>.</summary>
    public static IReadOnlyList<string> Words { get; } = [.. SpeechCommands.CommandWords, .. UnknownWords];

    private static readonly string[] Voices =
        ["en-us", "en-gb", "en+f3", "en+m3", "en-us+f2", "en-gb-scotland", "en-029", "en+m5", "en-gb-x-rp+f4", "en-us+m7"];

    private static readonly int[] Speeds = [130, 160, 190];

    private static readonly int[] Pitches = [35, 50, 65];

    /// <summary>The most speakers <see cref="Write"/> can make (voices x speeds x pitches).</summary>
    public static int MaxSpeakers => Voices.Length * Speeds.Length * Pitches.Length;

    /// <summary>Whether <c>espeak-ng</c> can be started.</summary>
    public static bool IsEspeakAvailable()
    {
        try
        {
            var (code, _, _) = RunEspeak(["--version"]);
            return code == 0;
        }
        catch (ExternalToolNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Writes the demo set with <paramref name="speakers"/> speakers (1..<see cref="MaxSpeakers"/>)
    /// into <paramref name="outDir"/> (created if needed; existing files of the same names are
    /// replaced). <paramref name="seed"/> picks the speakers' voice/speed/pitch combinations, the
    /// held-out speakers and the noise. Up to four espeak-ng processes run at once. Throws
    /// <see cref="ExternalToolNotFoundException"/> when espeak-ng is not installed.
    /// </summary>
    public static SpeechDemoSummary Write(string outDir, int speakers, int seed)
    {
        ArgumentNullException.ThrowIfNull(outDir);
        if (speakers < 1 || speakers > MaxSpeakers)
        {
            throw new ArgumentOutOfRangeException(nameof(speakers), speakers, $"must be 1..{MaxSpeakers}");
        }
        var clock = Stopwatch.StartNew();
        if (!IsEspeakAvailable())
        {
            throw NotInstalled(null);
        }
        string root = Path.GetFullPath(outDir);
        Directory.CreateDirectory(root);
        string scratch = Path.Combine(root, ".espeak-tmp");
        Directory.CreateDirectory(scratch);

        var random = new Random(seed);
        var combos = (from v in Voices from s in Speeds from p in Pitches select (Voice: v, Speed: s, Pitch: p)).ToArray();
        random.Shuffle(combos);
        var chosen = combos[..speakers];
        var ids = chosen.Select(c => SpeakerId(c.Voice, c.Speed, c.Pitch)).ToArray();

        int testCount = speakers >= 2 ? Math.Max(1, (int)Math.Round(speakers * 0.2)) : 0;
        int validationCount = speakers >= 10 ? (int)Math.Round(speakers * 0.1) : 0;
        var order = Enumerable.Range(0, speakers).ToArray();
        random.Shuffle(order);
        var testSpeakers = order[..testCount].ToHashSet();
        var validationSpeakers = order[testCount..(testCount + validationCount)].ToHashSet();

        foreach (string word in Words)
        {
            Directory.CreateDirectory(Path.Combine(root, word));
        }
        var jobs = (from s in Enumerable.Range(0, speakers) from w in Words select (Speaker: s, Word: w)).ToArray();
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Clamp(Environment.ProcessorCount, 2, 4) };
        Parallel.ForEach(jobs, options, job =>
        {
            var (voice, speed, pitch) = chosen[job.Speaker];
            string name = $"{ids[job.Speaker]}_nohash_0.wav";
            string raw = Path.Combine(scratch, $"{job.Word}_{name}");
            var (code, _, error) = RunEspeak(["-v", voice, "-s", Inv(speed), "-p", Inv(pitch), "-w", raw, job.Word]);
            if (code != 0 || !File.Exists(raw))
            {
                throw new InvalidOperationException(
                    $"espeak-ng -v {voice} -s {speed} -p {pitch} '{job.Word}' failed (exit {code}): {error.Trim()}");
            }
            var (samples, rate) = WavFile.Read(raw);
            File.Delete(raw);
            WavFile.Write(Path.Combine(root, job.Word, name),
                CenterClip(Resample(samples, rate, WavFile.SpeechSampleRate), WavFile.SpeechSampleRate), WavFile.SpeechSampleRate);
        });
        Directory.Delete(scratch, recursive: true);

        var testing = new List<string>();
        var validating = new List<string>();
        foreach (string word in Words)
        {
            for (int s = 0; s < speakers; s++)
            {
                string relative = $"{word}/{ids[s]}_nohash_0.wav";
                if (testSpeakers.Contains(s))
                {
                    testing.Add(relative);
                }
                else if (validationSpeakers.Contains(s))
                {
                    validating.Add(relative);
                }
            }
        }
        File.WriteAllLines(Path.Combine(root, SpeechCommands.TestingListFile), testing);
        File.WriteAllLines(Path.Combine(root, SpeechCommands.ValidationListFile), validating);

        string noiseDir = Path.Combine(root, SpeechCommands.BackgroundNoiseFolder);
        Directory.CreateDirectory(noiseDir);
        var noiseRandom = new Random(unchecked(seed * 31 + 7));
        WavFile.Write(Path.Combine(noiseDir, "white_noise.wav"), WhiteNoise(10 * WavFile.SpeechSampleRate, noiseRandom), WavFile.SpeechSampleRate);
        WavFile.Write(Path.Combine(noiseDir, "pink_noise.wav"), PinkNoise(10 * WavFile.SpeechSampleRate, noiseRandom), WavFile.SpeechSampleRate);

        long bytes = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        clock.Stop();
        return new SpeechDemoSummary(root, speakers, testCount, validationCount, Words, jobs.Length, 2, bytes, clock.Elapsed);
    }

    /// <summary>The 8-hex-digit speaker id of a (voice, speed, pitch) combination.</summary>
    public static string SpeakerId(string voice, int speed, int pitch)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{voice}|{Inv(speed)}|{Inv(pitch)}"));
        return Convert.ToHexStringLower(hash.AsSpan(0, 4));
    }

    /// <summary>
    /// Resamples <paramref name="samples"/> from <paramref name="fromRate"/> to <paramref name="toRate"/> Hz
    /// by linear interpolation: output sample i is the input at time i / toRate.
    /// </summary>
    public static float[] Resample(float[] samples, int fromRate, int toRate)
    {
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(toRate);
        if (fromRate == toRate || samples.Length == 0)
        {
            return (float[])samples.Clone();
        }
        int count = (int)((long)(samples.Length - 1) * toRate / fromRate) + 1;
        var output = new float[count];
        for (int i = 0; i < count; i++)
        {
            double position = (double)i * fromRate / toRate;
            int left = (int)position;
            double fraction = position - left;
            float a = samples[left];
            float b = left + 1 < samples.Length ? samples[left + 1] : a;
            output[i] = (float)(a + (b - a) * fraction);
        }
        return output;
    }

    /// <summary>
    /// A clip of exactly <paramref name="length"/> samples with the speech of
    /// <paramref name="samples"/> (first to last sample above 2% of the peak) in its middle,
    /// zero-padded on both sides, or the middle <paramref name="length"/> samples when the speech is longer.
    /// </summary>
    public static float[] CenterClip(float[] samples, int length)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var output = new float[length];
        float peak = 0;
        foreach (float s in samples)
        {
            peak = Math.Max(peak, Math.Abs(s));
        }
        if (peak == 0)
        {
            return output;
        }
        float threshold = 0.02f * peak;
        int first = Array.FindIndex(samples, s => Math.Abs(s) > threshold);
        int last = Array.FindLastIndex(samples, s => Math.Abs(s) > threshold);
        int speech = last - first + 1;
        if (speech >= length)
        {
            Array.Copy(samples, first + (speech - length) / 2, output, 0, length);
        }
        else
        {
            Array.Copy(samples, first, output, (length - speech) / 2, speech);
        }
        return output;
    }

    private static float[] WhiteNoise(int count, Random random)
    {
        var noise = new float[count];
        for (int i = 0; i < count; i++)
        {
            noise[i] = (float)(random.NextDouble() * 2 - 1) * 0.3f;
        }
        return noise;
    }

    private static float[] PinkNoise(int count, Random random)
    {
        // Paul Kellet's economy pink filter over white noise, scaled to a 0.5 peak.
        var noise = new float[count];
        double b0 = 0, b1 = 0, b2 = 0, peak = 1e-9;
        for (int i = 0; i < count; i++)
        {
            double white = random.NextDouble() * 2 - 1;
            b0 = 0.99765 * b0 + white * 0.0990460;
            b1 = 0.96300 * b1 + white * 0.2965164;
            b2 = 0.57000 * b2 + white * 1.0526913;
            double pink = b0 + b1 + b2 + white * 0.1848;
            noise[i] = (float)pink;
            peak = Math.Max(peak, Math.Abs(pink));
        }
        for (int i = 0; i < count; i++)
        {
            noise[i] = (float)(noise[i] * 0.5 / peak);
        }
        return noise;
    }

    private static string Inv(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static ExternalToolNotFoundException NotInstalled(Exception? inner) =>
        new("espeak-ng", "espeak-ng is not installed (needed to synthesise the speech demo set): run 'apt-get install espeak-ng'", inner);

    private static (int Code, string Output, string Error) RunEspeak(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("espeak-ng")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        Process process;
        try
        {
            process = Process.Start(start) ?? throw NotInstalled(null);
        }
        catch (Win32Exception e)
        {
            throw NotInstalled(e);
        }
        using (process)
        {
            var error = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output, error.Result);
        }
    }
}
