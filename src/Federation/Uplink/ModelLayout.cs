using ZeroFL.Engine.Modules;

namespace ZeroFL.Federation.Uplink;

/// <summary>
/// The tensors a client uploads, in order. Model weights are passed around as one float array per
/// layer (<c>IReadOnlyList&lt;float[]&gt;</c>, aligned with <see cref="Layers"/>, each flattened row-major).
/// </summary>
public sealed class ModelLayout
{
    /// <summary>A layout of the given layers (at least one; names unique).</summary>
    public ModelLayout(IEnumerable<LayerSpec> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        Layers = layers.ToArray();
        if (Layers.Count == 0)
        {
            throw new ArgumentException("a model layout needs at least one layer", nameof(layers));
        }
        var duplicate = Layers.GroupBy(l => l.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"layer name '{duplicate.Key}' appears {duplicate.Count()} times", nameof(layers));
        }
    }

    /// <summary>The layers, in upload order.</summary>
    public IReadOnlyList<LayerSpec> Layers { get; }

    /// <summary>Total elements of all layers.</summary>
    public long TotalLength => Layers.Sum(l => (long)l.Length);

    /// <summary>Total elements of the sparse layers.</summary>
    public long SparseLength => Layers.Where(l => l.Sparse).Sum(l => (long)l.Length);

    /// <summary>
    /// The layout of an engine model's parameters, in parameter order. <paramref name="isSparse"/>
    /// says which parameters are SWAT-sparse (ResNet-18: the 3x3 convolutions except the stem;
    /// FEMNIST CNN: both convolutions and the first linear layer). Batch-norm running statistics
    /// are left out unless <paramref name="includeRunningStatistics"/> (Flower's ZeroFL sends the
    /// whole state dict, running statistics included: 2 * channels floats per batch-norm).
    /// </summary>
    public static ModelLayout FromParameters(IEnumerable<Parameter> parameters, Func<Parameter, bool> isSparse,
        bool includeRunningStatistics = false)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(isSparse);
        return new ModelLayout(parameters
            .Where(p => p.Trainable || includeRunningStatistics)
            .Select(p => new LayerSpec(p.FullName, p.Shape, isSparse(p))));
    }

    /// <summary>Zero weights of this layout, one array per layer.</summary>
    public float[][] Zeros() => Layers.Select(l => new float[l.Length]).ToArray();

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="weights"/> has one array of the right length per layer.</summary>
    public void CheckWeights(IReadOnlyList<float[]> weights, string what)
    {
        ArgumentNullException.ThrowIfNull(weights, what);
        if (weights.Count != Layers.Count)
        {
            throw new ArgumentException($"{what}: {weights.Count} layer arrays for a layout of {Layers.Count} layers");
        }
        for (int l = 0; l < Layers.Count; l++)
        {
            if (weights[l] is null || weights[l].Length != Layers[l].Length)
            {
                throw new ArgumentException(
                    $"{what}: layer {Layers[l].Name} has {weights[l]?.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no"} values, expected {Layers[l].Length}");
            }
        }
    }
}
