using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation;

/// <summary>
/// Which clients train in a round: a fixed count, or Flower's rule max(floor(fraction * N), minimum)
/// (<c>fraction_fit</c>, <c>min_fit_clients</c>; the product is exact, so 0.1 of 100 is 10), drawn
/// uniformly without replacement from the N available clients. The draw depends only on
/// (seed, round, N), so a round can be replayed on its own.
/// </summary>
public sealed record ClientSampling
{
    private ClientSampling(int count, double fraction, int minimum)
    {
        FixedCount = count;
        Fraction = fraction;
        Minimum = minimum;
    }

    /// <summary>The count of a fixed-count rule; 0 for a fraction rule.</summary>
    public int FixedCount { get; }

    /// <summary>The fraction of a fraction rule, in (0, 1]; 0 for a fixed-count rule.</summary>
    public double Fraction { get; }

    /// <summary>The least number of clients of a fraction rule (at least 1).</summary>
    public int Minimum { get; }

    /// <summary>Exactly <paramref name="count"/> clients per round (ZeroFL: 10 of 100; 35 of 3597 writers).</summary>
    public static ClientSampling Fixed(int count) => count >= 1
        ? new ClientSampling(count, 0, count)
        : throw new ArgumentOutOfRangeException(nameof(count), count, "clients per round must be at least 1");

    /// <summary>max(floor(<paramref name="fraction"/> * N), <paramref name="minimum"/>) clients per round.</summary>
    public static ClientSampling OfFraction(double fraction, int minimum = 1)
    {
        if (!(fraction > 0 && fraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "fraction of clients must be in (0, 1]");
        }
        if (minimum < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(minimum), minimum, "minimum clients per round must be at least 1");
        }
        return new ClientSampling(0, fraction, minimum);
    }

    /// <summary>
    /// Clients per round when <paramref name="available"/> are available. Throws
    /// <see cref="ArgumentException"/> when more are needed than are available.
    /// </summary>
    public int CountFor(int available)
    {
        if (available < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(available), available, "no clients available");
        }
        int count = FixedCount > 0
            ? FixedCount
            : Math.Max((int)ExactFraction.FloorOf(ExactFraction.ToDecimal(Fraction), available), Minimum);
        if (count > available)
        {
            throw new ArgumentException($"a round needs {count} clients but only {available} are available");
        }
        return count;
    }

    /// <summary>
    /// The ids (0..available-1) of the clients of <paramref name="round"/>, distinct and ascending,
    /// drawn from a generator keyed by (<paramref name="seed"/>, <paramref name="round"/>,
    /// <paramref name="attempt"/>): attempt 1, 2, ... are the fresh samples of a round retried
    /// because too few clients succeeded.
    /// </summary>
    public int[] Sample(int available, int round, int seed, int attempt = 0)
    {
        int count = CountFor(available);
        var random = SplitMix64.For(seed, RandomStream.ClientSampling, round, attempt);
        var ids = new int[available];
        for (int i = 0; i < available; i++)
        {
            ids[i] = i;
        }
        for (int i = 0; i < count; i++)
        {
            int j = i + random.NextBelow(available - i);
            (ids[i], ids[j]) = (ids[j], ids[i]);
        }
        var chosen = ids[..count];
        Array.Sort(chosen);
        return chosen;
    }
}
