using System.Diagnostics;

namespace ZeroFL.Data;

/// <summary>
/// Google Speech Commands v0.02 as the 12-class keyword-spotting task, with MFCC features.
/// <para>
/// Layout (as unpacked from <c>speech_commands_v0.02.tar.gz</c>, or as written by
/// <see cref="SpeechDemo.Write"/>): one folder per word holding 16 kHz mono 16-bit WAV files named
/// <c>&lt;speaker&gt;_nohash_&lt;n&gt;.wav</c>; <c>testing_list.txt</c> and (optional)
/// <c>validation_list.txt</c> with relative paths such as <c>yes/0a7c2a8d_nohash_0.wav</c>; and
/// <c>_background_noise_/</c> with long WAV files. Folders starting with <c>_</c> or <c>.</c> are not words.
/// </para>
/// <para>
/// Classes: <see cref="CommandWords"/> yes, no, up, down, left, right, on, off, stop, go are labels
/// 0..9, <see cref="SilenceLabel"/> is 10 and <see cref="UnknownLabel"/> 11 (every other word folder).
/// </para>
/// <para>
/// Split: test = files in <c>testing_list.txt</c>; files in <c>validation_list.txt</c> are left out of
/// both sets; train = every other word file. Then, in each set separately and seeded by the seed:
/// the unknown files are subsampled to at most the average known-class count of that set
/// (round(known files / 10), at least 1); and silence clips are added, ceil(word clips / 11) of them,
/// i.e. about as many as an average word class. A silence clip is a 1 s window of a background-noise
/// file (file and offset drawn uniformly) times a gain drawn uniformly from [0, 1). Training
/// windows come from the first 80% of each noise file and test windows from the last 20%, so the
/// two sets share no noise audio (a part shorter than 1 s is used whole, zero-padded).
/// </para>
/// <para>
/// Features: <see cref="Mfcc"/> with <see cref="MfccOptions.Default"/>, <c>[N, 1, 32, 32]</c>
/// (coefficient rows, frame columns), then each coefficient (row) is normalised to zero mean and
/// unit standard deviation with the mean and population std over all training samples and frames
/// (a std below 1e-6 counts as 1); the test set uses the training statistics.
/// </para>
/// <para>
/// Order and groups: training samples are the word files in folder order then file order (ordinal),
/// then the silence clips; test samples likewise. <see cref="TrainTestSplit.TrainGroups"/> holds the
/// speaker (the file-name part before <c>_nohash_</c>) of each training sample as ids 0..S-1 in order
/// of first appearance; silence clips form their own groups after the speakers, consecutive runs of
/// about the mean number of training word clips per speaker (at least 1).
/// </para>
/// </summary>
public static class SpeechCommands
{
    /// <summary>Where <see cref="Load"/> looks when no directory is given (relative to the working directory).</summary>
    public const string DefaultDirectory = "data/speech_commands_v0.02";

    /// <summary>Where the full data set can be downloaded.</summary>
    public const string DownloadUrl = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz";

    /// <summary>The folder of long background-noise recordings.</summary>
    public const string BackgroundNoiseFolder = "_background_noise_";

    /// <summary>The list of test files (relative paths, one a line).</summary>
    public const string TestingListFile = "testing_list.txt";

    /// <summary>The list of validation files (relative paths, one a line); these are in neither set.</summary>
    public const string ValidationListFile = "validation_list.txt";

    /// <summary>Label of the silence class.</summary>
    public const int SilenceLabel = 10;

    /// <summary>Label of the unknown-word class.</summary>
    public const int UnknownLabel = 11;

    /// <summary>Number of classes: ten command words, silence, unknown.</summary>
    public const int ClassCount = 12;

    /// <summary>The ten command words, in label order 0..9.</summary>
    public static IReadOnlyList<string> CommandWords { get; } =
        ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"];

    /// <summary>Names of the twelve classes in label order: the command words, "_silence_", "_unknown_".</summary>
    public static IReadOnlyList<string> ClassNames { get; } = [.. CommandWords, "_silence_", "_unknown_"];

