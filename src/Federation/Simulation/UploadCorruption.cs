using ZeroFL.Federation.Randomness;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// Damages an upload the way a faulty client or link might, for fault-injection runs: a NaN value,
/// a truncated layer, a bad index (a CSR32 column of -1, a stray word of 16-bit columns, a bitmap
/// bit set beyond the values), entries past the structure (a CSR's last row pointer one too far, a
/// bitmap bit cleared), or a layer missing. Every kind breaks a rule <see cref="WireValidator"/>
/// checks, so the server must reject the result.
/// </summary>
public static class UploadCorruption
{
    /// <summary>The kinds, in the order <see cref="Apply(WireUpload, int)"/> numbers them.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["nan value", "truncated layer", "bad index", "structure past the entries", "missing layer"];

    /// <summary>A damaged copy of <paramref name="upload"/> (the original is not changed), drawn from (seed, round, attempt, client).</summary>
    public static WireUpload Apply(WireUpload upload, int round, int attempt, int seed)
    {
        var random = SplitMix64.For(seed, RandomStream.FaultInjection, round, ((long)attempt << 32 | (uint)upload.ClientId) ^ 0x5bd1e995L);
        return Apply(upload, random.NextBelow(Kinds.Count), random.NextBelow(upload.Layers.Count));
    }

    /// <summary>A copy of <paramref name="upload"/> with corruption <paramref name="kind"/> (index into <see cref="Kinds"/>) at layer <paramref name="layer"/> (or the nearest layer it applies to).</summary>
    public static WireUpload Apply(WireUpload upload, int kind, int layer)
    {
        var layers = upload.Layers.ToList();
        int csr = Enumerable.Range(0, layers.Count).Select(i => (layer + i) % layers.Count).FirstOrDefault(i => layers[i].IsSparse && layers[i].Count >= 2, -1);
        if (kind is 2 or 3 && csr < 0)
        {
            kind = 0; // no sparse layer with two entries: damage a value instead
        }
        var target = layers[layer];
        switch (kind)
        {
            case 0:
                layer = Enumerable.Range(0, layers.Count).Select(i => (layer + i) % layers.Count).First(i => layers[i].Count > 0);
                layers[layer] = WithNaN(layers[layer]);
                break;
            case 1:
                // CSR32 loses a column index; any other layout a value (a count no longer matches).
                layers[layer] = target.Encoding == LayerEncoding.Csr32 && target.Columns!.Length > 0
                    ? target with { Columns = target.Columns![..^1] }
                    : target.ValueFormat == UploadValues.Fp32
                        ? target with { Values = target.Values.Length > 0 ? target.Values[..^1] : [0f] }
                        : target with { Values16 = target.Values16!.Length > 0 ? target.Values16[..^1] : [0] };
                break;
            case 2:
                var s = layers[csr];
                layers[csr] = s.Encoding switch
                {
                    LayerEncoding.Csr32 => s with { Columns = SetAt(s.Columns!, 0, -1) },
                    LayerEncoding.Csr16 => s with { Columns16 = [.. s.Columns16!, 0] },
                    _ => s with { Bitmap = FlipBit(s.Bitmap!, set: false) },
                };
                break;
            case 3:
                var t = layers[csr];
                layers[csr] = t.Encoding == LayerEncoding.Bitmap
                    ? t with { Bitmap = FlipBit(t.Bitmap!, set: true) }
                    : t with { RowPointers = SetAt(t.RowPointers!, t.RowPointers!.Length - 1, t.RowPointers[^1] + 1) };
                break;
            default:
                layers.RemoveAt(layer);
                break;
        }
        return upload with { Layers = layers };
    }

    /// <summary>A copy with its middle value a NaN (fp32, or the quiet NaN of a 16-bit width).</summary>
    private static WireLayer WithNaN(WireLayer layer)
    {
        if (layer.ValueFormat == UploadValues.Fp32)
        {
            var values = (float[])layer.Values.Clone();
            values[values.Length / 2] = float.NaN;
            return layer with { Values = values };
        }
        var bits = (ushort[])layer.Values16!.Clone();
        bits[bits.Length / 2] = layer.ValueFormat == UploadValues.Bf16 ? (ushort)0x7FC0 : (ushort)0x7E00;
        return layer with { Values16 = bits };
    }

    private static int[] SetAt(int[] array, int index, int value)
    {
        var copy = (int[])array.Clone();
        copy[index] = value;
        return copy;
    }

    /// <summary>A copy with the first bit that is <paramref name="set"/> flipped (a set bit cleared, or a clear one set): the count no longer matches the values.</summary>
    private static int[] FlipBit(int[] bitmap, bool set)
    {
        var copy = (int[])bitmap.Clone();
        for (int w = 0; w < copy.Length; w++)
        {
            int candidates = set ? copy[w] : ~copy[w];
            if (candidates != 0)
            {
                copy[w] ^= candidates & -candidates;
                return copy;
            }
        }
        copy[0] ^= 1;
        return copy;
    }
}
