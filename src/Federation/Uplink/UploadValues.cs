using ZeroFL.Kernels;

namespace ZeroFL.Federation.Uplink;

/// <summary>
/// The width the values of a top-K slice travel in (<see cref="UplinkSettings.Values"/>). Only the
/// slices of the sparse layers under the ZeroFL strategies use it, in whatever layout they go;
/// layers sent whole as such (the model's dense layers, every layer under Dense and Swat) are fp32.
/// </summary>
public enum UploadValues
{
    /// <summary>fp32, 4 B per value: lossless, the paper's.</summary>
    Fp32,

    /// <summary>IEEE fp16, 2 B per value, rounded to nearest even (|x| of 65520 or more overflows to infinity).</summary>
    Fp16,

    /// <summary>bfloat16, 2 B per value: fp32's range, 8 significant bits.</summary>
    Bf16,
}

/// <summary>Names, sizes and formats of <see cref="UploadValues"/>.</summary>
public static class UploadValueWidths
{
    /// <summary>The names of the widths: "fp32", "fp16", "bf16".</summary>
    public static IReadOnlyList<string> Names { get; } = ["fp32", "fp16", "bf16"];

    /// <summary>"fp32", "fp16" or "bf16".</summary>
    public static string Name(this UploadValues values) => values switch
    {
        UploadValues.Fp32 => "fp32",
        UploadValues.Fp16 => "fp16",
        UploadValues.Bf16 => "bf16",
        _ => throw new ArgumentOutOfRangeException(nameof(values), values, "unknown upload value width"),
    };

    /// <summary>Parses a name of <see cref="Names"/>.</summary>
    public static bool TryParse(string? name, out UploadValues values)
    {
        (bool ok, values) = name switch
        {
            "fp32" => (true, UploadValues.Fp32),
            "fp16" => (true, UploadValues.Fp16),
            "bf16" => (true, UploadValues.Bf16),
            _ => (false, UploadValues.Fp32),
        };
        return ok;
    }

    /// <summary>Bytes of one value: 4 for fp32, 2 for the 16-bit widths.</summary>
    public static int BytesPerValue(this UploadValues values) => values == UploadValues.Fp32 ? 4 : 2;

    /// <summary>The device format of a 16-bit width (fp32 has none).</summary>
    public static Float16Format Format(this UploadValues values) => values switch
    {
        UploadValues.Fp16 => Float16Format.Fp16,
        UploadValues.Bf16 => Float16Format.Bf16,
        _ => throw new ArgumentOutOfRangeException(nameof(values), values, "fp32 values are not 16-bit"),
    };
}
