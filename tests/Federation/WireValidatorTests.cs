using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Tests.Federation;

/// <summary>The server's host-side checks of each layout, on a layer whose length is not a whole number of bitmap words.</summary>
public sealed class WireValidatorTests
{
    // [3, 70]: 210 entries, 7 bitmap words with 14 padding bits; K = ceil(0.2 * 210) = 42.
    private static readonly ModelLayout Layout = new([new LayerSpec("w", [3, 70], true), new LayerSpec("b", [3], false)]);
    private static readonly UplinkSettings Settings = new(UplinkStrategy.TopKWeights, 0.9, 0.1);

    /// <summary>41 entries (odd, so 16-bit columns leave a half unused): every fifth position plus position 209.</summary>
    private static (int[] Rows, int[] Columns, float[] Values) Entries()
    {
        var positions = Enumerable.Range(0, 210).Where(i => i % 5 == 0 && i < 200).Append(209).ToArray();
        var dense = new float[210];
        foreach (int p in positions)
        {
            dense[p] = p + 1;
        }
        return CsrReference.Encode(dense, 3, 70);
    }

    private static WireUpload With(WireLayer layer) => new(0, 5, UplinkStrategy.TopKWeights, [layer, new WireLayer([1f, 2f, 3f])]);

    private static WireLayer Csr16()
    {
        var (rows, columns, values) = Entries();
        return new WireLayer(values, rows, Columns16: SparseFormatReference.PackColumns16(columns));
    }

    private static WireLayer Bitmap()
    {
        var (rows, columns, values) = Entries();
        return new WireLayer(values, Bitmap: SparseFormatReference.Bitmap(rows, columns, 3, 70));
    }

    [Test]
    public void EveryLayoutOfTheSameEntriesIsAcceptedAndDecodesTheSame()
    {
        var (rows, columns, values) = Entries();
        var dense = CsrReference.Decode(rows, columns, values, 3, 70);
        Assert.That(values, Has.Length.EqualTo(41));
        foreach (var layer in new[] { new WireLayer(values, rows, columns), Csr16(), Bitmap(), new WireLayer(dense) })
        {
            var decoded = WireValidator.ToClientUpload(Layout, With(layer), Settings);
            Assert.That(decoded.Layers[0].ToDense(), Is.EqualTo(dense), layer.Encoding.Name());
            Assert.That(layer.Bytes, Is.EqualTo(UplinkBytes.Encoded(layer.Encoding, Layout.Layers[0], layer.Encoding == LayerEncoding.Dense ? 210 : 41)), layer.Encoding.Name());
        }
    }

    [TestCase("bitmap padding bit", "padding bits")]
    [TestCase("bitmap bit without a value", "marks 42 entries but 41 values")]
    [TestCase("bitmap word count", "bitmap words")]
    [TestCase("csr16 unused half", "unused half")]
    [TestCase("csr16 word count", "words of 16-bit column indices")]
    [TestCase("csr16 column past the row", "outside [0, 70)")]
    [TestCase("csr16 columns not increasing", "not increasing")]
    [TestCase("unknown tag", "unknown layout tag")]
    [TestCase("tag without its arrays", "do not match the bitmap layout")]
    [TestCase("two index arrays", "do not match the csr16 layout")]
    [TestCase("dense with more than K non-zeros", "43 non-zero values sent dense")]
    [TestCase("dense layer as a bitmap", "a dense layer must be sent dense")]
    [TestCase("row pointer past the entries", "past the 41 entries")]
    public void MalformedLayoutsAreRejectedWithTheirReason(string corruption, string reason)
    {
        var csr16 = Csr16();
        var bitmap = Bitmap();
        var (rows, columns, values) = Entries();
        var upload = corruption switch
        {
            "bitmap padding bit" => With(bitmap with { Bitmap = Flip(bitmap.Bitmap!, 6, 1 << 20), Values = [.. bitmap.Values, 1f] }),
            "bitmap bit without a value" => With(bitmap with { Bitmap = Flip(bitmap.Bitmap!, 0, 1 << 1) }),
            "bitmap word count" => With(bitmap with { Bitmap = bitmap.Bitmap![..^1] }),
            "csr16 unused half" => With(csr16 with { Columns16 = Flip(csr16.Columns16!, 20, 1 << 16) }),
            "csr16 word count" => With(csr16 with { Columns16 = [.. csr16.Columns16!, 0] }),
            "csr16 column past the row" => With(csr16 with { Columns16 = Flip(csr16.Columns16!, 0, 0x7F) }),
            "csr16 columns not increasing" => With(csr16 with { Columns16 = Flip(csr16.Columns16!, 0, 5 << 16) }),
            "unknown tag" => With(bitmap with { Encoding = (LayerEncoding)9 }),
            "tag without its arrays" => With(new WireLayer(values, rows, columns) { Encoding = LayerEncoding.Bitmap }),
            "two index arrays" => With(csr16 with { Columns = columns }),
            "dense with more than K non-zeros" => With(new WireLayer(Enumerable.Range(0, 210).Select(i => i < 43 ? 1f : 0f).ToArray())),
            "dense layer as a bitmap" => new WireUpload(0, 5, UplinkStrategy.TopKWeights, [bitmap, new WireLayer([1f], Bitmap: [1])]),
            "row pointer past the entries" => With(new WireLayer(values, Flip(rows, 1, 1 << 10), columns)),
            _ => throw new ArgumentException(corruption),
        };
        var error = Assert.Throws<MalformedUploadException>(() => WireValidator.Validate(Layout, upload, Settings));
        Assert.That(error!.Message, Does.Contain(reason));
        Assert.That(error.Message, Does.Not.Contain("\n"));
    }

