using System.Buffers.Binary;
using System.IO.Compression;

namespace ZeroFL.Tests.Data;

/// <summary>Writes small IDX files (plain or gzip) into a per-test temporary directory.</summary>
public sealed class IdxFiles : IDisposable
{
    public IdxFiles()
    {
        Directory = Path.Combine(Path.GetTempPath(), "zerofl-data-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
    }

    public string Directory { get; }

    public string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>The bytes of an IDX file: magic, sizes, data.</summary>
    public static byte[] Encode(int magic, int[] sizes, byte[] data)
    {
        var bytes = new byte[4 + 4 * sizes.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < sizes.Length; d++)
        {
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), sizes[d]);
        }
        data.CopyTo(bytes, 4 + 4 * sizes.Length);
        return bytes;
    }

    public static byte[] Gzip(byte[] bytes)
    {
        using var memory = new MemoryStream();
        using (var gzip = new GZipStream(memory, CompressionLevel.Fastest))
        {
            gzip.Write(bytes);
        }
        return memory.ToArray();
    }

    public string Write(string name, byte[] bytes, bool gzip = false)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, gzip ? Gzip(bytes) : bytes);
        return path;
    }

    public string WriteImages(string name, byte[] pixels, int count, int rows, int cols, bool gzip = false) =>
        Write(name, Encode(0x00000803, [count, rows, cols], pixels), gzip);

    public string WriteLabels(string name, byte[] labels, bool gzip = false) =>
        Write(name, Encode(0x00000801, [labels.Length], labels), gzip);

    /// <summary>Deterministic pseudo-random bytes below <paramref name="bound"/>.</summary>
    public static byte[] Bytes(int length, int seed, int bound = 256)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)random.Next(bound);
        }
        return bytes;
    }

    /// <summary>Writes a complete four-file MNIST-like set with the standard names.</summary>
    public void WriteMnistLike(int trainCount, int testCount, int side = 28, bool gzip = false, string suffix = "-")
    {
        string ext = gzip ? ".gz" : "";
        WriteImages($"train-images{suffix}idx3-ubyte{ext}", Bytes(trainCount * side * side, 1), trainCount, side, side, gzip);
        WriteLabels($"train-labels{suffix}idx1-ubyte{ext}", Bytes(trainCount, 2, 10), gzip);
        WriteImages($"t10k-images{suffix}idx3-ubyte{ext}", Bytes(testCount * side * side, 3), testCount, side, side, gzip);
        WriteLabels($"t10k-labels{suffix}idx1-ubyte{ext}", Bytes(testCount, 4, 10), gzip);
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
