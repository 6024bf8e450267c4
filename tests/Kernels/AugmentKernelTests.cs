using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

/// <summary>Random crop with padding and horizontal flip against the pad-crop-flip reference.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class AugmentKernelTests(string device) : DeviceTest(device)
{
    [TestCase(3, 3, 8, 8, 4)]
    [TestCase(5, 1, 5, 7, 2)]
    [TestCase(2, 3, 32, 32, 4)]
    public void CropFlipEqualsTheReference(int batch, int channels, int height, int width, int padding)
    {
        var source = Numerics.Random(batch * channels * height * width, seed: batch + width);
        var random = new Random(height);
        var moves = new int[3 * batch];
        for (int b = 0; b < batch; b++)
        {
            moves[3 * b] = random.Next(-padding, padding + 1);
            moves[3 * b + 1] = random.Next(-padding, padding + 1);
            moves[3 * b + 2] = random.Next(2);
        }
        moves[0] = padding; // an extreme shift and the identity move are always among the cases
        moves[2] = 1;
        if (batch > 1)
        {
            moves[3] = moves[4] = moves[5] = 0;
        }
        var fill = Enumerable.Range(0, channels).Select(c => -1.5f - c).ToArray();
        var output = Zeros(source.Length);
        Device.Kernels.Augment.RandomCropFlip(Upload(source), output, batch, channels, height, width, padding, moves, Upload(moves), Upload(fill));
        var expected = AugmentReference.RandomCropFlip(source, batch, channels, height, width, padding, moves, fill);
        Assert.That(Download(output), Is.EqualTo(expected));
        if (batch > 1)
        {
            int sample = channels * height * width;
            Assert.That(Download(output).Skip(sample).Take(sample), Is.EqualTo(source.Skip(sample).Take(sample)), "move (0, 0, no flip) is the identity");
        }
    }

    [Test]
    public void AFlipAloneMirrorsEachRow()
    {
        float[] source = [1, 2, 3, 4, 5, 6];
        var output = Zeros(6);
        Device.Kernels.Augment.RandomCropFlip(Upload(source), output, 1, 1, 2, 3, 0, [0, 0, 1], Upload(new[] { 0, 0, 1 }), Upload(new[] { 0f }));
        Assert.That(Download(output), Is.EqualTo(new float[] { 3, 2, 1, 6, 5, 4 }));
    }

    [TestCase(5, 0, 0)]
    [TestCase(0, -5, 0)]
    [TestCase(0, 0, 2)]
    public void MovesOutsideThePaddingAreRejectedOnTheHost(int dy, int dx, int flip)
    {
        var output = Zeros(16);
        int[] moves = [dy, dx, flip];
        Assert.Throws<ArgumentException>(() => Device.Kernels.Augment.RandomCropFlip(
            Upload(new float[16]), output, 1, 1, 4, 4, 4, moves, Upload(moves), Upload(new[] { 0f })));
    }
}
