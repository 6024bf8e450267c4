namespace ZeroFL.Federation.Uplink;

/// <summary>
/// The layout one layer travels in. Every layout is exact: the server rebuilds the same entries
/// from each. A sparse layout carries the layer's kept entries over its 2-D view
/// (<see cref="LayerSpec"/>), values as fp32 in row-major order.
/// </summary>
public enum LayerEncoding
{
    /// <summary>Every value in order (4 B each); a sparse layer sent this way is zero outside its kept entries.</summary>
    Dense,

    /// <summary>CSR, the paper's format: values, 32-bit column indices, 32-bit row pointers.</summary>
    Csr32,

    /// <summary>CSR with 16-bit column indices (a row of at most 65,536 entries), two per 32-bit word; 32-bit row pointers.</summary>
    Csr16,

    /// <summary>One bit per entry of the layer (kept or not), in 32-bit words, plus the kept values.</summary>
    Bitmap,
}

/// <summary>How a client picks each sparse layer's <see cref="LayerEncoding"/>.</summary>
public enum UplinkEncodingMode
{
    /// <summary>The smallest exact layout of the layer's kept entries, dense included.</summary>
    Auto,

    /// <summary>Always <see cref="LayerEncoding.Csr32"/> (the paper's bytes), whole when everything is kept.</summary>
    Csr32,
}

/// <summary>Names of the layouts and modes as the CLI and the run files write them.</summary>
public static class LayerEncodings
{
    /// <summary>Every layout, in tag order.</summary>
    public static IReadOnlyList<LayerEncoding> All { get; } = Enum.GetValues<LayerEncoding>();

    /// <summary>"dense", "csr32", "csr16" or "bitmap".</summary>
    public static string Name(this LayerEncoding encoding) => encoding switch
    {
        LayerEncoding.Dense => "dense",
        LayerEncoding.Csr32 => "csr32",
        LayerEncoding.Csr16 => "csr16",
        LayerEncoding.Bitmap => "bitmap",
        _ => throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "unknown layer encoding"),
    };

    /// <summary>The names of the modes: "auto", "csr32".</summary>
    public static IReadOnlyList<string> ModeNames { get; } = ["auto", "csr32"];

    /// <summary>Parses a mode name (<see cref="ModeNames"/>).</summary>
    public static bool TryParseMode(string? name, out UplinkEncodingMode mode)
    {
        (bool ok, mode) = name switch
        {
            "auto" => (true, UplinkEncodingMode.Auto),
            "csr32" => (true, UplinkEncodingMode.Csr32),
            _ => (false, UplinkEncodingMode.Auto),
        };
        return ok;
    }
}
