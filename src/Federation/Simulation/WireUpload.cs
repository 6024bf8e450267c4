using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// One layer as it travels from a client to the server, in one of the <see cref="LayerEncoding"/>s
/// (layouts over the layer's 2-D view, <see cref="LayerSpec"/>): dense (only <see cref="Values"/>),
/// CSR with 32-bit columns (<see cref="RowPointers"/>, <see cref="Columns"/>), CSR with 16-bit
/// columns (<see cref="RowPointers"/>, <see cref="Columns16"/>) or a bitmap (<see cref="Bitmap"/>).
/// <see cref="Encoding"/> is the tag that travels with it (by default the layout its arrays make).
/// The values are fp32 in <see cref="Values"/>, or, when <see cref="ValueFormat"/> says fp16 or
/// bf16, their 16-bit patterns in <see cref="Values16"/> (<see cref="Values"/> then empty); the tag
/// byte carries the value width too. Nothing here is trusted until <see cref="WireValidator"/> says so.
/// </summary>
/// <param name="Values">The fp32 values: [length] when dense, else [entries] in row-major order; empty when the values are 16-bit.</param>
/// <param name="RowPointers">CSR row pointers [rows + 1] (both CSR layouts).</param>
/// <param name="Columns">32-bit column indices [entries] (CSR32).</param>
/// <param name="Columns16">16-bit column indices, two per int, entry 2i in the low half of word i [ceil(entries / 2)] (CSR16).</param>
/// <param name="Bitmap">Kept positions, flat index i at bit i % 32 of word i / 32 [ceil(length / 32)] (bitmap).</param>
public sealed record WireLayer(float[] Values, int[]? RowPointers = null, int[]? Columns = null, int[]? Columns16 = null, int[]? Bitmap = null)
{
    /// <summary>The layout tag.</summary>
    public LayerEncoding Encoding { get; init; } =
        Bitmap is not null ? LayerEncoding.Bitmap
        : Columns16 is not null ? LayerEncoding.Csr16
        : RowPointers is not null ? LayerEncoding.Csr32
        : LayerEncoding.Dense;

    /// <summary>The width of the values: fp32 (in <see cref="Values"/>) or a 16-bit one (in <see cref="Values16"/>).</summary>
    public UploadValues ValueFormat { get; init; } = UploadValues.Fp32;

    /// <summary>The 16-bit patterns of the values (fp16 or bf16, as <see cref="ValueFormat"/> says), in the order of <see cref="Values"/>; null for fp32.</summary>
    public ushort[]? Values16 { get; init; }

    /// <summary>Entries carried: the length of whichever value array the width uses.</summary>
    public int Count => ValueFormat == UploadValues.Fp32 ? Values.Length : Values16?.Length ?? 0;

    /// <summary>The layout and, for 16-bit values, their width, as summary.json names them: "bitmap", "bitmap+fp16".</summary>
    public string LayoutName => ValueFormat == UploadValues.Fp32 ? Encoding.Name() : $"{Encoding.Name()}+{ValueFormat.Name()}";

    /// <summary>The values as fp32 (16-bit ones decoded exactly).</summary>
    public float[] DecodedValues() => ValueFormat == UploadValues.Fp32
        ? Values
        : Float16Reference.Decode(Values16 ?? [], ValueFormat.Format());

    /// <summary>True when some value is an infinity or a NaN (in its own width: an fp16 overflow is infinite).</summary>
    public bool HasNonFiniteValue()
    {
        if (ValueFormat == UploadValues.Fp32)
        {
            return Values.Any(v => !float.IsFinite(v));
        }
        var format = ValueFormat.Format();
        return (Values16 ?? []).Any(h => Float16Reference.IsNonFinite(h, format));
    }

    /// <summary>True when sent as one of the CSR layouts.</summary>
    public bool IsCsr => Encoding is LayerEncoding.Csr32 or LayerEncoding.Csr16;

    /// <summary>True when sent as a sparse layout (CSR or bitmap).</summary>
    public bool IsSparse => Encoding != LayerEncoding.Dense;

    /// <summary>Payload bytes as sent: 4 B per fp32 value, 2 B per 16-bit value, 4 B per int of column indices, row pointers and bitmap.</summary>
    public long PayloadBytes => 4L * Values.Length + 2L * (Values16?.Length ?? 0)
        + 4L * ((Columns?.Length ?? 0) + (Columns16?.Length ?? 0) + (RowPointers?.Length ?? 0) + (Bitmap?.Length ?? 0));

    /// <summary>Bytes as sent: the header (<see cref="UplinkBytes.Header"/>) and the payload.</summary>
    public long Bytes => UplinkBytes.Header(Encoding) + PayloadBytes;
}

/// <summary>A client's upload on the wire: its example count (FedAvg weight), the strategy, one <see cref="WireLayer"/> per layout layer.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="ExampleCount">n_k, the client's training examples.</param>
/// <param name="Strategy">The uplink strategy (values are differences for the diff strategies).</param>
/// <param name="Layers">One entry per layer of the model layout, in order.</param>
public sealed record WireUpload(int ClientId, long ExampleCount, UplinkStrategy Strategy, IReadOnlyList<WireLayer> Layers)
{
    /// <summary>Bytes as sent (every layer's header and payload).</summary>
    public long Bytes => Layers.Sum(l => l.Bytes);

