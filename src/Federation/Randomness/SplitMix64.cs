namespace ZeroFL.Federation.Randomness;

/// <summary>
/// SplitMix64: a small, fully specified generator, so partitions and client samples never change
/// with the .NET runtime (unlike <see cref="System.Random"/>'s unspecified algorithms).
/// Integer draws are bit-exact everywhere; draws that go through <see cref="Math.Log"/> or
/// <see cref="Math.Cos"/> (normal and gamma variates) are exact on one platform and may differ in
/// the last bit across C runtimes.
/// </summary>
internal struct SplitMix64
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;
    private ulong state;

    /// <summary>A generator started from <paramref name="state"/>.</summary>
    public SplitMix64(ulong state) => this.state = state;

    /// <summary>
    /// A generator for one purpose of one experiment: the seed, a stream tag naming the purpose
    /// (so that, say, validation splits and client sampling never share draws) and up to two
    /// further keys (a client id, a round).
    /// </summary>
    public static SplitMix64 For(int seed, RandomStream stream, long first = 0, long second = 0)
    {
        ulong h = Mix(unchecked((ulong)(uint)seed + Golden));
        h = Mix(h ^ unchecked((ulong)stream * Golden));
        h = Mix(h ^ unchecked((ulong)first + Golden));
        h = Mix(h ^ unchecked((ulong)second + 2 * Golden));
        return new SplitMix64(h);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        state = unchecked(state + Golden);
        return Mix(state);
    }

    /// <summary>Uniform in 0..bound-1 without modulo bias (Lemire's multiply-shift with rejection).</summary>
    public int NextBelow(int bound)
    {
        if (bound <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bound), bound, "bound must be positive");
        }
        uint range = (uint)bound;
        uint threshold = (0u - range) % range;
        while (true)
        {
            ulong product = (Next() >> 32) * range;
            if ((uint)product >= threshold)
            {
                return (int)(product >> 32);
            }
        }
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in (0, 1): never 0, so its logarithm is finite.</summary>
    public double NextOpenDouble() => ((Next() >> 11) + 0.5) * (1.0 / (1UL << 53));

    /// <summary>A standard normal variate (Box-Muller, one of the pair used).</summary>
    public double NextNormal()
    {
        double radius = Math.Sqrt(-2.0 * Math.Log(NextOpenDouble()));
        return radius * Math.Cos(2.0 * Math.PI * NextDouble());
    }

    /// <summary>Shuffles <paramref name="values"/> in place (Fisher-Yates).</summary>
    public void Shuffle(Span<int> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextBelow(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }

    private static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}

/// <summary>What a derived generator is for; part of its seed, so purposes never share draws.</summary>
internal enum RandomStream : ulong
{
    /// <summary>IID partition shuffle.</summary>
    IidPartition = 1,

    /// <summary>Dirichlet (LDA) partition: pools, class proportions, draws.</summary>
    DirichletPartition = 2,

    /// <summary>A client's train/validation split (keyed by client).</summary>
    ValidationSplit = 3,

    /// <summary>Clients taking part in a round (keyed by round and attempt).</summary>
    ClientSampling = 4,

    /// <summary>Injected client faults (keyed by round and attempt, client).</summary>
    FaultInjection = 5,
}
