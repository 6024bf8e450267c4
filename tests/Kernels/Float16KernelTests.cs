using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>The device conversions to and from fp16 / bf16 against the host reference, bit for bit.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class Float16KernelTests(string device) : DeviceTest(device)
{
    /// <summary>
    /// Every finite value of the format and both signs of: the value, the midpoint to the next one
    /// (a tie), and the floats just below and above that midpoint; the edges of the range
    /// (overflow, subnormals, underflow); infinities, NaNs; and random fp32 bit patterns.
    /// </summary>
    private static float[] Inputs(Float16Format format)
    {
        var inputs = new List<float>();
        ushort largest = format == Float16Format.Bf16 ? (ushort)0x7F7F : (ushort)0x7BFF;
        for (int h = 0; h <= largest; h++)
        {
            float value = Float16Reference.Decode((ushort)h, format);
            float next = Float16Reference.Decode((ushort)(h + 1), format); // infinity after the largest
            float middle = float.IsInfinity(next)
                ? (float)(value + ((double)value - Float16Reference.Decode((ushort)(h - 1), format)) / 2)
                : (float)(((double)value + next) / 2);
            foreach (float x in new[] { value, middle, MathF.BitDecrement(middle), MathF.BitIncrement(middle) })
            {
                inputs.Add(x);
                inputs.Add(-x);
            }
        }
        inputs.AddRange([65504f, 65519.996f, 65520f, 65536f, float.MaxValue, -float.MaxValue, float.Epsilon, -float.Epsilon,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, -float.NaN,
            BitConverter.UInt32BitsToSingle(0x7F800001), BitConverter.UInt32BitsToSingle(0xFFBFFFFF), BitConverter.UInt32BitsToSingle(0x7FFFFFFF),
            BitConverter.UInt32BitsToSingle(0x33000000), BitConverter.UInt32BitsToSingle(0x33000001), BitConverter.UInt32BitsToSingle(0x387FFFFF),
            BitConverter.UInt32BitsToSingle(0x38800000), BitConverter.UInt32BitsToSingle(0x007FFFFF), BitConverter.UInt32BitsToSingle(0x7F7F8000)]);
        var random = new Random(format == Float16Format.Bf16 ? 16 : 61);
        for (int i = 0; i < 1 << 18; i++)
        {
            inputs.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(1L << 32)));
        }
        return inputs.ToArray();
    }

    [TestCase(Float16Format.Fp16)]
    [TestCase(Float16Format.Bf16)]
    public void EncodeRoundsLikeTheReferenceBitForBit(Float16Format format)
    {
        var inputs = Inputs(format);
        var bits = Upload(new ushort[inputs.Length + 1]);
        Device.Kernels.Float16.Encode(Upload(inputs), bits.SubView(0, inputs.Length), format);
        var actual = bits.Download(Device);
        var expected = Float16Reference.Encode(inputs, format);
        int mismatches = 0;
        string first = string.Empty;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (actual[i] != expected[i])
            {
                first = mismatches++ == 0 ? $"{inputs[i]:R} (0x{BitConverter.SingleToUInt32Bits(inputs[i]):X8}): 0x{actual[i]:X4}, expected 0x{expected[i]:X4}" : first;
            }
        }
        Assert.That(mismatches, Is.Zero, $"{mismatches} of {inputs.Length} differ; first {first}");
        Assert.That(actual[^1], Is.Zero, "nothing written past the values");
    }

    [TestCase(Float16Format.Fp16)]
    [TestCase(Float16Format.Bf16)]
    public void DecodeOfEveryPatternIsExact(Float16Format format)
    {
        var patterns = Enumerable.Range(0, 1 << 16).Select(h => (ushort)h).ToArray();
        var values = Upload(new float[patterns.Length]);
        Device.Kernels.Float16.Decode(Upload(patterns), values, format);
        var actual = Download(values);
        for (int h = 0; h < patterns.Length; h++)
        {
            float expected = Float16Reference.Decode((ushort)h, format);
            if (float.IsNaN(expected))
            {
                Assert.That(float.IsNaN(actual[h]), Is.True, $"0x{h:X4} is a NaN");
                continue;
            }
            Assert.That(BitConverter.SingleToUInt32Bits(actual[h]), Is.EqualTo(BitConverter.SingleToUInt32Bits(expected)), $"0x{h:X4} ({expected:R})");
            Assert.That(Float16Reference.Encode(actual[h], format), Is.EqualTo((ushort)h), $"0x{h:X4} round-trips");
        }
    }

    [Test]
    public void EmptyViewsAndShortTargetsAreCheckedOnTheHost()
    {
        var kernels = Device.Kernels.Float16;
        Assert.Throws<ArgumentException>(() => kernels.Encode(Upload(new float[4]), Upload(new ushort[3]), Float16Format.Fp16));
        Assert.Throws<ArgumentException>(() => kernels.Decode(Upload(new ushort[4]), Upload(new float[3]), Float16Format.Bf16));
        kernels.Encode(Upload(new float[1]).SubView(0, 0), Upload(new ushort[1]), Float16Format.Fp16);
    }
}

