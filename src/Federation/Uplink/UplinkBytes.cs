namespace ZeroFL.Federation.Uplink;

/// <summary>
/// Exact upload sizes. A layer sent whole costs 4 B per entry (fp32). A top-K slice travels as CSR
/// over the layer's 2-D view (<see cref="LayerSpec"/>): 4 B per value + 4 B per column index +
/// 4 B * (rows + 1) row pointers. A sparse layer whose slice keeps every entry (K = n, e.g.
/// r_mask = sp) is sent whole: with nothing left out there is nothing to index, and the upload is
/// then exactly the dense upload. These are the paper's sizes (<see cref="UplinkEncodingMode.Csr32"/>,
/// no header).
/// <para>
/// As sent (<see cref="Encoded"/>): a per-layer header of a 1-byte <see cref="LayerEncoding"/> tag,
/// plus for a sparse layout the 4-byte entry count (a dense layer's length is the layout's); then the
/// payload: dense 4 B per entry; CSR32 4 B per value + 4 B per column + 4 B * (rows + 1); CSR16
/// 4 B per value + 16-bit columns in 32-bit words (4 * ceil(count / 2)) + 4 B * (rows + 1); bitmap
/// 4 B per value + 4 * ceil(length / 32) (whole 32-bit words). With 16-bit values
/// (<see cref="UploadValues"/>) every value costs 2 B instead of 4 (the tag byte also names the
/// value width, so the header does not grow). The upload's own fields (client, example count,
/// strategy) are not counted.
/// </para>
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

    /// <summary>Header bytes of a layer in <paramref name="encoding"/>: the 1-byte tag, plus the 4-byte entry count of a sparse layout.</summary>
    public static long Header(LayerEncoding encoding) => encoding == LayerEncoding.Dense ? 1 : 5;

    /// <summary>
    /// Bytes as sent (header and payload) of <paramref name="layer"/> carrying <paramref name="count"/>
    /// entries in <paramref name="encoding"/>, each value <paramref name="values"/> wide.
    /// </summary>
    public static long Encoded(LayerEncoding encoding, LayerSpec layer, int count, UploadValues values = UploadValues.Fp32)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (count < 0 || count > layer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"layer {layer.Name} has {layer.Length} entries");
        }
        long width = values.BytesPerValue();
        long payload = encoding switch
        {
            LayerEncoding.Dense => width * layer.Length,
            LayerEncoding.Csr32 => width * count + 4L * count + 4L * (layer.Rows + 1),
            LayerEncoding.Csr16 => width * count + 4L * ((count + 1L) / 2) + 4L * (layer.Rows + 1),
            LayerEncoding.Bitmap => width * count + 4L * ((layer.Length + 31L) / 32),
            _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "unknown layer encoding"),
        };
        return Header(encoding) + payload;
    }

    /// <summary>True when <paramref name="encoding"/> can carry <paramref name="layer"/> (16-bit columns need a row of at most 65,536).</summary>
    public static bool Fits(LayerEncoding encoding, LayerSpec layer) =>
        encoding != LayerEncoding.Csr16 || layer.Columns <= 1 << 16;

    /// <summary>
    /// The layout a client sends <paramref name="count"/> kept entries of <paramref name="layer"/>
    /// in: dense when everything is kept; else CSR32 under <see cref="UplinkEncodingMode.Csr32"/>,
    /// or under <see cref="UplinkEncodingMode.Auto"/> the one of fewest <see cref="Encoded"/> bytes
    /// with values <paramref name="values"/> wide (ties: the earlier in tag order).
    /// </summary>
    public static LayerEncoding Choose(UplinkEncodingMode mode, LayerSpec layer, int count, UploadValues values = UploadValues.Fp32)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (count == layer.Length)
        {
            return LayerEncoding.Dense;
        }
        if (mode == UplinkEncodingMode.Csr32)
        {
            return LayerEncoding.Csr32;
        }
        var best = LayerEncoding.Dense;
        foreach (var encoding in LayerEncodings.All)
        {
            if (Fits(encoding, layer) && Encoded(encoding, layer, count, values) < Encoded(best, layer, count, values))
            {
                best = encoding;
            }
        }
        return best;
    }

    /// <summary>Bytes as sent by any client under <paramref name="settings"/> (its <see cref="UplinkSettings.Encoding"/> mode and value width), headers included.</summary>
    public static long ExpectedOnWire(ModelLayout layout, UplinkSettings settings)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(settings);
        return layout.Layers.Sum(l =>
        {
            int count = l.Sparse ? settings.KeepCount(l.Length) : l.Length;
            var values = settings.ValuesOf(l);
            return Encoded(Choose(settings.Encoding, l, count, values), l, count, values);
        });
    }
}
