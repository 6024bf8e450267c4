using ZeroFL.Cluster;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;
using ZeroFL.Kernels.Reference;

namespace ZeroFL.Tests.Cluster;

/// <summary>
/// Uploads as bytes between a worker and the coordinator: every layout survives the round trip
/// exactly, and bytes a faulty worker might send (cut short, flipped, padded) either decode into an
/// upload the server's validator then judges, or are refused as malformed, never anything else.
/// </summary>
public sealed class UploadCodecTests
{
    // [3, 70] sparse (K = 42 at sparsity 0.9, r_mask 0.1) and [3] dense.
    private static readonly ModelLayout Layout = new([new LayerSpec("w", [3, 70], true), new LayerSpec("b", [3], false)]);
    private static readonly UplinkSettings Settings = new(UplinkStrategy.TopKWeights, 0.9, 0.1);

    private static IEnumerable<WireUpload> EveryLayout()
    {
        var dense = new float[210];
        for (int i = 0; i < 210; i += 5)
        {
            dense[i] = i - 100.5f;
        }
        var (rows, columns, values) = CsrReference.Encode(dense, 3, 70);
        var bias = new WireLayer([1f, -2f, float.Epsilon]);
        yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights, [new WireLayer(values, rows, columns), bias]);
        yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights, [new WireLayer(values, rows, Columns16: SparseFormatReference.PackColumns16(columns)), bias]);
        yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights, [new WireLayer(values, Bitmap: SparseFormatReference.Bitmap(rows, columns, 3, 70)), bias]);
        yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights, [new WireLayer(new float[210]), bias]);
        yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights, [new WireLayer([], new int[4], []), bias]);
        foreach (var width in new[] { UploadValues.Fp16, UploadValues.Bf16 })
        {
            var bits = Float16Reference.Encode(values, width.Format());
            yield return new WireUpload(7, 35, UplinkStrategy.TopKWeights,
                [new WireLayer([], Bitmap: SparseFormatReference.Bitmap(rows, columns, 3, 70)) { ValueFormat = width, Values16 = bits }, bias]);
        }
    }

    private static void AssertSame(WireUpload expected, WireUpload actual)
    {
        Assert.That((actual.ClientId, actual.ExampleCount, actual.Strategy, actual.Layers.Count), Is.EqualTo((expected.ClientId, expected.ExampleCount, expected.Strategy, expected.Layers.Count)));
        for (int l = 0; l < expected.Layers.Count; l++)
        {
            var (e, a) = (expected.Layers[l], actual.Layers[l]);
            Assert.That(a.Encoding, Is.EqualTo(e.Encoding));
            Assert.That(a.Values.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(e.Values.Select(BitConverter.SingleToInt32Bits)), "values bit for bit");
            Assert.That(a.RowPointers, Is.EqualTo(e.RowPointers));
            Assert.That(a.Columns, Is.EqualTo(e.Columns));
            Assert.That(a.Columns16, Is.EqualTo(e.Columns16));
            Assert.That(a.Bitmap, Is.EqualTo(e.Bitmap));
            Assert.That(a.ValueFormat, Is.EqualTo(e.ValueFormat));
            Assert.That(a.Values16, Is.EqualTo(e.Values16), "16-bit values bit for bit");
        }
    }

    [Test]
    public void EveryLayoutSurvivesTheRoundTripBitForBit()
    {
        foreach (var upload in EveryLayout())
        {
            var bytes = UploadCodec.Encode(upload);
            var decoded = UploadCodec.Decode(bytes);
            AssertSame(upload, decoded);
            Assert.That(UploadCodec.Encode(decoded), Is.EqualTo(bytes));
            var width = decoded.Layers[0].ValueFormat;
            WireValidator.Validate(Layout, decoded, Settings with { Values = width });
        }
    }

    [Test]
    public void AnExplicitLayoutTagTravelsAsSentAndTheValidatorJudgesIt()
    {
        var upload = EveryLayout().First();
        var lying = upload with { Layers = [upload.Layers[0] with { Encoding = LayerEncoding.Bitmap }, upload.Layers[1]] };
        var decoded = UploadCodec.Decode(UploadCodec.Encode(lying));
        Assert.That(decoded.Layers[0].Encoding, Is.EqualTo(LayerEncoding.Bitmap));
        Assert.That(() => WireValidator.Validate(Layout, decoded, Settings), Throws.TypeOf<MalformedUploadException>().With.Message.Contains("do not match the bitmap layout"));
    }

    [Test]
    public void EveryTruncationIsRefusedAsMalformed()
    {
        foreach (var upload in EveryLayout())
        {
            var bytes = UploadCodec.Encode(upload);
            for (int length = 0; length < bytes.Length; length++)
            {
                Assert.That(() => UploadCodec.Decode(bytes.AsSpan(0, length)), Throws.TypeOf<MalformedUploadException>().With.Message.StartWith("undecodable upload"), $"cut at {length} of {bytes.Length}");
            }
            Assert.That(() => UploadCodec.Decode([.. bytes, 0]), Throws.TypeOf<MalformedUploadException>().With.Message.Contains("after the last layer"));
        }
    }

    // Header: magic 0-3, format 4-7, client 8-11, examples 12-19, strategy 20-23, layer count 24-27;
    // the first layer's tag 28, array flags 29, value width 30, value count 31-34.
    [TestCase(4, 0x7F, "format 127")]
    [TestCase(20, 0x7F, "unknown strategy 127")]
    [TestCase(24, 0x7F, "127 layers in")]
    [TestCase(28, 0x7F, "layout tag 127")]
    [TestCase(29, 200, "array flags 200")]
    [TestCase(30, 0x7F, "value width 127")]
    [TestCase(34, 0x7F, "elements in")]
    public void ABadHeaderFieldIsNamed(int offset, int value, string expected)
    {
        var bytes = UploadCodec.Encode(EveryLayout().First());
        bytes[offset] = (byte)value;
        Assert.That(() => UploadCodec.Decode(bytes), Throws.TypeOf<MalformedUploadException>().With.Message.Contains(expected));
    }

    [Test]
    public void FuzzedBytesAreDecodedAndJudgedOrRefusedButNeverThrowAnythingElse()
    {
        var random = new Random(19);
        var uploads = EveryLayout().Select(UploadCodec.Encode).ToArray();
        int refused = 0, decoded = 0, accepted = 0;
        for (int trial = 0; trial < 4000; trial++)
        {
            var bytes = (byte[])uploads[trial % uploads.Length].Clone();
            for (int flips = 1 + random.Next(3); flips > 0; flips--)
            {
                bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
            }
            try
            {
                var upload = UploadCodec.Decode(bytes);
                decoded++;
                WireValidator.Validate(Layout, upload, Settings);
                accepted++;
            }
            catch (MalformedUploadException)
            {
                refused++;
            }
        }
        Assert.That(refused, Is.Positive);
        Assert.That(decoded, Is.Positive, "flipped value bits still decode");
        TestContext.Out.WriteLine($"{refused} refused, {decoded} decoded, {accepted} of them accepted (a flipped value bit is still a finite value)");
    }
}