/// <summary>The host reference's roundings at the edges of each format.</summary>
public sealed class Float16ReferenceTests
{
    [TestCase(1f, 0x3C00)]
    [TestCase(-2f, 0xC000)]
    [TestCase(65504f, 0x7BFF)]
    [TestCase(65519.996f, 0x7BFF)]
    [TestCase(65520f, 0x7C00)] // the tie between 65504 and 65536 goes to the even one, which is infinity
    [TestCase(1e6f, 0x7C00)]
    [TestCase(6.1035156e-05f, 0x0400)] // 2^-14, the smallest normal
    [TestCase(5.9604645e-08f, 0x0001)] // 2^-24, the smallest subnormal
    [TestCase(2.9802322e-08f, 0x0000)] // 2^-25: a tie, to even (zero)
    [TestCase(2.9802326e-08f, 0x0001)] // just above 2^-25
    [TestCase(8.940697e-08f, 0x0002)] // 1.5 * 2^-24: a tie, to even (2)
    [TestCase(1.0004883f, 0x3C00)] // 1 + 2^-11: a tie, to even (1)
    [TestCase(1.0014648f, 0x3C02)] // 1 + 3 * 2^-11: a tie, to even (1 + 2^-9)
    public void Fp16(float value, int expected)
    {
        Assert.That(Float16Reference.Encode(value, Float16Format.Fp16), Is.EqualTo((ushort)expected));
    }

    [TestCase(1f, 0x3F80)]
    [TestCase(-1f, 0xBF80)]
    [TestCase(1.00390625f, 0x3F80)] // 1 + 2^-8: a tie, to even (1)
    [TestCase(1.01171875f, 0x3F82)] // 1 + 3 * 2^-8: a tie, to even
    [TestCase(1.0039064f, 0x3F81)] // the float just above the tie
    [TestCase(float.MaxValue, 0x7F80)] // above the largest bf16 by more than half a step: infinity
    [TestCase(3.3895314e38f, 0x7F7F)] // the largest bf16
    [TestCase(1e-45f, 0x0000)] // the smallest fp32 subnormal rounds to zero
    public void Bf16(float value, int expected)
    {
        Assert.That(Float16Reference.Encode(value, Float16Format.Bf16), Is.EqualTo((ushort)expected));
    }

    [Test]
    public void NaNsStayNaNsWithTheirSignAndInfinitiesStayInfinite()
    {
        float negativeNaN = BitConverter.UInt32BitsToSingle(0xFF800001);
        Assert.That(Float16Reference.Encode(float.NaN, Float16Format.Fp16) & 0x7E00, Is.EqualTo(0x7E00));
        Assert.That(Float16Reference.Encode(negativeNaN, Float16Format.Fp16), Is.EqualTo((ushort)0xFE00));
        Assert.That(Float16Reference.Encode(negativeNaN, Float16Format.Bf16), Is.EqualTo((ushort)0xFFC0), "not rounded up into infinity");
        Assert.That(Float16Reference.Encode(float.NegativeInfinity, Float16Format.Bf16), Is.EqualTo((ushort)0xFF80));
        foreach (var format in new[] { Float16Format.Fp16, Float16Format.Bf16 })
        {
            Assert.That(Float16Reference.IsNonFinite(Float16Reference.Encode(float.PositiveInfinity, format), format), Is.True);
            Assert.That(Float16Reference.IsNonFinite(Float16Reference.Encode(float.NaN, format), format), Is.True);
            Assert.That(Float16Reference.IsNonFinite(Float16Reference.Encode(1e4f, format), format), Is.False);
        }
    }
}
