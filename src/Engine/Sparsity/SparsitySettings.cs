using System.Globalization;
using ZeroFL.Kernels;

namespace ZeroFL.Engine.Sparsity;

/// <summary>Which layers of a model train sparse.</summary>
public enum SparseLayerRule
{
    /// <summary>ZEROFL.md: ResNet-18 every 3x3 convolution but the stem; FEMNIST CNN both convolutions and the first linear layer.</summary>
    Paper,

    /// <summary>The paper's layers plus ResNet-18's 1x1 shortcut convolutions: every layer but the stem and the classifier.</summary>
    All,
}

/// <summary>
/// SWAT settings shared by every sparse layer of a model (SWAT-U: one sparsity for weights and
/// activations).
/// </summary>
/// <param name="Sparsity">Fraction of weights (and of each sparse layer's input) dropped: 0 = dense, 0.9 keeps the top 10%.</param>
/// <param name="TopKPeriod">Recompute the exact top-K thresholds every this many training steps and reuse them in between (1 = exact every step; SWAT's code uses 10).</param>
/// <param name="Layers">Which layers are sparse: the paper's rule, or every convolution and linear layer but the first and the classifier.</param>
/// <param name="SparseKernelMaxDensity">Sparse (zero-skipping) kernels are used when the kept fraction is at most this; above it the dense kernels run on the masked tensors, which is faster there.</param>
public sealed record SparsitySettings(float Sparsity, int TopKPeriod = 1, SparseLayerRule Layers = SparseLayerRule.Paper, float SparseKernelMaxDensity = 0.2f)
{
    /// <summary>Fraction of entries kept, 1 - sparsity, as a float (for comparisons such as <see cref="SparseKernelMaxDensity"/>; never for counts).</summary>
    public float Density => 1f - Sparsity;

    /// <summary>
    /// Fraction of entries kept, exactly: 1 - the sparsity read as the shortest decimal of the float
    /// (0.9f is 0.9, so this is 0.1; the float 1f - 0.9f is 0.100000024).
    /// </summary>
    public decimal KeptFraction => 1m - decimal.Parse(Sparsity.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);

    /// <summary>K of a sparse tensor of <paramref name="n"/> entries: ceil(<see cref="KeptFraction"/> * n), exact (FEMNIST conv1's 800 weights keep 80 at 0.9).</summary>
    public int KeepCount(long n) => TopKKernels.CountFor(n, KeptFraction);

    /// <summary>Throws with a one-line message unless the settings are usable.</summary>
    public void Validate()
    {
        if (!(Sparsity >= 0f && Sparsity < 1f))
        {
            throw new ArgumentException($"sparsity must be in [0, 1), got {Sparsity}");
        }
        if (TopKPeriod < 1)
        {
            throw new ArgumentException($"top-k period must be at least 1, got {TopKPeriod}");
        }
        if (!(SparseKernelMaxDensity >= 0f && SparseKernelMaxDensity <= 1f))
        {
            throw new ArgumentException($"sparse-kernel density limit must be in [0, 1], got {SparseKernelMaxDensity}");
        }
    }
}
