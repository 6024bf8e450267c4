namespace ZeroFL.Federation.Uplink;

/// <summary>
/// Exact upload sizes. A layer sent whole costs 4 B per entry (fp32). A top-K slice travels as CSR
/// over the layer's 2-D view (<see cref="LayerSpec"/>): 4 B per value + 4 B per column index +
/// 4 B * (rows + 1) row pointers. A sparse layer whose slice keeps every entry (K = n, e.g.
/// r_mask = sp) is sent whole: with nothing left out there is nothing to index, and the upload is
/// then exactly the dense upload.
/// </summary>
public static class UplinkBytes
{
    /// <summary>Bytes of <paramref name="length"/> fp32 values sent whole.</summary>
    public static long Dense(long length) => length >= 0
        ? 4 * length
        : throw new ArgumentOutOfRangeException(nameof(length), length, "length must not be negative");

    /// <summary>Bytes of a CSR matrix with <paramref name="rows"/> rows and <paramref name="nonZeros"/> entries.</summary>
    public static long Csr(int rows, long nonZeros)
    {
        if (rows <= 0 || nonZeros < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), $"CSR of {rows} rows and {nonZeros} entries");
        }
        return 4 * nonZeros + 4 * nonZeros + 4L * (rows + 1);
    }

    /// <summary>Bytes of one layer of <paramref name="layer"/> with <paramref name="sent"/> entries sent (whole when sent = length).</summary>
    public static long Layer(LayerSpec layer, int sent)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (sent < 0 || sent > layer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(sent), sent, $"layer {layer.Name} has {layer.Length} entries");
        }
        return sent == layer.Length ? Dense(layer.Length) : Csr(layer.Rows, sent);
    }

    /// <summary>Bytes of a client's whole upload.</summary>
    public static long Of(ClientUpload upload)
    {
        ArgumentNullException.ThrowIfNull(upload);
        return upload.Layers.Sum(l => l.Bytes);
    }

    /// <summary>Bytes of the dense upload of the model: 4 B per entry of every layer.</summary>
    public static long DenseModel(ModelLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return Dense(layout.TotalLength);
    }

    /// <summary>
    /// Bytes any client sends under <paramref name="settings"/> (they depend only on the layer
    /// shapes, since K is fixed per layer): dense layers whole, sparse layers as a K-entry slice.
    /// </summary>
    public static long Expected(ModelLayout layout, UplinkSettings settings)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(settings);
        return layout.Layers.Sum(l => Layer(l, l.Sparse ? settings.KeepCount(l.Length) : l.Length));
    }
}
