using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Sparsity;

/// <summary>
/// Which layers of each model train sparse under SWAT, following the paper: ResNet-18 — every 3x3
/// convolution except the stem (the 1x1 shortcut convolutions stay dense); LEAF FEMNIST CNN — both
/// convolutions and the first linear layer, the classifier dense; the small CNN (our choice, by the
/// same logic: first layer and classifier dense) — the second convolution and the hidden linear
/// layer. Batch-norm and biases are never sparsified.
/// </summary>
public static class SwatRules
{
    /// <summary>The sparse layers of <paramref name="network"/> by the paper's rule.</summary>
    public static IReadOnlyList<Module> SparseLayers(Module network) => network switch
    {
        ResNet18 r => r.Blocks.SelectMany(b => new Module[] { b.Conv1, b.Conv2 }).ToList(),
        FemnistCnn f => [f.Conv1, f.Conv2, f.Fc1],
        SmallCnn s => [s.Conv2, s.Fc1],
        _ => throw new ArgumentException($"no SWAT layer rule for {network.GetType().Name}"),
    };

    /// <summary>
    /// Makes the rule's layers of <paramref name="model"/> sparse with <paramref name="settings"/>
    /// (sparsity 0 makes every layer dense again). Returns the layers made sparse.
    /// </summary>
    public static IReadOnlyList<Module> Apply(Model model, SparsitySettings settings)
    {
        settings.Validate();
        var layers = SparseLayers(model.Network);
        foreach (var layer in layers)
        {
            var state = settings.Sparsity > 0 ? new SparseLayerState(settings) : null;
            switch (layer)
            {
                case Conv2d conv:
                    conv.Sparsity = state;
                    break;
                case Linear linear:
                    linear.Sparsity = state;
                    break;
            }
        }
        return settings.Sparsity > 0 ? layers : [];
    }

    /// <summary>The sparse weight parameters (what ZeroFL's uplink compresses) of <paramref name="model"/>.</summary>
    public static IReadOnlyList<Parameter> SparseWeights(Model model) =>
        SparseLayers(model.Network).Select(l => l switch
        {
            Conv2d c => c.Weight,
            Linear f => f.Weight,
            _ => throw new InvalidOperationException($"unexpected sparse layer {l.GetType().Name}"),
        }).ToList();

    /// <summary>Forgets every sparse layer's saved thresholds (next step recomputes them exactly).</summary>
    public static void ResetThresholds(Model model)
    {
        foreach (var layer in SparseLayers(model.Network))
        {
            (layer as Conv2d)?.Sparsity?.Reset();
            (layer as Linear)?.Sparsity?.Reset();
        }
    }
}
