namespace ZeroFL.Kernels.Reference;

/// <summary>
/// Plain reference for <see cref="Float16Kernels"/>: fp16 through .NET's <see cref="Half"/> (IEEE
/// binary16, round to nearest even), bf16 by choosing the nearer of the two bf16 values around x
/// (ties to the even one). A NaN becomes the quiet NaN of its sign (0x7E00 / 0x7FC0 with the sign bit).
/// </summary>
public static class Float16Reference
{
    /// <summary>The 16-bit pattern of <paramref name="value"/> in <paramref name="format"/>.</summary>
    public static ushort Encode(float value, Float16Format format) =>
        format == Float16Format.Bf16 ? ToBf16(value) : ToFp16(value);

    /// <summary>The fp32 of the 16-bit pattern <paramref name="bits"/> in <paramref name="format"/>.</summary>
    public static float Decode(ushort bits, Float16Format format) =>
        format == Float16Format.Bf16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Every value of <paramref name="values"/> encoded.</summary>
    public static ushort[] Encode(ReadOnlySpan<float> values, Float16Format format)
    {
        var bits = new ushort[values.Length];
        for (int i = 0; i < bits.Length; i++)
        {
            bits[i] = Encode(values[i], format);
        }
        return bits;
    }

    /// <summary>Every pattern of <paramref name="bits"/> decoded.</summary>
    public static float[] Decode(ReadOnlySpan<ushort> bits, Float16Format format)
    {
        var values = new float[bits.Length];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Decode(bits[i], format);
        }
        return values;
    }

    /// <summary>True when <paramref name="bits"/> is an infinity or a NaN in <paramref name="format"/> (all exponent bits set).</summary>
    public static bool IsNonFinite(ushort bits, Float16Format format) => format == Float16Format.Bf16
        ? (bits & 0x7F80) == 0x7F80
        : (bits & 0x7C00) == 0x7C00;

    /// <summary>The value rounded through <paramref name="format"/> and back: what the server gets.</summary>
    public static float Round(float value, Float16Format format) => Decode(Encode(value, format), format);

    private static ushort ToFp16(float value)
    {
        ushort sign = (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16 & 0x8000);
        return float.IsNaN(value) ? (ushort)(sign | 0x7E00) : BitConverter.HalfToUInt16Bits((Half)value);
    }

    private static ushort ToBf16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16 & 0x8000) | 0x7FC0);
        }
        // The bf16 values just below and just above |x| (the one above may be infinity): the
        // truncation and the next bf16 up. Compared in double, where both and x are exact.
        ushort down = (ushort)(bits >> 16);
        uint exponent = bits >> 23 & 0xFF;
        if ((bits & 0xFFFF) == 0 || exponent == 0xFF)
        {
            return down; // exactly representable, or an infinity
        }
        double magnitude = Math.Abs((double)value);
        double low = Math.Abs((double)BitConverter.UInt32BitsToSingle((uint)down << 16));
        double ulp = Math.ScaleB(1.0, exponent == 0 ? -133 : (int)exponent - 134);
        double high = low + ulp;
        bool up = magnitude - low > high - magnitude || (magnitude - low == high - magnitude && (down & 1) == 1);
        return up ? (ushort)(down + 1) : down;
    }
}
