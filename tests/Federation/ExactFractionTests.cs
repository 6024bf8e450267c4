using ZeroFL.Federation;

namespace ZeroFL.Tests.Federation;

public sealed class ExactFractionTests
{
    [Test]
    public void FractionsAreReadAsTyped()
    {
        Assert.That(ExactFraction.ToDecimal(0.1), Is.EqualTo(0.1m));
        Assert.That(ExactFraction.ToDecimal(0.9f), Is.EqualTo(0.9m));
        Assert.That(ExactFraction.ToDecimal(1e-5), Is.EqualTo(0.00001m));
        Assert.That(ExactFraction.CeilingOf(0.2m, 10), Is.EqualTo(2));
        Assert.That(Math.Ceiling((1 - 0.7) * 10), Is.EqualTo(4), "the float trap this class avoids: 1 - 0.7 is 0.30000000000000004");
        Assert.That(ExactFraction.CeilingOf(1m - ExactFraction.ToDecimal(0.7), 10), Is.EqualTo(3));
        Assert.That(ExactFraction.FloorOf(0.1m, 19), Is.EqualTo(1));
        Assert.That(ExactFraction.FloorOf(ExactFraction.ToDecimal(0.3), 10), Is.EqualTo(3));
        Assert.That(Math.Floor((0.1 + 0.2) * 10), Is.EqualTo(3));
    }

    [Test]
    public void OutOfRangeIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactFraction.CeilingOf(1.5m, 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactFraction.FloorOf(0.5m, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => ExactFraction.ToDecimal(double.NaN));
    }
}
