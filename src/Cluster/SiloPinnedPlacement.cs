using Orleans;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace ZeroFL.Cluster;

/// <summary>Places a grain on the silo whose address (<see cref="SiloAddress.ToParsableString"/>) is the grain's key.</summary>
[GenerateSerializer, Immutable]
public sealed class SiloPinnedPlacement : PlacementStrategy
{
    /// <summary>The one instance.</summary>
    public static SiloPinnedPlacement Instance { get; } = new();
}

/// <summary>Marks a grain class as placed by <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloPinnedPlacementAttribute : PlacementAttribute
{
    /// <summary>The attribute.</summary>
    public SiloPinnedPlacementAttribute()
        : base(SiloPinnedPlacement.Instance)
    {
    }
}

/// <summary>The director of <see cref="SiloPinnedPlacement"/>: the key's silo if it is in the cluster, else the activation fails (its silo is gone).</summary>
public sealed class SiloPinnedPlacementDirector : IPlacementDirector
{
    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string key = target.GrainIdentity.Key.ToString() ?? string.Empty;
        SiloAddress silo;
        try
        {
            silo = SiloAddress.FromParsableString(key);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IndexOutOfRangeException)
        {
            throw new OrleansException($"worker key '{key}' is not a silo address");
        }
        if (!context.GetCompatibleSilos(target).Contains(silo))
        {
            throw new OrleansException($"silo {key} is not in the cluster");
        }
        return Task.FromResult(silo);
    }
}
