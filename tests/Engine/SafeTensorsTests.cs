using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Tests.Engine;

/// <summary>The safetensors writer and its validating reader.</summary>
public sealed class SafeTensorsTests
{
    private string directory = null!;

    [SetUp]
    public void CreateDirectory() => directory = System.IO.Directory.CreateTempSubdirectory("zerofl-safetensors-").FullName;

    [TearDown]
    public void DeleteDirectory() => System.IO.Directory.Delete(directory, recursive: true);

    private static List<NamedTensor> Sample() =>
    [
        new("conv1.weight", [2, 1, 2, 2], [.. Enumerable.Range(0, 8).Select(i => i * 0.5f - 1f)]),
        new("bn1.running_var", [2], [1f, float.Epsilon]),
        new("fc.bias", [3], [-0f, 3.25f, float.MaxValue]),
    ];

    [Test]
    public void WrittenTensorsReadBackExactlyWithTheMetadata()
    {
        string path = Path.Combine(directory, "m.safetensors");
        SafeTensors.Write(path, Sample(), new Dictionary<string, string> { ["round"] = "7" });
        var (tensors, metadata) = SafeTensors.Read(path);
        Assert.That(tensors.Select(t => t.Name), Is.EqualTo(Sample().Select(t => t.Name)));
        for (int i = 0; i < tensors.Count; i++)
        {
            Assert.That(tensors[i].Shape, Is.EqualTo(Sample()[i].Shape));
            Assert.That(tensors[i].Values.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(Sample()[i].Values.Select(BitConverter.SingleToInt32Bits)), "bit for bit");
        }
        Assert.That(metadata["round"], Is.EqualTo("7"));
    }

    [Test]
    public void TheLayoutIsTheSafetensorsFormat()
    {
        string path = Path.Combine(directory, "m.safetensors");
        SafeTensors.Write(path, Sample());
        var bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(headerLength % 8, Is.Zero, "the data starts 8-byte aligned");
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLength).TrimEnd(' '));
        var conv = header.RootElement.GetProperty("conv1.weight");
        Assert.That(conv.GetProperty("dtype").GetString(), Is.EqualTo("F32"));
        Assert.That(conv.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 2, 1, 2, 2 }));
        Assert.That(conv.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 0, 32 }));
        Assert.That(header.RootElement.GetProperty("fc.bias").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { 40, 52 }));
        Assert.That(bytes.Length, Is.EqualTo(8 + headerLength + 52));
        Assert.That(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(8 + headerLength + 4))), Is.EqualTo(-0.5f), "conv1.weight[1], little-endian");
    }

    [Test]
    public void CorruptedFilesGiveOneClearErrorNamingTheFile()
    {
        string good = Path.Combine(directory, "good.safetensors");
        SafeTensors.Write(good, Sample());
        var original = File.ReadAllBytes(good);
        var random = new Random(9);
        int rejected = 0;
        for (int trial = 0; trial < 1000; trial++)
        {
            var bytes = trial % 2 == 0
                ? original[..random.Next(original.Length)]
                : original.Select(b => b).ToArray();
            if (trial % 2 == 1)
            {
                int flips = 1 + random.Next(4);
                for (int f = 0; f < flips; f++)
                {
                    bytes[random.Next(Math.Min(bytes.Length, 8 + 200))] = (byte)random.Next(256);
                }
            }
            string path = Path.Combine(directory, "bad.safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                SafeTensors.Read(path);
            }
            catch (InvalidDataException e)
            {
                Assert.That(e.Message, Does.StartWith(path));
                Assert.That(e.Message, Does.Not.Contain("\n"));
                rejected++;
            }
        }
        Assert.That(rejected, Is.GreaterThan(500), "every truncation and most header corruptions are detected");
    }
}
