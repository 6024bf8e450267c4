namespace ZeroFL.Data;

/// <summary>
/// Per-dataset pixel normalisation: a byte <c>b</c> becomes <c>(b / 255 - Mean) / Std</c>.
/// </summary>
public readonly record struct Normalization(float Mean, float Std)
{
    /// <summary>Fashion-MNIST's standard constants.</summary>
    public static Normalization FashionMnist { get; } = new(0.2860f, 0.3530f);

    /// <summary>MNIST's standard constants.</summary>
    public static Normalization Mnist { get; } = new(0.1307f, 0.3081f);

    /// <summary>The normalised value of one pixel byte.</summary>
    public float Apply(byte pixel) => (pixel / 255f - Mean) / Std;

    /// <summary>The normalised value of every byte value 0..255, for table lookup.</summary>
    public float[] Table()
    {
        if (!(Std > 0) || !float.IsFinite(Mean))
        {
            throw new ArgumentException($"invalid normalisation {this}: Std must be positive and Mean finite");
        }
        var table = new float[256];
        for (int b = 0; b < table.Length; b++)
        {
            table[b] = Apply((byte)b);
        }
        return table;
    }
}
