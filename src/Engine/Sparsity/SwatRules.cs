using ZeroFL.Engine.Models;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Sparsity;

/// <summary>
/// Which layers of each model train sparse under SWAT, following the paper: ResNet-18 — every 3x3
/// convolution except the stem (the 1x1 shortcut convolutions stay dense); LEAF FEMNIST CNN — both
/// convolutions and the first linear layer, the classifier dense; the small CNN (our choice, by the
/// same logic: first layer and classifier dense) — the second convolution and the hidden linear
/// layer. Batch-norm and biases are never sparsified. <see cref="SparseLayerRule.All"/> also makes
/// ResNet-18's 1x1 shortcut convolutions sparse (then every layer but the stem and the classifier is).
/// </summary>
public static class SwatRules
{
    /// <summary>The sparse layers of <paramref name="network"/> under <paramref name="rule"/> (<see cref="SparseLayerRule.All"/> is a superset of the paper's rule).</summary>
    public static IReadOnlyList<Module> SparseLayers(Module network, SparseLayerRule rule = SparseLayerRule.Paper) => network switch
    {
        ResNet18 r => r.Blocks.SelectMany(b => rule == SparseLayerRule.All && b.Shortcut is not null
            ? new Module[] { b.Conv1, b.Conv2, b.Shortcut }
            : [b.Conv1, b.Conv2]).ToList(),
        FemnistCnn f => [f.Conv1, f.Conv2, f.Fc1],
        SmallCnn s => [s.Conv2, s.Fc1],
        _ => throw new ArgumentException($"no SWAT layer rule for {network.GetType().Name}"),
    };

    /// <summary>
    /// Makes the rule's layers of <paramref name="model"/> sparse with <paramref name="settings"/>
    /// (sparsity 0 makes every layer dense again). Also sets <see cref="Conv2d.RetainSubsampledInput"/>
    /// on each ResNet-18 shortcut exactly when it is dense and its block's conv1 is sparse (then
    /// nothing else keeps the block input) and clears it otherwise. Returns the layers made sparse.
    /// </summary>
    public static IReadOnlyList<Module> Apply(Model model, SparsitySettings settings)
    {
        settings.Validate();
        foreach (var layer in SparseLayers(model.Network, SparseLayerRule.All))
        {
            SetState(layer, null);
        }
        var layers = SparseLayers(model.Network, settings.Layers);
        foreach (var layer in layers)
        {
            SetState(layer, settings.Sparsity > 0 ? new SparseLayerState(settings) : null);
        }
        if (model.Network is ResNet18 resnet)
        {
            // A dense shortcut keeps the whole block input unless conv1 (which reads the same input)
            // already keeps it densely; under a sparse conv1 only the shortcut's strided subsample is needed.
            foreach (var block in resnet.Blocks)
            {
                if (block.Shortcut is not null)
                {
                    block.Shortcut.RetainSubsampledInput = block.Conv1.Sparsity is not null && block.Shortcut.Sparsity is null;
                }
            }
        }
        return settings.Sparsity > 0 ? layers : [];
    }

    /// <summary>Removes every SWAT state of <paramref name="model"/>, freeing their device buffers (the model is dense afterwards).</summary>
    public static void Release(Model model)
    {
        foreach (var (_, layer) in model.Network.Walk())
        {
            SetState(layer, null);
        }
    }

    /// <summary>
    /// Runs every layer of <paramref name="model"/> dense (all weights, no top-K mask) until the
    /// returned scope is disposed, e.g. to evaluate a SWAT-trained model without its mask (ZeroFL:
    /// such a model falls from 82% to 10% on CIFAR-10). The layers' SWAT states are detached, not
    /// disposed, and put back as they were; the model's values are not touched.
    /// </summary>
    public static IDisposable Suspend(Model model) => new SuspendedStates(model);

    /// <summary>The SWAT states detached by <see cref="Suspend"/>, re-attached on dispose.</summary>
    private sealed class SuspendedStates : IDisposable
    {
        private readonly List<(Module Layer, SparseLayerState State)> detached = [];

        public SuspendedStates(Model model)
        {
            foreach (var layer in SparseLayers(model.Network, SparseLayerRule.All))
            {
                switch (layer)
                {
                    case Conv2d { Sparsity: { } state } conv:
                        detached.Add((layer, state));
                        conv.Sparsity = null;
                        break;
                    case Linear { Sparsity: { } state } linear:
                        detached.Add((layer, state));
                        linear.Sparsity = null;
                        break;
                }
            }
        }

        public void Dispose()
        {
            foreach (var (layer, state) in detached)
            {
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
            detached.Clear();
        }
    }

    private static void SetState(Module layer, SparseLayerState? state)
    {
        switch (layer)
        {
            case Conv2d conv:
                conv.Sparsity?.Dispose();
                conv.Sparsity = state;
                break;
            case Linear linear:
                linear.Sparsity?.Dispose();
                linear.Sparsity = state;
                break;
        }
    }

    /// <summary>The sparse weight parameters (what ZeroFL's uplink compresses) of <paramref name="model"/> under <paramref name="rule"/>.</summary>
    public static IReadOnlyList<Parameter> SparseWeights(Model model, SparseLayerRule rule = SparseLayerRule.Paper) =>
        SparseLayers(model.Network, rule).Select(l => l switch
        {
            Conv2d c => c.Weight,
            Linear f => f.Weight,
            _ => throw new InvalidOperationException($"unexpected sparse layer {l.GetType().Name}"),
        }).ToList();

    /// <summary>Forgets every sparse layer's saved thresholds (next step recomputes them exactly).</summary>
    public static void ResetThresholds(Model model)
    {
        foreach (var layer in SparseLayers(model.Network, SparseLayerRule.All))
        {
            (layer as Conv2d)?.Sparsity?.Reset();
            (layer as Linear)?.Sparsity?.Reset();
        }
    }
}
