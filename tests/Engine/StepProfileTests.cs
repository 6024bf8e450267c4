using NUnit.Framework;
using ZeroFL.Engine.Profiling;

namespace ZeroFL.Tests.Engine;

public sealed class StepProfileTests
{
    /// <summary>
    /// A layer's per-pass time over the profiled steps is the median step's times the steps, so one
    /// disturbed step (the 100 s below) does not move it, while a uniform step time is kept exactly.
    /// </summary>
    [Test]
    public void LayerTimesAreTheMedianStepTimesTheSteps()
    {
        double[][] steps = [[1, 2, 3], [100, 2, 4], [2, 2, 5]];
        Assert.That(StepProfile.MedianSteps(steps), Is.EqualTo(new double[] { 2 * 3, 2 * 3, 4 * 3 }));
        Assert.That(StepProfile.MedianSteps([[0.5, 0.25, 0.125]]), Is.EqualTo(new[] { 0.5, 0.25, 0.125 }));
    }
}
