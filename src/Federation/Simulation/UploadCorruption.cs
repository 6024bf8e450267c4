using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// Damages an upload the way a faulty client or link might, for fault-injection runs: a NaN value,
/// a truncated layer, a column index out of range, row pointers that decrease, or a layer missing.
/// Every kind breaks a rule <see cref="WireValidator"/> checks, so the server must reject the result.
/// </summary>
public static class UploadCorruption
{
    /// <summary>The kinds, in the order <see cref="Apply(WireUpload, int)"/> numbers them.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["nan value", "truncated layer", "column out of range", "row pointers past the entries", "missing layer"];

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
        int csr = Enumerable.Range(0, layers.Count).Select(i => (layer + i) % layers.Count).FirstOrDefault(i => layers[i].IsCsr && layers[i].Values.Length >= 2, -1);
        if (kind is 2 or 3 && csr < 0)
        {
            kind = 0; // no CSR layer with two entries: damage a value instead
        }
        var target = layers[layer];
        switch (kind)
        {
            case 0:
                layer = Enumerable.Range(0, layers.Count).Select(i => (layer + i) % layers.Count).First(i => layers[i].Values.Length > 0);
                var values = (float[])layers[layer].Values.Clone();
                values[values.Length / 2] = float.NaN;
                layers[layer] = layers[layer] with { Values = values };
                break;
            case 1:
                layers[layer] = target.IsCsr
                    ? target with { Columns = target.Columns![..^1] }
                    : target with { Values = target.Values.Length > 0 ? target.Values[..^1] : [0f] };
                break;
            case 2:
                var columns = (int[])layers[csr].Columns!.Clone();
                columns[0] = -1;
                layers[csr] = layers[csr] with { Columns = columns };
                break;
            case 3:
                var rows = (int[])layers[csr].RowPointers!.Clone();
                rows[^1] = rows[^1] + 1;
                layers[csr] = layers[csr] with { RowPointers = rows };
                break;
            default:
                layers.RemoveAt(layer);
                break;
        }
        return upload with { Layers = layers };
    }
}
