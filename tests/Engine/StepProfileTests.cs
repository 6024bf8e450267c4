using NUnit.Framework;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Tests.Engine;

public sealed class StepProfileTests
{
    /// <summary>
    /// The profiler reports the rows of the median step by wall time (so one disturbed step does
    /// not move them, and they add up to a real step): its index, the upper middle of an even count.
    /// </summary>
    [Test]
    public void TheMedianStepIsChosenByItsWallTime()
    {
        Assert.That(StepProfile.MedianIndex([0.9, 100, 0.8]), Is.EqualTo(0));
        Assert.That(StepProfile.MedianIndex([3, 1, 2, 4]), Is.EqualTo(0), "sorted 1, 2, 3, 4: the upper middle is 3, at index 0");
        Assert.That(StepProfile.MedianIndex([0.5]), Is.EqualTo(0));
        Assert.Throws<ArgumentException>(() => StepProfile.MedianIndex([]));
    }
}