    private const string NoHash = "_nohash_";

    /// <summary>
    /// The speaker id of a clip named <c>&lt;speaker&gt;_nohash_&lt;n&gt;.wav</c> (the part before
    /// <c>_nohash_</c>). Throws <see cref="DataFormatException"/> naming the file when the name is not
    /// of that form (empty speaker, no <c>_nohash_</c>, n not a decimal number, not <c>.wav</c>).
    /// </summary>
    public static string SpeakerOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string name = Path.GetFileName(path);
        if (!name.EndsWith(".wav", StringComparison.OrdinalIgnoreCase))
        {
            throw new DataFormatException(path, "not a .wav file name of the form <speaker>_nohash_<n>.wav");
        }
        string stem = name[..^4];
        int at = stem.IndexOf(NoHash, StringComparison.Ordinal);
        string number = at < 0 ? "" : stem[(at + NoHash.Length)..];
        if (at <= 0 || number.Length == 0 || !number.All(char.IsAsciiDigit))
        {
            throw new DataFormatException(path, "file name is not of the form <speaker>_nohash_<n>.wav");
        }
        return stem[..at];
    }

    /// <summary>
    /// Loads the 12-class task from <paramref name="dataDir"/> (or <see cref="DefaultDirectory"/>
    /// when null) as described on the class: features <c>[N, 1, 32, 32]</c> normalised MFCCs,
    /// labels 0..11, and speaker groups for the training samples. <paramref name="seed"/> fixes the
    /// unknown-class subsample and the silence clips. Throws <see cref="DataNotFoundException"/> when
    /// the directory, <c>testing_list.txt</c> or the background noise is missing, and
    /// <see cref="DataFormatException"/> for a bad file name or WAV file. MFCCs are computed in
    /// parallel over files.
    /// </summary>
    public static TrainTestSplit Load(string? dataDir, int seed = 0) => Load(dataDir, seed, out _);

    /// <summary>
    /// As <see cref="Load(string?, int)"/>, also returning how long loading took and how many
    /// clips it turned into features.
    /// </summary>
    public static TrainTestSplit Load(string? dataDir, int seed, out SpeechCommandsLoadStats stats)
    {
        var clock = Stopwatch.StartNew();
        string directory = Path.GetFullPath(dataDir ?? DefaultDirectory);
        string hint = $"download and unpack {DownloadUrl} there, or write a small demo set with 'zerofl data speech-demo --out DIR' and pass --data-dir DIR";
        if (!Directory.Exists(directory))
        {
            throw new DataNotFoundException($"Speech Commands not found: no directory {directory}; {hint}", directory);
        }
        string testingList = Path.Combine(directory, TestingListFile);
        if (!File.Exists(testingList))
        {
            throw new DataNotFoundException($"Speech Commands not found: no {TestingListFile} in {directory}; {hint}", directory);
        }
        var testing = ReadList(testingList);
        string validationList = Path.Combine(directory, ValidationListFile);
        var validation = File.Exists(validationList) ? ReadList(validationList) : new HashSet<string>(StringComparer.Ordinal);

        string noiseDirectory = Path.Combine(directory, BackgroundNoiseFolder);
        var noiseFiles = Directory.Exists(noiseDirectory)
            ? Directory.GetFiles(noiseDirectory, "*.wav").Order(StringComparer.Ordinal).ToArray()
            : [];
        if (noiseFiles.Length == 0)
        {
            throw new DataNotFoundException(
                $"Speech Commands incomplete: no background-noise WAV files in {noiseDirectory} (needed for the silence class); {hint}", directory);
        }

        var train = new List<Item>();
        var test = new List<Item>();
        var words = Directory.GetDirectories(directory)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('_') && !n.StartsWith('.'))
            .Order(StringComparer.Ordinal);
        foreach (string word in words)
        {
            int known = IndexOf(CommandWords, word);
            int label = known >= 0 ? known : UnknownLabel;
            foreach (string file in Directory.GetFiles(Path.Combine(directory, word), "*.wav").Order(StringComparer.Ordinal))
            {
                string relative = word + "/" + Path.GetFileName(file);
                string speaker = SpeakerOf(file);
                if (validation.Contains(relative))
                {
                    continue;
                }
                (testing.Contains(relative) ? test : train).Add(new Item(file, label, speaker, -1, 0, 0));
            }
        }

        // Noise files are read once; windows are cut from them later.
        var noise = new float[noiseFiles.Length][];
        Parallel.For(0, noiseFiles.Length, i => noise[i] = WavFile.ReadSpeechClip(noiseFiles[i]));

        var random = new Random(seed);
        train = SubsampleUnknown(train, random);
        test = SubsampleUnknown(test, random);
        int trainWords = train.Count, testWords = test.Count;
        AddSilence(train, noise, random, fromStart: true);
        AddSilence(test, noise, random, fromStart: false);

        var mfcc = new Mfcc();
        var trainFeatures = Features(train, noise, mfcc);
        var testFeatures = Features(test, noise, mfcc);
        Normalize(trainFeatures, testFeatures, mfcc.Options.CoefficientCount, mfcc.Options.FrameCount);

        int height = mfcc.Options.CoefficientCount, width = mfcc.Options.FrameCount;
        var trainSet = new Dataset("speech-commands/train", trainFeatures, [.. train.Select(i => i.Label)], 1, height, width, ClassCount);
        var testSet = new Dataset("speech-commands/test", testFeatures, [.. test.Select(i => i.Label)], 1, height, width, ClassCount);
        var groups = Groups(train, trainWords);
        clock.Stop();
        stats = new SpeechCommandsLoadStats(train.Count, test.Count, trainWords, testWords, clock.Elapsed);
        return new TrainTestSplit(trainSet, testSet, groups);
    }

    private static HashSet<string> ReadList(string path)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(path))
        {
            string entry = line.Trim().Replace('\\', '/');
            if (entry.Length > 0)
            {
                set.Add(entry);
            }
        }
        return set;
    }

    private static int IndexOf(IReadOnlyList<string> list, string value)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (string.Equals(list[i], value, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return -1;
    }

    private static List<Item> SubsampleUnknown(List<Item> items, Random random)
    {
        int known = items.Count(i => i.Label != UnknownLabel);
        var unknown = Enumerable.Range(0, items.Count).Where(i => items[i].Label == UnknownLabel).ToArray();
        int cap = Math.Max(1, (int)Math.Round(known / (double)CommandWords.Count));
        if (unknown.Length <= cap)
        {
            return items;
        }
        random.Shuffle(unknown);
        var drop = new HashSet<int>(unknown[cap..]);
        return [.. items.Where((_, index) => !drop.Contains(index))];
    }

    private static void AddSilence(List<Item> items, float[][] noise, Random random, bool fromStart)
    {
        int count = (items.Count + CommandWords.Count) / (CommandWords.Count + 1); // ceil(words / 11)
        int clip = MfccOptions.Default.ClipLength;
        for (int i = 0; i < count; i++)
        {
            int file = random.Next(noise.Length);
            int length = noise[file].Length;
            int split = (int)(length * 0.8);
            int begin = fromStart ? 0 : split, end = fromStart ? split : length;
            int offset = begin + random.Next(Math.Max(1, end - begin - clip + 1));
            float gain = (float)random.NextDouble();
            items.Add(new Item(null, SilenceLabel, null, file, offset, gain));
        }
    }

    private static float[] Features(List<Item> items, float[][] noise, Mfcc mfcc)
    {
        int size = mfcc.OutputLength;
        int clip = mfcc.Options.ClipLength;
        var features = new float[(long)items.Count * size];
        Exception? firstError = null;
        int firstErrorIndex = int.MaxValue;
        var gate = new object();
        Parallel.For(0, items.Count, () => new float[clip], (index, _, window) =>
        {
            try
            {
                var item = items[index];
                ReadOnlySpan<float> samples;
                if (item.Path is not null)
                {
                    samples = WavFile.ReadSpeechClip(item.Path);
                }
                else
                {
                    var source = noise[item.NoiseFile];
                    int n = Math.Max(0, Math.Min(clip, source.Length - item.NoiseOffset));
                    Array.Clear(window);
                    for (int i = 0; i < n; i++)
                    {
                        window[i] = source[item.NoiseOffset + i] * item.Gain;
                    }
                    samples = window;
                }
                mfcc.Compute(samples, features.AsSpan(index * size, size));
            }
            catch (Exception e)
            {
                lock (gate)
                {
                    if (index < firstErrorIndex)
                    {
                        firstErrorIndex = index;
                        firstError = e;
                    }
                }
            }
            return window;
        }, _ => { });
        if (firstError is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(firstError);
        }
        return features;
    }

    private static void Normalize(float[] train, float[] test, int rows, int columns)
    {
        int size = rows * columns;
        long count = train.Length / size;
        var mean = new double[rows];
        var std = new double[rows];
        Parallel.For(0, rows, row =>
        {
            double sum = 0, squares = 0;
            for (long s = 0; s < count; s++)
            {
                var values = train.AsSpan((int)(s * size) + row * columns, columns);
                foreach (float v in values)
                {
                    sum += v;
                    squares += (double)v * v;
                }
            }
            long n = Math.Max(1, count * columns);
            double m = sum / n;
            double variance = Math.Max(0, squares / n - m * m);
            mean[row] = m;
            std[row] = Math.Sqrt(variance) < 1e-6 ? 1 : Math.Sqrt(variance);
        });
        foreach (var features in new[] { train, test })
        {
            long samples = features.Length / size;
            Parallel.For(0, samples, s =>
            {
                for (int row = 0; row < rows; row++)
                {
                    var values = features.AsSpan((int)(s * size) + row * columns, columns);
                    float m = (float)mean[row], inverse = (float)(1 / std[row]);
                    for (int i = 0; i < values.Length; i++)
                    {
                        values[i] = (values[i] - m) * inverse;
                    }
                }
            });
        }
    }

    private static int[] Groups(List<Item> train, int wordCount)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var groups = new int[train.Count];
        for (int i = 0; i < wordCount; i++)
        {
            string speaker = train[i].Speaker!;
            if (!ids.TryGetValue(speaker, out int id))
            {
                id = ids.Count;
                ids.Add(speaker, id);
            }
            groups[i] = id;
        }
        int perGroup = Math.Max(1, ids.Count == 0 ? wordCount : (int)Math.Round(wordCount / (double)ids.Count));
        for (int i = wordCount; i < train.Count; i++)
        {
            groups[i] = ids.Count + (i - wordCount) / perGroup;
        }
        return groups;
    }

    private sealed record Item(string? Path, int Label, string? Speaker, int NoiseFile, int NoiseOffset, float Gain);
}

/// <summary>What <see cref="SpeechCommands.Load(string?, int, out SpeechCommandsLoadStats)"/> did.</summary>
/// <param name="TrainCount">Training samples, silence included.</param>
/// <param name="TestCount">Test samples, silence included.</param>
/// <param name="TrainWordClips">Training samples read from word files (after the unknown subsample).</param>
/// <param name="TestWordClips">Test samples read from word files (after the unknown subsample).</param>
/// <param name="Elapsed">Wall time of the whole load.</param>
public sealed record SpeechCommandsLoadStats(int TrainCount, int TestCount, int TrainWordClips, int TestWordClips, TimeSpan Elapsed)
{
    /// <summary>Samples (train and test, silence included) turned into features per second of load time.</summary>
    public double SamplesPerSecond => (TrainCount + TestCount) / Math.Max(Elapsed.TotalSeconds, 1e-9);
}
