using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// One layer as it travels from a client to the server: either every value in order
/// (<see cref="RowPointers"/> and <see cref="Columns"/> null) or CSR over the layer's 2-D view
/// (<see cref="LayerSpec"/>). Nothing here is trusted until <see cref="WireValidator"/> says so.
/// </summary>
/// <param name="Values">The values: [length] when whole, [non-zeros] when CSR.</param>
/// <param name="RowPointers">CSR row pointers [rows + 1], or null when whole.</param>
/// <param name="Columns">CSR column indices [non-zeros], or null when whole.</param>
public sealed record WireLayer(float[] Values, int[]? RowPointers = null, int[]? Columns = null)
{
    /// <summary>True when sent as CSR.</summary>
    public bool IsCsr => RowPointers is not null;

    /// <summary>Bytes on the wire: 4 B per value, plus 4 B per column index and row pointer when CSR.</summary>
    public long Bytes => 4L * Values.Length + 4L * (Columns?.Length ?? 0) + 4L * (RowPointers?.Length ?? 0);
}

/// <summary>A client's upload on the wire: its example count (FedAvg weight), the strategy, one <see cref="WireLayer"/> per layout layer.</summary>
/// <param name="ClientId">The client.</param>
/// <param name="ExampleCount">n_k, the client's training examples.</param>
/// <param name="Strategy">The uplink strategy (values are differences for the diff strategies).</param>
/// <param name="Layers">One entry per layer of the model layout, in order.</param>
public sealed record WireUpload(int ClientId, long ExampleCount, UplinkStrategy Strategy, IReadOnlyList<WireLayer> Layers)
{
    /// <summary>Bytes on the wire.</summary>
    public long Bytes => Layers.Sum(l => l.Bytes);
}

/// <summary>A malformed upload: the server rejects it and records the client as failed.</summary>
public sealed class MalformedUploadException(string message) : Exception(message);

/// <summary>
/// Checks an upload against the model layout on the host, before anything of it reaches device
/// memory: layer count, lengths, CSR structure (row pointers start at 0, never decrease, end at the
/// entry count; columns in range and strictly increasing within a row), the entry count a sparse
/// layer may carry (at most the K of the settings) and finite values.
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
            string? problem = Check(spec, upload.Layers[l], allowed);
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
            if (!wire.IsCsr)
            {
                layers.Add(LayerUpload.Whole(spec, wire.Values));
                continue;
            }
            var positions = new int[wire.Values.Length];
            for (int r = 0; r < spec.Rows; r++)
            {
                for (int j = wire.RowPointers![r]; j < wire.RowPointers[r + 1]; j++)
                {
                    positions[j] = r * spec.Columns + wire.Columns![j];
                }
            }
            layers.Add(LayerUpload.Slice(spec, positions, wire.Values));
        }
        return new ClientUpload(upload.Strategy, upload.ExampleCount, layers);
    }

    private static string? Check(LayerSpec spec, WireLayer? wire, int allowed)
    {
        if (wire?.Values is null)
        {
            return "missing";
        }
        foreach (float v in wire.Values)
        {
            if (!float.IsFinite(v))
            {
                return $"value {v} is not finite";
            }
        }
        if (!wire.IsCsr)
        {
            return wire.Columns is not null ? "column indices without row pointers"
                : wire.Values.Length != spec.Length ? $"{wire.Values.Length} values for a layer of {spec.Length}" : null;
        }
        if (!spec.Sparse)
        {
            return "a dense layer must be sent whole";
        }
        var rows = wire.RowPointers!;
        var columns = wire.Columns;
        if (columns is null)
        {
            return "row pointers without column indices";
        }
        if (rows.Length != spec.Rows + 1)
        {
            return $"{rows.Length} row pointers for {spec.Rows} rows";
        }
        if (columns.Length != wire.Values.Length)
        {
            return $"{columns.Length} column indices for {wire.Values.Length} values";
        }
        if (wire.Values.Length > allowed)
        {
            return $"{wire.Values.Length} entries where the uplink settings allow at most {allowed}";
        }
        if (rows[0] != 0 || rows[spec.Rows] != wire.Values.Length)
        {
            return $"row pointers run from {rows[0]} to {rows[spec.Rows]}, expected 0 to {wire.Values.Length}";
        }
        for (int r = 0; r < spec.Rows; r++)
        {
            if (rows[r + 1] < rows[r])
            {
                return $"row pointer {r + 1} ({rows[r + 1]}) is below row pointer {r} ({rows[r]})";
            }
            for (int j = rows[r]; j < rows[r + 1]; j++)
            {
                int c = columns[j];
                if ((uint)c >= (uint)spec.Columns)
                {
                    return $"column index {c} outside [0, {spec.Columns})";
                }
                if (j > rows[r] && c <= columns[j - 1])
                {
                    return $"column indices not increasing in row {r}";
                }
            }
        }
        return null;
    }
}
