using ILGPU;
using ILGPU.Runtime;

namespace ZeroFL.Kernels;

/// <summary>A 16-bit floating-point format a float can be sent in.</summary>
public enum Float16Format
{
    /// <summary>IEEE 754 binary16: 1 sign, 5 exponent, 10 fraction bits; largest finite 65504, subnormals down to 2^-24.</summary>
    Fp16,

    /// <summary>bfloat16: the top 16 bits of an fp32 (1 sign, 8 exponent, 7 fraction bits); fp32's range.</summary>
    Bf16,
}

/// <summary>
/// Conversion of fp32 values to and from 16-bit bit patterns on the device (one <c>ushort</c> per
/// value). fp32 to 16 bits rounds to nearest, ties to even, as IEEE 754 does: a value beyond the
/// format's range becomes infinity (fp16: |x| &gt;= 65520), fp16 keeps subnormals (2^-24 steps below
/// 2^-14), bf16 keeps fp32's; a NaN becomes the quiet NaN of its sign (0x7E00 / 0x7FC0, sign bit
/// kept). 16 bits to fp32 is exact. Both directions are integer operations on the bit patterns, so
/// every backend gives the same bits whatever its float modes (flush-to-zero, relaxed math).
/// CPU reference: <see cref="Reference.Float16Reference"/> (System.Half for fp16).
/// </summary>
public sealed class Float16Kernels
{
    private readonly KernelLaunch launch;
    private readonly Action<Index1D, ArrayView<float>, ArrayView<ushort>, int, int, int> encode;
    private readonly Action<Index1D, ArrayView<ushort>, ArrayView<float>, int, int, int> decode;

    /// <summary>Loads the kernels once for the accelerator of <paramref name="launch"/>.</summary>
    public Float16Kernels(KernelLaunch launch)
    {
        this.launch = launch;
        encode = launch.Load<ArrayView<float>, ArrayView<ushort>, int, int, int>(EncodeKernel);
        decode = launch.Load<ArrayView<ushort>, ArrayView<float>, int, int, int>(DecodeKernel);
    }

    /// <summary>bits[i] = <paramref name="values"/>[i] rounded to <paramref name="format"/>, for every value (bits holds at least as many).</summary>
    public void Encode(ArrayView<float> values, ArrayView<ushort> bits, Float16Format format)
    {
        int count = HostCheck.Count(values.Length, "float16 encode");
        HostCheck.Length(bits, count, "float16 encode bits");
        if (count == 0)
        {
            return;
        }
        int t = launch.Threads(count);
        encode(t, values, bits, count, format == Float16Format.Bf16 ? 1 : 0, t);
    }

    /// <summary>values[i] = the fp32 of <paramref name="bits"/>[i] in <paramref name="format"/>, for every pattern (values holds at least as many).</summary>
    public void Decode(ArrayView<ushort> bits, ArrayView<float> values, Float16Format format)
    {
        int count = HostCheck.Count(bits.Length, "float16 decode");
        HostCheck.Length(values, count, "float16 decode values");
        if (count == 0)
        {
            return;
        }
        int t = launch.Threads(count);
        decode(t, bits, values, count, format == Float16Format.Bf16 ? 1 : 0, t);
    }

    /// <summary>The fp16 bit pattern nearest the fp32 of bit pattern <paramref name="x"/> (ties to even).</summary>
    internal static ushort ToFp16(uint x)
    {
        uint sign = (x >> 16) & 0x8000u;
        uint a = x & 0x7FFFFFFFu;
        if (a > 0x7F800000u)
        {
            return (ushort)(sign | 0x7E00u); // NaN
        }
        if (a >= 0x477FF000u)
        {
            return (ushort)(sign | 0x7C00u); // 65520 and up (infinity included) round to infinity
        }
        if (a >= 0x38800000u)
        {
            // Normal: rebias the exponent (127 -> 15), add the rounding bias (half an fp16 ulp less
            // one, plus the kept bit for ties to even); a carry moves into the exponent.
            uint odd = (a >> 13) & 1u;
            return (ushort)(sign | ((a - 0x38000000u + 0x0FFFu + odd) >> 13));
        }
        if (a <= 0x33000000u)
        {
            return (ushort)sign; // at most 2^-25, half the smallest subnormal: rounds to (signed) zero
        }
        // Subnormal: the significand with its leading 1, in units of 2^-24.
        int exponent = (int)(a >> 23);
        uint significand = (a & 0x007FFFFFu) | 0x00800000u;
        int shift = 126 - exponent; // 14 to 24
        uint quotient = significand >> shift;
        uint remainder = significand & ((1u << shift) - 1u);
        uint half = 1u << (shift - 1);
        if (remainder > half || (remainder == half && (quotient & 1u) != 0))
        {
            quotient++; // may reach 0x400, the smallest normal, which is its right encoding
        }
        return (ushort)(sign | quotient);
    }

    /// <summary>The bf16 bit pattern nearest the fp32 of bit pattern <paramref name="x"/> (ties to even).</summary>
    internal static ushort ToBf16(uint x)
    {
        if ((x & 0x7FFFFFFFu) > 0x7F800000u)
        {
            return (ushort)(((x >> 16) & 0x8000u) | 0x7FC0u); // NaN
        }
        return (ushort)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
    }

    /// <summary>The fp32 bit pattern of fp16 bit pattern <paramref name="h"/> (exact).</summary>
    internal static uint FromFp16(uint h)
    {
        uint sign = (h & 0x8000u) << 16;
        uint exponent = (h >> 10) & 0x1Fu;
        uint fraction = h & 0x03FFu;
        if (exponent == 0x1Fu)
        {
            return sign | 0x7F800000u | (fraction << 13);
        }
        if (exponent != 0)
        {
            return sign | ((exponent + 112u) << 23) | (fraction << 13);
        }
        if (fraction == 0)
        {
            return sign;
        }
        // Subnormal: shift the leading 1 up to the implicit bit, one exponent step per shift.
        uint biased = 113u;
        while ((fraction & 0x0400u) == 0)
        {
            fraction <<= 1;
            biased--;
        }
        return sign | (biased << 23) | ((fraction & 0x03FFu) << 13);
    }

    /// <summary>The fp32 bit pattern of bf16 bit pattern <paramref name="h"/>: its top half.</summary>
    internal static uint FromBf16(uint h) => (h & 0xFFFFu) << 16;

    [GpuKernel]
    internal static void EncodeKernel(Index1D index, ArrayView<float> values, ArrayView<ushort> bits, int count, int bf16, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            uint x = Interop.FloatAsInt(values[i]);
            bits[i] = bf16 != 0 ? ToBf16(x) : ToFp16(x);
        }
    }

    [GpuKernel]
    internal static void DecodeKernel(Index1D index, ArrayView<ushort> bits, ArrayView<float> values, int count, int bf16, int stride)
    {
        for (int i = index; i < count; i += stride)
        {
            uint h = bits[i];
            values[i] = Interop.IntAsFloat(bf16 != 0 ? FromBf16(h) : FromFp16(h));
        }
    }
}
