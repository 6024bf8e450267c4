using ZeroFL.Data;

namespace ZeroFL.Tests.Data;

public sealed class DatasetTests
{
    [Test]
    public void NormalizationUsesStandardConstants()
    {
        Assert.That(Normalization.FashionMnist, Is.EqualTo(new Normalization(0.2860f, 0.3530f)));
        Assert.That(Normalization.Mnist, Is.EqualTo(new Normalization(0.1307f, 0.3081f)));

        var fashion = Normalization.FashionMnist;
        Assert.That(fashion.Apply(0), Is.EqualTo(-0.2860f / 0.3530f).Within(1e-6f));
        Assert.That(fashion.Apply(255), Is.EqualTo((1f - 0.2860f) / 0.3530f).Within(1e-6f));
        Assert.That(fashion.Apply(128), Is.EqualTo((128f / 255f - 0.2860f) / 0.3530f).Within(1e-6f));
        Assert.That(Normalization.Mnist.Apply(0), Is.EqualTo(-0.4242127f).Within(1e-6f));
        Assert.That(Normalization.Mnist.Apply(255), Is.EqualTo(2.8214867f).Within(1e-6f));
    }

    [Test]
    public void FromBytesNormalisesEveryPixelAndKeepsShape()
    {
        byte[] pixels = [0, 255, 10, 20, 30, 40, 50, 60];
        byte[] labels = [3, 7];
        var data = Dataset.FromBytes("toy", pixels, labels, 2, 2, 10, Normalization.Mnist);

        Assert.That((data.Count, data.Channels, data.Height, data.Width, data.ClassCount, data.SampleSize),
            Is.EqualTo((2, 1, 2, 2, 10, 4)));
        Assert.That(data.Name, Is.EqualTo("toy"));
        Assert.That(data.Labels, Is.EqualTo(new[] { 3, 7 }));
        for (int i = 0; i < pixels.Length; i++)
        {
            Assert.That(data.Features[i], Is.EqualTo((pixels[i] / 255f - 0.1307f) / 0.3081f).Within(1e-6f), $"pixel {i}");
        }
        Assert.That(data.Sample(1).ToArray(), Is.EqualTo(data.Features[4..8]));
    }

    [Test]
    public void SubsetCopiesSamplesInOrder()
    {
        var data = Toy(6);
        var subset = data.Subset([4, 1, 4]);
        Assert.That(subset.Count, Is.EqualTo(3));
        Assert.That(subset.Labels, Is.EqualTo(new[] { data.Labels[4], data.Labels[1], data.Labels[4] }));
        Assert.That(subset.Sample(0).ToArray(), Is.EqualTo(data.Sample(4).ToArray()));
        Assert.That(subset.Sample(1).ToArray(), Is.EqualTo(data.Sample(1).ToArray()));
        Assert.That((subset.Channels, subset.Height, subset.Width, subset.ClassCount),
            Is.EqualTo((data.Channels, data.Height, data.Width, data.ClassCount)));
        Assert.That(subset.Features, Is.Not.SameAs(data.Features));
        Assert.That(data.Subset([]).Count, Is.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Subset([0, 6]));
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Subset([-1]));
    }

    [Test]
    public void LabelCountsCountEachClass()
    {
        var data = new Dataset("counts", new float[7], [0, 2, 2, 1, 2, 0, 2], 1, 1, 1, 4);
        Assert.That(data.LabelCounts(), Is.EqualTo(new[] { 2, 1, 4, 0 }));
        Assert.That(data.LabelCounts([1, 2, 3]), Is.EqualTo(new[] { 0, 1, 2, 0 }));
        Assert.That(data.Subset([0, 3, 3]).LabelCounts(), Is.EqualTo(new[] { 1, 2, 0, 0 }));
    }

    [Test]
    public void ConstructorRejectsInconsistentShapesAndLabels()
    {
        Assert.Throws<ArgumentException>(() => new Dataset("bad", new float[5], [0, 1], 1, 2, 2, 10));
        Assert.Throws<ArgumentException>(() => new Dataset("bad", new float[4], [0, 10], 1, 1, 2, 10));
        Assert.Throws<ArgumentException>(() => new Dataset("bad", new float[4], [0, -1], 1, 1, 2, 10));
        Assert.Throws<ArgumentException>(() => new Dataset("bad", new float[0], [], 0, 1, 1, 10));
    }

    /// <summary>A data set whose sample i has features i*100 + position and label i % 3.</summary>
    internal static Dataset Toy(int count, int channels = 2, int height = 2, int width = 3)
    {
        int size = channels * height * width;
        var features = new float[count * size];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = i % 3;
            for (int k = 0; k < size; k++)
            {
                features[i * size + k] = i * 100 + k;
            }
        }
        return new Dataset("toy", features, labels, channels, height, width, 3);
    }
}
