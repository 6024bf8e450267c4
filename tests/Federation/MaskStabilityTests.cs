using ILGPU;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation.Simulation;
using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Federation;

/// <summary>The device mask records (ZeroFL Fig. 3) against hand-computed cases and the host reference.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class MaskStabilityTests(string device) : DeviceTest(device)
{
    private MaskRecorder NewRecorder(ArrayView<float> values, int[] lengths, float sparsity)
    {
        var views = new List<ArrayView<float>>();
        long offset = 0;
        foreach (int length in lengths)
        {
            views.Add(values.SubView(offset, length));
            offset += length;
        }
        return new MaskRecorder(Device, views, new SparsitySettings(sparsity));
    }

    private void Set(ArrayView<float> target, float[] values) => Device.Kernels.Launch.Upload((ReadOnlySpan<float>)values, target);

    [Test]
    public void AHandBuiltLayerKeepsHalfThenThreeQuartersOfItsPositions()
    {
        // 20 weights at sparsity 0.8: K = 4. The small ones (0.01 i) never reach the top 4.
        float[] Small() => Enumerable.Range(0, 20).Select(i => 0.01f * i).ToArray();
        var first = Small();
        (first[0], first[5], first[10], first[15]) = (9f, -8f, 7f, 6f);           // top 4: {0, 5, 10, 15}
        var second = Small();
        (second[0], second[5], second[11], second[16]) = (9f, -8f, 7.5f, -6.5f);  // top 4: {0, 5, 11, 16}
        (second[10], second[15]) = (0.5f, 0.4f);
        var third = (float[])second.Clone();
        third[0] = 0f;                                                            // top 4: {5, 11, 16, 10}

        var values = Zeros(20);
        using var recorder = NewRecorder(values, [20], 0.8f);
        Set(values, first);
        Assert.That(recorder.Record(0), Is.Null, "the first record has no predecessor");
        Set(values, second);
        Assert.That(recorder.Record(20), Is.EqualTo(new[] { 0.5 }), "{0, 5} of 4 unchanged");
        Set(values, third);
        Assert.That(recorder.Record(40), Is.EqualTo(new[] { 0.75 }), "{5, 11, 16} of 4 unchanged");
        Assert.That(recorder.Round, Is.EqualTo(40));
        Assert.That(MaskReference.Stability(first, second, 4), Is.EqualTo(0.5));
        Assert.That(MaskReference.Stability(second, third, 4), Is.EqualTo(0.75));
    }

    [Test]
    public void TiesGoToTheLowerIndexAsInTheForwardPass()
    {
        // 64 entries of magnitude 1 at sparsity 0.9: K = 7, the first seven. Then entry 3 shrinks,
        // so entry 7 takes its place: 6 of 7 unchanged. Signs do not matter.
        var first = Enumerable.Range(0, 64).Select(i => i % 3 == 0 ? -1f : 1f).ToArray();
        var second = (float[])first.Clone();
        second[3] = 0.5f;
        var values = Zeros(64);
        using var recorder = NewRecorder(values, [64], 0.9f);
        Set(values, first);
        recorder.Record(0);
        Set(values, second);
        Assert.That(recorder.Record(1)![0], Is.EqualTo(6.0 / 7));
        Assert.That(MaskReference.Stability(first, second, 7), Is.EqualTo(6.0 / 7));
    }

    [Test]
    public void SeveralLayersOfRandomWeightsMatchTheReference()
    {
        int[] lengths = [1000, 4097, 70_000];
        int total = lengths.Sum();
        var before = Numerics.Random(total, 3);
        var after = (float[])before.Clone();
        var random = new Random(4);
        for (int i = 0; i < total; i++)
        {
            if (random.NextDouble() < 0.3)
            {
                after[i] += (float)(random.NextDouble() - 0.5) * 0.5f;
            }
        }
        var values = Zeros(total);
        using var recorder = NewRecorder(values, lengths, 0.9f);
        Set(values, before);
        recorder.Record(0);
        Set(values, after);
        var stability = recorder.Record(5)!;
        var settings = new SparsitySettings(0.9f);
        int offset = 0;
        for (int l = 0; l < lengths.Length; l++)
        {
            var b = before.AsSpan(offset, lengths[l]).ToArray();
            var a = after.AsSpan(offset, lengths[l]).ToArray();
            double expected = MaskReference.Stability(b, a, settings.KeepCount(lengths[l]));
            Assert.That(stability[l], Is.EqualTo(expected), $"layer {l}");
            Assert.That(expected, Is.InRange(0.05, 0.999), "a case that moves some positions and keeps others");
            offset += lengths[l];
        }
    }

    [Test]
    public void ASavedRecordRestoredIntoANewRecorderGivesTheSameNextStability()
    {
        int[] lengths = [300, 33];
        var before = Numerics.Random(333, 8);
        var after = Numerics.Random(333, 9);
        for (int i = 0; i < 333; i += 2)
        {
            after[i] = before[i];
        }
        var values = Zeros(333);
        using var whole = NewRecorder(values, lengths, 0.9f);
        Set(values, before);
        whole.Record(20);
        var record = whole.Save()!;
        Assert.That(record.Round, Is.EqualTo(20));
        Assert.That(whole.Save(), Is.SameAs(record), "read back once per record");
        using var resumed = NewRecorder(values, lengths, 0.9f);
        Assert.That(resumed.Restore(record), Is.Null);
        Assert.That(resumed.Round, Is.EqualTo(20));
        Set(values, after);
        var expected = whole.Record(40);
        Assert.That(resumed.Record(40), Is.EqualTo(expected));
        Assert.That(expected![0], Is.EqualTo(MaskReference.Stability(before[..300], after[..300], 30)));
    }

    [Test]
    public void ARecordThatDoesNotFitTheModelIsRefusedWithAReason()
    {
        var values = Zeros(40);
        Set(values, Numerics.Random(40, 1));
        using var recorder = NewRecorder(values, [40], 0.9f); // K = 4, 2 words
        recorder.Record(0);
        var good = recorder.Save()!;
        string Encode(params int[] words) => Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(words.AsSpan()));
        var cases = new (MaskRecord Record, string Reason)[]
        {
            (good with { Layers = [good.Layers[0], good.Layers[0]] }, "layers"),
            (good with { Layers = ["not base64!"] }, "base64"),
            (good with { Layers = [Encode(0b1111)] }, "bytes"),
            (good with { Layers = [Encode(0b1111, 0b1 << 8)] }, "past its 40 entries"),
            (good with { Layers = [Encode(0b111, 0)] }, "keeps 3 positions, expected K = 4"),
        };
        foreach (var (record, reason) in cases)
        {
            using var other = NewRecorder(values, [40], 0.9f);
            Assert.That(other.Restore(record), Does.Contain(reason));
            Assert.That(other.Round, Is.Null, reason);
            Assert.That(other.Record(1), Is.Null, $"{reason}: the next record has no predecessor");
        }
        using var fine = NewRecorder(values, [40], 0.9f);
        Assert.That(fine.Restore(good with { Layers = [Encode(0b1111, 0)] }), Is.Null, "four positions in range are a record");
    }

    [Test]
    public void ADenseModelHasNoMaskToRecord()
    {
        var values = Zeros(10);
        Assert.Throws<ArgumentException>(() => NewRecorder(values, [10], 0f));
    }
}
