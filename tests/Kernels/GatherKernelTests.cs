using ZeroFL.Kernels;
using ZeroFL.Kernels.Reference;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Kernels;

[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class GatherKernelTests(string device) : DeviceTest(device)
{
    [TestCase(1, 1, 1, 2)]
    [TestCase(6, 8, 8, 2)]
    [TestCase(5, 7, 6, 2)]
    [TestCase(3, 9, 10, 3)]
    [TestCase(4, 5, 5, 1)]
    [TestCase(2, 3, 4, 5)]
    public void SubsampleMatchesTheReference(int planes, int height, int width, int stride)
    {
        var source = Numerics.Random(planes * height * width, planes + 10 * height + 100 * width);
        var expected = GatherReference.Subsample(source, planes, height, width, stride);
        Assert.That(expected, Has.Length.EqualTo(planes * GatherKernels.SubsampledSize(height, stride) * GatherKernels.SubsampledSize(width, stride)));
        var destination = Zeros(expected.Length);
        Device.Kernels.Gather.Subsample(Upload(source), planes, height, width, stride, destination);
        Assert.That(Download(destination), Is.EqualTo(expected));
    }

    [Test]
    public void SubsampleChecksLengthsOnTheHost()
    {
        var gather = Device.Kernels.Gather;
        var source = Zeros(2 * 4 * 4);
        Assert.Throws<ArgumentException>(() => gather.Subsample(source, 2, 4, 4, 2, Zeros(7)), "destination too short");
        Assert.Throws<ArgumentException>(() => gather.Subsample(source, 3, 4, 4, 2, Zeros(12)), "source too short");
        Assert.Throws<ArgumentException>(() => gather.Subsample(source, 2, 4, 4, 0, Zeros(8)), "stride 0");
    }
}
