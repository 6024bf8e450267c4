using System.Buffers.Binary;
using System.Text;
using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class WavFileTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "zerofl-wav-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>A WAV file built by hand: optional chunks before fmt and between fmt and data.</summary>
    internal static byte[] BuildWav(int format = 1, int channels = 1, int rate = 16000, int bits = 16,
        short[]? samples = null, byte[][]? chunksBeforeFmt = null, byte[][]? chunksBeforeData = null,
        bool writeFmt = true, bool writeData = true, int truncateBy = 0, string riff = "RIFF")
    {
        samples ??= [0, 1000, -1000, short.MaxValue, short.MinValue];
        var body = new MemoryStream();
        body.Write(Encoding.ASCII.GetBytes("WAVE"));
        foreach (var chunk in chunksBeforeFmt ?? [])
        {
            body.Write(chunk);
        }
        if (writeFmt)
        {
            var fmt = new byte[24];
            Encoding.ASCII.GetBytes("fmt ").CopyTo(fmt, 0);
            BinaryPrimitives.WriteInt32LittleEndian(fmt.AsSpan(4), 16);
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(8), (short)format);
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(10), (short)channels);
            BinaryPrimitives.WriteInt32LittleEndian(fmt.AsSpan(12), rate);
            BinaryPrimitives.WriteInt32LittleEndian(fmt.AsSpan(16), rate * channels * bits / 8);
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(20), (short)(channels * bits / 8));
            BinaryPrimitives.WriteInt16LittleEndian(fmt.AsSpan(22), (short)bits);
            body.Write(fmt);
        }
        foreach (var chunk in chunksBeforeData ?? [])
        {
            body.Write(chunk);
        }
        if (writeData)
        {
            var data = new byte[8 + samples.Length * 2];
            Encoding.ASCII.GetBytes("data").CopyTo(data, 0);
            BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(4), samples.Length * 2);
            for (int i = 0; i < samples.Length; i++)
            {
                BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(8 + 2 * i), samples[i]);
            }
            body.Write(data);
        }
        var bytes = new byte[8 + body.Length];
        Encoding.ASCII.GetBytes(riff).CopyTo(bytes, 0);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), (int)body.Length);
        body.ToArray().CopyTo(bytes, 8);
        return bytes[..(bytes.Length - truncateBy)];
    }

    internal static byte[] Chunk(string id, int size)
    {
        var chunk = new byte[8 + size + (size & 1)];
        Encoding.ASCII.GetBytes(id).CopyTo(chunk, 0);
        BinaryPrimitives.WriteInt32LittleEndian(chunk.AsSpan(4), size);
        for (int i = 8; i < 8 + size; i++)
        {
            chunk[i] = (byte)'d'; // would look like "data" garbage if the padding were ignored
        }
        return chunk;
    }

    private string Save(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Test]
    public void RoundTripKeepsSamplesWithinOneStep()
    {
        var samples = new float[16000];
        for (int i = 0; i < samples.Length; i++)
        {
            samples[i] = 0.8f * MathF.Sin(2 * MathF.PI * 440 * i / 16000f);
        }
        samples[0] = -1f;
        samples[1] = 0.99996f;
        string path = Path.Combine(_dir, "tone.wav");
        WavFile.Write(path, samples, 16000);
        var (read, rate) = WavFile.Read(path);
        Assert.That(rate, Is.EqualTo(16000));
        Assert.That(read, Has.Length.EqualTo(samples.Length));
        for (int i = 0; i < samples.Length; i++)
        {
            Assert.That(read[i], Is.EqualTo(samples[i]).Within(0.5f / 32768 + 1e-7f), $"sample {i}");
            Assert.That(read[i], Is.GreaterThanOrEqualTo(-1f).And.LessThan(1f));
        }
        Assert.That(WavFile.ReadSpeechClip(path), Is.EqualTo(read));
        Assert.That(new FileInfo(path).Length, Is.EqualTo(44 + 2 * samples.Length));
    }

    [Test]
    public void ScalesSixteenBitValuesByOneOver32768()
    {
        string path = Save("exact.wav", BuildWav());
        Assert.That(WavFile.ReadSpeechClip(path), Is.EqualTo(new[] { 0f, 1000 / 32768f, -1000 / 32768f, 32767 / 32768f, -1f }));
    }

    [Test]
    public void SkipsListAndOddSizedChunks()
    {
        var bytes = BuildWav(chunksBeforeFmt: [Chunk("LIST", 27)], chunksBeforeData: [Chunk("LIST", 4), Chunk("fact", 3)]);
        string path = Save("list.wav", bytes);
        Assert.That(WavFile.ReadSpeechClip(path), Is.EqualTo(new[] { 0f, 1000 / 32768f, -1000 / 32768f, 32767 / 32768f, -1f }));
    }

    private static IEnumerable<TestCaseData> BadFiles()
    {
        yield return new TestCaseData(BuildWav(channels: 2, samples: [1, 2, 3, 4]), "2 channels").SetName("Stereo");
        yield return new TestCaseData(BuildWav(bits: 8), "8-bit").SetName("EightBit");
        yield return new TestCaseData(BuildWav(rate: 44100), "44100 Hz").SetName("Rate44k");
        yield return new TestCaseData(BuildWav(format: 3, bits: 16), "audio format 3").SetName("NotPcm");
        yield return new TestCaseData(BuildWav(truncateBy: 3), "truncated").SetName("TruncatedData");
        yield return new TestCaseData(BuildWav(riff: "RIFX"), "not a RIFF/WAVE").SetName("NotRiff");
        yield return new TestCaseData(Encoding.ASCII.GetBytes("hello"), "not a RIFF/WAVE").SetName("TooShort");
        yield return new TestCaseData(BuildWav(writeFmt: false), "fmt").SetName("MissingFmt");
        yield return new TestCaseData(BuildWav(writeData: false), "no data chunk").SetName("MissingData");
        yield return new TestCaseData(BuildWav(writeData: false, chunksBeforeData: [Chunk("LIST", 5)]), "no data chunk").SetName("OnlyList");
    }

    [TestCaseSource(nameof(BadFiles))]
    public void BadFileIsDataFormatExceptionNamingTheFile(byte[] bytes, string problem)
    {
        string path = Save("bad.wav", bytes);
        var e = Assert.Throws<DataFormatException>(() => WavFile.ReadSpeechClip(path))!;
        Assert.That(e.FilePath, Is.EqualTo(path));
        Assert.That(e.Message, Does.StartWith(path + ": "));
        Assert.That(e.Problem, Does.Contain(problem));
        Assert.That(e.Message, Does.Not.Contain('\n'));
    }

    [Test]
    public void ReadAcceptsOtherRatesButSpeechClipDoesNot()
    {
        string path = Save("22k.wav", BuildWav(rate: 22050));
        Assert.That(WavFile.Read(path).SampleRate, Is.EqualTo(22050));
        Assert.Throws<DataFormatException>(() => WavFile.ReadSpeechClip(path));
    }

    [Test]
    public void WriteClipsOutOfRangeSamples()
    {
        string path = Path.Combine(_dir, "clip.wav");
        WavFile.Write(path, [2f, -3f, float.NaN], 16000);
        Assert.That(WavFile.ReadSpeechClip(path), Is.EqualTo(new[] { 32767 / 32768f, -1f, 0f }));
    }
}