    /// <summary>Bytes of the layers' payloads (no headers): under CSR32 the paper's count.</summary>
    public long PayloadBytes => Layers.Sum(l => l.PayloadBytes);
}

/// <summary>A malformed upload: the server rejects it and records the client as failed.</summary>
public sealed class MalformedUploadException(string message) : Exception(message);

/// <summary>
/// Checks an upload against the model layout on the host, before anything of it reaches device
/// memory: layer count, a known layout tag with exactly its arrays, the value width the settings
/// give the layer (<see cref="UplinkSettings.ValuesOf"/>) with only its value array, lengths,
/// finite values (16-bit ones in their own format), the
/// entries a sparse layer may carry (at most the K of the settings: entries of a sparse layout,
/// non-zero values of a dense one), and per layout its structure: CSR row pointers start at 0,
/// never decrease and end at the entry count, columns lie in the row and increase strictly within
/// it (16-bit columns: a row of at most 65,536, an odd count's unused half 0); a bitmap has one bit
/// per entry of the layer, zero padding bits, and as many set bits as values. Dense layers must be
/// sent dense.
/// </summary>
public static class WireValidator
{
    /// <summary>Throws <see cref="MalformedUploadException"/> naming the first problem found.</summary>
    public static void Validate(ModelLayout layout, WireUpload upload, UplinkSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var expected = settings.Strategy;
        if (upload.Strategy != expected)
        {
            throw new MalformedUploadException($"client {upload.ClientId}: strategy {upload.Strategy.Name()} where {expected.Name()} was asked for");
        }
        if (upload.ExampleCount <= 0)
        {
            throw new MalformedUploadException($"client {upload.ClientId}: example count {upload.ExampleCount} is not positive");
        }
        if (upload.Layers is null || upload.Layers.Count != layout.Layers.Count)
        {
            throw new MalformedUploadException($"client {upload.ClientId}: {upload.Layers?.Count ?? 0} layers, the model has {layout.Layers.Count}");
        }
        for (int l = 0; l < layout.Layers.Count; l++)
        {
            var spec = layout.Layers[l];
            int allowed = spec.Sparse && expected.SparsifiesUpload() ? settings.KeepCount(spec.Length) : spec.Length;
            string? problem = Check(spec, upload.Layers[l], allowed, settings.ValuesOf(spec));
            if (problem is not null)
            {
                throw new MalformedUploadException($"client {upload.ClientId}, layer {layout.Layers[l].Name}: {problem}");
            }
        }
    }

    /// <summary>The upload, validated against <paramref name="settings"/>, as the host reference's <see cref="ClientUpload"/> (for tests and analyses).</summary>
    public static ClientUpload ToClientUpload(ModelLayout layout, WireUpload upload, UplinkSettings settings)
    {
        Validate(layout, upload, settings);
        var layers = new List<LayerUpload>();
        for (int l = 0; l < layout.Layers.Count; l++)
        {
            var spec = layout.Layers[l];
            var wire = upload.Layers[l];
            var values = wire.DecodedValues();
            if (wire.Encoding == LayerEncoding.Dense)
            {
                layers.Add(LayerUpload.Whole(spec, values));
                continue;
            }
            layers.Add(LayerUpload.Slice(spec, Positions(spec, wire), values));
        }
        return new ClientUpload(upload.Strategy, upload.ExampleCount, layers);
    }

    /// <summary>The flat positions of a validated sparse layer's entries, in order.</summary>
    private static int[] Positions(LayerSpec spec, WireLayer wire)
    {
        if (wire.Encoding == LayerEncoding.Bitmap)
        {
            var set = new List<int>(wire.Count);
            for (int i = 0; i < spec.Length; i++)
            {
                if ((wire.Bitmap![i >> 5] >>> (i & 31) & 1) != 0)
                {
                    set.Add(i);
                }
            }
            return set.ToArray();
        }
        var positions = new int[wire.Count];
        for (int r = 0; r < spec.Rows; r++)
        {
            for (int j = wire.RowPointers![r]; j < wire.RowPointers[r + 1]; j++)
            {
                positions[j] = r * spec.Columns + Column(wire, j);
            }
        }
        return positions;
    }

    /// <summary>Column index j of a CSR layer (either width).</summary>
    private static int Column(WireLayer wire, int j) => wire.Columns16 is { } packed
        ? (packed[j >> 1] >>> (16 * (j & 1))) & 0xFFFF
        : wire.Columns![j];

