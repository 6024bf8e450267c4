using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class SpeechCommandsTests
{
    private static readonly string[] Unknown = ["bed", "cat", "happy"];
    private static readonly string[] Speakers = ["0a7c2a8d", "1b2c3d4e", "2f00ba11", "3c0ffee0", "4deadbee"];

    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "zerofl-speech-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// Mini tree: 13 words (10 commands, 3 unknown) as tones, 5 speakers x 2 clips each; speaker 3 is
    /// the validation list, speaker 4 the testing list; one 5 s noise file.
    /// </summary>
    private void WriteMiniTree()
    {
        var words = SpeechCommands.CommandWords.Concat(Unknown).ToArray();
        for (int w = 0; w < words.Length; w++)
        {
            Directory.CreateDirectory(Path.Combine(_dir, words[w]));
            for (int s = 0; s < Speakers.Length; s++)
            {
                for (int n = 0; n < 2; n++)
                {
                    var clip = new float[n == 0 ? 16000 : 12000];
                    double frequency = 200 + 150 * w + 10 * s;
                    for (int i = 0; i < clip.Length; i++)
                    {
                        clip[i] = (float)((0.2 + 0.1 * n) * Math.Sin(2 * Math.PI * frequency * i / 16000));
                    }
                    WavFile.Write(Path.Combine(_dir, words[w], $"{Speakers[s]}_nohash_{n}.wav"), clip, 16000);
                }
            }
        }
        File.WriteAllLines(Path.Combine(_dir, "validation_list.txt"),
            words.SelectMany(w => new[] { $"{w}/{Speakers[3]}_nohash_0.wav", $"{w}/{Speakers[3]}_nohash_1.wav" }));
        File.WriteAllLines(Path.Combine(_dir, "testing_list.txt"),
            words.SelectMany(w => new[] { $"{w}/{Speakers[4]}_nohash_0.wav", $"{w}/{Speakers[4]}_nohash_1.wav" }));
        Directory.CreateDirectory(Path.Combine(_dir, "_background_noise_"));
        var random = new Random(1);
        var noise = new float[5 * 16000];
        for (int i = 0; i < noise.Length; i++)
        {
            noise[i] = (float)(random.NextDouble() - 0.5);
        }
        WavFile.Write(Path.Combine(_dir, "_background_noise_", "white_noise.wav"), noise, 16000);
    }

    [Test]
    public void MiniTreeLoadsWithTheDocumentedCountsLabelsAndGroups()
    {
        WriteMiniTree();
        var split = SpeechCommands.Load(_dir, seed: 3, out var stats);
        var (train, test) = split;

        // Train: 3 speakers x 2 clips = 6 per command word; unknown 18 capped at 6; silence ceil(66/11) = 6.
        Assert.That(train.LabelCounts(), Is.EqualTo(Enumerable.Repeat(6, 12).ToArray()));
        // Test: speaker 4 only: 2 per word; unknown 6 capped at 2; silence ceil(22/11) = 2.
        Assert.That(test.LabelCounts(), Is.EqualTo(Enumerable.Repeat(2, 12).ToArray()));
        Assert.That((train.Channels, train.Height, train.Width, train.ClassCount), Is.EqualTo((1, 32, 32, 12)));
        Assert.That((test.Channels, test.Height, test.Width, test.ClassCount), Is.EqualTo((1, 32, 32, 12)));
        Assert.That(stats.TrainCount, Is.EqualTo(72));
        Assert.That(stats.TestWordClips, Is.EqualTo(22));

        var groups = split.TrainGroups!;
        Assert.That(groups, Has.Length.EqualTo(train.Count));
        // Ids appear in order 0, 1, 2, ...
        int next = 0;
        foreach (int g in groups)
        {
            Assert.That(g, Is.LessThanOrEqualTo(next));
            next = Math.Max(next, g + 1);
        }
        Assert.That(next, Is.EqualTo(4), "3 training speakers and one silence group");
        for (int g = 0; g < 3; g++)
        {
            int known = Enumerable.Range(0, train.Count).Count(i => groups[i] == g && train.Labels[i] < 10);
            Assert.That(known, Is.EqualTo(20), $"speaker group {g}: 10 words x 2 clips");
            Assert.That(Enumerable.Range(0, train.Count).Any(i => groups[i] == g && train.Labels[i] == 10), Is.False);
        }
        Assert.That(Enumerable.Range(0, train.Count).Where(i => train.Labels[i] == 10).Select(i => groups[i]).Distinct(),
            Is.EqualTo(new[] { 3 }));
    }

    [Test]
    public void FeaturesAreNormalisedPerCoefficientWithTrainingStatistics()
    {
        WriteMiniTree();
        var (train, test) = SpeechCommands.Load(_dir);
        for (int row = 0; row < 32; row++)
        {
            var values = Enumerable.Range(0, train.Count).SelectMany(s => train.Sample(s).Slice(row * 32, 32).ToArray()).ToArray();
            double mean = values.Average(v => (double)v);
            double std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
            Assert.That(mean, Is.EqualTo(0).Within(1e-3), $"row {row}");
            Assert.That(std, Is.EqualTo(1).Within(1e-3), $"row {row}");
        }
        Assert.That(test.Features.All(float.IsFinite), Is.True);
        Assert.That(test.Features.Select(v => (double)v).Average(), Is.Not.EqualTo(0).Within(1e-6), "test uses train statistics, not its own");
    }

    [Test]
    public void SameSeedSameDataOtherSeedOtherSilence()
    {
        WriteMiniTree();
        var a = SpeechCommands.Load(_dir, seed: 1);
        var b = SpeechCommands.Load(_dir, seed: 1);
        var c = SpeechCommands.Load(_dir, seed: 2);
        Assert.That(a.Train.Features, Is.EqualTo(b.Train.Features));
        Assert.That(a.Test.Features, Is.EqualTo(b.Test.Features));
        Assert.That(a.TrainGroups, Is.EqualTo(b.TrainGroups));
        Assert.That(c.Train.Features, Is.Not.EqualTo(a.Train.Features));
    }

    [Test]
    public void TestSetIsTheTestingListOnly()
    {
        WriteMiniTree();
        // Dropping the validation list moves speaker 3 into training; the test set is unchanged.
        File.Delete(Path.Combine(_dir, "validation_list.txt"));
        var (train, test) = SpeechCommands.Load(_dir);
        Assert.That(train.LabelCounts()[0], Is.EqualTo(8));
        Assert.That(test.LabelCounts()[0], Is.EqualTo(2));
        Assert.That(test.Count, Is.EqualTo(24));
    }

    [Test]
    public void BadFileNameIsDataFormatException()
    {
        WriteMiniTree();
        string bad = Path.Combine(_dir, "yes", "speakerless.wav");
        WavFile.Write(bad, new float[16000], 16000);
        var e = Assert.Throws<DataFormatException>(() => SpeechCommands.Load(_dir))!;
        Assert.That(e.FilePath, Is.EqualTo(bad));
        Assert.That(e.Message, Does.Contain("_nohash_"));
    }

    [TestCase("0a7c2a8d_nohash_0.wav", "0a7c2a8d")]
    [TestCase("yes/ab_cd_nohash_12.wav", "ab_cd")]
    public void SpeakerIsThePartBeforeNohash(string path, string speaker) =>
        Assert.That(SpeechCommands.SpeakerOf(path), Is.EqualTo(speaker));

    [TestCase("_nohash_0.wav")]
    [TestCase("abc_nohash_.wav")]
    [TestCase("abc_nohash_x.wav")]
    [TestCase("abc_0.wav")]
    [TestCase("abc_nohash_0.mp3")]
    public void MalformedNamesAreRejected(string path) =>
        Assert.Throws<DataFormatException>(() => SpeechCommands.SpeakerOf(path));

    [Test]
    public void BadWavInTheTreeNamesTheFile()
    {
        WriteMiniTree();
        string bad = Path.Combine(_dir, "no", $"{Speakers[0]}_nohash_1.wav");
        File.WriteAllBytes(bad, WavFileTests.BuildWav(channels: 2, samples: [1, 2]));
        var e = Assert.Throws<DataFormatException>(() => SpeechCommands.Load(_dir))!;
        Assert.That(e.FilePath, Is.EqualTo(bad));
        Assert.That(e.Problem, Does.Contain("2 channels"));
    }

    [Test]
    public void MissingDirectoryIsDataNotFoundWithAHint()
    {
        string missing = Path.Combine(_dir, "nowhere");
        var e = Assert.Throws<DataNotFoundException>(() => SpeechCommands.Load(missing))!;
        Assert.That(e.Message, Does.Contain(missing));
        Assert.That(e.Message, Does.Contain(SpeechCommands.DownloadUrl));
        Assert.That(e.Message, Does.Contain("speech-demo"));
        Assert.That(e.Message, Does.Not.Contain('\n'));
        Assert.That(e.Directory, Is.EqualTo(missing));
    }

    [Test]
    public void MissingTestingListOrNoiseIsDataNotFound()
    {
        WriteMiniTree();
        Directory.Delete(Path.Combine(_dir, "_background_noise_"), recursive: true);
        Assert.That(() => SpeechCommands.Load(_dir), Throws.TypeOf<DataNotFoundException>().With.Message.Contains("_background_noise_"));
        File.Delete(Path.Combine(_dir, "testing_list.txt"));
        Assert.That(() => SpeechCommands.Load(_dir), Throws.TypeOf<DataNotFoundException>().With.Message.Contains("testing_list.txt"));
    }

    [Test]
    public void EspeakDemoSetLoads()
    {
        Assume.That(SpeechDemo.IsEspeakAvailable(), "espeak-ng is not installed");
        var summary = SpeechDemo.Write(_dir, speakers: 2, seed: 0);
        Assert.That(summary.Clips, Is.EqualTo(26));
        Assert.That(summary.TestSpeakers, Is.EqualTo(1));
        var files = Directory.GetFiles(_dir, "*.wav", SearchOption.AllDirectories);
        Assert.That(files, Has.Length.EqualTo(28));
        Assert.That(File.ReadAllLines(Path.Combine(_dir, "testing_list.txt")), Has.Length.EqualTo(13));
        var clip = WavFile.ReadSpeechClip(Path.Combine(_dir, File.ReadAllLines(Path.Combine(_dir, "testing_list.txt"))[0]));
        Assert.That(clip, Has.Length.EqualTo(16000));
        Assert.That(clip.Max(Math.Abs), Is.GreaterThan(0.05f), "speech, not silence");

        var split = SpeechCommands.Load(_dir, seed: 0, out var stats);
        // One speaker each side: 10 command clips, unknown 3 capped at 1, silence ceil(11/11) = 1.
        var expected = Enumerable.Repeat(1, 12).ToArray();
        Assert.That(split.Train.LabelCounts(), Is.EqualTo(expected));
        Assert.That(split.Test.LabelCounts(), Is.EqualTo(expected));
        Assert.That(split.TrainGroups!.Distinct().Count(), Is.EqualTo(2));
        TestContext.Out.WriteLine($"demo: {summary.Bytes} bytes in {summary.Elapsed.TotalSeconds:F1} s; load {stats.SamplesPerSecond:F0} samples/s");
    }

    [Test]
    public void SpeakerIdsAreEightHexDigitsAndDeterministic()
    {
        string id = SpeechDemo.SpeakerId("en-us", 160, 50);
        Assert.That(id, Does.Match("^[0-9a-f]{8}$"));
        Assert.That(SpeechDemo.SpeakerId("en-us", 160, 50), Is.EqualTo(id));
        Assert.That(SpeechDemo.SpeakerId("en-us", 160, 51), Is.Not.EqualTo(id));
    }

    [Test]
    public void ResampleAndCenterClip()
    {
        var ramp = Enumerable.Range(0, 22050).Select(i => i / 22050f).ToArray();
        var resampled = SpeechDemo.Resample(ramp, 22050, 16000);
        Assert.That(resampled, Has.Length.EqualTo(16000));
        Assert.That(resampled[8000], Is.EqualTo(0.5f).Within(1e-4f));
        var burst = new float[3000];
        for (int i = 1000; i < 1400; i++)
        {
            burst[i] = 0.5f;
        }
        var centered = SpeechDemo.CenterClip(burst, 16000);
        Assert.That(centered, Has.Length.EqualTo(16000));
        Assert.That(Array.IndexOf(centered, 0.5f), Is.EqualTo((16000 - 400) / 2));
        Assert.That(centered.Count(v => v == 0.5f), Is.EqualTo(400));
    }

    [Test, Explicit("generates a larger demo set to measure generation and load speed")]
    public void DemoSetThroughput()
    {
        Assume.That(SpeechDemo.IsEspeakAvailable(), "espeak-ng is not installed");
        var summary = SpeechDemo.Write(_dir, speakers: 40, seed: 0);
        SpeechCommands.Load(_dir, seed: 0, out var cold);
        SpeechCommands.Load(_dir, seed: 0, out var stats);
        TestContext.Out.WriteLine($"first (cold) load: {cold.SamplesPerSecond:F0} samples/s");
        TestContext.Out.WriteLine(
            $"demo: {summary.Speakers} speakers, {summary.Clips} clips, {summary.Bytes / 1e6:F1} MB in {summary.Elapsed.TotalSeconds:F1} s; " +
            $"load: {stats.TrainCount}+{stats.TestCount} samples in {stats.Elapsed.TotalSeconds:F2} s = {stats.SamplesPerSecond:F0} samples/s");
    }
}
