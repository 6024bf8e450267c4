namespace ZeroFL.Engine.Profiling;

/// <summary>
/// Training FLOPs of convolution and linear layers (which carry over 99% of the work of every model
/// here): the dense-equivalent count and the count from the entries actually used by SWAT.
/// Always on; the federation reports these per round.
/// </summary>
public sealed class FlopCounter
{
    /// <summary>FLOPs the dense layers would have done (2 per multiply-add).</summary>
    public double Dense { get; private set; }

    /// <summary>FLOPs counted from the kept weights and activations.</summary>
    public double Sparse { get; private set; }

    /// <summary>Adds one pass.</summary>
    public void Add(double dense, double sparse)
    {
        Dense += dense;
        Sparse += sparse;
    }

    /// <summary>Zeroes both counts.</summary>
    public void Clear()
    {
        Dense = 0;
        Sparse = 0;
    }
}
