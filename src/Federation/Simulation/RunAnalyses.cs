namespace ZeroFL.Federation.Simulation;

/// <summary>
/// What the run's analyses carry across checkpoints: the last values written to summary.json and
/// the last mask record (the predecessor of the next record), so that a resumed run writes the
/// same files as one left alone.
/// </summary>
public sealed class RunAnalyses
{
    /// <summary>Last test accuracy measured with all weights (no top-K mask).</summary>
    public double? LastAccuracyDenseWeights { get; set; }

    /// <summary>Last weighted validation accuracy of a round's clients.</summary>
    public double? LastValidationAccuracy { get; set; }

    /// <summary>Last weighted validation loss of a round's clients.</summary>
    public double? LastValidationLoss { get; set; }

    /// <summary>The last mask record, or null (none yet, or a dense model).</summary>
    public MaskRecord? MaskRecord { get; set; }
}