    /// <summary>The same entries with 16-bit values of <paramref name="width"/> (values p + 1 times 1.001, so that they round).</summary>
    private static WireLayer Sixteen(WireLayer layer, UploadValues width) =>
        layer with { Values = [], Values16 = Float16Reference.Encode(layer.Values.Select(v => v * 1.001f).ToArray(), width.Format()), ValueFormat = width };

    [TestCase(UploadValues.Fp16)]
    [TestCase(UploadValues.Bf16)]
    public void EveryLayoutWithSixteenBitValuesIsAcceptedAndDecodesToTheRoundedValues(UploadValues width)
    {
        var (rows, columns, values) = Entries();
        var dense = CsrReference.Decode(rows, columns, values, 3, 70);
        var rounded = dense.Select(v => Float16Reference.Round(v * 1.001f, width.Format())).ToArray();
        Assert.That(rounded, Is.Not.EqualTo(dense.Select(v => v * 1.001f).ToArray()), "some values round");
        var settings = Settings with { Values = width };
        foreach (var layer in new[] { new WireLayer(values, rows, columns), Csr16(), Bitmap(), new WireLayer(dense) }.Select(l => Sixteen(l, width)))
        {
            var decoded = WireValidator.ToClientUpload(Layout, With(layer), settings);
            Assert.That(decoded.Layers[0].ToDense(), Is.EqualTo(rounded), layer.LayoutName);
            Assert.That(decoded.Layers[1].ToDense(), Is.EqualTo(new[] { 1f, 2f, 3f }), "the dense layer stays fp32");
            int count = layer.Encoding == LayerEncoding.Dense ? 210 : 41;
            Assert.That(layer.Bytes, Is.EqualTo(UplinkBytes.Encoded(layer.Encoding, Layout.Layers[0], count, width)), layer.LayoutName);
            Assert.That(layer.Bytes, Is.EqualTo(UplinkBytes.Encoded(layer.Encoding, Layout.Layers[0], count) - 2L * count), "2 B less per value than fp32");
            Assert.That(layer.LayoutName, Is.EqualTo($"{layer.Encoding.Name()}+{width.Name()}"));
        }
    }

