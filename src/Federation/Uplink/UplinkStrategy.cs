namespace ZeroFL.Federation.Uplink;

/// <summary>What a client uploads after local training (ZEROFL.md, "ZeroFL uplink").</summary>
public enum UplinkStrategy
{
    /// <summary>Plain FedAvg: dense local training, the whole model uploaded (CLI "dense").</summary>
    Dense,

    /// <summary>SWAT training on the client, the whole (dense) model uploaded: "vanilla SWAT in FL" (CLI "swat").</summary>
    Swat,

    /// <summary>Top (1 - sp + r_mask) of each sparse layer's trained weights w_E by |w_E| (CLI "topk-weights").</summary>
    TopKWeights,

    /// <summary>Positions of the top (1 - sp + r_mask) of |w_E|; values d = w_E - w_t there (CLI "diff-on-topk").</summary>
    DiffOnTopKWeights,

    /// <summary>d = w_E - w_t everywhere; the top (1 - sp + r_mask) of d by |d| (CLI "topk-diff").</summary>
    TopKWeightsDiff,
}

/// <summary>CLI names of <see cref="UplinkStrategy"/> and what each strategy implies.</summary>
public static class UplinkStrategies
{
    private static readonly (UplinkStrategy Strategy, string Name)[] Table =
    [
        (UplinkStrategy.Dense, "dense"),
        (UplinkStrategy.Swat, "swat"),
        (UplinkStrategy.TopKWeights, "topk-weights"),
        (UplinkStrategy.DiffOnTopKWeights, "diff-on-topk"),
        (UplinkStrategy.TopKWeightsDiff, "topk-diff"),
    ];

    /// <summary>The CLI names, in enum order: dense, swat, topk-weights, diff-on-topk, topk-diff.</summary>
    public static IReadOnlyList<string> Names { get; } = Table.Select(t => t.Name).ToArray();

    /// <summary>The CLI name of <paramref name="strategy"/>.</summary>
    public static string Name(this UplinkStrategy strategy)
    {
        foreach (var (s, name) in Table)
        {
            if (s == strategy)
            {
                return name;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "unknown uplink strategy");
    }

    /// <summary>The strategy with CLI name <paramref name="name"/> (case-insensitive), or false.</summary>
    public static bool TryParse(string? name, out UplinkStrategy strategy)
    {
        foreach (var (s, n) in Table)
        {
            if (string.Equals(n, name?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                strategy = s;
                return true;
            }
        }
        strategy = default;
        return false;
    }

    /// <summary>
    /// The strategy with CLI name <paramref name="name"/> (case-insensitive). Throws
    /// <see cref="ArgumentException"/> with a one-line message naming the accepted names otherwise.
    /// </summary>
    public static UplinkStrategy Parse(string? name) => TryParse(name, out var strategy)
        ? strategy
        : throw new ArgumentException($"unknown uplink strategy '{name}' (expected one of: {string.Join(", ", Names)})");

    /// <summary>True when uploads carry differences d = w_E - w_t and the server adds them to w_t.</summary>
    public static bool SendsDifferences(this UplinkStrategy strategy) =>
        strategy is UplinkStrategy.DiffOnTopKWeights or UplinkStrategy.TopKWeightsDiff;

    /// <summary>True when sparse layers are uploaded as a top-K slice (the three ZeroFL strategies).</summary>
    public static bool SparsifiesUpload(this UplinkStrategy strategy) =>
        strategy is UplinkStrategy.TopKWeights or UplinkStrategy.DiffOnTopKWeights or UplinkStrategy.TopKWeightsDiff;
}
