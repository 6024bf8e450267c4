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

    private static int[] Flip(int[] words, int index, int bits)
    {
        var copy = (int[])words.Clone();
        copy[index] ^= bits;
        return copy;
    }
}