    [TestCase("fp16 where the run asks for fp32", UploadValues.Fp32, "values sent as fp16 where the uplink settings ask for fp32")]
    [TestCase("fp32 where the run asks for fp16", UploadValues.Fp16, "values sent as fp32 where the uplink settings ask for fp16")]
    [TestCase("bf16 where the run asks for fp16", UploadValues.Fp16, "values sent as bf16 where the uplink settings ask for fp16")]
    [TestCase("dense layer in fp16", UploadValues.Fp16, "layer b: values sent as fp16 where the uplink settings ask for fp32")]
    [TestCase("fp16 infinity", UploadValues.Fp16, "(0x7C00 in fp16) is not finite")]
    [TestCase("fp16 NaN", UploadValues.Fp16, "(0xFE00 in fp16) is not finite")]
    [TestCase("bf16 NaN", UploadValues.Bf16, "(0x7FC0 in bf16) is not finite")]
    [TestCase("bf16 infinity", UploadValues.Bf16, "(0xFF80 in bf16) is not finite")]
    [TestCase("both value arrays", UploadValues.Fp16, "do not match fp16 values")]
    [TestCase("no 16-bit array", UploadValues.Bf16, "do not match bf16 values")]
    [TestCase("16-bit array beside fp32 values", UploadValues.Fp32, "16-bit values sent with fp32 ones")]
    [TestCase("unknown value width", UploadValues.Fp16, "unknown value width tag 7")]
    [TestCase("fp16 value missing from a csr16 layer", UploadValues.Fp16, "21 words of 16-bit column indices for 40 values")]
    [TestCase("fp16 value missing from a bitmap", UploadValues.Fp16, "bitmap marks 41 entries but 40 values")]
    [TestCase("fp16 value added to a csr32 layer", UploadValues.Fp16, "column indices for 42 values")]
    [TestCase("fp16 dense with more than K non-zeros", UploadValues.Fp16, "43 non-zero values sent dense")]
    [TestCase("bf16 dense too short", UploadValues.Bf16, "209 values for a layer of 210")]
    public void MalformedSixteenBitValuesAreRejectedWithTheirReason(string corruption, UploadValues width, string reason)
    {
        var (rows, columns, values) = Entries();
        var fp16 = Sixteen(Bitmap(), UploadValues.Fp16);
        var bf16 = Sixteen(Bitmap(), UploadValues.Bf16);
        var upload = corruption switch
        {
            "fp16 where the run asks for fp32" => With(fp16),
            "fp32 where the run asks for fp16" => With(Bitmap()),
            "bf16 where the run asks for fp16" => With(bf16),
            "dense layer in fp16" => new WireUpload(0, 5, UplinkStrategy.TopKWeights, [fp16, Sixteen(new WireLayer([1f, 2f, 3f]), UploadValues.Fp16)]),
            "fp16 infinity" => With(fp16 with { Values16 = Set(fp16.Values16!, 3, (ushort)0x7C00) }),
            "fp16 NaN" => With(fp16 with { Values16 = Set(fp16.Values16!, 40, (ushort)0xFE00) }),
            "bf16 NaN" => With(bf16 with { Values16 = Set(bf16.Values16!, 0, (ushort)0x7FC0) }),
            "bf16 infinity" => With(bf16 with { Values16 = Set(bf16.Values16!, 7, (ushort)0xFF80) }),
            "both value arrays" => With(fp16 with { Values = values }),
            "no 16-bit array" => With(Bitmap() with { ValueFormat = UploadValues.Bf16 }),
            "16-bit array beside fp32 values" => With(Bitmap() with { Values16 = fp16.Values16 }),
            "unknown value width" => With(fp16 with { ValueFormat = (UploadValues)7 }),
            "fp16 value missing from a csr16 layer" => With(Sixteen(Csr16(), UploadValues.Fp16) is var c ? c with { Values16 = c.Values16![..^1] } : null!),
            "fp16 value missing from a bitmap" => With(fp16 with { Values16 = fp16.Values16![..^1] }),
            "fp16 value added to a csr32 layer" => With(Sixteen(new WireLayer(values, rows, columns), UploadValues.Fp16) is var d ? d with { Values16 = [.. d.Values16!, 0x3C00] } : null!),
            "fp16 dense with more than K non-zeros" => With(Sixteen(new WireLayer(Enumerable.Range(0, 210).Select(i => i < 43 ? 1f : 0f).ToArray()), UploadValues.Fp16)),
            "bf16 dense too short" => With(Sixteen(new WireLayer(new float[209]), UploadValues.Bf16)),
            _ => throw new ArgumentException(corruption),
        };
        var error = Assert.Throws<MalformedUploadException>(() => WireValidator.Validate(Layout, upload, Settings with { Values = width }));
        Assert.That(error!.Message, Does.Contain(reason));
        Assert.That(error.Message, Does.Not.Contain("\n"));
    }

    private static T[] Set<T>(T[] array, int index, T value)
    {
        var copy = (T[])array.Clone();
        copy[index] = value;
        return copy;
    }

    private static int[] Flip(int[] words, int index, int bits)
    {
        var copy = (int[])words.Clone();
        copy[index] ^= bits;
        return copy;
    }
}