    private static string? Check(LayerSpec spec, WireLayer? wire, int allowed, UploadValues width)
    {
        if (wire?.Values is null)
        {
            return "missing";
        }
        string? problem = CheckValues(wire, width);
        if (problem is not null)
        {
            return problem;
        }
        int count = wire.Count;
        var encoding = wire.Encoding;
        if (!Enum.IsDefined(encoding))
        {
            return $"unknown layout tag {(int)encoding}";
        }
        string name = encoding.Name();
        if ((wire.RowPointers is not null) != (encoding is LayerEncoding.Csr32 or LayerEncoding.Csr16)
            || (wire.Columns is not null) != (encoding == LayerEncoding.Csr32)
            || (wire.Columns16 is not null) != (encoding == LayerEncoding.Csr16)
            || (wire.Bitmap is not null) != (encoding == LayerEncoding.Bitmap))
        {
            return $"the arrays sent do not match the {name} layout";
        }
        if (encoding == LayerEncoding.Dense)
        {
            if (count != spec.Length)
            {
                return $"{count} values for a layer of {spec.Length}";
            }
            int nonZeros = wire.ValueFormat == UploadValues.Fp32 ? wire.Values.Count(v => v != 0f) : wire.Values16!.Count(h => (h & 0x7FFF) != 0);
            return nonZeros > allowed ? $"{nonZeros} non-zero values sent dense where the uplink settings allow at most {allowed} entries" : null;
        }
        if (!spec.Sparse)
        {
            return $"a dense layer must be sent dense, not {name}";
        }
        if (count > allowed)
        {
            return $"{count} entries where the uplink settings allow at most {allowed}";
        }
        return encoding == LayerEncoding.Bitmap ? CheckBitmap(spec, wire, count) : CheckCsr(spec, wire, count);
    }

    /// <summary>The value width is the one the settings give the layer, only its array is sent, and every value is finite.</summary>
    private static string? CheckValues(WireLayer wire, UploadValues width)
    {
        var format = wire.ValueFormat;
        if (!Enum.IsDefined(format))
        {
            return $"unknown value width tag {(int)format}";
        }
        if (format != width)
        {
            return $"values sent as {format.Name()} where the uplink settings ask for {width.Name()}";
        }
        if (format == UploadValues.Fp32)
        {
            if (wire.Values16 is not null)
            {
                return "16-bit values sent with fp32 ones";
            }
            foreach (float v in wire.Values)
            {
                if (!float.IsFinite(v))
                {
                    return $"value {v} is not finite";
                }
            }
            return null;
        }
        if (wire.Values16 is null || wire.Values.Length != 0)
        {
            return $"the value arrays sent do not match {format.Name()} values";
        }
        foreach (ushort h in wire.Values16)
        {
            if (Float16Reference.IsNonFinite(h, format.Format()))
            {
                return $"value {Float16Reference.Decode(h, format.Format())} (0x{h:X4} in {format.Name()}) is not finite";
            }
        }
        return null;
    }

    private static string? CheckBitmap(LayerSpec spec, WireLayer wire, int count)
    {
        var bitmap = wire.Bitmap!;
        int words = (int)((spec.Length + 31L) / 32);
        if (bitmap.Length != words)
        {
            return $"{bitmap.Length} bitmap words for a layer of {spec.Length} entries (expected {words})";
        }
        int tail = spec.Length & 31;
        if (tail != 0 && bitmap[^1] >>> tail != 0)
        {
            return "bitmap padding bits past the layer are set";
        }
        long set = 0;
        foreach (int word in bitmap)
        {
            set += System.Numerics.BitOperations.PopCount((uint)word);
        }
        return set != count ? $"bitmap marks {set} entries but {count} values were sent" : null;
    }

    private static string? CheckCsr(LayerSpec spec, WireLayer wire, int count)
    {
        var rows = wire.RowPointers!;
        if (rows.Length != spec.Rows + 1)
        {
            return $"{rows.Length} row pointers for {spec.Rows} rows";
        }
        if (wire.Columns16 is { } packed)
        {
            if (!UplinkBytes.Fits(LayerEncoding.Csr16, spec))
            {
                return $"16-bit column indices for rows of {spec.Columns}";
            }
            int words = (int)((count + 1L) / 2);
            if (packed.Length != words)
            {
                return $"{packed.Length} words of 16-bit column indices for {count} values (expected {words})";
            }
            if (count % 2 == 1 && packed[^1] >>> 16 != 0)
            {
                return "the unused half of the last 16-bit column word is not 0";
            }
        }
        else if (wire.Columns!.Length != count)
        {
            return $"{wire.Columns.Length} column indices for {count} values";
        }
        if (rows[0] != 0 || rows[spec.Rows] != count)
        {
            return $"row pointers run from {rows[0]} to {rows[spec.Rows]}, expected 0 to {count}";
        }
        for (int r = 0; r < spec.Rows; r++)
        {
            if (rows[r + 1] < rows[r])
            {
                return $"row pointer {r + 1} ({rows[r + 1]}) is below row pointer {r} ({rows[r]})";
            }
            if (rows[r + 1] > count)
            {
                return $"row pointer {r + 1} ({rows[r + 1]}) is past the {count} entries";
            }
            for (int j = rows[r]; j < rows[r + 1]; j++)
            {
                int c = Column(wire, j);
                if ((uint)c >= (uint)spec.Columns)
                {
                    return $"column index {c} outside [0, {spec.Columns})";
                }
                if (j > rows[r] && c <= Column(wire, j - 1))
                {
                    return $"column indices not increasing in row {r}";
                }
            }
        }
        return null;
    }
}
