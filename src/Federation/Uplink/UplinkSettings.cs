namespace ZeroFL.Federation.Uplink;

/// <summary>
/// A client's upload rule: the strategy, the SWAT sparsity sp and the mask ratio r_mask (the extra
/// share sent). The ZeroFL strategies keep the fraction f = clamp(1 - sp + r_mask, 0, 1) of each
/// sparse layer, K = ceil(f * n) entries of a layer of n; r_mask &gt;= sp keeps everything (the dense
/// upload). Dense and Swat send every layer whole whatever sp and r_mask are.
/// sp and r_mask are read as the shortest decimals of the doubles (0.9 and 0.1 exactly), so
/// f and K carry no float rounding: sp = 0.8, r_mask = 0 keeps exactly 2 of 10.
/// A float widened to double is not what was typed ((double)0.9f is 0.89999997615814209); use
/// <see cref="ExactFraction.ToDecimal(float)"/> and <see cref="KeepFractionOf"/> for floats.
/// </summary>
public sealed record UplinkSettings
{
    /// <summary>Checks and stores the settings: sp in [0, 1], r_mask &gt;= 0 (both finite).</summary>
    public UplinkSettings(UplinkStrategy strategy, double sparsity = 0, double maskRatio = 0)
    {
        if (!Enum.IsDefined(strategy))
        {
            throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "unknown uplink strategy");
        }
        if (!(sparsity >= 0 && sparsity <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(sparsity), sparsity, "sparsity must be in [0, 1]");
        }
        if (!(maskRatio >= 0 && maskRatio <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(maskRatio), maskRatio, "mask ratio must be in [0, 1]");
        }
        Strategy = strategy;
        Sparsity = sparsity;
        MaskRatio = maskRatio;
    }

    /// <summary>The upload strategy.</summary>
    public UplinkStrategy Strategy { get; }

    /// <summary>SWAT sparsity sp (share of each sparse layer's weights that are zero in the forward pass).</summary>
    public double Sparsity { get; }

    /// <summary>Mask ratio r_mask: extra share of each sparse layer uploaded beyond the 1 - sp that SWAT kept.</summary>
    public double MaskRatio { get; }

    /// <summary>How clients lay out each sparse layer (the server accepts every layout whatever this says).</summary>
    public UplinkEncodingMode Encoding { get; init; } = UplinkEncodingMode.Auto;

    /// <summary>The width of the values of each sparse layer's top-K slice (the server takes only this width there).</summary>
    public UploadValues Values { get; init; } = UploadValues.Fp32;

    /// <summary>The width <paramref name="layer"/>'s values travel in: <see cref="Values"/> for a sparse layer's slice under the ZeroFL strategies, else fp32.</summary>
    public UploadValues ValuesOf(LayerSpec layer)
    {
        ArgumentNullException.ThrowIfNull(layer);
        return layer.Sparse && Strategy.SparsifiesUpload() ? Values : UploadValues.Fp32;
    }

    /// <summary>Share of a sparse layer's entries uploaded: 1 - sp + r_mask clamped to [0, 1] for the ZeroFL strategies, 1 for Dense and Swat.</summary>
    public decimal KeepFraction => Strategy.SparsifiesUpload()
        ? KeepFractionOf(ExactFraction.ToDecimal(Sparsity), ExactFraction.ToDecimal(MaskRatio))
        : 1m;

    /// <summary>Entries uploaded of a sparse layer of <paramref name="length"/>: ceil(KeepFraction * length).</summary>
    public int KeepCount(int length) => (int)ExactFraction.CeilingOf(KeepFraction, length);

    /// <summary>clamp(1 - <paramref name="sparsity"/> + <paramref name="maskRatio"/>, 0, 1), exact.</summary>
    public static decimal KeepFractionOf(decimal sparsity, decimal maskRatio) => Math.Clamp(1m - sparsity + maskRatio, 0m, 1m);
}
