using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using ZeroFL.Data;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cluster;

/// <summary>What a coordinator and its workers compare before a run: the training set's and the model layout's SHA-256.</summary>
public static class RunFingerprint
{
    /// <summary>Hex SHA-256 of a training set: its shape, class count, labels and feature values (bit for bit).</summary>
    public static string Data(Dataset data)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Encoding.UTF8.GetBytes($"{data.Count}x{data.Channels}x{data.Height}x{data.Width}/{data.ClassCount}"));
        hash.AppendData(MemoryMarshal.AsBytes(data.Labels.AsSpan()));
        hash.AppendData(MemoryMarshal.AsBytes(data.Features.AsSpan()));
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    /// <summary>Hex SHA-256 of a model layout: every layer's name, shape and whether it is sparse, in order.</summary>
    public static string Layout(ModelLayout layout) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', layout.Layers.Select(l => l.ToString())))));

    /// <summary>Hex SHA-256 of a block of model values (the model's version on the wire).</summary>
    public static string Values(ReadOnlySpan<float> values) => Convert.ToHexString(SHA256.HashData(MemoryMarshal.AsBytes(values)));
}

/// <summary>Sizes and bounds of the cluster's messages.</summary>
public static class ClusterLimits
{
    /// <summary>Bytes per message piece of a model broadcast or an upload (4 MiB; Orleans' default message limit is 100 MB).</summary>
    public const int ChunkBytes = 4 << 20;

    /// <summary>Model values per broadcast piece.</summary>
    public const int ChunkValues = ChunkBytes / sizeof(float);

    /// <summary>The most bytes an encoded upload of <paramref name="layout"/> can take (every layer as CSR32 with every entry, and headers); a worker claiming more is not read.</summary>
    public static long MaxUploadBytes(ModelLayout layout) =>
        64 + layout.Layers.Sum(l => 64 + 12L * l.Length + 4L * (l.Rows + 1) + 4L * ((l.Length + 31) / 32));
}
